//! Tokenizers for hashi: the method's bilingual SentencePiece-style BPE.
//!
//! - [`train`]: a SentencePiece-BPE trainer on language-tagged corpora (exact vocabulary size, byte fallback,
//!   `▁` metaspace, digits split, character coverage, Llama's special tokens and id layout);
//! - [`hf`]: the result as Hugging Face `tokenizer.json` + configs, loadable by `transformers.AutoTokenizer`;
//! - [`sentencepiece`]: import of a SentencePiece BPE `tokenizer.model` (Llama 2's) with the same ids;
//! - [`analyze`]: vocabulary composition by script and length per token against a reference;
//! - [`Tokenizer`]: any Hugging Face `tokenizer.json` of the BPE kind — SentencePiece-style (metaspace, byte
//!   fallback) or byte-level (GPT-2's byte map, a split regex, `ignore_merges`) — encoded and decoded through the
//!   `tokenizers` crate, the same code that backs Python `tokenizers` and `transformers`' fast tokenizers, so ids
//!   agree by construction; hashi's own layout takes a fast path with the same ids.

pub mod analyze;
pub mod canonical;
mod error;
pub mod expand;
mod fast;
pub mod hf;
pub mod input;
pub mod script;
pub mod sentencepiece;
pub mod train;

use std::path::{Path, PathBuf};

/// The files of an HF tokenizer folder that travel with a model (into a transfer's output, every checkpoint).
pub const TOKENIZER_FILES: [&str; 3] = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];

pub use canonical::{PieceBytes, Spelling};
pub use error::{Result, TokenizerError};

