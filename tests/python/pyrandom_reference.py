"""Draws of CPython's random.Random for hashi's PyRandom parity test (JSON on stdout)."""

import json
import random

out = {}
for seed in (0, 1, 42, 1234, 2**40 + 7):
    r = random.Random(seed)
    xs = list(range(100))
    r.shuffle(xs)
    out[str(seed)] = {
        "shuffle100": xs,
        "sample_big": r.sample(range(8939), 3),
        "sample_pool": r.sample(range(8), 3),
        "sample_k10": r.sample(range(60), 10),
        "bits": [r.getrandbits(k) for k in (1, 7, 31, 32, 33, 40, 64)],
        "random_x2p53": [int(r.random() * 2**53) for _ in range(5)],  # exact: random() = k / 2**53
        "below": [r.randrange(n) for n in (1, 2, 3, 1000, 2**33 + 5)],
    }
print(json.dumps(out))
