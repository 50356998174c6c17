-- exp3 at paper scale: exp0's ratios with the Japanese sources shuffled (blended by size) instead of in order.
local p = require("plan")
local function phase(name, en)
  return { name = name, tokens = 0.5, shares = { en = en, ja = 1 - en },
           sources = { en = p.en, ja = { order = "blend", names = p.ja_quality } } }
end
return p.plan("exp3 (paper scale)", { phase("3:1 shuffled", 0.75), phase("1:3 shuffled", 0.25) })
