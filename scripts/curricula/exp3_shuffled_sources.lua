-- Experiment 3, ablation: the ratios of experiment 0, but Japanese sources shuffled (blended in proportion to
-- their sizes) instead of read in quality order.
local m = require("method")

local function phase(name, en)
  return {
    name = name,
    tokens = 0.5,
    shares = { en = en, ja = 1 - en },
    sources = { en = m.en, ja = { order = "blend", names = m.ja_quality } },
  }
end

return m.plan("exp3: 3:1 then 1:3, shuffled sources", { phase("3:1 shuffled", 0.75), phase("1:3 shuffled", 0.25) })
