-- exp1 at paper scale: EN:JA 1:1 throughout, exp0's source order.
---@type hashi.Plan
return require("plan").exp1("exp1 (paper scale)")
