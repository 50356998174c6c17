-- The mean of the old tokenizer's pieces for the new token's text (the mean row when there are none).
local recipes = require("recipes")

---@type hashi.Strategy
return {
  name = "subword_mean",
  recipe = function(token, ctx)
    if #token.old_ids == 0 then
      return { mean = 1 }
    end
    return recipes.uniform(token.old_ids)
  end,
}
