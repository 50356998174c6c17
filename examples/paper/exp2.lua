-- Ablation exp2 at paper scale: from scratch (no English weights reused), exp0's data.
---@type hashi.Experiment
return require("common").experiment("exp2-paper", "curriculum_exp2.lua", true)
