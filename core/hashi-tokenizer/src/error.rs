//! Errors of the tokenizer crate; every variant that comes from a file names it (and the line, where known).

use std::path::PathBuf;

/// What can go wrong while reading corpora, training, analysing, importing or running a tokenizer.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A corpus record is not what its format says (bad JSON, missing field, invalid UTF-8).
    #[error("{path}:{line}: {message}")]
    Record {
        /// The corpus file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// An input specification is malformed, matches no file, or yields no text.
    #[error("{0}")]
    Input(String),
    /// Training cannot reach the requested vocabulary (too small, or not enough text).
    #[error("{0}")]
    Train(String),
    /// A `tokenizer.json` or SentencePiece model cannot be read.
    #[error("{path}: cannot load tokenizer: {message}")]
    Load {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Encoding or decoding failed.
    #[error("tokenizer: {0}")]
    Codec(String),
}

/// Result with [`TokenizerError`].
pub type Result<T> = std::result::Result<T, TokenizerError>;

impl TokenizerError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}
