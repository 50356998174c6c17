"""Peer of `hashi bench backend`: a full training step of transformers' LlamaForCausalLM on one GPU.

Same config, batch, sequence length and step count as the hashi side; random weights and random token ids.
Mixed precision as usual in PyTorch: f32 parameters, `torch.autocast(bfloat16)`, loss on f32 logits,
`clip_grad_norm_(1.0)`, `torch.optim.AdamW` (decay on matrices only; foreach, PyTorch's default), SDPA attention.
`--mode eager` runs it as is; `--mode compile` wraps the model in `torch.compile` (compilation happens in the
warm-up steps, which are not timed). Prints JSON.
"""

import argparse
import json
import statistics
import time

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--seq", type=int, required=True)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--mode", choices=["eager", "compile"], required=True)
    args = ap.parse_args()

    torch.manual_seed(0)
    with open(args.config) as f:
        cfg = LlamaConfig(**json.load(f))
    cfg._attn_implementation = "sdpa"
    dev = torch.device("cuda")
    model = LlamaForCausalLM(cfg).float().to(dev).train()
    step_model = torch.compile(model) if args.mode == "compile" else model
    ids = torch.randint(0, cfg.vocab_size, (args.batch, args.seq + 1), device=dev)
    inputs, labels = ids[:, :-1], ids[:, 1:]
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8)

    def step() -> float:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = step_model(input_ids=inputs).logits
        loss = torch.nn.functional.cross_entropy(logits.float().view(-1, cfg.vocab_size), labels.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()  # synchronises, as hashi's step does

    t_compile = time.perf_counter()
    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    t_compile = time.perf_counter() - t_compile
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(json.dumps({
        "impl": f"transformers {transformers.__version__} + torch {torch.__version__} ({args.mode}, "
                f"bf16 autocast, f32 master, sdpa, AdamW foreach + clip_grad_norm_)",
        "mode": args.mode,
        "tokens_per_s": args.batch * args.seq / statistics.median(times),
        "step_s": times,
        "warmup_s": t_compile,
        "max_allocated_mib": torch.cuda.max_memory_allocated() / 2**20,
        "max_reserved_mib": torch.cuda.max_memory_reserved() / 2**20,
        "device": torch.cuda.get_device_name(),
    }))


if __name__ == "__main__":
    main()
