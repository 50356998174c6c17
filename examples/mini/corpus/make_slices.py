"""Cut the mini reproduction's corpora from the shared data (../shared/data/corpus), deterministically.

Writes, next to this file, only sources whose licences allow redistribution (see README.md):
  train/ja_wiki.jsonl    Japanese Wikipedia (high tier; the method's "Wiki")
  train/ja_books.jsonl   Aozora Bunko literature (medium tier; stands in for "CC100")
  train/ja_noisy.jsonl   a synthetic low tier (stands in for "OSCAR"): other Wikipedia/Aozora documents with
                         web-style noise added by this script (boilerplate, repeated lines, symbol runs, cuts)
  train/en_wiki.jsonl, train/en_books.jsonl
  heldout/ja_wiki.jsonl, heldout/en_wiki.jsonl   held-out text for bits per byte (never trained on)
and, with --base DIR, the English pretraining corpus of the base model (not shipped: all of the shared English
text except the held-out articles).

Usage: python3 examples/mini/corpus/make_slices.py [--shared ../shared/data/corpus] [--base target/mini-base-corpus]
"""
import argparse
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEEP = ("text", "id", "source", "title", "author", "license", "truncated", "derived")


def read(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write(path, docs):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({k: d[k] for k in KEEP if k in d}, ensure_ascii=False) + "\n")


def cut(doc, limit):
    """The document cut to at most `limit` characters at a line boundary (marked `truncated`)."""
    text = doc["text"]
    if len(text) <= limit:
        return doc
    head = text[:limit]
    if "\n" in head:
        head = head[: head.rindex("\n")]
    return dict(doc, text=head, truncated=True)


def take(docs, budget, per_doc):
    """Documents in order, each cut to `per_doc` characters, until `budget` characters."""
    out, total = [], 0
    for d in docs:
        if total >= budget:
            break
        d = cut(d, per_doc)
        out.append(d)
        total += len(d["text"])
    return out


BOILERPLATE = [
    "ホーム > カテゴリー > 未分類", "続きを読む", "コメント(0)", "この記事をシェアする", "Copyright (C) All Rights Reserved.",
    "★★★★☆", "【PR】今なら送料無料!!", "http://example.com/?p=123", "ログイン | 新規登録", "前の記事へ 次の記事へ",
    "↑↑↑ クリックお願いします ↑↑↑", "------------------------------", "人気記事ランキング", "投稿者: 管理人",
]


def noisy(docs, rnd):
    """One web-style page from a few documents: sentences shuffled, cut and repeated, boilerplate inserted."""
    doc = docs[0]
    sents = [s + "。" for d in docs for s in d["text"].replace("\n", "").split("。") if s.strip()]
    rnd.shuffle(sents)
    lines = []
    for s in sents[: rnd.randint(3, 12)]:
        r = rnd.random()
        if r < 0.15:
            s = s[: max(1, len(s) // 2)]
        elif r < 0.25:
            lines.append(s)
        if rnd.random() < 0.3:
            lines.append(rnd.choice(BOILERPLATE))
        lines.append(s)
    return {"text": "\n".join(lines), "id": doc["id"] + "#noisy", "source": doc.get("source", ""),
            "license": doc.get("license", ""), "derived": "synthetic noise (make_slices.py)"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(HERE.parents[2].parent / "shared" / "data" / "corpus"))
    ap.add_argument("--base", help="also write the base model's English pretraining corpus here")
    a = ap.parse_args()
    src = Path(a.shared)
    ja_wiki, ja_books = read(src / "ja_wiki.jsonl"), read(src / "ja_books.jsonl")
    en_wiki, en_books = read(src / "en_wiki.jsonl"), read(src / "en_books.jsonl")

    # Held out: the last documents of each Wikipedia file.
    ja_held, ja_wiki = ja_wiki[-300:], ja_wiki[:-300]
    en_held, en_wiki = en_wiki[-12:], en_wiki[:-12]
    write(HERE / "heldout/ja_wiki.jsonl", take(ja_held, 90_000, 4_000))
    write(HERE / "heldout/en_wiki.jsonl", take(en_held, 200_000, 20_000))

    # Training slices (characters; Japanese ~2-3 bytes per character).
    write(HERE / "train/ja_wiki.jsonl", take(ja_wiki, 300_000, 4_000))
    used = sum(1 for _ in take(ja_wiki, 300_000, 4_000))
    write(HERE / "train/ja_books.jsonl", take(ja_books, 300_000, 30_000))
    used_books = len(take(ja_books, 300_000, 30_000))
    rnd = random.Random(1234)
    pool = ja_wiki[used:] + [cut(d, 20_000) for d in ja_books[used_books:]]
    rnd.shuffle(pool)
    noisy_docs, total = [], 0
    while pool and total < 120_000:
        group, pool = pool[:4], pool[4:]
        n = noisy(group, rnd)
        if n["text"]:
            noisy_docs.append(n)
            total += len(n["text"])
    write(HERE / "train/ja_noisy.jsonl", noisy_docs)
    write(HERE / "train/en_wiki.jsonl", take(en_wiki, 700_000, 30_000))
    write(HERE / "train/en_books.jsonl", take(en_books, 400_000, 200_000))

    if a.base:
        base = Path(a.base)
        write(base / "en_wiki.jsonl", en_wiki)
        write(base / "en_books.jsonl", en_books)


if __name__ == "__main__":
    main()
