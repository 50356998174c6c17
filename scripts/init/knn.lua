-- Similarity-weighted init in the model's own embedding space: the K old rows nearest (cosine) to the subword
-- mean, weighted by softmax(cosine / TAU). The idea of FOCUS (Dobler &
-- de Melo, 2023) and WECHSEL (Minixhofer et al., 2022) — a new token as a similarity-weighted mix of old tokens —
-- with the source model's embeddings as the space instead of an auxiliary fastText model. One pass over the old
-- matrix per token (hashi.nearest): fine for small models, slow for 7B-sized vocabularies. Falls back to the
-- mean row when the old tokenizer has no pieces for the token.
local recipes = require("recipes")

local K, TAU = 8, 0.05

---@type hashi.Strategy
return {
  name = "knn",
  recipe = function(token, ctx)
    if #token.old_ids == 0 then
      return { mean = 1 }
    end
    local near = hashi.nearest(recipes.uniform(token.old_ids), K)
    return recipes.softmax(near, TAU)
  end,
}
