-- The whole old token nearest (cosine) to the subword mean, rescaled to the old rows' mean norm.
---@type hashi.Strategy
return {
  name = "nearest_row",
  recipe = function(token, ctx)
    if #token.old_ids == 0 then return { mean = 1 } end
    local near = hashi.nearest(require("recipes").uniform(token.old_ids), 1)[1]
    return { terms = { { near.id, 1 } }, scale = ctx.old_row_norm / hashi.norm(near.id) }
  end,
}
