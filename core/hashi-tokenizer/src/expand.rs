//! Vocabulary expansion (Swallow's approach, Fujii et al., 2024): keep every piece and id of a base tokenizer and
//! append the pieces of another tokenizer that the base lacks, so that a model keeps its whole vocabulary (and
//! its English) and gains the other tokenizer's Japanese pieces.
//!
//! Both tokenizers are BPE models, of any spelling ([`crate::Spelling`]): the added pieces are compared by their
//! canonical bytes and written in the base's spelling (`▁日本` becomes `ĠæĹ¥æľ¬` in a byte-level base).
//! Segmentation is kept apart by the bytes a piece holds:
//!
//! - Pieces made only of ASCII bytes are not added, and every merge added produces a piece holding a non-ASCII
//!   byte, so text made of ASCII bytes is cut exactly as the base cuts it (its ids are the base's).
//! - Only pieces of letters (and spaces) are added: a piece holding punctuation, a symbol or a digit (`、の`,
//!   `）`, `2023年`) is left out, so those characters are still cut as the source model learnt them (measured on
//!   SmolLM2: such pieces cost the Japanese held-out text 2.2 bits per symbol byte at step 0).
//! - The added merges come *before* the base's merges (lower rank), in the added tokenizer's order, so that text
//!   with non-ASCII characters is cut as the added tokenizer cuts it wherever the pieces exist. In a byte-level
//!   base the added tokenizer's characters are first built from their bytes (`æ`+`Ĺ` → `æĹ`, `æĹ`+`¥` → `æĹ¥`;
//!   intermediate partial pieces are appended when the base lacks them), because its BPE starts from characters
//!   and the base's from bytes.
//! - Pieces a SentencePiece-style base cannot spell (partial UTF-8 characters of a byte-level tokenizer) and byte
//!   pieces are skipped; the base's added tokens, normaliser, pre-tokeniser, decoder and post-processor are kept.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::{Value, json};

use crate::Tokenizer;
use crate::canonical::{PieceBytes, Spelling, byte_level_char};
use crate::error::{Result, TokenizerError};

/// What [`expand`] did.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ExpandReport {
    /// Ids of the base tokenizer (its pieces and added tokens); they keep their ids.
    pub base_vocab_size: usize,
    /// Ids of the expanded tokenizer.
    pub vocab_size: usize,
    /// Pieces of the added tokenizer appended (not in the base).
    pub appended: usize,
    /// Partial characters appended only as steps to build the added tokenizer's characters (byte-level base).
    pub intermediate: usize,
    /// Pieces of the added tokenizer already in the base (same bytes).
    pub shared: usize,
    /// Pieces of only ASCII bytes the base lacks, not added (so ASCII text is cut as the base cuts it).
    pub skipped_ascii: usize,
    /// Pieces holding punctuation, symbols or digits (`、の`, `2023年`), not added: the base keeps cutting those
    /// characters as the source model learnt them.
    pub skipped_non_letters: usize,
    /// Pieces the base cannot spell (partial UTF-8 into a SentencePiece-style base) and byte pieces.
    pub skipped_unspellable: usize,
    /// Merges placed before the base's.
    pub merges_added: usize,
}

/// A BPE model's vocabulary and merges, read from its `tokenizer.json`.
struct Bpe {
    vocab: HashMap<String, u64>,
    merges: Vec<(String, String)>,
    /// Merges written as `"a b"` strings (older files) rather than `["a", "b"]` pairs.
    merges_as_strings: bool,
}

fn read_bpe(tok: &Tokenizer) -> Result<(Value, Bpe)> {
    let path = tok.path();
    let bad = |m: String| TokenizerError::Load { path: path.to_path_buf(), message: m };
    let text = std::fs::read_to_string(path).map_err(|e| TokenizerError::io(path, e))?;
    let json: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let model = &json["model"];
    if model["type"].as_str() != Some("BPE") {
        return Err(bad(format!("expansion needs BPE models, this one is {}", model["type"])));
    }
    let vocab: HashMap<String, u64> = model["vocab"]
        .as_object()
        .ok_or_else(|| bad("model.vocab is not an object".into()))?
        .iter()
        .map(|(k, v)| {
            v.as_u64().map(|id| (k.clone(), id)).ok_or_else(|| bad(format!("vocab entry {k:?}: {v}")))
        })
        .collect::<Result<_>>()?;
    let list = model["merges"].as_array().ok_or_else(|| bad("model.merges is not a list".into()))?;
    let mut merges = Vec::with_capacity(list.len());
    for m in list {
        let pair = match m {
            Value::String(s) => s.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())),
            Value::Array(p) => match (p.first().and_then(Value::as_str), p.get(1).and_then(Value::as_str)) {
                (Some(a), Some(b)) => Some((a.to_string(), b.to_string())),
                _ => None,
            },
            _ => None,
        };
        merges.push(pair.ok_or_else(|| bad(format!("merge {m} is neither \"a b\" nor [a, b]")))?);
    }
    let merges_as_strings = list.first().is_some_and(Value::is_string);
    Ok((json, Bpe { vocab, merges, merges_as_strings }))
}

/// `bytes` written in `spelling`, `None` where it cannot be written as one vocabulary piece.
fn spell(bytes: &[u8], spelling: Spelling) -> Option<String> {
    match spelling {
        Spelling::ByteLevel => Some(bytes.iter().map(|&b| byte_level_char(b)).collect()),
        Spelling::Metaspace { replacement, .. } => {
            std::str::from_utf8(bytes).ok().map(|s| s.replace(' ', &replacement.to_string()))
        }
        Spelling::Plain { .. } => std::str::from_utf8(bytes).ok().map(str::to_string),
    }
}

