"""Peer of `hashi bench generate`: the upstream code path of llm-jp-eval v1.3.0 (Swallow's protocol), a transformers
text-generation pipeline with greedy decoding (`do_sample=False`, `max_new_tokens` = the task's output_length,
`return_full_text=False`), run on the prompts hashi generated for (read from `hashi eval --log-requests`), same
model directory, CPU, f32. The answer post-processing is upstream's (`NFKC(text.split("\\n\\n")[0].strip())`).

usage: generate_peer.py MODEL_DIR REQUESTS.jsonl THREADS ADD_SPECIAL_TOKENS   (prints JSON)
"""

import json
import logging
import sys
import time
import unicodedata
import warnings

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

t_start = time.perf_counter()
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline  # noqa: E402


def main(model_dir, requests_path, threads, add_special_tokens):
    torch.set_num_threads(int(threads))
    reqs = [json.loads(l) for l in open(requests_path, encoding="utf-8") if l.strip()]
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    model.eval()
    pipe = pipeline("text-generation", model=model, tokenizer=tok, device="cpu")
    t0 = time.perf_counter()
    generations, seconds = [], []
    with torch.inference_mode():
        for r in reqs:
            t = time.perf_counter()
            out = pipe(r["context"], max_new_tokens=int(r["max_new_tokens"]), do_sample=False,
                       return_full_text=False, add_special_tokens=add_special_tokens == "true",
                       pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
            generations.append(out[0]["generated_text"])
            seconds.append(time.perf_counter() - t)
    generating = time.perf_counter() - t0
    preds = [unicodedata.normalize("NFKC", g.split("\n\n")[0].strip()) for g in generations]
    print(json.dumps({
        "impl": f"transformers {transformers.__version__} text-generation pipeline (torch {torch.__version__}, "
                f"CPU f32, greedy)",
        "documents": len(reqs),
        "generating_s": generating,
        "total_s": time.perf_counter() - t_start,
        "generations": generations,
        "seconds": seconds,
        "preds": preds,
    }))


if __name__ == "__main__":
    main(*sys.argv[1:])
