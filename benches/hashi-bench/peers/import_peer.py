"""Peer of `hashi bench import`: transformers' GGUF loading of the same file, then the model written as safetensors
(`safetensors.torch.save_model`, the same dtype; transformers' `save_pretrained` refuses a GGUF-loaded model),
its config and the tokenizer (`save_pretrained`): what a user does to get an HF directory from a GGUF file.
Prints JSON with the wall time of each part and the peak RSS of the process.

usage: import_peer.py FILE.gguf OUT_DIR float32|bfloat16
"""

import json
import os
import resource
import sys
import time
from importlib.metadata import version


def main(path: str, out: str, dtype: str) -> None:
    t0 = time.perf_counter()
    import torch
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t1 = time.perf_counter()
    d, f = os.path.split(os.path.abspath(path))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=getattr(torch, dtype))
    t2 = time.perf_counter()
    os.makedirs(out, exist_ok=True)
    save_model(model, os.path.join(out, "model.safetensors"))
    model.config.save_pretrained(out)
    tok.save_pretrained(out)
    t3 = time.perf_counter()
    print(json.dumps({
        "impl": f"transformers {version('transformers')} + gguf {version('gguf')} (from_pretrained + save_model)",
        "import_seconds": t1 - t0,
        "load_seconds": t2 - t1,
        "save_seconds": t3 - t2,
        "seconds": t3 - t1,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main(*sys.argv[1:])
