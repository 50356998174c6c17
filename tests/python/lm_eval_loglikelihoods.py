"""EleutherAI lm-evaluation-harness (HF backend) scoring the same requests as hashi.

Reads `hashi eval --log-requests` output and recomputes every (context, continuation) log-likelihood with
lm_eval's HFLM on the same model directory (f32, CPU, batch 1). Prints JSON: [[loglikelihood, is_greedy], ...].

usage: lm_eval_loglikelihoods.py MODEL_DIR REQUESTS.jsonl
"""

import json
import logging
import sys
import warnings

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

from lm_eval.api.instance import Instance  # noqa: E402
from lm_eval.models.huggingface import HFLM  # noqa: E402


def main(model_dir, requests_path):
    reqs = [json.loads(l) for l in open(requests_path, encoding="utf-8") if l.strip()]
    lm = HFLM(pretrained=model_dir, device="cpu", dtype="float32", batch_size=1)
    instances = [Instance(request_type="loglikelihood", doc={}, arguments=(r["context"], r["continuation"]), idx=i)
                 for i, r in enumerate(reqs)]
    out = lm.loglikelihood(instances, disable_tqdm=True)
    print(json.dumps([[float(ll), bool(g)] for ll, g in out]))


if __name__ == "__main__":
    main(*sys.argv[1:])
