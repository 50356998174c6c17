"""Bits per byte by lm-evaluation-harness' rolling log-likelihood, the peer of `hashi eval --bpb`.

Reads the first documents of a JSONL file (field `text`) whose UTF-8 bytes reach MAX_BYTES (the same byte budget
as hashi: whole documents in file order), scores each with `HFLM.loglikelihood_rolling` (lm-eval's
`get_rolling_token_windows` with context_len 1, prefix = the tokenizer's BOS, else EOS) with `max_length=WINDOW`
and `add_bos_token=False`,
and prints {"bits_per_byte", "documents", "bytes"} as JSON: -sum(loglikelihood) / ln 2 / bytes.

usage: bpb_reference.py MODEL_DIR TEXT.jsonl MAX_BYTES WINDOW
"""

import json
import math
import sys

from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM


def main(model_dir: str, path: str, max_bytes: int, window: int) -> None:
    docs, total = [], 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if total >= max_bytes:
                break
            text = json.loads(line)["text"]
            docs.append(text)
            total += len(text.encode("utf-8"))
    # add_bos_token=False: the document's own tokens only (with None, lm-eval 0.4.13 lets the tokenizer add its BOS,
    # which is then scored as if it were a token of the document).
    lm = HFLM(pretrained=model_dir, device="cpu", batch_size=1, max_length=window, dtype="float32",
              add_bos_token=False)
    reqs = [Instance(request_type="loglikelihood_rolling", doc={}, arguments=(d,), idx=i)
            for i, d in enumerate(docs)]
    ll = sum(lm.loglikelihood_rolling(reqs, disable_tqdm=True))
    print(json.dumps({"bits_per_byte": -ll / math.log(2) / total, "documents": len(docs), "bytes": total}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
