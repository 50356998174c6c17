"""Checks hashi's matching by canonical bytes, independently, from the two tokenizer.json files: the bytes each
piece stands for (GPT-2's byte map undone for byte-level tokenizers, `▁` as a space and `<0xHH>` as a byte for
SentencePiece-style ones; added tokens are not text), then
- every new piece whose bytes some old piece has is matched by hashi (no same-bytes match is missed),
- every match hashi reports between text/byte pieces joins pieces with the same bytes,
- special tokens are only ever matched with special tokens.

usage: transfer_bytes_check.py OLD_TOKENIZER_JSON NEW_TOKENIZER_JSON TRANSFER_REPORT_JSON   (prints JSON counts)
"""

import json
import sys

from gpt2_bytes import byte_decoder


def components(v):
    if not v:
        return []
    out = [v]
    for key in ("normalizers", "pretokenizers", "decoders"):
        for item in v.get(key) or []:
            out += components(item)
    return out


def canonical(path):
    """id -> bytes (text and byte pieces) and the set of added-token ids."""
    tok = json.load(open(path, encoding="utf-8"))
    parts = sum((components(tok.get(k)) for k in ("decoder", "pre_tokenizer", "normalizer")), [])
    types = [p.get("type") for p in parts]
    model = tok["model"]
    added = {a["id"] for a in tok.get("added_tokens", [])}
    byte_level = "ByteLevel" in types
    fallback = bool(model.get("byte_fallback"))
    table = byte_decoder()
    out = {}
    for piece, i in model["vocab"].items():
        if i in added:
            continue
        if byte_level:
            if all(c in table for c in piece):
                out[i] = bytes(table[c] for c in piece)
            else:
                out[i] = piece.encode()
        elif fallback and len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            out[i] = bytes([int(piece[3:5], 16)])
        else:
            out[i] = piece.replace("▁", " ").encode()
    return out, added


def main(old_path, new_path, report_path):
    old, old_added = canonical(old_path)
    new, new_added = canonical(new_path)
    report = json.load(open(report_path))
    rows = report["old_vocab_size"]
    old_bytes = {b for i, b in old.items() if i < rows}
    expected = {i for i, b in new.items() if b in old_bytes}
    matches = {n: o for n, o in report["matches"]}
    text_matches = {n: o for n, o in matches.items() if n in new}
    missed = sorted(expected - set(text_matches))
    wrong = [(n, o) for n, o in text_matches.items() if old.get(o) != new[n]]
    # Ids past the new tokenizer are the special tokens hashi appended.
    new_size = max(list(new) + list(new_added)) + 1
    specials_as_text = [(n, o) for n, o in matches.items() if (n in new_added or n >= new_size) != (o in old_added)]
    result = {
        "same_bytes_pieces": len(expected),
        "matched_text_pieces": len(text_matches),
        "missed": missed[:20],
        "wrong": wrong[:20],
        "specials_as_text": specials_as_text[:20],
    }
    print(json.dumps(result))
    if missed or wrong or specials_as_text:
        sys.exit(1)


if __name__ == "__main__":
    main(*sys.argv[1:])
