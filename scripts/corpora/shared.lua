-- The shared development corpora (../shared/data/corpus next to the checkout), by language and quality tier:
-- the method's Wiki -> CC100 -> OSCAR order for Japanese maps to ja_wiki (high) -> ja_web_medium -> ja_web_low;
-- books are a fourth source per language. Paths are relative to this file.
local root = "../../../shared/data/corpus/"

---@type hashi.CorpusList
return {
  { name = "ja_wiki", lang = "ja", tier = "high", paths = { root .. "ja_wiki.jsonl" } },
  { name = "ja_web_medium", lang = "ja", tier = "medium", paths = { root .. "ja_web_medium.jsonl" } },
  { name = "ja_web_low", lang = "ja", tier = "low", paths = { root .. "ja_web_low.jsonl" } },
  { name = "ja_books", lang = "ja", tier = "high", paths = { root .. "ja_books.jsonl" } },
  { name = "en_wiki", lang = "en", tier = "high", paths = { root .. "en_wiki.jsonl" } },
  { name = "en_books", lang = "en", tier = "high", paths = { root .. "en_books.jsonl" } },
}
