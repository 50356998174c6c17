//! Tokenizer analysis: vocabulary composition by script ([`Category`]) and length per token on text.
//!
//! Pieces are classified by the bytes they decode to ([`crate::canonical`]: `▁` is a space, a `<0xHH>` piece its
//! byte, a byte-level piece its bytes with GPT-2's map undone), so that a SentencePiece-style and a byte-level
//! vocabulary compare by what their pieces hold. Added tokens count as special.
//!
//! Length metrics per language: characters/token and UTF-8 bytes/token (the method's "length per token"),
//! tokens per unit — per whitespace-separated word, or per character for languages written without spaces
//! (`ja`, `zh`) — and the share of tokens that hold bytes rather than characters: byte-fallback pieces, byte-level
//! pieces that are not whole UTF-8 characters, and the unknown token.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TokenizerError};
use crate::script::Category;
use crate::{PieceBytes, Tokenizer};

/// Pieces per category.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Composition {
    /// Vocabulary size.
    pub total: usize,
    /// Count per category, in [`Category::ALL`] order.
    pub by_category: Vec<(Category, usize)>,
    /// CJK + Hiragana + Katakana.
    pub japanese: usize,
}

/// Counts the vocabulary of `tok` by category, from each piece's decoded bytes ([`Category::of_bytes`]).
pub fn composition(tok: &Tokenizer) -> Composition {
    let mut counts = [0usize; Category::ALL.len()];
    let pieces = tok.piece_bytes();
    for piece in &pieces {
        let cat = match piece {
            PieceBytes::Added { .. } => Category::Special,
            PieceBytes::Text(bytes) => Category::of_bytes(bytes),
            PieceBytes::Byte(_) => Category::Byte,
            PieceBytes::Unused => continue,
        };
        counts[cat as usize] += 1;
    }
    let by_category: Vec<(Category, usize)> =
        Category::ALL.iter().map(|&c| (c, counts[c as usize])).collect();
    let japanese = by_category.iter().filter(|(c, _)| c.is_japanese()).map(|(_, n)| n).sum();
    Composition { total: pieces.len(), by_category, japanese }
}

/// Length statistics of one tokenizer on one language's text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LengthStats {
    /// Language tag.
    pub lang: String,
    /// Documents.
    pub docs: usize,
    /// Characters.
    pub chars: u64,
    /// UTF-8 bytes.
    pub bytes: u64,
    /// Units: words, or characters for `ja`/`zh`.
    pub units: u64,
    /// What a unit is (`word` or `char`).
    pub unit: String,
    /// Tokens (no special tokens added).
    pub tokens: u64,
    /// Tokens that hold bytes rather than characters: byte fallbacks, partial UTF-8 byte-level pieces, the
    /// unknown token.
    pub fallback_tokens: u64,
    /// chars / tokens.
    pub chars_per_token: f64,
    /// bytes / tokens.
    pub bytes_per_token: f64,
    /// tokens / units.
    pub tokens_per_unit: f64,
    /// fallback_tokens / tokens.
    pub fallback_rate: f64,
}

/// Encodes `docs` and measures lengths.
pub fn length_stats(tok: &Tokenizer, lang: &str, docs: &[String]) -> Result<LengthStats> {
    let per_char = matches!(lang, "ja" | "zh");
    let unk = tok.unk_token_id();
    let fallback: Vec<bool> = (0u32..)
        .zip(tok.piece_bytes())
        .map(|(id, p)| matches!(p, PieceBytes::Byte(_)) || p.is_partial_utf8() || Some(id) == unk)
        .collect();
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let mut s = LengthStats {
        lang: lang.into(),
        docs: docs.len(),
        chars: 0,
        bytes: 0,
        units: 0,
        unit: if per_char { "char" } else { "word" }.into(),
        tokens: 0,
        fallback_tokens: 0,
        chars_per_token: 0.0,
        bytes_per_token: 0.0,
        tokens_per_unit: 0.0,
        fallback_rate: 0.0,
    };
    for chunk in refs.chunks(4096) {
        for (doc, ids) in chunk.iter().zip(tok.encode_batch(chunk, false)?) {
            s.chars += doc.chars().count() as u64;
            s.bytes += doc.len() as u64;
            s.units += if per_char {
                doc.chars().filter(|c| !c.is_whitespace()).count() as u64
            } else {
                doc.split_whitespace().count() as u64
            };
            s.tokens += ids.len() as u64;
            s.fallback_tokens +=
                ids.iter().filter(|&&i| fallback.get(i as usize).copied().unwrap_or(false)).count() as u64;
        }
    }
    let t = s.tokens.max(1) as f64;
    s.chars_per_token = s.chars as f64 / t;
    s.bytes_per_token = s.bytes as f64 / t;
    s.tokens_per_unit = s.tokens as f64 / s.units.max(1) as f64;
    s.fallback_rate = s.fallback_tokens as f64 / t;
    Ok(s)
}

/// One tokenizer's side of an analysis.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenizerSide {
    /// The tokenizer.
    pub tokenizer: PathBuf,
    /// Its vocabulary by script.
    pub composition: Composition,
    /// Length per token on each language's text.
    pub lengths: Vec<LengthStats>,
}

/// `tokenizer-analysis.json`: a tokenizer beside a reference (the base model's).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenizerAnalysis {
    /// The tokenizer analysed.
    pub tokenizer: PathBuf,
    /// Its vocabulary by script.
    pub composition: Composition,
    /// Length per token on each language's text.
    pub lengths: Vec<LengthStats>,
    /// The reference, if any.
    pub reference: Option<TokenizerSide>,
}

impl TokenizerAnalysis {
    /// Reads an analysis file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TokenizerError::Input(format!("reading {}: {e}", path.display())))?;
        serde_json::from_str(&text)
            .map_err(|e| TokenizerError::Input(format!("{}: not a tokenizer analysis: {e}", path.display())))
    }

    /// Writes it as pretty JSON, atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text =
            serde_json::to_string_pretty(self).map_err(|e| TokenizerError::Input(e.to_string()))? + "\n";
        hashi_core::write_atomic(path, text.as_bytes())
            .map_err(|e| TokenizerError::Input(format!("writing {}: {e}", path.display())))
    }
}
