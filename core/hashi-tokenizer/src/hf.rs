//! Writing Llama-style tokenizers as Hugging Face files: `tokenizer.json` (BPE with byte fallback, `▁` metaspace
//! through a `Prepend` + `Replace` normaliser, `<s>` added by the post-processor, the Llama decoder chain),
//! `tokenizer_config.json` and `special_tokens_map.json`, which `transformers.AutoTokenizer` loads as a
//! `PreTrainedTokenizerFast`.

use std::path::Path;

use serde_json::{Value, json};

use crate::error::{Result, TokenizerError};

/// Everything that differs between two Llama-style BPE tokenizers.
#[derive(Debug, Clone)]
pub struct LlamaStyle {
    /// Pieces in id order.
    pub pieces: Vec<String>,
    /// Merge rules in rank order.
    pub merges: Vec<(String, String)>,
    /// Ids of `<unk>`, `<s>`, `</s>`.
    pub unk_bos_eos: [u32; 3],
    /// Whether `<unk>`, `<s>`, `</s>` are registered as special added tokens: then they are matched in input
    /// text (transformers' Llama behaviour) and skipped when decoding. SentencePiece never matches them in text,
    /// so an imported model leaves them out to keep its ids.
    pub register_specials: bool,
    /// User-defined symbols: always one token wherever they occur in the text.
    pub user_defined: Vec<u32>,
    /// Prepend `▁` to the text (SentencePiece's `add_dummy_prefix`).
    pub add_dummy_prefix: bool,
    /// Apply NFKC first (SentencePiece's `nmt_nfkc` normaliser, approximated).
    pub nfkc: bool,
}

const REGEX_META: &str = "\\.+*?()|[]{}^$-#&~ ";

/// The pre-tokenizer that cuts `symbols` (longest first) out of normalised text as pieces of their own: a `Split`
/// on the alternation of the symbols as Oniguruma literals, `Isolated`.
pub(crate) fn symbols_split(symbols: &[&str]) -> Value {
    let pattern: Vec<String> = symbols
        .iter()
        .map(|s| {
            s.chars().fold(String::new(), |mut out, c| {
                if REGEX_META.contains(c) {
                    out.push('\\');
                }
                out.push(c);
                out
            })
        })
        .collect();
    json!({"type": "Split", "pattern": {"Regex": pattern.join("|")}, "behavior": "Isolated", "invert": false})
}

/// The symbols of a pattern written by [`symbols_split`] (`None` if it is not such an alternation of literals).
pub(crate) fn split_symbols(pattern: &str) -> Option<Vec<String>> {
    let mut symbols = vec![String::new()];
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => symbols.last_mut()?.push(chars.next().filter(|c| REGEX_META.contains(*c))?),
            '|' => symbols.push(String::new()),
            c if REGEX_META.contains(c) => return None,
            c => symbols.last_mut()?.push(c),
        }
    }
    symbols.iter().all(|s| !s.is_empty()).then_some(symbols)
}

impl LlamaStyle {
    /// The `tokenizer.json` document.
    pub fn to_json(&self) -> Value {
        let vocab: serde_json::Map<String, Value> =
            self.pieces.iter().enumerate().map(|(i, p)| (p.clone(), Value::from(i))).collect();
        let merges: Vec<Value> = self.merges.iter().map(|(a, b)| json!([a, b])).collect();
        let [unk, bos, eos] = self.unk_bos_eos;
        let added_token = |id: u32| {
            json!({"id": id, "content": self.pieces[id as usize], "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        };
        let mut added: Vec<Value> = vec![];
        if self.register_specials {
            added.extend([unk, bos, eos].map(added_token));
        }
        // User-defined symbols are cut out of the normalised text, as SentencePiece cuts them after adding its
        // dummy prefix (`<mask> cat` is `▁` `<mask>` `▁cat`, nothing is prepended after a symbol): an isolating
        // split on them, each found whole in the vocabulary (`ignore_merges`). As added tokens they would be cut
        // out before normalisation, and every piece of text between them would get its own `▁`.
        let mut symbols: Vec<&str> =
            self.user_defined.iter().map(|&id| self.pieces[id as usize].as_str()).collect();
        symbols.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let pre_tokenizer = if symbols.is_empty() { Value::Null } else { symbols_split(&symbols) };
        let mut normalizers = vec![];
        if self.nfkc {
            normalizers.push(json!({"type": "NFKC"}));
        }
        if self.add_dummy_prefix {
            normalizers.push(json!({"type": "Prepend", "prepend": "▁"}));
        }
        normalizers.push(json!({"type": "Replace", "pattern": {"String": " "}, "content": "▁"}));
        let mut decoders = vec![
            json!({"type": "Replace", "pattern": {"String": "▁"}, "content": " "}),
            json!({"type": "ByteFallback"}),
            json!({"type": "Fuse"}),
        ];
        if self.add_dummy_prefix {
            decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
        }
        let bos_piece = &self.pieces[bos as usize];
        json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": {"type": "Sequence", "normalizers": normalizers},
            "pre_tokenizer": pre_tokenizer,
            "post_processor": {
                "type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": bos_piece, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [
                    {"SpecialToken": {"id": bos_piece, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                    {"SpecialToken": {"id": bos_piece, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}
                ],
                "special_tokens": {bos_piece.clone(): {"id": bos_piece, "ids": [bos], "tokens": [bos_piece]}}
            },
            "decoder": {"type": "Sequence", "decoders": decoders},
            "model": {
                "type": "BPE",
                "dropout": null,
                "unk_token": self.pieces[unk as usize],
                "continuing_subword_prefix": null,
                "end_of_word_suffix": null,
                "fuse_unk": true,
                "byte_fallback": true,
                "ignore_merges": !symbols.is_empty(),
                "vocab": vocab,
                "merges": merges
            }
        })
    }

    /// Writes `tokenizer.json`, `tokenizer_config.json` and `special_tokens_map.json` into `dir`, after checking
    /// that the `tokenizers` library accepts the JSON.
    pub fn save(&self, dir: &Path, model_max_length: usize) -> Result<()> {
        let text =
            serde_json::to_string(&self.to_json()).map_err(|e| TokenizerError::Codec(e.to_string()))?;
        <tokenizers::Tokenizer as std::str::FromStr>::from_str(&text)
            .map_err(|e| TokenizerError::Codec(format!("generated tokenizer.json is invalid: {e}")))?;
        std::fs::create_dir_all(dir).map_err(|e| TokenizerError::io(dir, e))?;
        let [unk, bos, eos] = self.unk_bos_eos.map(|id| self.pieces[id as usize].clone());
        let config = json!({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": bos, "eos_token": eos, "unk_token": unk,
            "add_bos_token": true, "add_eos_token": false,
            "clean_up_tokenization_spaces": false,
            "model_max_length": model_max_length,
        });
        let map = json!({"bos_token": bos, "eos_token": eos, "unk_token": unk});
        write_atomic(&dir.join("tokenizer.json"), text.as_bytes())?;
        write_atomic(&dir.join("tokenizer_config.json"), pretty(&config)?.as_bytes())?;
        write_atomic(&dir.join("special_tokens_map.json"), pretty(&map)?.as_bytes())
    }
}

fn pretty(v: &Value) -> Result<String> {
    serde_json::to_string_pretty(v).map(|s| s + "\n").map_err(|e| TokenizerError::Codec(e.to_string()))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    hashi_core::write_atomic(path, bytes).map_err(|e| TokenizerError::io(path, e))
}
