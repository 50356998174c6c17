-- A two-phase curriculum in the method's spirit on the demo corpus: EN:JA 3:1, then 1:3.
local function phase(name, en)
  return {
    name = name,
    tokens = 0.5,
    shares = { en = en, ja = 1 - en },
    sources = { en = { order = "blend", names = { "en_books" } }, ja = { order = "sequential", names = { "ja_books" } } },
  }
end

---@type hashi.Plan
return {
  name = "demo",
  seq_len = 128,
  batch_size = 8,
  total_tokens = 40960,
  seed = 1,
  on_exhausted = "repeat",
  phases = { phase("EN:JA 3:1", 0.75), phase("EN:JA 1:3", 0.25) },
}
