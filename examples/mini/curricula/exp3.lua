-- Experiment 3, ablation: the ratios of experiment 0 with the Japanese sources shuffled.
return require("method").exp3()
