-- exp0 at paper scale: EN:JA 3:1 with Japanese sources in quality order (Wikipedia -> CC100 -> OSCAR), then
-- EN:JA 1:3 in reverse order; every source change is a phase. 4,096-token sequences, 1,024 per batch (4 M
-- tokens). total_tokens is a parameter (see README.md): the steps per phase scale with it.
local total_tokens = 100e9
local en = { order = "blend", names = { "en" } }
local phases = {}
local function group(tag, en_share, sources)
  for _, src in ipairs(sources) do
    phases[#phases + 1] = {
      name = tag .. " " .. src:gsub("^ja_", ""),
      tokens = 0.5 / #sources,
      shares = { en = en_share, ja = 1 - en_share },
      sources = { en = en, ja = { order = "sequential", names = { src } } },
    }
  end
end
group("3:1", 0.75, { "ja_wiki", "ja_cc100", "ja_oscar" })
group("1:3", 0.25, { "ja_oscar", "ja_cc100", "ja_wiki" })
return { name = "exp0 (paper scale)", seq_len = 4096, batch_size = 1024, total_tokens = total_tokens,
  seed = 1234, on_exhausted = "error", phases = phases }
