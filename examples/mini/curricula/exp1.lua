-- Experiment 1, ablation: EN:JA 1:1 throughout, the sources of experiment 0.
return require("method").exp1()
