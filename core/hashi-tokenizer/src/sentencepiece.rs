//! Import of a SentencePiece BPE model (`tokenizer.model`, e.g. Llama 2's) as a Llama-style HF tokenizer whose
//! ids equal the `sentencepiece` library's.
//!
//! The model is a `ModelProto` protobuf, read here with a minimal decoder of the fields we need: the pieces
//! (string, score, type), `trainer_spec.model_type`/`byte_fallback`/`unk_id`/`bos_id`/`eos_id`, and
//! `normalizer_spec.name`/`add_dummy_prefix`/`remove_extra_whitespaces`. Merges are recovered as transformers'
//! `SentencePieceExtractor` does: every split of a piece into two pieces of the vocabulary, ranked by the score of
//! the merged piece. Supported: BPE models with the `identity` normaliser (exact) or `nmt_nfkc`/`nfkc`
//! (approximated by Unicode NFKC). Unigram models are refused.

use std::path::Path;

use rustc_hash::FxHashMap;

use crate::error::{Result, TokenizerError};
use crate::hf::LlamaStyle;

/// Piece types of `sentencepiece_model.proto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceType {
    /// A normal piece.
    Normal,
    /// The unknown piece.
    Unknown,
    /// A control symbol (`<s>`, `</s>`).
    Control,
    /// A user-defined symbol (always one piece).
    UserDefined,
    /// Reserved, never produced.
    Unused,
    /// A byte-fallback piece `<0xHH>`.
    Byte,
}

/// The parts of a SentencePiece model that the import needs.
#[derive(Debug, Clone)]
pub struct SpModel {
    /// (piece, score, type) in id order.
    pub pieces: Vec<(String, f32, PieceType)>,
    /// 1 unigram, 2 BPE, 3 word, 4 char.
    pub model_type: u64,
    /// Whether unknown characters fall back to bytes.
    pub byte_fallback: bool,
    /// Ids of unk, bos, eos (−1 = none).
    pub unk_bos_eos: [i64; 3],
    /// Normaliser name (`identity`, `nmt_nfkc`, ...).
    pub normalizer: String,
    /// Whether a `▁` is prepended.
    pub add_dummy_prefix: bool,
    /// Whether whitespace runs are collapsed and ends trimmed.
    pub remove_extra_whitespaces: bool,
}