/// The tokenizer.json of `base` expanded with the pieces of `added` (see the module docs), and what was done.
///
/// Errors: either tokenizer is not a BPE model or its file cannot be read; the result fails to load in the
/// `tokenizers` library (a bug: reported, never written).
pub fn expand(base: &Tokenizer, added: &Tokenizer) -> Result<(Value, ExpandReport)> {
    let (mut json, mut bpe) = read_bpe(base)?;
    let (_, new) = read_bpe(added)?;
    let (spelling, new_spelling) = (base.spelling(), added.spelling());
    let base_vocab_size = base.vocab_size();
    let mut next_id = base_vocab_size as u64;
    let mut report = ExpandReport {
        base_vocab_size,
        vocab_size: 0,
        appended: 0,
        intermediate: 0,
        shared: 0,
        skipped_ascii: 0,
        skipped_non_letters: 0,
        skipped_unspellable: 0,
        merges_added: 0,
    };
    let mut append = |vocab: &mut HashMap<String, u64>, piece: &str| -> bool {
        if vocab.contains_key(piece) {
            return false;
        }
        vocab.insert(piece.to_string(), next_id);
        next_id += 1;
        true
    };
    let bytes_of = |piece: &str| match new_spelling.piece_bytes(piece) {
        PieceBytes::Text(b) => Some(b),
        _ => None,
    };
    // The added tokenizer's pieces in id order, in the base's spelling.
    let mut pieces: Vec<(&String, u64)> = new.vocab.iter().map(|(p, &id)| (p, id)).collect();
    pieces.sort_by_key(|p| p.1);
    let mut block: Vec<(String, String)> = vec![];
    let mut in_block: HashSet<(String, String)> = HashSet::new();
    let mut push_merge = |block: &mut Vec<(String, String)>, a: String, b: String| {
        if in_block.insert((a.clone(), b.clone())) {
            block.push((a, b));
        }
    };
    for (piece, _) in &pieces {
        let Some(bytes) = bytes_of(piece) else {
            report.skipped_unspellable += 1;
            continue;
        };
        let Some(spelled) = spell(&bytes, spelling) else {
            report.skipped_unspellable += 1;
            continue;
        };
        if bpe.vocab.contains_key(&spelled) {
            report.shared += 1;
            continue;
        }
        if bytes.is_ascii() {
            report.skipped_ascii += 1;
            continue;
        }
        if String::from_utf8_lossy(&bytes).chars().any(|c| !(c.is_alphabetic() || c == ' ')) {
            report.skipped_non_letters += 1;
            continue;
        }
        // A byte-level base starts from bytes: build each multi-byte character of the piece first.
        if spelling == Spelling::ByteLevel {
            for c in String::from_utf8_lossy(&bytes).chars().filter(|c| c.len_utf8() > 1 && *c != '\u{FFFD}')
            {
                let mut buf = [0u8; 4];
                let cb = c.encode_utf8(&mut buf).as_bytes();
                let mut left = byte_level_char(cb[0]).to_string();
                for &b in &cb[1..] {
                    let right = byte_level_char(b).to_string();
                    let joined = format!("{left}{right}");
                    append(&mut bpe.vocab, &joined);
                    push_merge(&mut block, left, right);
                    left = joined;
                }
            }
        }
        append(&mut bpe.vocab, &spelled);
    }
    // Appended: the added tokenizer's pieces that are new ids; the other new ids are intermediate steps.
    report.appended = pieces
        .iter()
        .filter_map(|(p, _)| bytes_of(p).and_then(|b| spell(&b, spelling)))
        .filter(|s| bpe.vocab.get(s).is_some_and(|&id| id >= base_vocab_size as u64))
        .collect::<HashSet<_>>()
        .len();
    report.intermediate = (next_id as usize - base_vocab_size) - report.appended;
    // The added tokenizer's merges whose result holds a non-ASCII byte, in its order.
    for (a, b) in &new.merges {
        let (Some(ab), Some(bb)) = (bytes_of(a), bytes_of(b)) else { continue };
        let joined: Vec<u8> = [ab.as_slice(), bb.as_slice()].concat();
        if joined.is_ascii() {
            continue;
        }
        let (Some(sa), Some(sb), Some(sj)) =
            (spell(&ab, spelling), spell(&bb, spelling), spell(&joined, spelling))
        else {
            continue;
        };
        if bpe.vocab.contains_key(&sa) && bpe.vocab.contains_key(&sb) && bpe.vocab.contains_key(&sj) {
            push_merge(&mut block, sa, sb);
        }
    }
    report.merges_added = block.len();
    let merges: Vec<Value> = block
        .iter()
        .chain(bpe.merges.iter().filter(|m| !in_block.contains(*m)))
        .map(|(a, b)| if bpe.merges_as_strings { json!(format!("{a} {b}")) } else { json!([a, b]) })
        .collect();
    let mut vocab: Vec<(&String, &u64)> = bpe.vocab.iter().collect();
    vocab.sort_by_key(|p| *p.1);
    json["model"]["vocab"] = Value::Object(vocab.into_iter().map(|(k, v)| (k.clone(), json!(v))).collect());
    json["model"]["merges"] = Value::Array(merges);
    report.vocab_size = next_id as usize;
    <tokenizers::Tokenizer as std::str::FromStr>::from_str(&json.to_string()).map_err(|e| {
        TokenizerError::Load {
            path: base.path().to_path_buf(),
            message: format!("the expanded tokenizer does not load (a bug in the expansion): {e}"),
        }
    })?;
    Ok((json, report))
}
