//! GGUF tokenizer metadata to HF `tokenizer.json`, `tokenizer_config.json` and `special_tokens_map.json`.
//!
//! Follows transformers' GGUF tokenizer conversion (`integrations/ggml.py`: `GGUFGPTConverter`,
//! `GGUFLlamaConverter`, `GGUFTokenizerSkeleton`), which the parity tests check ids against:
//! - `tokenizer.ggml.model = "gpt2"`: byte-level BPE with the file's merges, no byte fallback; the split regex
//!   chosen by `tokenizer.ggml.pre` the way llama.cpp's `llama-vocab.cpp` chooses it, then GPT-2's `ByteLevel`
//!   pre-tokenizer and decoder; control tokens (`token_type` 3) are special added tokens, user-defined ones
//!   (type 4) plain added tokens; tokens not spelled in GPT-2's byte alphabet are respelled from their bytes.
//! - `tokenizer.ggml.model = "llama"`: SentencePiece-style BPE with byte fallback and a `Metaspace`
//!   pre-tokenizer (non-legacy: `▁` prepended to the first word only); merges from the file, or derived from the
//!   scores as transformers derives them; control tokens special.
//!
//! Other tokenizer models (`t5`, `bert`, `rwkv`...) and unknown `pre` names are refused naming the value.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::{Value, json};

use crate::error::{ImportError, Result};
use crate::gguf::Gguf;

/// llama.cpp's token types (`llama_token_type`).
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// GPT-2's split regex (what `ByteLevel` with `use_regex` applies).
const GPT2_SPLIT: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The regexes llama.cpp splits with before byte-level BPE, by `tokenizer.ggml.pre` (`llama-vocab.cpp`,
/// `llm_tokenizer_bpe`). An empty list: GPT-2's split alone.
fn pre_splits(pre: &str) -> Option<Vec<&'static str>> {
    Some(match pre {
        "default" | "gpt2" | "gpt-2" | "olmo" | "jais" | "poro-chat" | "viking" | "trillion" => vec![],
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0" | "lfm2"
        | "dbrx" | "smaug-bpe" => vec![LLAMA3_SPLIT],
        "qwen2" | "deepseek-r1-qwen" | "megrez" => vec![QWEN2_SPLIT],
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva" => {
            vec![r"\p{N}", GPT2_SPLIT]
        }
        _ => return None,
    })
}

/// The tokenizer files of an imported model.
#[derive(Debug, Clone)]
pub struct TokenizerFiles {
    /// `tokenizer.ggml.model` (`gpt2` or `llama`).
    pub model: String,
    /// Vocabulary size (pieces in the file).
    pub vocab_size: usize,
    /// `tokenizer.json`.
    pub tokenizer: Value,
    /// `tokenizer_config.json`.
    pub config: Value,
    /// `special_tokens_map.json`.
    pub special_tokens_map: Value,
}

/// What the metadata says about the vocabulary.
struct Vocab {
    tokens: Vec<String>,
    types: Vec<i64>,
    scores: Option<Vec<f32>>,
    merges: Option<Vec<(String, String)>>,
}

