-- Probe of the step-0 comparison in BENCHMARKS.md (not a shipped strategy).
local recipes = require("recipes")
return { name = "sm_x0.6", recipe = function(token, ctx)
  if #token.old_ids == 0 then return { mean = 1 } end
  local r = recipes.uniform(token.old_ids); r.scale = 0.6; return r
end }
