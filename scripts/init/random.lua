-- Random rows: normal around the old rows' mean, with the old entries' standard deviation.
---@type hashi.Strategy
return {
  name = "random",
  recipe = function(token, ctx)
    return { mean = 1, noise = ctx.old_std }
  end,
}
