-- exp0 at paper scale: EN:JA 3:1 with Japanese sources in quality order (Wikipedia -> CC100 -> OSCAR), then
-- EN:JA 1:3 in reverse order; every source change is a phase.
---@type hashi.Plan
return require("plan").exp0("exp0 (paper scale)")
