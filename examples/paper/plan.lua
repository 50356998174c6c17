-- The method's data plans at paper scale (require "plan" from a curriculum in this folder): English, and Japanese
-- Wikipedia -> CC100 -> OSCAR by quality; 4,096-token sequences, 1,024 per batch (4 M tokens).
-- total_tokens is a parameter (README.md: an example budget, not the paper's): steps per phase scale with it.
local M = {}

M.total_tokens = 100e9
M.ja_quality = { "ja_wiki", "ja_cc100", "ja_oscar" }
M.en = { order = "blend", names = { "en" } }

function M.plan(name, phases)
  return { name = name, seq_len = 4096, batch_size = 1024, total_tokens = M.total_tokens, seed = 1234,
           on_exhausted = "error", phases = phases }
end

--- One phase per Japanese source, in reading order (a data switch at every change of source).
function M.per_source(tag, en, sources, fraction)
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

function M.reversed(list)
  local out = {}
  for i = #list, 1, -1 do out[#out + 1] = list[i] end
  return out
end

function M.concat(a, b)
  local out = {}
  for _, p in ipairs(a) do out[#out + 1] = p end
  for _, p in ipairs(b) do out[#out + 1] = p end
  return out
end

--- exp0's plan: EN:JA 3:1 in quality order, then 1:3 in reverse order.
function M.exp0(name)
  return M.plan(name or "exp0 (paper scale)", M.concat(M.per_source("3:1", 0.75, M.ja_quality, 0.5),
    M.per_source("1:3", 0.25, M.reversed(M.ja_quality), 0.5)))
end

return M
