-- Experiment 1, ablation: EN:JA 1:1 throughout, same Japanese source order as experiment 0.
---@type hashi.Plan
return require("method").exp1("exp1: 1:1")
