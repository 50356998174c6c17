-- The method's own choice: matched tokens keep their rows (done by the host), and every other new token takes
-- whatever old row sits at its id ("arbitrary rows"), as when a vocabulary is replaced in place; ids beyond the
-- old vocabulary get random rows.
---@type hashi.Strategy
return {
  name = "method",
  recipe = function(token, ctx)
    if token.id < ctx.old_vocab_size then
      return { terms = { { token.id, 1 } } }
    end
    return { mean = 1, noise = ctx.old_std }
  end,
}
