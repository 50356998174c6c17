-- Experiment 0, the method: EN:JA 3:1 with Japanese sources in quality order (Wiki -> CC100 -> OSCAR), then
-- EN:JA 1:3 in reverse order (OSCAR -> CC100 -> Wiki); every change of source is a phase (LR re-warmup and a
-- checkpoint at each switch).
---@type hashi.Plan
return require("method").exp0("exp0: 3:1 then 1:3, quality order")
