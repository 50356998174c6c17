-- exp2 at paper scale: exp0's data plan; the experiment (exp2.lua) trains it from random weights.
---@type hashi.Plan
return require("plan").exp0("exp2 (paper scale, from scratch)")