/// Builds the tokenizer files from the metadata; `model_max_length` goes into `tokenizer_config.json`.
pub fn build(gguf: &Gguf, model_max_length: u64) -> Result<TokenizerFiles> {
    let path = gguf.path();
    let model = gguf.str("tokenizer.ggml.model")?.to_string();
    let tokens = gguf
        .opt_strings("tokenizer.ggml.tokens")?
        .ok_or_else(|| meta_err(path, "tokenizer.ggml.tokens", "missing"))?;
    let types = gguf
        .opt_array("tokenizer.ggml.token_type", "an integer", |v| {
            use candle_core::quantized::gguf_file::Value as V;
            match *v {
                V::I32(x) => Some(i64::from(x)),
                V::U32(x) => Some(i64::from(x)),
                V::I8(x) => Some(i64::from(x)),
                V::U8(x) => Some(i64::from(x)),
                _ => None,
            }
        })?
        .unwrap_or_else(|| vec![1; tokens.len()]);
    let scores = gguf.opt_array("tokenizer.ggml.scores", "a float", |v| match v {
        candle_core::quantized::gguf_file::Value::F32(x) => Some(*x),
        _ => None,
    })?;
    let merges = gguf
        .opt_strings("tokenizer.ggml.merges")?
        .map(|ms| {
            ms.iter()
                .enumerate()
                .map(|(i, m)| {
                    m.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())).ok_or_else(|| {
                        meta_err(path, "tokenizer.ggml.merges", &format!("merge {i} ({m:?}) is not \"a b\""))
                    })
                })
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?;
    for (key, len) in [
        ("tokenizer.ggml.token_type", types.len()),
        ("tokenizer.ggml.scores", scores.as_ref().map_or(tokens.len(), Vec::len)),
    ] {
        if len != tokens.len() {
            return Err(meta_err(path, key, &format!("{len} entries for {} tokens", tokens.len())));
        }
    }
    let id = |key: &str| -> Result<Option<usize>> {
        match gguf.opt_uint(key)? {
            None => Ok(None),
            Some(i) if (i as usize) < tokens.len() => Ok(Some(i as usize)),
            Some(i) => {
                Err(meta_err(path, key, &format!("id {i} is not in the vocabulary ({})", tokens.len())))
            }
        }
    };
    let specials = Specials {
        bos: id("tokenizer.ggml.bos_token_id")?,
        eos: id("tokenizer.ggml.eos_token_id")?,
        unk: id("tokenizer.ggml.unknown_token_id")?,
        pad: id("tokenizer.ggml.padding_token_id")?,
    };
    let vocab = Vocab { tokens, types, scores, merges };
    let (add_bos, add_eos, tokenizer) = match model.as_str() {
        "gpt2" => {
            let pre = gguf.opt_str("tokenizer.ggml.pre")?.unwrap_or("default");
            let splits = pre_splits(pre).ok_or_else(|| ImportError::Unsupported {
                path: path.into(),
                message: format!("tokenizer.ggml.pre {pre:?} names a pre-tokenizer hashi does not know"),
            })?;
            let add_prefix_space = gguf.opt_bool("tokenizer.ggml.add_space_prefix")?.unwrap_or(false);
            let add_bos = gguf.opt_bool("tokenizer.ggml.add_bos_token")?.unwrap_or(false);
            let add_eos = gguf.opt_bool("tokenizer.ggml.add_eos_token")?.unwrap_or(false);
            let tok = byte_level(&vocab, &splits, add_prefix_space, add_bos, add_eos, &specials, path)?;
            (add_bos, add_eos, tok)
        }
        "llama" => {
            let add_prefix_space = gguf.opt_bool("tokenizer.ggml.add_space_prefix")?.unwrap_or(true);
            let add_bos = gguf.opt_bool("tokenizer.ggml.add_bos_token")?.unwrap_or(true);
            let add_eos = gguf.opt_bool("tokenizer.ggml.add_eos_token")?.unwrap_or(false);
            let tok = sentencepiece(&vocab, add_prefix_space, add_bos, add_eos, &specials, path)?;
            (add_bos, add_eos, tok)
        }
        other => {
            return Err(ImportError::Unsupported {
                path: path.into(),
                message: format!(
                    "tokenizer.ggml.model {other:?} is not supported (supported: \"gpt2\", \"llama\")"
                ),
            });
        }
    };
    let text = serde_json::to_string(&tokenizer)
        .map_err(|e| ImportError::Tokenizer { path: path.into(), message: e.to_string() })?;
    <tokenizers::Tokenizer as std::str::FromStr>::from_str(&text)
        .map_err(|e| ImportError::Tokenizer { path: path.into(), message: e.to_string() })?;
    let piece = |i: Option<usize>| i.map(|i| Value::from(vocab.tokens[i].clone())).unwrap_or(Value::Null);
    let mut config = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": piece(specials.bos),
        "eos_token": piece(specials.eos),
        "unk_token": piece(specials.unk),
        "pad_token": piece(specials.pad),
        "add_bos_token": add_bos,
        "add_eos_token": add_eos,
        "clean_up_tokenization_spaces": false,
        "model_max_length": model_max_length,
    });
    if let Some(t) = gguf.opt_str("tokenizer.chat_template")? {
        config["chat_template"] = t.into();
    }
    let mut map = serde_json::Map::new();
    for (k, i) in [("bos_token", specials.bos), ("eos_token", specials.eos), ("unk_token", specials.unk)] {
        if i.is_some() {
            map.insert(k.into(), piece(i));
        }
    }
    if specials.pad.is_some() {
        map.insert("pad_token".into(), piece(specials.pad));
    }
    Ok(TokenizerFiles {
        model,
        vocab_size: vocab.tokens.len(),
        tokenizer,
        config,
        special_tokens_map: Value::Object(map),
    })
}

struct Specials {
    bos: Option<usize>,
    eos: Option<usize>,
    unk: Option<usize>,
    pad: Option<usize>,
}

fn meta_err(path: &Path, key: &str, message: &str) -> ImportError {
    ImportError::Metadata { path: path.into(), key: key.into(), message: message.into() }
}

