//! Errors of the model crate. Every variant that comes from a file names it.

use std::path::PathBuf;

/// What can go wrong while loading, building, running or saving a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `config.json` is missing, not JSON, or describes a model we cannot build.
    #[error("{path}: invalid model config: {message}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong, with line and column where serde gives them.
        message: String,
    },
    /// The directory holds no safetensors weights.
    #[error(
        "{dir}: no weights found (expected model.safetensors or model.safetensors.index.json with its shards)"
    )]
    NoWeights {
        /// The model directory.
        dir: PathBuf,
    },
    /// A pickle checkpoint was offered; we never unpickle.
    #[error(
        "{path}: refusing to load a pickle checkpoint (.bin/.pt/.pth): unpickling can execute arbitrary code. \
         Convert it to safetensors first, e.g. `model.save_pretrained(dir, safe_serialization=True)` in transformers"
    )]
    PickleRefused {
        /// The pickle file.
        path: PathBuf,
    },
    /// A safetensors file is truncated or its header is corrupt.
    #[error("{path}: not a valid safetensors file: {message}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What the safetensors reader said.
        message: String,
    },
    /// A shard named in `model.safetensors.index.json` does not exist.
    #[error("{index}: shard {shard} listed in the index does not exist")]
    MissingShard {
        /// The index file.
        index: PathBuf,
        /// The shard's file name.
        shard: String,
    },
    /// A tensor the config requires is not in the checkpoint.
    #[error("{dir}: tensor {name} is missing from the checkpoint")]
    MissingTensor {
        /// The model directory.
        dir: PathBuf,
        /// HF key of the tensor.
        name: String,
    },
    /// A tensor's shape disagrees with `config.json`.
    #[error("{path}: tensor {name} has shape {got:?}, but config.json implies {expected:?}")]
    Shape {
        /// The safetensors file holding the tensor.
        path: PathBuf,
        /// HF key of the tensor.
        name: String,
        /// Shape implied by the config.
        expected: Vec<usize>,
        /// Shape in the file.
        got: Vec<usize>,
    },
    /// A tensor is stored in a dtype we do not load.
    #[error("{path}: tensor {name} has dtype {dtype}; supported are F32, F16 and BF16")]
    Dtype {
        /// The safetensors file holding the tensor.
        path: PathBuf,
        /// HF key of the tensor.
        name: String,
        /// The dtype found.
        dtype: String,
    },
    /// A caller passed arguments the model cannot use (token id out of range, empty batch, ...).
    #[error("invalid input: {0}")]
    Input(String),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result with [`ModelError`].
pub type Result<T> = std::result::Result<T, ModelError>;

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    pub(crate) fn config(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Config { path: path.into(), message: message.into() }
    }
}
