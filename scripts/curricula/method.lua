-- Building blocks of the method's curricula (require "method" from a curriculum in this folder).
-- Japanese sources by quality: Wikipedia -> CC100 -> OSCAR; here the shared corpora's tiers
-- (ja_wiki -> ja_web_medium -> ja_web_low, as prepared by scripts/corpora/shared.lua). English: Wikipedia + books.
local M = {}

M.ja_quality = { "ja_wiki", "ja_web_medium", "ja_web_low" }
M.en = { order = "blend", names = { "en_wiki", "en_books" } }

-- Sizes for the shared corpora on this machine; the paper-scale values live in examples/paper.
M.base = { seq_len = 512, batch_size = 32, total_tokens = 12e6, seed = 1234, on_exhausted = "repeat" }

--- One phase per Japanese source: a data switch (LR re-warmup, checkpoint) at every change of source.
---@param tag string phase name prefix
---@param en number English share
---@param ja_sources string[] Japanese sources, in reading order
---@param fraction number share of total_tokens for the whole group of phases
function M.phases_per_source(tag, en, ja_sources, fraction)
  local phases = {}
  for _, src in ipairs(ja_sources) do
    phases[#phases + 1] = {
      name = tag .. " " .. src:gsub("^ja_", ""),
      tokens = fraction / #ja_sources,
      shares = { en = en, ja = 1 - en },
      sources = { en = M.en, ja = { order = "sequential", names = { src } } },
    }
  end
  return phases
end

--- A plan table from the base settings.
function M.plan(name, phases)
  local p = { name = name, phases = phases }
  for k, v in pairs(M.base) do p[k] = v end
  return p
end

--- Concatenates phase lists.
function M.concat(...)
  local out = {}
  for _, list in ipairs({ ... }) do
    for _, ph in ipairs(list) do out[#out + 1] = ph end
  end
  return out
end

function M.reversed(list)
  local out = {}
  for i = #list, 1, -1 do out[#out + 1] = list[i] end
  return out
end

return M
