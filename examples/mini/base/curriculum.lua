-- English pretraining of the base model: one phase, Wikipedia and books blended by size.
---@type hashi.Plan
return {
  name = "mini base: English pretraining",
  seq_len = 256,
  batch_size = 32,
  total_tokens = 6e6,
  seed = 7,
  on_exhausted = "repeat",
  phases = {
    { name = "en", tokens = 1.0, shares = { en = 1.0 }, sources = { en = { order = "blend", names = { "en_wiki", "en_books" } } } },
  },
}