/// The added tokens, by id: control tokens (type 3) and the bos/eos/unk/pad tokens as special tokens,
/// user-defined ones (type 4) as plain added tokens (transformers' `add_gguf_special_tokens`); `keep` filters out
/// tokens that are not spelled in the model's alphabet.
fn added_tokens(v: &Vocab, specials: &Specials, keep: impl Fn(&str) -> bool) -> Vec<Value> {
    let named: HashSet<usize> =
        [specials.bos, specials.eos, specials.unk, specials.pad].into_iter().flatten().collect();
    v.tokens
        .iter()
        .zip(&v.types)
        .enumerate()
        .filter(|(_, (t, _))| keep(t))
        .filter_map(|(id, (t, &kind))| {
            let special = kind == TOKEN_TYPE_CONTROL || named.contains(&id);
            (special || kind == TOKEN_TYPE_USER_DEFINED).then(|| {
                json!({"id": id, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                       "normalized": false, "special": special})
            })
        })
        .collect()
}

/// `TemplateProcessing` adding bos/eos (transformers' `update_post_processor`), none when neither is added.
fn post_processor(tokens: &[String], bos: Option<usize>, eos: Option<usize>) -> Value {
    if bos.is_none() && eos.is_none() {
        return Value::Null;
    }
    let special = |i: usize, type_id: u32| json!({"SpecialToken": {"id": tokens[i], "type_id": type_id}});
    let seq = |s: &str, type_id: u32| json!({"Sequence": {"id": s, "type_id": type_id}});
    let mut single = vec![];
    let mut pair = vec![];
    single.extend(bos.map(|i| special(i, 0)));
    single.push(seq("A", 0));
    single.extend(eos.map(|i| special(i, 0)));
    pair.extend(single.iter().cloned());
    pair.extend(bos.map(|i| special(i, 1)));
    pair.push(seq("B", 1));
    pair.extend(eos.map(|i| special(i, 1)));
    let mut map = serde_json::Map::new();
    for i in [bos, eos].into_iter().flatten() {
        map.insert(tokens[i].clone(), json!({"id": tokens[i], "ids": [i], "tokens": [tokens[i]]}));
    }
    json!({"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": map})
}

/// GPT-2's byte-to-character map (`bytes_to_unicode`), as the `tokenizers` library's `ByteLevel` uses it.
fn byte_chars() -> Vec<char> {
    let printable = |b: u32| matches!(b, 33..=126 | 161..=172 | 174..=255);
    let mut next = 256;
    (0..256u32)
        .map(|b| {
            let c = if printable(b) {
                b
            } else {
                next += 1;
                next - 1
            };
            char::from_u32(c).unwrap_or('\u{fffd}')
        })
        .collect()
}

fn byte_level(
    v: &Vocab,
    splits: &[&str],
    add_prefix_space: bool,
    add_bos: bool,
    add_eos: bool,
    specials: &Specials,
    path: &Path,
) -> Result<Value> {
    let chars = byte_chars();
    let alphabet: HashSet<char> = chars.iter().copied().collect();
    let in_alphabet = |t: &str| t.chars().all(|c| alphabet.contains(&c));
    // A token llama.cpp wrote raw (its bytes are not valid byte-level spelling) is keyed by its bytes' spelling,
    // as the merges name it.
    let spelled: Vec<String> = v
        .tokens
        .iter()
        .map(|t| if in_alphabet(t) { t.clone() } else { t.bytes().map(|b| chars[b as usize]).collect() })
        .collect();
    let vocab: serde_json::Map<String, Value> =
        spelled.iter().enumerate().map(|(i, t)| (t.clone(), Value::from(i))).collect();
    let merges = v.merges.as_ref().ok_or_else(|| {
        meta_err(path, "tokenizer.ggml.merges", "missing (a gpt2 tokenizer needs its merges)")
    })?;
    let added = added_tokens(v, specials, |t| in_alphabet(t));
    let byte_level = |use_regex: bool| {
        json!({"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": true,
               "use_regex": use_regex})
    };
    let pre_tokenizer = match splits {
        [] => byte_level(true),
        [first, rest @ ..] => {
            let mut seq: Vec<Value> = vec![split(first)];
            // llama.cpp's regexes apply in turn; GPT-2's as the last one is what `ByteLevel` does itself.
            let last_is_gpt2 = rest.last() == Some(&GPT2_SPLIT);
            let middle = if last_is_gpt2 { &rest[..rest.len() - 1] } else { rest };
            seq.extend(middle.iter().copied().map(split));
            seq.push(byte_level(last_is_gpt2));
            json!({"type": "Sequence", "pretokenizers": seq})
        }
    };
    let bos = specials.bos.filter(|_| add_bos);
    let eos = specials.eos.filter(|_| add_eos);
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post_processor(&v.tokens, bos, eos),
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
            "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab,
            "merges": merges.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>(),
        }
    }))
}

