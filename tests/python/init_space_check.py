"""Checks, with torch, a transfer made by examples/custom_init/nearest_row.lua on an untied f32 model: every
initialised row of DST's embed_tokens is either the mean old row (tokens the strategy gives `mean = 1`) or a
whole old row j scaled to the old rows' mean L2 norm, and the same token's lm_head row is the old lm_head row j
times the same factor (one recipe builds both matrices).

usage: init_space_check.py SRC DST     (prints JSON: rows checked of each kind)
"""

import json
import sys

import torch
from safetensors.torch import load_file


def main(src, dst):
    s = load_file(f"{src}/model.safetensors")
    d = load_file(f"{dst}/model.safetensors")
    report = json.load(open(f"{dst}/transfer_report.json"))
    matched = {new for new, _ in report["matches"]}
    emb, head = s["model.embed_tokens.weight"].double(), s["lm_head.weight"].double()
    new_emb, new_head = d["model.embed_tokens.weight"].double(), d["lm_head.weight"].double()
    norms = emb.norm(dim=1)
    target = norms.mean()
    counts = {"scaled_old_row": 0, "mean_row": 0}
    for i in range(report["new_vocab_size"]):
        if i in matched:
            continue
        e, h = new_emb[i], new_head[i]
        if torch.allclose(e, emb.mean(0), atol=1e-6):
            assert torch.allclose(h, head.mean(0), atol=1e-6), f"row {i}: lm_head is not the mean row"
            counts["mean_row"] += 1
            continue
        cos = emb @ e / (norms * e.norm())
        j = int(cos.argmax())
        assert cos[j] > 1 - 1e-6, f"row {i} is not a scaled old row (best cosine {float(cos[j])})"
        assert abs(e.norm() - target) < 1e-5 * target, f"row {i}: norm {float(e.norm())}, want {float(target)}"
        c = e.norm() / norms[j]
        assert torch.allclose(h, c * head[j], rtol=1e-5, atol=1e-6), f"row {i}: lm_head is not old row {j} x {c}"
        counts["scaled_old_row"] += 1
    print(json.dumps(counts))


if __name__ == "__main__":
    main(*sys.argv[1:])
