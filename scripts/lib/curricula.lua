-- Building blocks of the method's data plans (require "curricula" from a curriculum): phases per Japanese source,
-- and the method's experiments over any set of sources and sizes.
local M = {}

---What `M.method` takes.
---@class curricula.MethodOptions
---@field ja string[] Japanese sources by quality, best first (one phase per source)
---@field en hashi.SourceList the English source list of every phase
---@field base hashi.PlanOverrides top-level plan fields: seq_len, batch_size, total_tokens, seed, on_exhausted

---The method's plans (`M.method`); each function takes an optional plan name.
---@class curricula.MethodPlans
---@field exp0 fun(name?: string): hashi.Plan 3:1 in quality order, then 1:3 in reverse order
---@field exp1 fun(name?: string): hashi.Plan 1:1, same order as exp0
---@field exp3 fun(name?: string): hashi.Plan exp0's ratios, Japanese sources blended

--- One phase per Japanese source, in reading order: a data switch (LR re-warmup, checkpoint) at every change.
---@param tag string phase name prefix
---@param en_share number English share of every phase
---@param en hashi.SourceList English source list ({ order = ..., names = {...} })
---@param ja_sources string[] Japanese sources, in reading order
---@param fraction number share of total_tokens for the whole group
---@return hashi.Phase[]
function M.per_source(tag, en_share, en, ja_sources, fraction)
  local phases = {}
  for _, src in ipairs(ja_sources) do
    phases[#phases + 1] = {
      name = tag .. " " .. src:gsub("^ja_", ""),
      tokens = fraction / #ja_sources,
      shares = { en = en_share, ja = 1 - en_share },
      sources = { en = en, ja = { order = "sequential", names = { src } } },
    }
  end
  return phases
end

--- Concatenated phase lists.
---@param ... hashi.Phase[]
---@return hashi.Phase[]
function M.concat(...)
  local out = {}
  for _, list in ipairs({ ... }) do
    for _, p in ipairs(list) do out[#out + 1] = p end
  end
  return out
end

--- A list in reverse order.
---@generic T
---@param list T[]
---@return T[]
function M.reversed(list)
  local out = {}
  for i = #list, 1, -1 do out[#out + 1] = list[i] end
  return out
end

--- `plan` with a first phase that trains only the embedding rows the vocabulary transfer initialised, at its own
--- peak learning rate (TokAlign's first stage; `training.new_rows_only` reads the rows from the transfer report).
--- The warm-up reads the first phase's data and takes `fraction` of `total_tokens`; the other phases are scaled to
--- the rest, so the plan trains on as many tokens as before (their budgets must be fractions).
---@param plan hashi.Plan
---@param fraction number share of total_tokens for the warm-up, in (0, 1)
---@param max_lr number the warm-up's peak learning rate (its schedule's `max_lr`)
---@return hashi.Plan
function M.embedding_warmup(plan, fraction, max_lr)
  assert(fraction > 0 and fraction < 1, "embedding_warmup: fraction must be in (0, 1)")
  local first = plan.phases[1]
  local phases = { {
    name = "embed warm-up", tokens = fraction, shares = first.shares, sources = first.sources,
    training = { params = { "model.embed_tokens", "lm_head" }, new_rows_only = true,
                 schedule = { max_lr = max_lr } },
  } }
  for _, p in ipairs(plan.phases) do
    assert(p.tokens <= 1, "embedding_warmup: phase " .. p.name .. " has an absolute budget")
    local q = {}
    for k, v in pairs(p) do q[k] = v end
    q.tokens = p.tokens * (1 - fraction)
    phases[#phases + 1] = q
  end
  local out = {}
  for k, v in pairs(plan) do out[k] = v end
  out.name = plan.name .. " + embedding warm-up"
  out.phases = phases
  return out
end

--- The method's plans over `o.ja` (Japanese sources by quality, best first), `o.en` (English source list) and
--- `o.base` (seq_len, batch_size, total_tokens, seed, on_exhausted): exp0 (3:1 in quality order, then 1:3 in
--- reverse), exp1 (1:1, same order), exp3 (exp0's ratios, Japanese sources blended). exp2 is exp0's plan from
--- random weights: the experiment, not the plan, says so.
---@param o curricula.MethodOptions
---@return curricula.MethodPlans
function M.method(o)
  local function plan(name, phases)
    local p = { name = name, phases = phases }
    for k, v in pairs(o.base) do p[k] = v end
    return p
  end
  local E = {}
  function E.exp0(name)
    return plan(name or "exp0: 3:1 then 1:3, quality order", M.concat(
      M.per_source("3:1", 0.75, o.en, o.ja, 0.5), M.per_source("1:3", 0.25, o.en, M.reversed(o.ja), 0.5)))
  end
  function E.exp1(name)
    return plan(name or "exp1: 1:1", M.concat(
      M.per_source("1:1", 0.5, o.en, o.ja, 0.5), M.per_source("1:1", 0.5, o.en, M.reversed(o.ja), 0.5)))
  end
  function E.exp3(name)
    local function phase(tag, en_share)
      return { name = tag, tokens = 0.5, shares = { en = en_share, ja = 1 - en_share },
               sources = { en = o.en, ja = { order = "blend", names = o.ja } } }
    end
    return plan(name or "exp3: 3:1 then 1:3, shuffled sources", { phase("3:1 shuffled", 0.75), phase("1:3 shuffled", 0.25) })
  end
  return E
end

return M
