-- The method's data plans at paper scale (require "plan" from a curriculum in this folder): English, and Japanese
-- Wikipedia -> CC100 -> OSCAR by quality; 4,096-token sequences, 1,024 per batch (4 M tokens). total_tokens is a
-- parameter (README.md: an example budget, not the paper's): the steps per phase scale with it.
---@type curricula.MethodPlans
return require("curricula").method({
  ja = { "ja_wiki", "ja_cc100", "ja_oscar" },
  en = { order = "blend", names = { "en" } },
  base = { seq_len = 4096, batch_size = 1024, total_tokens = 100e9, seed = 1234, on_exhausted = "error" },
})
