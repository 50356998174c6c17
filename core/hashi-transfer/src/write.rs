//! Writing the output directory: the shards (vocabulary matrices replaced, every other tensor copied through),
//! `config.json` and `generation_config.json` with the special-token ids remapped, and the new tokenizer's files
//! with the carried special tokens appended as special added tokens (`tokenizer.json`, `tokenizer_config.json`,
//! `special_tokens_map.json` agree, and `transformers` loads them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hashi_core::Reporter;
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{Result, TransferError};
use crate::plan::TransferPlan;
use crate::safetensors_io::{self, Source};
use crate::specials::{CHAT_TEMPLATE_FILE, ChatTemplate, read_json, tokenizer_dir};

/// Writes the shards of `plan`'s source into `dir`, with the tensors of `replaced` (name → dtype, bytes)
/// swapped in. A tied model's stored `lm_head.weight` (some checkpoints keep one beside the embedding) is dropped:
/// it still has the old vocabulary's rows, and the output's head is the new embedding.
pub(crate) fn shards(
    plan: &TransferPlan,
    replaced: &BTreeMap<&str, (String, Vec<u8>)>,
    dir: &Path,
    reporter: &dyn Reporter,
) -> Result<()> {
    let rows = plan.new_vocab_size();
    let tied = plan.source.config.tie_word_embeddings;
    let mut total = 0u64;
    reporter.start("writing shards", Some(plan.source.shards.len() as u64), "files");
    for shard in &plan.source.shards {
        let file = shard.path.file_name().map(PathBuf::from).unwrap_or_default();
        let tensors: Vec<(String, Source<'_>)> = shard
            .tensors
            .iter()
            .filter(|(name, _)| !(tied && name.as_str() == crate::LM_HEAD))
            .map(|(name, e)| {
                let src = match replaced.get(name.as_str()) {
                    Some((dtype, bytes)) => {
                        Source::Memory { dtype: dtype.clone(), shape: vec![rows, e.shape[1]], bytes }
                    }
                    None => Source::Copy { header: shard, name },
                };
                (name.clone(), src)
            })
            .collect();
        total += safetensors_io::write(&dir.join(&file), &tensors, shard.metadata.as_ref())?;
        reporter.advance(1);
    }
    reporter.finish();
    if let Some(mut index) = plan.source.index.clone() {
        index["metadata"]["total_size"] = total.into();
        if tied && let Some(map) = index.get_mut("weight_map").and_then(Value::as_object_mut) {
            map.remove(crate::LM_HEAD);
        }
        json_file(&dir.join(hashi_model::INDEX_FILE), &index)?;
    }
    Ok(())
}

/// An id field remapped through the special-token plan (a list stays a list, without repeats).
fn remap_ids(plan: &TransferPlan, v: &Value) -> Value {
    let one = |v: &Value| -> Option<u32> {
        let old = u32::try_from(v.as_u64()?).ok()?;
        plan.specials.remap.get(&old).copied().flatten()
    };
    match v {
        Value::Array(a) => {
            let mut ids: Vec<u32> = vec![];
            for id in a.iter().filter_map(one) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            json!(ids)
        }
        Value::Null => Value::Null,
        v => json!(one(v)),
    }
}

/// `config.json` and `generation_config.json` with the new vocabulary size and remapped special-token ids.
pub(crate) fn configs(plan: &TransferPlan, dir: &Path) -> Result<()> {
    let mut config = plan.source.config.clone();
    config.vocab_size = plan.new_vocab_size();
    let remap = |id: Option<u32>| id.and_then(|id| plan.specials.remap.get(&id).copied().flatten());
    config.bos_token_id = remap(config.bos_token_id);
    config.pad_token_id = remap(config.pad_token_id);
    config.eos_token_id = config.eos_token_id.as_ref().map(|v| remap_ids(plan, v)).filter(|v| !v.is_null());
    if let Some(v) = config.extra.get("unk_token_id").cloned() {
        config.extra.insert("unk_token_id".into(), remap_ids(plan, &v));
    }
    json_file(&dir.join("config.json"), &config)?;
    let gen_path = plan.src.join("generation_config.json");
    if let Some(mut g) = read_json(&gen_path)? {
        for field in ["bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id"] {
            if let Some(v) = g.get(field).cloned() {
                g[field] = remap_ids(plan, &v);
            }
        }
        json_file(&dir.join("generation_config.json"), &g)?;
    }
    Ok(())
}

/// The new tokenizer's files, with the appended special tokens and the source's chat template (when every token
/// it uses was carried under its own content).
pub(crate) fn tokenizer_files(plan: &TransferPlan, dir: &Path) -> Result<()> {
    let from = tokenizer_dir(&plan.new_tokenizer);
    let tok_path = if plan.new_tokenizer.is_dir() {
        plan.new_tokenizer.join("tokenizer.json")
    } else {
        plan.new_tokenizer.clone()
    };
    let mut tok = read_json(&tok_path)?.ok_or_else(|| TransferError::Checkpoint {
        path: tok_path.clone(),
        message: "file not found".into(),
    })?;
    let first = plan.new_bytes.len();
    let appended: Vec<(u32, &String)> =
        plan.specials.appended.iter().enumerate().map(|(k, c)| ((first + k) as u32, c)).collect();
    let entry = |id: u32, content: &str| {
        json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
               "normalized": false, "special": true})
    };
    if !appended.is_empty() {
        let list = tok
            .as_object_mut()
            .map(|o| o.entry("added_tokens").or_insert_with(|| json!([])))
            .and_then(Value::as_array_mut)
            .ok_or_else(|| TransferError::Checkpoint {
                path: tok_path.clone(),
                message: "added_tokens is not a list".into(),
            })?;
        list.extend(appended.iter().map(|(id, c)| entry(*id, c)));
    }
    json_file(&dir.join("tokenizer.json"), &tok)?;

    let mut config =
        plan.new_config.clone().unwrap_or_else(|| json!({"tokenizer_class": "PreTrainedTokenizerFast"}));
    let mut map = read_json(&from.join("special_tokens_map.json"))?.unwrap_or_else(|| json!({}));
    let config_path = from.join("tokenizer_config.json");
    let not_object =
        |path: &Path| TransferError::Checkpoint { path: path.into(), message: "not a JSON object".into() };
    if !appended.is_empty() {
        let c = config.as_object_mut().ok_or_else(|| not_object(&config_path))?;
        if let Some(decoder) = c.get_mut("added_tokens_decoder").and_then(Value::as_object_mut) {
            for (id, content) in &appended {
                let mut e = entry(*id, content);
                if let Some(o) = e.as_object_mut() {
                    o.remove("id");
                }
                decoder.insert(id.to_string(), e);
            }
        }
        let mut extra: Vec<Value> =
            c.get("additional_special_tokens").and_then(Value::as_array).cloned().unwrap_or_default();
        for (_, content) in &appended {
            if !extra.iter().any(|v| v.as_str() == Some(content.as_str())) {
                extra.push(json!(content));
            }
        }
        c.insert("additional_special_tokens".into(), json!(extra));
        let m = map.as_object_mut().ok_or_else(|| not_object(&from.join("special_tokens_map.json")))?;
        m.insert("additional_special_tokens".into(), json!(extra));
    }
    match &plan.specials.chat_template {
        Some(ChatTemplate::Inline(template)) => {
            config
                .as_object_mut()
                .ok_or_else(|| not_object(&config_path))?
                .insert("chat_template".into(), template.clone());
        }
        Some(ChatTemplate::File(text)) => {
            let path = dir.join(CHAT_TEMPLATE_FILE);
            std::fs::write(&path, text).map_err(|e| TransferError::io(&path, e))?;
        }
        None => {}
    }
    json_file(&dir.join("tokenizer_config.json"), &config)?;
    json_file(&dir.join("special_tokens_map.json"), &map)
}

/// Writes `v` as pretty JSON.
pub(crate) fn json_file<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    let text =
        serde_json::to_string_pretty(v).map_err(|e| TransferError::io(path, std::io::Error::other(e)))?;
    std::fs::write(path, text + "\n").map_err(|e| TransferError::io(path, e))
}
