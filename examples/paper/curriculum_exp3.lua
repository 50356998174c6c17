-- exp3 at paper scale: exp0's ratios with the Japanese sources shuffled (blended by size) instead of in order.
---@type hashi.Plan
return require("plan").exp3("exp3 (paper scale)")
