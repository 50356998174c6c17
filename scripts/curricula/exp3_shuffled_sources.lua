-- Experiment 3, ablation: the ratios of experiment 0, but Japanese sources shuffled (blended in proportion to
-- their sizes) instead of read in quality order.
---@type hashi.Plan
return require("method").exp3("exp3: 3:1 then 1:3, shuffled sources")
