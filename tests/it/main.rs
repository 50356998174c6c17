//! Integration and parity tests of hashi against its Python peers (transformers + torch).
//!
//! Run through the README's test command, which installs the peers into `.venv`; `HASHI_PYTHON` points at
//! another interpreter. Python fixtures are produced once per test process under `target/tmp/`.

mod bpb;
mod bytelevel;
mod common;
mod data;
mod eval;
mod export;
mod faults;
mod fuzz;
mod gguf;
mod hardening;
mod llmjp;
mod model_errors;
mod model_parity;
mod model_roundtrip;
mod plugins;
mod refusals;
mod run;
mod smollm2;
mod tokenizer;
mod train;
mod transfer;
