#!/usr/bin/env bash
# The most complete pipeline that works today (the mini reproduction will replace it as the main job):
# build, create a small Llama from a config, inspect it, run it, generate with its tokenizer, and measure a
# forward+backward training step. Everything lands in runs/demo/.
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
cargo build --release --locked -p hashi-cli
hashi=target/release/hashi
out=runs/demo
mkdir -p "$out"

$hashi model init --config examples/demo/config.json --seed 0 --out "$out/model"
cp examples/demo/tokenizer.json "$out/model/"
$hashi model info "$out/model"
$hashi model logits --model "$out/model" --ids 1,259,230,132,150 --ids 1,259,104,97,115 --out "$out/logits.safetensors"
$hashi generate --model "$out/model" --prompt "橋 hashi" --max-new-tokens 24
$hashi bench model --preset bench-a --batch 8 --seq 256 --warmup 1 --steps 2 --out "$out/bench-a.json" >/dev/null
echo "demo done: $out (bench-a forward+backward: $(grep -m1 -o '"tokens_per_s": [0-9.]*' "$out/bench-a.json"))"
