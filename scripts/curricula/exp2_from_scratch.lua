-- Experiment 2, ablation: the data plan of experiment 0, trained from random weights (no English weights reused;
-- the experiment file sets the model init, the data plan is unchanged).
local m = require("method")

return m.plan("exp2: from scratch (exp0's data)", m.concat(
  m.phases_per_source("3:1", 0.75, m.ja_quality, 0.5),
  m.phases_per_source("1:3", 0.25, m.reversed(m.ja_quality), 0.5)
))
