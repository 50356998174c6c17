-- Ablation exp1 at paper scale: EN:JA 1:1.
---@type hashi.Experiment
return require("common").experiment("exp1-paper", "curriculum_exp1.lua")
