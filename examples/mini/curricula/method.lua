-- The method's four data plans on the mini corpora (require "method" from a curriculum in this folder): Japanese
-- Wiki -> books -> noisy by quality, English Wikipedia + books. Sizes are set here for a plain `hashi train`;
-- `hashi run` replaces them with the run file's `plan_overrides`.
---@type curricula.MethodPlans
return require("curricula").method({
  ja = { "ja_wiki", "ja_books", "ja_noisy" },
  en = { order = "blend", names = { "en_wiki", "en_books" } },
  base = { seq_len = 256, batch_size = 16, total_tokens = 786432, seed = 1, on_exhausted = "repeat" },
})
