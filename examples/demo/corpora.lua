-- The demo's corpora (paths relative to this file).
---@type hashi.CorpusList
return {
  { name = "ja_books", lang = "ja", tier = "high", paths = { "corpus/ja_books.jsonl" } },
  { name = "en_books", lang = "en", tier = "high", paths = { "corpus/en_books.jsonl" } },
}
