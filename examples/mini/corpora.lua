-- The mini reproduction's corpora, shipped in corpus/train (see corpus/README.md): Japanese by quality tier --
-- the method's Wiki -> CC100 -> OSCAR order maps to ja_wiki -> ja_books -> ja_noisy -- and English.
---@type hashi.CorpusList
return {
  { name = "ja_wiki", lang = "ja", tier = "high", paths = { "corpus/train/ja_wiki.jsonl" } },
  { name = "ja_books", lang = "ja", tier = "medium", paths = { "corpus/train/ja_books.jsonl" } },
  { name = "ja_noisy", lang = "ja", tier = "low", paths = { "corpus/train/ja_noisy.jsonl" } },
  { name = "en_wiki", lang = "en", tier = "high", paths = { "corpus/train/en_wiki.jsonl" } },
  { name = "en_books", lang = "en", tier = "high", paths = { "corpus/train/en_books.jsonl" } },
}
