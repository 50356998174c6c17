-- Experiment 3, ablation: the ratios of experiment 0 with the Japanese sources shuffled.
---@type hashi.Plan
return require("method").exp3()
