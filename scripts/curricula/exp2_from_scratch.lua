-- Experiment 2, ablation: the data plan of experiment 0, trained from random weights (no English weights reused;
-- the experiment file sets the model init, the data plan is unchanged).
---@type hashi.Plan
return require("method").exp0("exp2: from scratch (exp0's data)")
