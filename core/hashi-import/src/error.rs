//! Errors of the import crate. Every variant names the file it comes from, and the metadata key or tensor.

use std::path::PathBuf;

/// What can go wrong while importing a GGUF file.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not GGUF, is truncated, or its header cannot be read.
    #[error("{path}: not a readable GGUF file: {message}")]
    NotGguf {
        /// The file.
        path: PathBuf,
        /// What candle's reader (or the range check) said.
        message: String,
    },
    /// A metadata key is missing or holds a value of the wrong type.
    #[error("{path}: metadata {key}: {message}")]
    Metadata {
        /// The GGUF file.
        path: PathBuf,
        /// The GGUF key, e.g. `llama.block_count`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The file describes a model hashi does not import (architecture, tokenizer model, RoPE scaling...).
    #[error("{path}: {message}")]
    Unsupported {
        /// The GGUF file.
        path: PathBuf,
        /// What is not supported, naming the key or tensor.
        message: String,
    },
    /// A tensor is stored in a ggml type that is not dequantized.
    #[error(
        "{path}: tensor {tensor} has ggml type {ggml_type}, which hashi does not dequantize (supported: {supported})"
    )]
    UnsupportedType {
        /// The GGUF file.
        path: PathBuf,
        /// The GGUF tensor name.
        tensor: String,
        /// The ggml type name.
        ggml_type: String,
        /// The supported type names.
        supported: String,
    },
    /// A tensor's shape disagrees with the metadata.
    #[error("{path}: tensor {tensor} has shape {got:?}, but the metadata implies {expected:?}")]
    Shape {
        /// The GGUF file.
        path: PathBuf,
        /// The GGUF tensor name.
        tensor: String,
        /// Shape implied by the metadata (PyTorch order).
        expected: Vec<usize>,
        /// Shape in the file (PyTorch order).
        got: Vec<usize>,
    },
    /// Reading or converting one tensor failed.
    #[error("{path}: tensor {tensor}: {message}")]
    Tensor {
        /// The GGUF file.
        path: PathBuf,
        /// The GGUF tensor name.
        tensor: String,
        /// What went wrong.
        message: String,
    },
    /// The tokenizer built from the metadata is not accepted by the `tokenizers` library.
    #[error("{path}: cannot build the tokenizer: {message}")]
    Tokenizer {
        /// The GGUF file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Result with [`ImportError`].
pub type Result<T> = std::result::Result<T, ImportError>;

/// candle's message without the backtrace candle appends when `RUST_BACKTRACE` is set.
pub(crate) fn candle_message(e: &candle_core::Error) -> String {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => candle_message(inner),
        other => other.to_string(),
    }
}

impl ImportError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}
