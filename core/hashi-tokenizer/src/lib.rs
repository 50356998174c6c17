//! Tokenizers for hashi.
//!
//! For now: loading a Hugging Face `tokenizer.json` with a clear error, and encoding/decoding through the
//! `tokenizers` crate (the same Rust code that backs Python `tokenizers` and `transformers`' fast tokenizers).
//! Training, analysis and SentencePiece import are the tokenizer issue's work.

use std::path::{Path, PathBuf};

/// Errors of the tokenizer crate.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The file is missing or not a valid `tokenizer.json`.
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

/// A loaded HF tokenizer.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
}

impl Tokenizer {
    /// Loads `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(TokenizerError::Load { path: path.into(), message: "file not found".into() });
        }
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| TokenizerError::Load { path: path.into(), message: e.to_string() })?;
        Ok(Self { inner })
    }

    /// Token ids of `text`; `add_special_tokens` applies the tokenizer's post-processor (e.g. a leading `<s>`).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let enc =
            self.inner.encode(text, add_special_tokens).map_err(|e| TokenizerError::Codec(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`, optionally without special tokens.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner.decode(ids, skip_special_tokens).map_err(|e| TokenizerError::Codec(e.to_string()))
    }
}
