"""Peer of `hashi bench data`: reads the same JSONL files (one JSON object per line, `text` field) and tokenizes
every document with Python `tokenizers` `encode_batch` (threads from RAYON_NUM_THREADS). Prints JSON.

usage: data_peer.py TOKENIZER_JSON FILE...
"""

import json
import sys
import time


def main(tok_path, *files):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tok_path)
    t0 = time.perf_counter()
    nbytes, tokens = 0, 0
    for path in files:
        with open(path, "rb") as f:
            docs = [json.loads(line)["text"] for line in f if line.strip()]
        docs = [d for d in docs if d]
        nbytes += sum(len(d.encode()) for d in docs)
        for start in range(0, len(docs), 2048):
            tokens += sum(len(e.ids) for e in tok.encode_batch(docs[start:start + 2048], add_special_tokens=False))
    dt = time.perf_counter() - t0
    print(json.dumps({"seconds": dt, "mb_per_s": nbytes / dt / 1e6, "text_bytes": nbytes, "tokens": tokens}))


if __name__ == "__main__":
    main(*sys.argv[1:])
