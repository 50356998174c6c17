-- The CPU setting's plan: the method's two language ratios (EN:JA 3:1, then 1:3) with one data switch between
-- them, over the mini reproduction's English sources and its Japanese Wikipedia (one Japanese source, so two
-- phases and two checkpoints to evaluate on a 2-core budget). The GPU setting (gpu.lua) uses the mini's four
-- curricula with all three Japanese quality tiers. `hashi run` replaces the sizes with the run file's
-- `plan_overrides`.
---@type hashi.Plan
return require("curricula").method({
  ja = { "ja_wiki" },
  en = { order = "blend", names = { "en_wiki", "en_books" } },
  base = { seq_len = 256, batch_size = 4, total_tokens = 40960, seed = 1, on_exhausted = "repeat" },
}).exp0("exp0: 3:1 then 1:3 (Japanese Wikipedia)")
