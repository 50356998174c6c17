#!/usr/bin/env bash
# The most complete pipeline that works today (the mini reproduction will replace it as the main job), on the
# bundled public-domain corpus (examples/demo/corpus): an English tokenizer and a small English Llama (random
# weights: English pretraining is not part of the demo), a bilingual tokenizer and its analysis, the vocabulary
# transfer with the strategies compared at step 0, shards and a two-phase curriculum, continued pretraining with
# re-warmup and checkpoints, then the model run, generating, bits per byte, and a timed training step.
# Everything lands in runs/demo/.
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
cargo build --release --locked -p hashi-cli
hashi=target/release/hashi
corpus=examples/demo/corpus
out=runs/demo
rm -rf "$out"
mkdir -p "$out"

echo "== English tokenizer and model"
$hashi tokenizer train --input "en=$corpus/en_books.jsonl" --vocab-size 2000 --out "$out/en_tokenizer"
$hashi model init --config examples/demo/config.json --seed 0 --out "$out/en_model"
cp "$out"/en_tokenizer/*.json "$out/en_model/"

echo "== Bilingual tokenizer"
$hashi tokenizer train --input "ja=$corpus/ja_books.jsonl" --input "en=$corpus/en_books.jsonl" \
    --vocab-size 4000 --out "$out/tokenizer"
$hashi tokenizer analyze --tokenizer "$out/tokenizer" --reference "$out/en_tokenizer" \
    --text "ja=$corpus/ja_books.jsonl" --text "en=$corpus/en_books.jsonl"

echo "== Vocabulary transfer: strategies compared at step 0, then the chosen one"
$hashi transfer --model "$out/en_model" --tokenizer "$out/tokenizer" --dry-run --out "$out/compare" \
    --init scripts/init/random.lua --init scripts/init/mean.lua --init scripts/init/subword_mean.lua \
    --init scripts/init/similarity.lua --init scripts/init/method.lua \
    --eval-text "ja=$corpus/ja_books.jsonl" --eval-text "en=$corpus/en_books.jsonl" --eval-bytes 6000
$hashi transfer --model "$out/en_model" --tokenizer "$out/tokenizer" --init scripts/init/subword_mean.lua \
    --out "$out/model"

echo "== Curriculum continued pretraining of the transferred model"
$hashi data prepare examples/demo/corpora.lua --tokenizer "$out/tokenizer" --out "$out/shards"
$hashi data plan examples/demo/curriculum.lua --shards "$out/shards" --svg "$out/plan.svg"
$hashi train examples/demo/experiment.lua

echo "== The trained model ($out/train: metrics.jsonl, plots/, ckpt/)"
$hashi model info "$out/model"
trained="$out/train/ckpt/$(cat "$out/train/ckpt/latest")"
ids=$($hashi tokenizer encode --tokenizer "$trained" --text "橋を渡る。A bridge.")
$hashi model logits --model "$trained" --ids "$ids" --out "$out/logits.safetensors"
$hashi generate --model "$trained" --prompt "橋 hashi" --max-new-tokens 24
$hashi eval --model "$trained" --bpb "ja=$corpus/ja_books.jsonl" --bpb "en=$corpus/en_books.jsonl" --bpb-bytes 8000 \
    --out "$out/eval.json"
$hashi bench model --preset bench-a --batch 8 --seq 256 --warmup 1 --steps 2 --rounds 1 \
    --out "$out/bench-a.json" >/dev/null
echo "demo done: $out (bench-a forward+backward: $(grep -m1 -o '"tokens_per_s": [0-9.]*' "$out/bench-a.json"))"
