-- Orthogonal matching pursuit (in the spirit of tokenizer transplantation by OMP, Goddard & Fernandes Neto, 2025,
-- without a donor model): the subword mean approximated by a sparse least-squares combination of at most K
-- whole old tokens chosen among its POOL nearest old rows, at the mean norm of the subword rows. The row then
-- lies in the span of real token rows rather than at an average between them. The mean row when the old
-- tokenizer has no pieces for the token.
local recipes = require("recipes")

local K, POOL = 8, 64

---@type Strategy
return {
  name = "omp",
  recipe = function(token, ctx)
    if #token.old_ids == 0 then
      return { mean = 1 }
    end
    local target = recipes.uniform(token.old_ids)
    local pool = {}
    for _, s in ipairs(hashi.nearest(target, POOL)) do
      pool[#pool + 1] = s.id
    end
    return recipes.with_norm({ terms = hashi.omp(target, pool, K) }, recipes.mean_norm(token.old_ids))
  end,
}
