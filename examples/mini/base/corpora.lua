-- The base model's English pretraining corpus: the shared English text minus the mini's held-out articles, as
-- written by `make_slices.py --base` (paths relative to this file; not shipped).
local root = "../../../target/mini-base-corpus/"
---@type hashi.CorpusList
return {
  { name = "en_wiki", lang = "en", tier = "high", paths = { root .. "en_wiki.jsonl" } },
  { name = "en_books", lang = "en", tier = "high", paths = { root .. "en_books.jsonl" } },
}
