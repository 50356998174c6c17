//! What a run file returns (paths relative to it), and the training experiment written for each variant.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::Deserialize;
use serde_json::{Map, Value};

/// A run: one tokenizer, one transfer and one set of shards shared by every variant's training.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunDecl {
    pub name: String,
    /// Run directory.
    pub out: String,
    /// Seeds: every variant is trained once per seed (data order, and the init of from-scratch variants).
    #[serde(default = "one_seed")]
    pub seeds: Vec<u64>,
    /// The English source model (HF directory with its tokenizer.json).
    pub base: String,
    pub tokenizer: TokenizerDecl,
    pub transfer: TransferDecl,
    /// Corpus declarations for `hashi data prepare`.
    pub corpora: String,
    /// Fields of every variant's training experiment (schedule, optimizer, checkpoint, plan_overrides, ...).
    pub train: Map<String, Value>,
    pub eval: EvalDecl,
    pub variants: Vec<VariantDecl>,
}

fn one_seed() -> Vec<u64> {
    vec![1]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerDecl {
    /// Training text as LANG=PATH or LANG:FIELD=PATH.
    pub inputs: Vec<String>,
    pub vocab_size: usize,
    #[serde(default)]
    pub sampling: Option<String>,
    /// Vocabulary expansion instead of replacement: the base model's tokenizer with the trained tokenizer's
    /// missing pieces appended (`hashi tokenizer expand`), so the transfer keeps every row of the base model.
    #[serde(default)]
    pub expand: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferDecl {
    /// Embedding-init strategy (Lua).
    pub init: String,
    #[serde(default)]
    pub seed: u64,
    /// Source special tokens mapped onto new tokens (`"OLD=NEW"`) or dropped (`"OLD="`), as `--map-special`.
    #[serde(default)]
    pub map_special: Vec<String>,
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvalDecl {
    pub tasks: Vec<String>,
    #[serde(default = "three")]
    pub shots: usize,
    #[serde(default)]
    pub limit: Option<usize>,
    /// Task data folder (`TASK/{train,validation,test}.jsonl`).
    pub data: String,
    /// Held-out text for bits per byte (LANG=PATH), also the tokenizer analysis text.
    #[serde(default)]
    pub bpb: Vec<String>,
    /// UTF-8 bytes of held-out text per language for bits per byte (whole documents, the same for every model).
    #[serde(default = "bpb_bytes")]
    pub bpb_bytes: usize,
    #[serde(default)]
    pub max_gen_toks: Option<usize>,
    /// Cut prompts that do not fit even with zero shots from the left instead of failing (`hashi eval
    /// --truncate-overlong`).
    #[serde(default)]
    pub truncate_overlong: bool,
}

fn three() -> usize {
    3
}
fn bpb_bytes() -> usize {
    50_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantDecl {
    pub name: String,
    /// What the report calls it.
    #[serde(default)]
    pub label: Option<String>,
    pub curriculum: String,
    /// Train from random weights (the transferred model's config, the variant's seed) instead of the transfer.
    #[serde(default)]
    pub from_scratch: bool,
    /// Fields replacing the run's `train` fields for this variant.
    #[serde(default)]
    pub train: Map<String, Value>,
}

/// `LANG[:FIELD]=PATH` with PATH made relative to `base`.
pub fn input_spec(base: &Path, spec: &str) -> Result<(String, PathBuf)> {
    let Some((lang, path)) = spec.split_once('=') else { bail!("{spec:?}: expected LANG=PATH") };
    Ok((lang.to_string(), rel(base, path)))
}

/// `p` relative to `base`, absolute, with `.` and `..` resolved lexically (symlinks are kept).
pub fn rel(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    let joined = if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
    normalize(&std::path::absolute(&joined).unwrap_or(joined))
}

pub fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// A JSON value as a Lua literal (the generated experiment files).
pub fn lua_literal(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => lua_string(s),
        Value::Array(a) => format!("{{ {} }}", a.iter().map(lua_literal).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => format!(
            "{{ {} }}",
            o.iter()
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\{}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hashi_script::{Script, ScriptOptions};

    #[test]
    fn paths_are_resolved_lexically() {
        assert_eq!(rel(Path::new("/a/b/c"), "../../d/./e"), PathBuf::from("/a/d/e"));
        assert_eq!(rel(Path::new("/a"), "/x/../y"), PathBuf::from("/y"));
    }

    #[test]
    fn lua_literals_read_back_as_the_same_json() -> anyhow::Result<()> {
        let v = serde_json::json!({"name": "a \"q\" \\ \n 橋", "n": 3, "x": 8e-5, "list": [1, 2.5, true],
                                   "nested": {"k": "v"}});
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("e.lua");
        std::fs::write(&p, format!("return {}\n", lua_literal(&v)))?;
        let back: Value = Script::load(&p, &ScriptOptions::default())?.exports()?;
        assert_eq!(back, v);
        Ok(())
    }
}
