-- Helpers for embedding-init strategies (require "recipes").
local M = {}

--- Equal weights over `ids`: the mean of those old rows.
---@param ids integer[]
---@return Recipe
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
---@return Recipe
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

return M
