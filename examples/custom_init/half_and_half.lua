-- A user's own strategy in a few lines: half the subword mean, half the global mean, plus a little noise.
-- Run it with:  hashi transfer --model SRC --tokenizer NEW --init examples/custom_init/half_and_half.lua --out DST
local recipes = require("recipes") -- from scripts/lib

---@type hashi.Strategy
return {
  name = "half_and_half",
  recipe = function(token, ctx)
    local r = #token.old_ids > 0 and recipes.uniform(token.old_ids) or { terms = {} }
    for _, t in ipairs(r.terms) do t[2] = t[2] * 0.5 end
    r.mean = #token.old_ids > 0 and 0.5 or 1
    r.noise = 0.1 * ctx.old_std
    return r
  end,
}
