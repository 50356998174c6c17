#!/usr/bin/env bash
# The most complete pipeline that works today (the mini reproduction will replace it as the main job):
# build, train a bilingual tokenizer on the bundled public-domain corpus, analyse it, create a small Llama with
# that vocabulary, inspect it, run it, generate with it, and measure a forward+backward training step.
# Everything lands in runs/demo/.
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
cargo build --release --locked -p hashi-cli
hashi=target/release/hashi
corpus=examples/demo/corpus
out=runs/demo
mkdir -p "$out"

$hashi tokenizer train --input "ja=$corpus/ja_books.jsonl" --input "en=$corpus/en_books.jsonl" \
    --vocab-size 4000 --out "$out/tokenizer"
$hashi tokenizer analyze --tokenizer "$out/tokenizer" \
    --text "ja=$corpus/ja_books.jsonl" --text "en=$corpus/en_books.jsonl"
$hashi model init --config examples/demo/config.json --seed 0 --out "$out/model"
cp "$out"/tokenizer/*.json "$out/model/"
$hashi model info "$out/model"
ids=$($hashi tokenizer encode --tokenizer "$out/model" --text "橋を渡る。A bridge.")
$hashi model logits --model "$out/model" --ids "$ids" --out "$out/logits.safetensors"
$hashi generate --model "$out/model" --prompt "橋 hashi" --max-new-tokens 24
$hashi bench model --preset bench-a --batch 8 --seq 256 --warmup 1 --steps 2 --rounds 1 \
    --out "$out/bench-a.json" >/dev/null
echo "demo done: $out (bench-a forward+backward: $(grep -m1 -o '"tokens_per_s": [0-9.]*' "$out/bench-a.json"))"
