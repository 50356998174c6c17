-- The method's plans on the shared development corpora (require "method" from a curriculum in this folder).
-- Japanese sources by quality: Wikipedia -> CC100 -> OSCAR; here the shared corpora's tiers (ja_wiki ->
-- ja_web_medium -> ja_web_low, as prepared by scripts/corpora/shared.lua). English: Wikipedia + books.
-- Sizes for this machine; the paper-scale values live in examples/paper.
---@type curricula.MethodPlans
return require("curricula").method({
  ja = { "ja_wiki", "ja_web_medium", "ja_web_low" },
  en = { order = "blend", names = { "en_wiki", "en_books" } },
  base = { seq_len = 512, batch_size = 32, total_tokens = 12e6, seed = 1234, on_exhausted = "repeat" },
})
