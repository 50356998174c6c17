"""Checks a hashi transfer from Python with `safetensors`: every matched row of embed_tokens (and lm_head when
untied) in DST is bit-identical to its source row in SRC, and every other tensor is bit-identical too.

usage: transfer_check.py SRC DST     (prints JSON with the counts checked)
"""

import glob
import json
import sys

import torch
from safetensors.torch import load_file


def tensors(d):
    out = {}
    for f in sorted(glob.glob(f"{d}/*.safetensors")):
        out.update(load_file(f))
    return out


def bits(t):
    return t.view(torch.int16) if t.element_size() == 2 else t.view(torch.int32)


def main(src, dst):
    s, d = tensors(src), tensors(dst)
    report = json.load(open(f"{dst}/transfer_report.json"))
    pairs = torch.tensor(report["matches"], dtype=torch.long)
    new_ids, old_ids = pairs[:, 0], pairs[:, 1]
    rows = 0
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        if name not in s:
            continue
        assert d[name].shape[0] == report["new_vocab_size"], (name, d[name].shape)
        assert d[name].dtype == s[name].dtype, (name, d[name].dtype, s[name].dtype)
        same = torch.equal(bits(d[name][new_ids]), bits(s[name][old_ids]))
        assert same, f"{name}: matched rows differ from the source rows"
        rows += len(new_ids)
    others = [n for n in s if n not in ("model.embed_tokens.weight", "lm_head.weight")]
    for n in others:
        assert torch.equal(bits(d[n]), bits(s[n])), f"{n} changed"
    assert set(d) == set(s), (sorted(set(d) ^ set(s)))
    print(json.dumps({"matched_rows_checked": rows, "other_tensors_checked": len(others)}))


if __name__ == "__main__":
    main(*sys.argv[1:])
