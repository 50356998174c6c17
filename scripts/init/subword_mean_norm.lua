-- The subword mean (FVT) with norm correction: the mean of the old tokenizer's pieces for the token's text,
-- rescaled to the mean norm of those pieces' rows (averaging shrinks a row's norm when the pieces point in
-- different directions). The mean row when the old tokenizer has no pieces for it.
local recipes = require("recipes")

---@type hashi.Strategy
return {
  name = "subword_mean_norm",
  recipe = function(token, ctx)
    if #token.old_ids == 0 then
      return { mean = 1 }
    end
    local r = recipes.uniform(token.old_ids)
    return recipes.with_norm(r, recipes.mean_norm(token.old_ids))
  end,
}
