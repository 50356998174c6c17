"""Peer of `hashi bench eval`: EleutherAI lm-evaluation-harness (HF backend) scoring the same log-likelihood
requests hashi scored (read from `hashi eval --log-requests`), on the same model directory, CPU, f32.

usage: eval_peer.py MODEL_DIR REQUESTS.jsonl BATCH_SIZE THREADS   (prints JSON)
"""

import json
import logging
import sys
import time
import warnings

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

t_start = time.perf_counter()
import torch  # noqa: E402
from lm_eval.api.instance import Instance  # noqa: E402
from lm_eval.models.huggingface import HFLM  # noqa: E402
import lm_eval  # noqa: E402


def main(model_dir, requests_path, batch_size, threads):
    torch.set_num_threads(int(threads))
    reqs = [json.loads(l) for l in open(requests_path, encoding="utf-8") if l.strip()]
    lm = HFLM(pretrained=model_dir, device="cpu", dtype="float32", batch_size=int(batch_size))
    instances = [Instance(request_type="loglikelihood", doc={}, arguments=(r["context"], r["continuation"]), idx=i)
                 for i, r in enumerate(reqs)]
    t0 = time.perf_counter()
    out = lm.loglikelihood(instances, disable_tqdm=True)
    scoring = time.perf_counter() - t0
    print(json.dumps({
        "impl": f"lm-eval {lm_eval.__version__} HFLM (torch {torch.__version__}, CPU f32, batch {batch_size})",
        "requests": len(reqs),
        "scoring_s": scoring,
        "total_s": time.perf_counter() - t_start,
        "loglikelihoods": [float(ll) for ll, _ in out],
    }))


if __name__ == "__main__":
    main(*sys.argv[1:])
