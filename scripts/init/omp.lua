-- Orthogonal matching pursuit over subword pieces (in the spirit of tokenizer transplantation by OMP, Goddard &
-- Fernandes Neto, 2025, without a donor model): the subword mean approximated by a sparse least-squares
-- combination of at most K whole old tokens other than its own pieces, chosen among the POOL old pieces that
-- share the most character bigrams with it (hashi.similar): the row lies in the span of a few real tokens spelled
-- like it. The cost is independent of the old vocabulary's size (no pass over the matrix), so it scales to
-- 7B-sized vocabularies. The subword mean when no old piece shares a bigram; the mean row when the old tokenizer
-- has no pieces for the token.
local recipes = require("recipes")

local K, POOL = 8, 32

---@type hashi.Strategy
return {
  name = "omp",
  recipe = function(token, ctx)
    if #token.old_ids == 0 then
      return { mean = 1 }
    end
    local own, pool = {}, {}
    for _, id in ipairs(token.old_ids) do own[id] = true end
    for _, s in ipairs(hashi.similar(token.piece, POOL)) do
      if not own[s.id] then pool[#pool + 1] = s.id end
    end
    local target = recipes.uniform(token.old_ids)
    if #pool == 0 then
      return target
    end
    return { terms = hashi.omp(target, pool, K) }
  end,
}
