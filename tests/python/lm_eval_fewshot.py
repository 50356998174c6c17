"""lm-evaluation-harness's own few-shot sampler on the training docs hashi used: for each evaluated document,
in order, the indices `ContextSampler(train, rnd=DEFAULT_OTHER_SEED).sample(k)` picks (what `simple_evaluate`
does for MNLI/QNLI, whose few-shot split differs from the evaluation split).

usage: lm_eval_fewshot.py TRAIN.jsonl DOCS K      (prints JSON: {"seed": ..., "picks": [[i, ...], ...]})
"""

import json
import logging
import sys
import warnings

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

from lm_eval.api.samplers import ContextSampler  # noqa: E402
from lm_eval.evaluator import DEFAULT_OTHER_SEED  # noqa: E402


def main(train_path, docs, k):
    train = [json.loads(l) for l in open(train_path, encoding="utf-8") if l.strip()]
    for i, d in enumerate(train):
        d["__index"] = i
    sampler = ContextSampler(train, rnd=DEFAULT_OTHER_SEED)
    picks = [[d["__index"] for d in sampler.sample(n=int(k))] for _ in range(int(docs))]
    print(json.dumps({"seed": DEFAULT_OTHER_SEED, "picks": picks}))


if __name__ == "__main__":
    main(*sys.argv[1:])
