-- Helpers for embedding-init strategies (require "recipes").
local M = {}

--- Equal weights over `ids`: the mean of those old rows.
---@param ids integer[]
---@return hashi.Recipe
function M.uniform(ids)
  local terms = {}
  for _, id in ipairs(ids) do
    terms[#terms + 1] = { id, 1 / #ids }
  end
  return { terms = terms }
end

--- Weights proportional to exp(score / tau) over `{id, score}` pairs.
---@param scored {id: integer, score: number}[]
---@param tau number
---@return hashi.Recipe
function M.softmax(scored, tau)
  local best = -math.huge
  for _, s in ipairs(scored) do best = math.max(best, s.score) end
  local total, terms = 0, {}
  for _, s in ipairs(scored) do
    local w = math.exp((s.score - best) / tau)
    total = total + w
    terms[#terms + 1] = { s.id, w }
  end
  for _, t in ipairs(terms) do t[2] = t[2] / total end
  return { terms = terms }
end

--- Mean L2 norm of the old rows `ids` (in `embed_tokens`; `hashi.norm`).
---@param ids integer[]
---@return number
function M.mean_norm(ids)
  local total = 0
  for _, id in ipairs(ids) do total = total + hashi.norm(id) end
  return total / #ids
end

--- `recipe` with `scale` set so that its row (terms and mean) has L2 norm `norm` in `embed_tokens`; unchanged
--- when that row is zero.
---@param recipe hashi.Recipe
---@param norm number
---@return hashi.Recipe
function M.with_norm(recipe, norm)
  local have = hashi.norm(recipe.terms or {})
  if recipe.mean and recipe.mean ~= 0 then
    error("with_norm: a recipe with a mean term cannot be measured by hashi.norm", 2)
  end
  if have > 0 then recipe.scale = norm / have end
  return recipe
end

return M
