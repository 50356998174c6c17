-- Experiment 2, ablation: the data of experiment 0, trained from random weights (the run file marks the variant
-- from_scratch).
---@type hashi.Plan
return require("method").exp0("exp2: from scratch (exp0 data)")
