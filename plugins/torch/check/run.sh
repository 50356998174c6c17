#!/usr/bin/env bash
# The GPU check of the torch plugin, in one go on a machine with an NVIDIA GPU and PyTorch 2.11 (nothing is
# built there). Expects, from the repository root, .gpu/ holding: hashi (release binary), libhashi_plugin_torch.so,
# shards/ (the demo corpus prepared with the 8k test tokenizer). Writes results into $OUT (default .gpu/out).
# 1. parity: 20 training steps, CPU backend vs the plugin in bf16 and f32 on the GPU; 2. benchmarks vs PyTorch
# eager and torch.compile: config B (batch 4 × 512, as the CPU benchmark), config C (batch 4 and 16 × 1024).
set -uo pipefail
cd "$(dirname "$0")/../../.."
OUT=${OUT:-.gpu/out}; mkdir -p "$OUT"
PY=${PYTHON:-python3}
TORCH_LIB=$($PY -c "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
export LD_LIBRARY_PATH="$TORCH_LIB:${LD_LIBRARY_PATH:-}"
H=.gpu/hashi; P=.gpu/libhashi_plugin_torch.so
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
$PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee -a "$OUT/gpu.txt"
$H plugins list --plugin $P | tee -a "$OUT/gpu.txt"
# The plugin loads libtorch_cuda itself; should that fail on some image, preload it and say so.
if ! $H -q bench backend --backend torch --plugin $P --preset tiny-test --batch 1 --seq 8 --warmup 0 --steps 1 >/dev/null 2>.gpu/probe.log; then
    cat .gpu/probe.log; echo "probe failed: retrying with LD_PRELOAD=libtorch_cuda.so" | tee -a "$OUT/gpu.txt"
    export LD_PRELOAD="$TORCH_LIB/libtorch_cuda.so"
fi
C=plugins/torch/check
t0=$SECONDS
RAYON_NUM_THREADS=16 $H -q train $C/parity_cpu.lua --stop-after 20 2>&1 | tail -2
$H -q train $C/parity_torch.lua --plugin $P --stop-after 20 2>&1 | tail -2
$H -q train $C/parity_torch32.lua --plugin $P --stop-after 20 2>&1 | tail -2
$PY $C/compare_parity.py .gpu "$OUT/parity.json"
echo "parity took $((SECONDS - t0)) s"
bench() { # name, args...
    local name=$1; shift
    t0=$SECONDS
    $H -q bench backend --backend torch --plugin $P --peer-python "$PY" --out "$OUT/$name.json" "$@" > /dev/null \
        2> ".gpu/$name.log" || tail -5 ".gpu/$name.log"
    $PY - "$OUT/$name.json" <<'PYEOF' || true
import json, sys
r = json.load(open(sys.argv[1]))
h = r["hashi"]
print(f"{sys.argv[1]}: hashi {h['tokens_per_s']:.0f} tok/s, MFU {h['mfu']:.1%}, {h['gpu_memory_mib']} MiB")
for m, p in r.get("peer", {}).items():
    if "tokens_per_s" in p:
        print(f"  {m}: {p['tokens_per_s']:.0f} tok/s, MFU {p['mfu']:.1%}, {p['gpu_memory_mib']} MiB, hashi x{p['hashi_speedup']:.2f}")
    else:
        print(f"  {m}: {p}")
if "logprobs_vs_cpu" in r:
    print("  logprobs vs CPU:", r["logprobs_vs_cpu"])
PYEOF
    echo "  ($((SECONDS - t0)) s)"
}
bench bench-b --preset bench-b --batch 4 --seq 512 --warmup 3 --steps 20 --check-logprobs
bench bench-c-b4 --config $C/config_c.json --batch 4 --seq 1024 --warmup 3 --steps 10 --peer-modes eager
bench bench-c-b16 --config $C/config_c.json --batch 16 --seq 1024 --warmup 3 --steps 10
