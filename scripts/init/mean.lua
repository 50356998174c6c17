-- The mean of all old rows for every new token.
---@type hashi.Strategy
return {
  name = "mean",
  recipe = function(token, ctx)
    return { mean = 1 }
  end,
}
