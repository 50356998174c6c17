//! Tokenizers for hashi: the method's bilingual SentencePiece-style BPE.
//!
//! - [`train`]: a SentencePiece-BPE trainer on language-tagged corpora (exact vocabulary size, byte fallback,
//!   `▁` metaspace, digits split, character coverage, Llama's special tokens and id layout);
//! - [`hf`]: the result as Hugging Face `tokenizer.json` + configs, loadable by `transformers.AutoTokenizer`;
//! - [`sentencepiece`]: import of a SentencePiece BPE `tokenizer.model` (Llama 2's) with the same ids;
//! - [`analyze`]: vocabulary composition by script and length per token against a reference;
//! - [`Tokenizer`]: encoding and decoding through the `tokenizers` crate — the same code that backs Python
//!   `tokenizers` and `transformers`' fast tokenizers, so ids agree by construction.

pub mod analyze;
pub mod canonical;
mod error;
mod fast;
pub mod hf;
pub mod input;
pub mod script;
pub mod sentencepiece;
pub mod train;

use std::path::{Path, PathBuf};

pub use canonical::{PieceBytes, Spelling};
pub use error::{Result, TokenizerError};

/// A loaded HF tokenizer. Llama-style tokenizers (the ones hashi writes) encode through a fast path that gives
/// the library's ids without its bookkeeping; every other tokenizer.json goes through the `tokenizers` crate.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    fast: Option<fast::FastBpe>,
    spelling: Spelling,
    path: PathBuf,
}

impl Tokenizer {
    /// Loads `tokenizer.json`, or `DIR/tokenizer.json` when given a directory.
    pub fn from_file(path: &Path) -> Result<Self> {
        let path = if path.is_dir() { path.join("tokenizer.json") } else { path.to_path_buf() };
        if !path.is_file() {
            return Err(TokenizerError::Load { path, message: "file not found".into() });
        }
        let load_err = |message: String| TokenizerError::Load { path: path.clone(), message };
        let text = std::fs::read_to_string(&path).map_err(|e| TokenizerError::io(&path, e))?;
        let inner = <tokenizers::Tokenizer as std::str::FromStr>::from_str(&text)
            .map_err(|e| load_err(e.to_string()))?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| load_err(e.to_string()))?;
        let fast = fast::FastBpe::from_json(&json);
        let spelling = Spelling::of_json(&json);
        Ok(Self { inner, fast, spelling, path })
    }

    /// Whether encoding takes the fast path.
    pub fn is_fast(&self) -> bool {
        self.fast.is_some()
    }

    /// Token ids of `text` through the `tokenizers` library's full pipeline, whatever the fast path would do.
    pub fn encode_with_library(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let enc =
            self.inner.encode(text, add_special_tokens).map_err(|e| TokenizerError::Codec(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Where it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Token ids of `text`; `add_special_tokens` applies the post-processor (e.g. a leading `<s>`).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        match &self.fast {
            Some(f) => Ok(f.encode(text, add_special_tokens)),
            None => self.encode_with_library(text, add_special_tokens),
        }
    }

    /// Token ids of many texts, encoded in parallel (on the current rayon pool).
    pub fn encode_batch(&self, texts: &[&str], add_special_tokens: bool) -> Result<Vec<Vec<u32>>> {
        use rayon::prelude::*;
        if let Some(f) = &self.fast {
            return Ok(texts.par_iter().map(|t| f.encode(t, add_special_tokens)).collect());
        }
        let encs = self
            .inner
            .encode_batch(texts.to_vec(), add_special_tokens)
            .map_err(|e| TokenizerError::Codec(e.to_string()))?;
        Ok(encs.into_iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// Ids of a piece string as it appears after normalisation (`▁` for spaces), BPE-encoded without normalising
    /// it again and without special tokens: how this tokenizer would cut another vocabulary's piece.
    pub fn encode_piece(&self, piece: &str) -> Result<Vec<u32>> {
        if let Some(f) = &self.fast {
            return Ok(f.encode_normalized(piece));
        }
        let mut ids = self.encode_with_library(&piece.replace(script::METASPACE, " "), false)?;
        // The library path adds its dummy prefix; drop it for pieces that do not start a word.
        if !piece.starts_with(script::METASPACE) && ids.len() > 1 {
            let first = self.inner.id_to_token(ids[0]);
            if first.as_deref() == Some("▁") {
                ids.remove(0);
            }
        }
        Ok(ids)
    }

    /// Text of `ids`, optionally without special tokens.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner.decode(ids, skip_special_tokens).map_err(|e| TokenizerError::Codec(e.to_string()))
    }

    /// Vocabulary size, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// How this tokenizer spells the bytes of its pieces (read from its `tokenizer.json`).
    pub fn spelling(&self) -> Spelling {
        self.spelling
    }

    /// Canonical bytes of every id, indexed by id: text pieces with the family's spelling undone, byte-fallback
    /// pieces as their byte, added tokens by content, gaps as [`PieceBytes::Unused`] (see [`canonical`]).
    pub fn piece_bytes(&self) -> Vec<PieceBytes> {
        let mut out = vec![PieceBytes::Unused; self.vocab_size()];
        for (piece, id) in self.inner.get_vocab(false) {
            if let Some(slot) = out.get_mut(id as usize) {
                *slot = self.spelling.piece_bytes(&piece);
            }
        }
        for (id, added) in self.inner.get_added_tokens_decoder() {
            if let Some(slot) = out.get_mut(id as usize) {
                *slot = PieceBytes::Added { content: added.content, special: added.special };
            }
        }
        out
    }

    /// Id of a piece or added token.
    pub fn token_to_id(&self, piece: &str) -> Option<u32> {
        self.inner.token_to_id(piece)
    }

    /// Piece or added token of an id.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Piece of each id (`None` for gaps), and whether it is a special token.
    pub fn pieces(&self) -> Vec<Option<(String, bool)>> {
        let mut out = vec![None; self.vocab_size()];
        for (piece, id) in self.inner.get_vocab(true) {
            if let Some(slot) = out.get_mut(id as usize) {
                *slot = Some((piece, false));
            }
        }
        for (id, added) in self.inner.get_added_tokens_decoder() {
            if let Some(Some(slot)) = out.get_mut(id as usize) {
                slot.1 = added.special;
            }
        }
        out
    }
}
