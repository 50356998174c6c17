"""Checks an expanded tokenizer (`hashi tokenizer expand`) with the `tokenizers` library: every id of the base
(pieces and added tokens) is the same in the expanded one, text made only of ASCII characters is cut into the
same ids, and it prints the ids of the texts in TEXTS_JSON (a JSON list of strings) for comparison with hashi,
with token counts of the Japanese and English documents.

usage: expand_check.py BASE_TOKENIZER_JSON EXPANDED_TOKENIZER_JSON JA_JSONL EN_JSONL TEXTS_JSON   (prints JSON)
"""

import json
import sys

from tokenizers import Tokenizer


def main(base_path, expanded_path, ja_path, en_path, texts_path):
    base, exp = Tokenizer.from_file(base_path), Tokenizer.from_file(expanded_path)
    bv, ev = base.get_vocab(with_added_tokens=True), exp.get_vocab(with_added_tokens=True)
    moved = [p for p, i in bv.items() if ev.get(p) != i]
    assert not moved, f"base pieces with another id: {moved[:10]}"
    docs = lambda p: [json.loads(l)["text"] for l in open(p, encoding="utf-8")]
    ja, en = docs(ja_path), docs(en_path)
    ascii_lines = [l for d in en for l in d.split("\n") if l.isascii() and l.strip()]
    differ = [l for l in ascii_lines if base.encode(l, add_special_tokens=False).ids != exp.encode(l, add_special_tokens=False).ids]
    assert not differ, f"ASCII text cut differently: {differ[:3]}"
    count = lambda t, ds: sum(len(t.encode(d, add_special_tokens=False).ids) for d in ds)
    en_same = sum(base.encode(d, add_special_tokens=False).ids == exp.encode(d, add_special_tokens=False).ids for d in en)
    texts = json.load(open(texts_path, encoding="utf-8"))
    print(json.dumps({
        "base_ids_kept": len(bv),
        "ascii_lines_same": len(ascii_lines),
        "tokens": {"ja": [count(base, ja), count(exp, ja)], "en": [count(base, en), count(exp, en)]},
        "en_documents_same": [en_same, len(en)],
        "ids": [exp.encode(t, add_special_tokens=False).ids for t in texts],
    }))


if __name__ == "__main__":
    main(*sys.argv[1:])
