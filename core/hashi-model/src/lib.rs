//! Llama for hashi, in candle on the CPU.
//!
//! Loads and saves Hugging Face model directories (`config.json` + single or sharded safetensors, f32/f16/bf16),
//! initialises random weights from a config and a seed, runs a training forward over all positions with a
//! causal-LM loss, and generates with a KV cache. One decoder covers the Llama, Mistral and Qwen2 families and
//! the RoPE types `default`, `linear`, `dynamic`, `llama3` and `yarn` ([`Family`], [`RopeScaling`]). Parity with
//! transformers' `*ForCausalLM` is tested in the workspace's `tests/`.

mod checkpoint;
mod config;
mod error;
mod generate;
mod llama;
mod loss;
mod ops;
mod params;
mod rotary;
mod save;
mod summary;

pub use checkpoint::{Checkpoint, INDEX_FILE, SINGLE_FILE, ShardIndex};
pub use config::{Config, Family, LlamaConfig, RopeScaling};
pub use error::{ModelError, Result};
pub use generate::{GenerateOptions, Sampling, generate};
pub use llama::{KvCache, Llama};
pub use loss::{IGNORE_INDEX, causal_lm_loss, next_token_loss, next_token_losses};
pub use ops::matmul_backend;
pub use params::{ParamStore, param_count, param_shapes};
pub use save::{SaveDtype, SaveOptions, save_pretrained};
pub use summary::{ModelSummary, TensorInfo};