fn split(regex: &str) -> Value {
    json!({"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": false})
}

fn sentencepiece(
    v: &Vocab,
    add_prefix_space: bool,
    add_bos: bool,
    add_eos: bool,
    specials: &Specials,
    path: &Path,
) -> Result<Value> {
    let vocab: serde_json::Map<String, Value> =
        v.tokens.iter().enumerate().map(|(i, t)| (t.clone(), Value::from(i))).collect();
    let merges = match &v.merges {
        Some(m) => m.clone(),
        None => {
            let scores = v.scores.as_ref().ok_or_else(|| {
                meta_err(
                    path,
                    "tokenizer.ggml.scores",
                    "missing (needed to derive merges when the file has none)",
                )
            })?;
            merges_from_scores(&v.tokens, scores)
        }
    };
    let added = added_tokens(v, specials, |_| true);
    let mut decoders = vec![
        json!({"type": "Replace", "pattern": {"String": "▁"}, "content": " "}),
        json!({"type": "ByteFallback"}),
        json!({"type": "Fuse"}),
    ];
    if add_prefix_space {
        decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
    }
    let bos = specials.bos.filter(|_| add_bos);
    let eos = specials.eos.filter(|_| add_eos);
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁",
                          "prepend_scheme": if add_prefix_space { "first" } else { "never" }, "split": false},
        "post_processor": post_processor(&v.tokens, bos, eos),
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": specials.unk.map(|i| v.tokens[i].clone()),
            "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": true,
            "byte_fallback": true, "ignore_merges": false,
            "vocab": vocab,
            "merges": merges.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>(),
        }
    }))
}

/// Merges of a SentencePiece BPE vocabulary recovered from its scores, as transformers'
/// `tokenization_utils_base.generate_merges` does for GGUF files: every split of a piece into two pieces of the
/// vocabulary, the splits of one piece ordered by the halves' ids, then all merges ranked by the merged piece's
/// score, the left half's length and the right half's length, highest first (a stable sort).
fn merges_from_scores(tokens: &[String], scores: &[f32]) -> Vec<(String, String)> {
    // Python's `{t: i}` and `dict(zip(tokens, scores))`: a repeated piece keeps its first position in the
    // iteration order and its last id and score.
    let mut order: Vec<&str> = Vec::new();
    let mut id: HashMap<&str, usize> = HashMap::new();
    let mut score: HashMap<&str, f32> = HashMap::new();
    for (i, (t, &s)) in tokens.iter().zip(scores).enumerate() {
        if score.insert(t, s).is_none() {
            order.push(t);
        }
        id.insert(t, i);
    }
    let mut merges: Vec<(&str, &str, f32)> = Vec::new();
    for piece in order {
        let mut local: Vec<(&str, &str, f32)> = piece
            .char_indices()
            .skip(1)
            .filter_map(|(i, _)| {
                let (l, r) = piece.split_at(i);
                (id.contains_key(l) && id.contains_key(r)).then(|| (l, r, score[piece]))
            })
            .collect();
        local.sort_by_key(|&(l, r, _)| (id[l], id[r]));
        merges.extend(local);
    }
    let chars = |s: &str| s.chars().count();
    merges.sort_by(|a, b| {
        b.2.total_cmp(&a.2).then(chars(b.0).cmp(&chars(a.0))).then(chars(b.1).cmp(&chars(a.1)))
    });
    merges.into_iter().map(|(l, r, _)| (l.to_string(), r.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_map_is_gpt2s() {
        let chars = byte_chars();
        assert_eq!(chars[b' ' as usize], 'Ġ');
        assert_eq!(chars[b'\n' as usize], 'Ċ');
        assert_eq!(chars[b'a' as usize], 'a');
        let alphabet: HashSet<char> =
            tokenizers::pre_tokenizers::byte_level::ByteLevel::alphabet().into_iter().collect();
        assert_eq!(chars.iter().copied().collect::<HashSet<_>>(), alphabet);
    }

    #[test]
    fn merges_follow_scores() {
        let tokens: Vec<String> = ["a", "b", "c", "ab", "abc", "bc"].map(String::from).to_vec();
        let scores = [0.0, 0.0, 0.0, -1.0, -3.0, -2.0];
        let m = merges_from_scores(&tokens, &scores);
        // "abc" (-3): both splits rank the same; the longer left half first.
        let want: Vec<(String, String)> = [("a", "b"), ("b", "c"), ("ab", "c"), ("a", "bc")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .to_vec();
        assert_eq!(m, want);
    }
}
