#!/usr/bin/env bash
# The mini reproduction, the README's main command: the method's four experiments (mini.lua) on the corpora
# shipped in examples/mini/corpus, from the small English Llama in examples/mini/base/model, evaluated at every
# checkpoint, with the report in runs/mini/report/ (report.md, report.html, figures/). About 20 minutes on 2 CPU
# cores after the build. Arguments go to `hashi run`: --quick (the test suite's small setting), --resume (after a
# crash: finished stages are reused, training continues from its last checkpoint), --seeds 1,2,3.
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
cargo build --release --locked -p hashi-cli
# The QA metrics (JSQuAD/JaQuAD F1 over MeCab words) use the upstream scorer's dictionary, unidic-lite.
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check unidic-lite==1.0.8
HASHI_MECAB_DIC="$(.venv/bin/python -c 'import unidic_lite; print(unidic_lite.DICDIR)')"
export HASHI_MECAB_DIC
exec target/release/hashi run examples/mini/mini.lua "$@"
