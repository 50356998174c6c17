"""Losses of the first steps: CPU backend (f32) vs the torch plugin on the GPU in bf16 and in f32.

Usage: compare_parity.py RUNS_DIR OUT.json. Tolerances: bf16 within 2% of the CPU loss at every step (bf16 has
8 mantissa bits; the runs diverge slowly as updates differ); f32 within 1e-3 absolute.
"""

import json
import sys


def losses(path):
    with open(path) as f:
        return [json.loads(line)["loss"] for line in f if line.strip()]


def main() -> None:
    runs, out = sys.argv[1], sys.argv[2]
    cpu = losses(f"{runs}/run_cpu/metrics.jsonl")
    bf16 = losses(f"{runs}/run_torch/metrics.jsonl")
    f32 = losses(f"{runs}/run_torch32/metrics.jsonl")
    n = min(len(cpu), len(bf16), len(f32))
    rows = [{"step": i + 1, "cpu": cpu[i], "gpu_bf16": bf16[i], "gpu_f32": f32[i]} for i in range(n)]
    rel_bf16 = max(abs(r["gpu_bf16"] - r["cpu"]) / r["cpu"] for r in rows)
    abs_f32 = max(abs(r["gpu_f32"] - r["cpu"]) for r in rows)
    result = {
        "steps": n,
        "max_rel_diff_bf16": rel_bf16,
        "max_abs_diff_f32": abs_f32,
        "bf16_ok": n == 20 and rel_bf16 <= 0.02,
        "f32_ok": n == 20 and abs_f32 <= 1e-3,
        "rows": rows,
    }
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"{'step':>4} {'cpu f32':>10} {'gpu bf16':>10} {'gpu f32':>10}")
    for r in rows:
        print(f"{r['step']:>4} {r['cpu']:>10.5f} {r['gpu_bf16']:>10.5f} {r['gpu_f32']:>10.5f}")
    print(f"max rel diff bf16 {rel_bf16:.2e} ({'ok' if result['bf16_ok'] else 'FAIL'}), "
          f"max abs diff f32 {abs_f32:.2e} ({'ok' if result['f32_ok'] else 'FAIL'})")


if __name__ == "__main__":
    main()
