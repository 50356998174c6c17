-- Similarity-weighted combination of overlapping old tokens, in the spirit of FOCUS (Dobler & de Melo, 2023),
-- without external embeddings: the old pieces sharing the most character bigrams with the new piece
-- (hashi.similar), weighted by softmax(score / tau). Falls back to the subword mean, then the mean row.
local recipes = require("recipes")

local K, TAU = 8, 0.1

---@type hashi.Strategy
return {
  name = "similarity",
  recipe = function(token, ctx)
    local near = hashi.similar(token.piece, K)
    if #near > 0 then
      return recipes.softmax(near, TAU)
    end
    if #token.old_ids > 0 then
      return recipes.uniform(token.old_ids)
    end
    return { mean = 1 }
  end,
}