/// A loaded HF tokenizer. Llama-style tokenizers (the ones hashi writes) encode through a fast path that gives
/// the library's ids without its bookkeeping; every other tokenizer.json goes through the `tokenizers` crate.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    fast: Option<fast::FastBpe>,
    spelling: Spelling,
    /// Id of the model's `unk_token`.
    unk: Option<u32>,
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
        // The library panics on some malformed components (a `decoder` it cannot parse): an error like any other.
        let inner = hashi_core::catch_panic(|| <tokenizers::Tokenizer as std::str::FromStr>::from_str(&text))
            .map_err(|p| load_err(format!("the tokenizers library cannot read it: {p}")))?
            .map_err(|e| load_err(e.to_string()))?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| load_err(e.to_string()))?;
        let fast = fast::FastBpe::from_json(&json);
        let spelling = Spelling::of_json(&json);
        let unk = json["model"]["unk_token"].as_str().and_then(|t| inner.token_to_id(t));
        // Every id must have a row in a model of `vocab_size` rows: ids are 0..vocab_size.
        let size = inner.get_vocab_size(true);
        let beyond =
            inner.get_vocab(true).into_iter().filter(|(_, id)| *id as usize >= size).max_by_key(|p| p.1);
        // The `tokenizers` library renumbers an added token whose id would leave a gap; refuse instead of letting
        // two readings of the file disagree.
        let renumbered = json["added_tokens"].as_array().into_iter().flatten().find_map(|t| {
            let (content, id) = (t["content"].as_str()?, t["id"].as_u64()?);
            inner.token_to_id(content).filter(|&got| u64::from(got) != id).map(|_| (content.to_string(), id))
        });
        if let Some((token, id)) = renumbered.or(beyond.map(|(t, id)| (t, u64::from(id)))) {
            return Err(load_err(format!(
                "token {token:?} has id {id}, but the vocabulary has {size} ids: ids must run from 0 to {} \
                 without gaps (a model built from this tokenizer would have no row for it)",
                size.saturating_sub(1)
            )));
        }
        Ok(Self { inner, fast, spelling, unk, path })
    }

    /// Whether encoding takes the fast path.
    pub fn is_fast(&self) -> bool {
        self.fast.is_some()
    }

    /// Token ids of `text` through the `tokenizers` library's full pipeline, whatever the fast path would do.
    pub fn encode_with_library(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| TokenizerError::Codec(format!("{}: {e}", self.path.display())))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Token ids of `text` (no special tokens) with each token's byte span `[start, end)` in `text`, through the
    /// `tokenizers` library (offsets map normalised text back to the original; a byte-level piece holding part of
    /// a character spans that character).
    pub fn encode_with_offsets(&self, text: &str) -> Result<Vec<(u32, (usize, usize))>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| TokenizerError::Codec(format!("{}: {e}", self.path.display())))?;
        Ok(enc.get_ids().iter().copied().zip(enc.get_offsets().iter().copied()).collect())
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
            .map_err(|e| TokenizerError::Codec(format!("{}: {e}", self.path.display())))?;
        Ok(encs.into_iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// How this tokenizer's BPE model cuts a piece of another vocabulary: `body` is the piece's bytes after its
    /// word-start space, if any (`▁the`/`Ġthe` → `the`, `starts_word` = true), possibly part of a UTF-8
    /// character. The bytes are spelled as this tokenizer's model sees text (GPT-2 byte map, or `▁` for spaces
    /// with `<0xHH>` tokens for bytes that are not whole characters) and cut by the model alone: no normaliser,
    /// dummy prefix, pre-tokenizer split, added or special tokens. A word start is cut as a word after a space.
    ///
    /// Errors: [`TokenizerError::Codec`] if the model fails (e.g. a character it cannot represent and no
    /// `unk_token`).
    pub fn encode_piece(&self, body: &[u8], starts_word: bool) -> Result<Vec<u32>> {
        use tokenizers::Model;
        let model = self.inner.get_model();
        let cut = |text: &str| -> Result<Vec<u32>> {
            let tokens = model
                .tokenize(text)
                .map_err(|e| TokenizerError::Codec(format!("{}: {e}", self.path.display())))?;
            Ok(tokens.into_iter().map(|t| t.id).collect())
        };
        let bytes: Vec<u8> = starts_word.then_some(b' ').into_iter().chain(body.iter().copied()).collect();
        let space = match self.spelling {
            Spelling::ByteLevel => {
                return cut(&bytes.iter().map(|&b| canonical::byte_level_char(b)).collect::<String>());
            }
            Spelling::Metaspace { replacement, .. } => replacement,
            Spelling::Plain { .. } => ' ',
        };
        let mut ids = Vec::new();
        for chunk in bytes.utf8_chunks() {
            ids.extend(cut(&chunk.valid().replace(' ', space.encode_utf8(&mut [0; 4])))?);
            for b in chunk.invalid() {
                let byte_piece = format!("<0x{b:02X}>");
                let id = self.inner.token_to_id(&byte_piece).or(self.unk);
                ids.push(id.ok_or_else(|| {
                    TokenizerError::Codec(format!(
                        "byte 0x{b:02X} has no {byte_piece} token and no unk_token"
                    ))
                })?);
            }
        }
        Ok(ids)
    }

    /// Text of `ids`, optionally without special tokens.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| TokenizerError::Codec(format!("{}: {e}", self.path.display())))
    }

    /// The text that `continuation` adds to `prompt`: `decode(prompt + continuation)` without its first
    /// `decode(prompt).chars().count()` characters, as transformers' text-generation pipeline computed it up to
    /// v4. Decoding the continuation alone (what v5's pipeline does) loses what the decoder does at the start of
    /// a text — a metaspace decoder strips the first token's space: "France is" + "Paris" — and splits
    /// characters whose bytes straddle the boundary.
    pub fn decode_continuation(
        &self,
        prompt: &[u32],
        continuation: &[u32],
        skip_special_tokens: bool,
    ) -> Result<String> {
        let prompt_chars = self.decode(prompt, skip_special_tokens)?.chars().count();
        let all: Vec<u32> = prompt.iter().chain(continuation).copied().collect();
        Ok(self.decode(&all, skip_special_tokens)?.chars().skip(prompt_chars).collect())
    }

    /// The end-of-sequence token and its id, as transformers' `tokenizer.eos_token`: the `eos_token` of the
    /// `tokenizer_config.json` beside the `tokenizer.json` (a string or an `{"content": ...}` object), else `</s>`
    /// if the vocabulary has it (hashi's and Llama 2's layout), else `None`.
    ///
    /// Errors: [`TokenizerError::Load`] naming `tokenizer_config.json` if it is not JSON or names a token the
    /// vocabulary lacks.
    pub fn eos_token(&self) -> Result<Option<(String, u32)>> {
        let config = self.path.with_file_name("tokenizer_config.json");
        let named = match std::fs::read_to_string(&config) {
            Ok(text) => {
                let load_err = |message: String| TokenizerError::Load { path: config.clone(), message };
                let json: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| load_err(e.to_string()))?;
                let eos = &json["eos_token"];
                eos.as_str().or_else(|| eos["content"].as_str()).map(str::to_string)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(TokenizerError::io(&config, e)),
        };
        match named {
            Some(piece) => match self.inner.token_to_id(&piece) {
                Some(id) => Ok(Some((piece, id))),
                None => Err(TokenizerError::Load {
                    path: config,
                    message: format!(
                        "eos_token {piece:?} is not in the vocabulary of {}",
                        self.path.display()
                    ),
                }),
            },
            None => Ok(self.inner.token_to_id("</s>").map(|id| ("</s>".to_string(), id))),
        }
    }

    /// Id of the model's `unk_token`, if it has one (byte-level vocabularies usually do not).
    pub fn unk_token_id(&self) -> Option<u32> {
        self.unk
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A `tokenizer.json` with GPT-2's byte alphabet plus `Ġt`, `Ġth`, `ãģ` (spelled `pieces`), or a metaspace
    /// one with `<0xHH>` pieces, `▁`, `t`, `h`, `▁t`, `▁th`.
    fn write(dir: &Path, byte_level: bool) -> Tokenizer {
        let (mut vocab, merges, pre, normalizer): (Vec<String>, Vec<[&str; 2]>, _, _) = if byte_level {
            let mut v: Vec<String> = (0..=255u8).map(|b| canonical::byte_level_char(b).to_string()).collect();
            v.extend(["Ġt", "Ġth", "ãģ"].map(String::from));
            let pre = serde_json::json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                                          "use_regex": true});
            (v, vec![["Ġ", "t"], ["Ġt", "h"], ["ã", "ģ"]], pre, serde_json::Value::Null)
        } else {
            let mut v: Vec<String> = (0..=255u8).map(|b| format!("<0x{b:02X}>")).collect();
            v.extend(["▁", "t", "h", "▁t", "▁th"].map(String::from));
            let norm = serde_json::json!({"type": "Replace", "pattern": {"String": " "}, "content": "▁"});
            (v, vec![["▁", "t"], ["▁t", "h"]], serde_json::Value::Null, norm)
        };
        vocab.insert(0, "<unk>".into());
        let vocab: serde_json::Map<String, serde_json::Value> =
            vocab.into_iter().enumerate().map(|(i, p)| (p, i.into())).collect();
        let json = serde_json::json!({"version": "1.0", "added_tokens": [], "normalizer": normalizer,
            "pre_tokenizer": pre, "post_processor": null, "decoder": null,
            "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": !byte_level, "vocab": vocab,
                      "merges": merges}});
        let path = dir.join(if byte_level { "bl.json" } else { "ms.json" });
        std::fs::write(&path, json.to_string()).expect("write");
        Tokenizer::from_file(&path).expect("load")
    }

    #[test]
    fn pieces_are_cut_in_the_old_tokenizers_spelling() {
        let dir = tempfile::tempdir().expect("tmp");
        let id = |t: &Tokenizer, p: &str| t.inner.token_to_id(p).expect("piece");
        let bl = write(dir.path(), true);
        assert_eq!(bl.encode_piece(b"th", true).expect("cut"), [id(&bl, "Ġth")]);
        assert_eq!(bl.encode_piece(b"th", false).expect("cut"), [id(&bl, "t"), id(&bl, "h")]);
        // The first two bytes of の (E3 81 AE): one byte-level piece.
        assert_eq!(bl.encode_piece(&[0xE3, 0x81], false).expect("cut"), [id(&bl, "ãģ")]);
        let ms = write(dir.path(), false);
        assert_eq!(ms.encode_piece(b"th", true).expect("cut"), [id(&ms, "▁th")]);
        assert_eq!(ms.encode_piece(b"th", false).expect("cut"), [id(&ms, "t"), id(&ms, "h")]);
        assert_eq!(
            ms.encode_piece(&[0xE3, 0x81], false).expect("cut"),
            [id(&ms, "<0xE3>"), id(&ms, "<0x81>")]
        );
    }
}
