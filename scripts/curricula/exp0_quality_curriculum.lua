-- Experiment 0, the method: EN:JA 3:1 with Japanese sources in quality order (Wiki -> CC100 -> OSCAR), then
-- EN:JA 1:3 in reverse order (OSCAR -> CC100 -> Wiki); every change of source is a phase (LR re-warmup and a
-- checkpoint at each switch).
local m = require("method")

return m.plan("exp0: 3:1 then 1:3, quality order", m.concat(
  m.phases_per_source("3:1", 0.75, m.ja_quality, 0.5),
  m.phases_per_source("1:3", 0.25, m.reversed(m.ja_quality), 0.5)
))
