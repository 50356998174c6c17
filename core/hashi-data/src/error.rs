//! Errors of the data crate; record errors name the file and line.

use std::path::PathBuf;

/// What can go wrong while reading corpora or writing and reading shards.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A shard or manifest is not in the expected format.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A corpus record is unusable.
    #[error("{path}:{line}: {reason}")]
    Record {
        /// The corpus file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Why.
        reason: String,
    },
    /// A declaration or argument is wrong.
    #[error("{0}")]
    Input(String),
    /// Tokenizer trouble.
    #[error(transparent)]
    Tokenizer(#[from] hashi_tokenizer::TokenizerError),
}

/// Result with [`DataError`].
pub type Result<T> = std::result::Result<T, DataError>;

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}
