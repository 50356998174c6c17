"""How much of a vocabulary replacement's step-0 loss is the new segmentation alone (BENCHMARKS.md, issue 16).

Scores the source model (transformers, f32, CPU) on the same held-out bytes three ways, each token once with
hashi's windows (lm-eval's own `get_rolling_token_windows`, `context_len = 1`, 512-token windows, after the
model's EOS):
  1. the source tokenizer (what `hashi transfer --dry-run` reports as `source`);
  2. the new tokenizer's segmentation with every piece spelled in source tokens: a piece whose bytes are one
     source token is that token (its exact row), any other piece is the source tokenizer's ids for its bytes.
     No initialisation can give a piece a better row than the source's own, so this is the segmentation's cost;
     (the new tokenizer's leading `▁`, SentencePiece's dummy prefix, is spelled as a space: one extra space to
     predict per document, scored against the document's own bytes);
  3. the source's own byte-level BPE cut to its first N merges (N = --merges): the model's own vocabulary at
     that size, a floor for any vocabulary of about that many pieces.

usage: segmentation_floor.py MODEL_DIR NEW_TOKENIZER_JSON TEXT_JSONL BYTES [--merges N ...]
Prints one JSON object (bits per byte and token counts).
"""

import argparse
import copy
import json
import math
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
from transformers import AutoModelForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "python"))
from gpt2_bytes import byte_decoder  # noqa: E402  (the byte-level alphabet the parity tests use)

WINDOW = 512  # hashi-eval's BPB_WINDOW


def byte_to_unicode():
    """GPT-2's byte-level alphabet: byte -> the character byte-level pieces spell it with."""
    return {b: c for c, b in byte_decoder().items()}


def piece_bytes(piece):
    """Bytes of a SentencePiece-style piece (`▁` is a space, `<0xHH>` one byte)."""
    if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
        return bytes([int(piece[3:5], 16)])
    return piece.replace("\u2581", " ").encode()


def bits(model, prefix, docs_ids):
    """Total bits of every token of every document: lm-eval's rolling windows after `prefix`, each window's
    input built as `HFLM._loglikelihood_tokens` builds it."""
    total = 0.0
    for tokens in docs_ids:
        windows = get_rolling_token_windows(token_list=tokens, prefix_token=prefix, max_seq_len=WINDOW, context_len=1)
        for context, continuation in map(make_disjoint_window, windows):
            x = torch.tensor([(context + continuation)[-(WINDOW + 1) :][:-1]])
            with torch.no_grad():
                logp = torch.log_softmax(model(x).logits[0, -len(continuation) :].float(), -1)
            total -= logp.gather(1, torch.tensor(continuation)[:, None]).sum().item()
    return total / math.log(2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("new_tokenizer")
    ap.add_argument("text")
    ap.add_argument("bytes", type=int)
    ap.add_argument("--merges", type=int, nargs="*", default=[])
    args = ap.parse_args()
    torch.set_num_threads(2)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    src = Tokenizer.from_file(f"{args.model}/tokenizer.json")
    prefix = json.load(open(f"{args.model}/config.json"))["eos_token_id"]
    docs, n = [], 0
    for line in open(args.text, encoding="utf-8"):
        if n >= args.bytes:
            break
        docs.append(json.loads(line)["text"])
        n += len(docs[-1].encode())
    out = {"documents": len(docs), "bytes": n, "window": WINDOW}

    def score(name, ids):
        out[name] = {"tokens": sum(map(len, ids)), "bits_per_byte": round(bits(model, prefix, ids) / n, 4)}

    score("source", [src.encode(d, add_special_tokens=False).ids for d in docs])
    b2u, vocab = byte_to_unicode(), src.get_vocab()
    new = Tokenizer.from_file(args.new_tokenizer)
    ids, whole = [], 0
    for d in docs:
        doc = []
        for piece in new.encode(d, add_special_tokens=False).tokens:
            raw = piece_bytes(piece)
            one = vocab.get("".join(b2u[b] for b in raw))
            whole += one is not None
            doc += [one] if one is not None else src.encode(raw.decode("utf-8", "replace"), add_special_tokens=False).ids
        ids.append(doc)
    score("new_segmentation_source_rows", ids)
    out["new_segmentation_source_rows"]["pieces_that_are_one_source_token"] = whole
    out["new_segmentation_source_rows"]["new_tokens"] = sum(len(new.encode(d, add_special_tokens=False).ids) for d in docs)
    spec = json.load(open(f"{args.model}/tokenizer.json"))
    for m in args.merges:
        t = copy.deepcopy(spec)
        merges = t["model"]["merges"][:m]
        made = {"".join(x if isinstance(x, list) else x.split(" ")) for x in merges}
        alphabet = set(b2u.values())
        t["model"]["merges"] = merges
        t["model"]["vocab"] = {p: i for p, i in t["model"]["vocab"].items() if p in made or p in alphabet}
        cut = Tokenizer.from_str(json.dumps(t))
        score(f"source_bpe_first_{m}_merges", [cut.encode(d, add_special_tokens=False).ids for d in docs])
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
