-- Ablation exp3 at paper scale: Japanese sources shuffled.
---@type hashi.Experiment
return require("common").experiment("exp3-paper", "curriculum_exp3.lua")
