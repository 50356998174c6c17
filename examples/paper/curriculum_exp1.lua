-- exp1 at paper scale: EN:JA 1:1 throughout, exp0's source order.
local p = require("plan")
return p.plan("exp1 (paper scale)", p.concat(p.per_source("1:1", 0.5, p.ja_quality, 0.5),
  p.per_source("1:1", 0.5, p.reversed(p.ja_quality), 0.5)))
