-- Experiment 0, the method: EN:JA 3:1 (Japanese Wiki -> books -> noisy), then 1:3 (noisy -> books -> Wiki).
---@type hashi.Plan
return require("method").exp0()
