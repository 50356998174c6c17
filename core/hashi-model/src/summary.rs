//! What `hashi model info` shows of a model directory: its config in brief and every tensor, read from the
//! safetensors headers (no weights are loaded).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::checkpoint::Checkpoint;
use crate::error::Result;

/// One stored tensor.
#[derive(Debug, Clone, Serialize)]
pub struct TensorInfo {
    /// Its name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its safetensors dtype (`F32`, `BF16`, ...).
    pub dtype: String,
}

/// A model directory in brief.
#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    /// The directory.
    pub dir: PathBuf,
    /// HF `model_type`.
    pub model_type: &'static str,
    /// Parameters stored.
    pub parameters: usize,
    /// Storage dtypes present.
    pub dtypes: BTreeSet<String>,
    /// Vocabulary rows.
    pub vocab_size: usize,
    /// Hidden size.
    pub hidden_size: usize,
    /// MLP size.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_layers: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Size of one head.
    pub head_dim: usize,
    /// RoPE base.
    pub rope_theta: f64,
    /// RoPE scaling as HF writes it, if any.
    pub rope_scaling: Option<serde_json::Value>,
    /// Sliding-window attention size, if any.
    pub sliding_window: Option<usize>,
    /// Layers from this one on use the sliding window.
    pub max_window_layers: usize,
    /// Whether `lm_head` is the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Every stored tensor.
    pub tensors: Vec<TensorInfo>,
}

impl ModelSummary {
    /// Reads `dir`'s config and tensor headers.
    ///
    /// # Errors
    /// The errors of [`Checkpoint::open`] and of reading a tensor's header.
    pub fn of(dir: &Path) -> Result<Self> {
        let ckpt = Checkpoint::open(dir)?;
        let cfg = ckpt.config();
        let mut tensors = Vec::new();
        for name in ckpt.tensor_names() {
            let (shape, dtype) = ckpt.info(&name)?;
            tensors.push(TensorInfo { name, shape, dtype });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            model_type: cfg.family.model_type(),
            parameters: tensors.iter().map(|t| t.shape.iter().product::<usize>()).sum(),
            dtypes: tensors.iter().map(|t| t.dtype.clone()).collect(),
            vocab_size: cfg.vocab_size,
            hidden_size: cfg.hidden_size,
            intermediate_size: cfg.intermediate_size,
            num_layers: cfg.num_layers,
            num_heads: cfg.num_heads,
            num_kv_heads: cfg.num_kv_heads,
            head_dim: cfg.head_dim,
            rope_theta: cfg.rope_theta,
            rope_scaling: cfg.rope_scaling.to_hf_json(),
            sliding_window: cfg.sliding_window,
            max_window_layers: cfg.max_window_layers,
            tie_word_embeddings: cfg.tie_word_embeddings,
            tensors,
        })
    }
}
