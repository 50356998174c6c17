//! Errors of the transfer crate.

use std::path::PathBuf;

/// What can go wrong while replacing a vocabulary.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The source checkpoint is not usable.
    #[error("{path}: {message}")]
    Checkpoint {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The tokenizers do not fit together or with the model.
    #[error("{0}")]
    Tokenizer(String),
    /// The init strategy failed or returned an unusable recipe.
    #[error("{0}")]
    Strategy(String),
    /// An error of the model crate.
    #[error(transparent)]
    Model(#[from] hashi_model::ModelError),
    /// An error of the tokenizer crate.
    #[error(transparent)]
    Tokenizers(#[from] hashi_tokenizer::TokenizerError),
}

/// Result with [`TransferError`].
pub type Result<T> = std::result::Result<T, TransferError>;

impl TransferError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}
