#!/usr/bin/env bash
# Produces examples/mini/base/model: the small English Llama that the mini reproduction starts from, made with
# hashi's own pipeline from the shared English corpora (../shared/data/corpus; see ../corpus/make_slices.py):
# an English 8k tokenizer, shards, then pretraining from random weights (curriculum.lua: 6 M tokens).
# About 25 minutes on 2 CPU cores. Work files go to target/mini-base/; `--resume` continues a killed run.
set -euo pipefail
cd "$(dirname "$0")/../../.."
cargo build --release --locked -p hashi-cli
hashi=target/release/hashi
work=target/mini-base
if [ "${1:-}" = "--resume" ]; then
  $hashi train --resume "$work/train"
else
  python3 examples/mini/corpus/make_slices.py --base target/mini-base-corpus
  rm -rf "$work" && mkdir -p "$work"
  $hashi tokenizer train --input "en=target/mini-base-corpus/*.jsonl" --vocab-size 8000 --out "$work/tokenizer"
  $hashi data prepare examples/mini/base/corpora.lua --tokenizer "$work/tokenizer" --out "$work/shards"
  $hashi train examples/mini/base/experiment.lua
fi
final="$work/train/ckpt/$(cat "$work/train/ckpt/latest")"
out=examples/mini/base/model
rm -rf "$out" && mkdir -p "$out"
cp "$final"/{config.json,model.safetensors,tokenizer.json,tokenizer_config.json,special_tokens_map.json} "$out/"
$hashi eval --model "$out" --bpb "en=examples/mini/corpus/heldout/en_wiki.jsonl" --bpb-bytes 60000
echo "base model: $out"
