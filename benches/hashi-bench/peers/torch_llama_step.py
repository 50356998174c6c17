"""Peer of `hashi bench model`: forward + backward of transformers' causal LM (the config's `model_type`:
Llama, Mistral or Qwen2) on CPU, f32.

Same config, batch, sequence length, warmup/steps and thread count as the hashi side; random weights
(transformers' own init) and random token ids; the loss is transformers' (labels = input ids). Prints JSON.
"""

import argparse
import json
import statistics
import time

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM


def peak_rss_mib() -> float:
    """VmHWM of this process. (ru_maxrss would carry the parent's peak over fork+exec.)"""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--seq", type=int, required=True)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--optimizer", action="store_true", help="add a torch.optim.AdamW step (a full training step)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with open(args.config) as f:
        kw = json.load(f)
    cfg = AutoConfig.for_model(kw.pop("model_type", "llama"), **kw)
    model = AutoModelForCausalLM.from_config(cfg).float().train()
    ids = torch.randint(0, cfg.vocab_size, (args.batch, args.seq))
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8) if args.optimizer else None
    times = []
    for step in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        if opt is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        model.zero_grad(set_to_none=True)
        if step >= args.warmup:
            times.append(time.perf_counter() - t0)
    tokens = args.batch * args.seq
    print(json.dumps({
        "impl": f"transformers {transformers.__version__} + torch {torch.__version__} "
                f"(eager CPU, f32, attn={model.config._attn_implementation}"
                + (", AdamW foreach + clip_grad_norm_)" if opt is not None else ")"),
        "tokens_per_s": tokens / statistics.median(times),
        "step_s": times,
        "peak_rss_mib": peak_rss_mib(),
        "threads": torch.get_num_threads(),
        # The library behind torch's f32 CPU products and the kernel level it dispatches to on this CPU.
        "matmul": ("MKL" if torch.backends.mkl.is_available() else "no MKL")
                  + (" + oneDNN" if torch.backends.mkldnn.is_available() else "")
                  + f" ({torch.backends.cpu.get_cpu_capability()})",
    }))


if __name__ == "__main__":
    main()
