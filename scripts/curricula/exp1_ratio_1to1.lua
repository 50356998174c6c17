-- Experiment 1, ablation: EN:JA 1:1 throughout, same Japanese source order as experiment 0.
local m = require("method")

return m.plan("exp1: 1:1", m.concat(
  m.phases_per_source("1:1", 0.5, m.ja_quality, 0.5),
  m.phases_per_source("1:1", 0.5, m.reversed(m.ja_quality), 0.5)
))
