-- Experiment 1, ablation: EN:JA 1:1 throughout, the sources of experiment 0.
---@type hashi.Plan
return require("method").exp1()