/// A cursor over protobuf wire data.
struct Wire<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Wire<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(out)
    }

    /// Next (field number, value); length-delimited values as bytes, fixed32 as its 4 bytes.
    fn field(&mut self) -> Option<Option<(u64, Value<'a>)>> {
        if self.pos == self.buf.len() {
            return Some(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => Value::Bytes(self.bytes(8)?),
            2 => {
                let n = usize::try_from(self.varint()?).ok()?;
                Value::Bytes(self.bytes(n)?)
            }
            5 => Value::Bytes(self.bytes(4)?),
            _ => return None,
        };
        Some(Some((key >> 3, value)))
    }
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// Calls `f` for every field of a message; `None` if the data is not valid protobuf.
fn fields<'a>(buf: &'a [u8], mut f: impl FnMut(u64, Value<'a>) -> Option<()>) -> Option<()> {
    let mut w = Wire { buf, pos: 0 };
    while let Some((num, v)) = w.field()? {
        f(num, v)?;
    }
    Some(())
}

impl SpModel {
    /// Parses a `tokenizer.model` file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| TokenizerError::io(path, e))?;
        Self::parse(&bytes).ok_or_else(|| TokenizerError::Load {
            path: path.into(),
            message: "not a SentencePiece model (invalid ModelProto)".into(),
        })
    }

    fn parse(buf: &[u8]) -> Option<Self> {
        let mut m = SpModel {
            pieces: vec![],
            model_type: 1,
            byte_fallback: false,
            unk_bos_eos: [0, 1, 2],
            normalizer: "nmt_nfkc".into(),
            add_dummy_prefix: true,
            remove_extra_whitespaces: true,
        };
        fields(buf, |num, v| {
            match (num, v) {
                (1, Value::Bytes(b)) => {
                    let (mut piece, mut score, mut kind) = (String::new(), 0f32, 1u64);
                    fields(b, |n, v| {
                        match (n, v) {
                            (1, Value::Bytes(s)) => piece = String::from_utf8(s.to_vec()).ok()?,
                            (2, Value::Bytes(f)) => score = f32::from_le_bytes(f.try_into().ok()?),
                            (3, Value::Varint(t)) => kind = t,
                            _ => {}
                        }
                        Some(())
                    })?;
                    let kind = match kind {
                        1 => PieceType::Normal,
                        2 => PieceType::Unknown,
                        3 => PieceType::Control,
                        4 => PieceType::UserDefined,
                        5 => PieceType::Unused,
                        6 => PieceType::Byte,
                        _ => return None,
                    };
                    m.pieces.push((piece, score, kind));
                }
                (2, Value::Bytes(b)) => fields(b, |n, v| {
                    match (n, v) {
                        (3, Value::Varint(t)) => m.model_type = t,
                        (35, Value::Varint(t)) => m.byte_fallback = t != 0,
                        (40..=42, Value::Varint(t)) => m.unk_bos_eos[(n - 40) as usize] = t as i32 as i64,
                        _ => {}
                    }
                    Some(())
                })?,
                (3, Value::Bytes(b)) => fields(b, |n, v| {
                    match (n, v) {
                        (1, Value::Bytes(s)) => m.normalizer = String::from_utf8(s.to_vec()).ok()?,
                        (3, Value::Varint(t)) => m.add_dummy_prefix = t != 0,
                        (4, Value::Varint(t)) => m.remove_extra_whitespaces = t != 0,
                        _ => {}
                    }
                    Some(())
                })?,
                _ => {}
            }
            Some(())
        })?;
        (!m.pieces.is_empty()).then_some(m)
    }

    /// The equivalent Llama-style HF tokenizer.
    pub fn to_llama_style(&self, path: &Path) -> Result<LlamaStyle> {
        let refuse = |message: String| TokenizerError::Load { path: path.into(), message };
        // What the sentencepiece library's ModelInterface refuses at load: empty or repeated pieces, no unknown
        // piece or more than one, and (with byte fallback) any of the 256 byte pieces missing.
        let mut seen: FxHashMap<&str, usize> = FxHashMap::default();
        for (i, (piece, _, _)) in self.pieces.iter().enumerate() {
            if piece.is_empty() {
                return Err(refuse(format!("piece {i} is empty (sentencepiece refuses such a model)")));
            }
            if let Some(j) = seen.insert(piece.as_str(), i) {
                return Err(refuse(format!(
                    "piece {piece:?} is defined twice (ids {j} and {i}); sentencepiece refuses such a model"
                )));
            }
        }
        let unknown: Vec<usize> = self
            .pieces
            .iter()
            .enumerate()
            .filter(|(_, p)| p.2 == PieceType::Unknown)
            .map(|(i, _)| i)
            .collect();
        if unknown.len() != 1 {
            return Err(refuse(format!(
                "the model defines {} unknown pieces (ids {unknown:?}); exactly one is needed",
                unknown.len()
            )));
        }
        if self.byte_fallback {
            let missing: Vec<String> = (0..=255u8)
                .map(|b| format!("<0x{b:02X}>"))
                .filter(|p| !self.pieces.iter().any(|q| &q.0 == p && q.2 == PieceType::Byte))
                .collect();
            if !missing.is_empty() {
                return Err(refuse(format!(
                    "byte_fallback is on but {} of the 256 byte pieces are missing ({}{}); sentencepiece refuses \
                     such a model",
                    missing.len(),
                    missing.iter().take(4).cloned().collect::<Vec<_>>().join(", "),
                    if missing.len() > 4 { ", ..." } else { "" }
                )));
            }
        }
        if self.model_type != 2 {
            return Err(refuse(format!(
                "model type {} is not BPE (2); only BPE models can be imported",
                self.model_type
            )));
        }
        if !self.byte_fallback {
            return Err(refuse(
                "the model has no byte fallback; hashi tokenizers always fall back to bytes".into(),
            ));
        }
        let nfkc = match self.normalizer.as_str() {
            "identity" => false,
            "nmt_nfkc" | "nfkc" => {
                tracing::warn!(normalizer = %self.normalizer, "approximating SentencePiece's normaliser with NFKC");
                true
            }
            other => return Err(refuse(format!("normaliser {other:?} is not supported"))),
        };
        if self.remove_extra_whitespaces {
            return Err(refuse(
                "remove_extra_whitespaces=true is not supported (Llama's models set it to false)".into(),
            ));
        }
        let id = |i: i64, what: &str| {
            u32::try_from(i)
                .ok()
                .filter(|&i| (i as usize) < self.pieces.len())
                .ok_or_else(|| refuse(format!("{what} id {i} is not in the vocabulary")))
        };
        let unk_bos_eos = [
            id(self.unk_bos_eos[0], "unk")?,
            id(self.unk_bos_eos[1], "bos")?,
            id(self.unk_bos_eos[2], "eos")?,
        ];
        let pieces: Vec<String> = self.pieces.iter().map(|p| p.0.clone()).collect();
        let vocab: FxHashMap<&str, usize> = pieces.iter().enumerate().map(|(i, p)| (p.as_str(), i)).collect();
        let mut merges: Vec<(usize, usize, f32)> = Vec::new();
        for (piece, score, kind) in &self.pieces {
            if *kind != PieceType::Normal {
                continue;
            }
            let mut local: Vec<(usize, usize, f32)> = piece
                .char_indices()
                .skip(1)
                .filter_map(|(i, _)| Some((*vocab.get(&piece[..i])?, *vocab.get(&piece[i..])?, *score)))
                .collect();
            local.sort_by_key(|&(l, r, _)| (l, r));
            merges.extend(local);
        }
        merges.sort_by(|a, b| b.2.total_cmp(&a.2));
        let user_defined = self
            .pieces
            .iter()
            .enumerate()
            .filter(|(_, p)| p.2 == PieceType::UserDefined)
            .map(|(i, _)| i as u32);
        let user_defined = user_defined.collect();
        Ok(LlamaStyle {
            merges: merges.into_iter().map(|(l, r, _)| (pieces[l].clone(), pieces[r].clone())).collect(),
            pieces,
            unk_bos_eos,
            register_specials: false,
            user_defined,
            add_dummy_prefix: self.add_dummy_prefix,
            nfkc,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_model() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("tokenizer.model");
        std::fs::write(&p, b"\xff\xff\xff").expect("write");
        let e = SpModel::from_file(&p).expect_err("garbage");
        assert!(
            e.to_string().contains("tokenizer.model") && e.to_string().contains("not a SentencePiece model")
        );
    }
}
