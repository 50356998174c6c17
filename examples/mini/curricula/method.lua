-- The method's four data plans on the mini corpora (require "method" from a curriculum in this folder).
-- Sizes (seq_len, batch_size, total_tokens) are set here for a plain `hashi train`; `hashi run` replaces them
-- with the run file's `plan_overrides`.
local M = {}

M.ja_quality = { "ja_wiki", "ja_books", "ja_noisy" }
M.en = { order = "blend", names = { "en_wiki", "en_books" } }

local function plan(name, phases)
  return { name = name, seq_len = 256, batch_size = 16, total_tokens = 786432, seed = 1,
           on_exhausted = "repeat", phases = phases }
end

--- One phase per Japanese source, in reading order: a data switch (re-warmup, checkpoint) at every change.
local function per_source(tag, en, sources, fraction)
  local phases = {}
  for _, src in ipairs(sources) do
    phases[#phases + 1] = {
      name = tag .. " " .. src:gsub("^ja_", ""),
      tokens = fraction / #sources,
      shares = { en = en, ja = 1 - en },
      sources = { en = M.en, ja = { order = "sequential", names = { src } } },
    }
  end
  return phases
end

local function concat(a, b)
  local out = {}
  for _, p in ipairs(a) do out[#out + 1] = p end
  for _, p in ipairs(b) do out[#out + 1] = p end
  return out
end

local function reversed(list)
  local out = {}
  for i = #list, 1, -1 do out[#out + 1] = list[i] end
  return out
end

--- exp0 (the method): EN:JA 3:1 with Japanese in quality order, then 1:3 in reverse order.
function M.exp0(name)
  return plan(name or "exp0: 3:1 then 1:3, quality order",
    concat(per_source("3:1", 0.75, M.ja_quality, 0.5), per_source("1:3", 0.25, reversed(M.ja_quality), 0.5)))
end

--- exp1: EN:JA 1:1 throughout, the same source order.
function M.exp1()
  return plan("exp1: 1:1", concat(per_source("1:1", 0.5, M.ja_quality, 0.5), per_source("1:1", 0.5, reversed(M.ja_quality), 0.5)))
end

--- exp3: exp0's ratios, Japanese sources shuffled (blended by size) instead of read in quality order.
function M.exp3()
  local function phase(name, en)
    return { name = name, tokens = 0.5, shares = { en = en, ja = 1 - en },
             sources = { en = M.en, ja = { order = "blend", names = M.ja_quality } } }
  end
  return plan("exp3: 3:1 then 1:3, shuffled sources", { phase("3:1 shuffled", 0.75), phase("1:3 shuffled", 0.25) })
end

return M
