//! What a run file returns (paths relative to it), and how a variant's training settings merge with the run's.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use hashi_core::artifacts::Vocabulary;
use serde::Deserialize;
use serde_json::{Map, Value};

/// A run: one trained tokenizer, and per vocabulary its variants name one transfer and one set of shards, shared by
/// every variant's training.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunDecl {
    /// Name for logs and the report.
    pub name: String,
    /// Run directory.
    pub out: String,
    /// Seeds: every variant is trained once per seed (data order, and the init of from-scratch variants).
    #[serde(default = "one_seed")]
    pub seeds: Vec<u64>,
    /// The English source model (HF directory with its tokenizer.json).
    pub base: String,
    /// The bilingual tokenizer to train.
    pub tokenizer: TokenizerDecl,
    /// The vocabulary transfer of the base model.
    pub transfer: TransferDecl,
    /// Corpus declarations for `hashi data prepare`.
    pub corpora: String,
    /// Fields of every variant's training experiment (schedule, optimizer, checkpoint, plan_overrides, ...).
    pub train: Map<String, Value>,
    /// Evaluation of the base, the starting points and every data-switch checkpoint.
    pub eval: EvalDecl,
    /// The variants trained from the shared stages.
    pub variants: Vec<VariantDecl>,
}

fn one_seed() -> Vec<u64> {
    vec![1]
}

/// The tokenizer stage.
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerDecl {
    /// Training text as LANG=PATH or LANG:FIELD=PATH.
    pub inputs: Vec<String>,
    /// Exact vocabulary size.
    pub vocab_size: usize,
    /// Language mix: `equal`, `all`, or weights like `ja=0.6,en=0.4`.
    #[serde(default)]
    pub sampling: Option<String>,
    /// Vocabulary expansion instead of replacement for the variants that do not name their
    /// [`VariantDecl::vocabulary`]: the base model's tokenizer with the trained tokenizer's missing pieces appended
    /// (`hashi tokenizer expand`), so the transfer keeps every row of the base model.
    #[serde(default)]
    pub expand: bool,
}

impl RunDecl {
    /// The vocabulary of `v`: its own, else expansion when `tokenizer.expand` is set, else replacement.
    #[must_use]
    pub fn vocabulary(&self, v: &VariantDecl) -> Vocabulary {
        v.vocabulary.unwrap_or(if self.tokenizer.expand { Vocabulary::Expand } else { Vocabulary::Replace })
    }
}

/// The transfer stage.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferDecl {
    /// Embedding-init strategy (Lua).
    pub init: String,
    /// Seed of recipe noise.
    #[serde(default)]
    pub seed: u64,
    /// Source special tokens mapped onto new tokens (`"OLD=NEW"`) or dropped (`"OLD="`), as `--map-special`.
    #[serde(default)]
    pub map_special: Vec<String>,
}

/// The evaluation stages.
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvalDecl {
    /// Tasks in upstream form (`jnli-1.3-0.3`, `llmjp-1.3.0:niilc`, ...).
    #[serde(default)]
    pub tasks: Vec<String>,
    /// Whole evaluation protocols (`"jp-stable"`, `"llmjp"`, `"swallow"`), their tasks added after `tasks`.
    #[serde(default)]
    pub protocols: Vec<String>,
    /// llm-jp-eval tasks: encode prompts with the tokenizer's special tokens (default true, as transformers'
    /// pipeline).
    #[serde(default = "yes")]
    pub llmjp_add_special_tokens: bool,
    /// Documents generated together (llm-jp-eval) and questions scored together (choice tasks); the scores do
    /// not depend on it.
    #[serde(default = "sixteen")]
    pub batch_size: usize,
    /// Few-shot examples per prompt.
    #[serde(default = "three")]
    pub shots: usize,
    /// Few-shot examples of single tasks instead of `shots` (over a protocol's own, e.g. Swallow's MGSM at 4).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub task_shots: std::collections::BTreeMap<String, usize>,
    /// Documents per task (after the upstream shuffle), if limited.
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
    /// New tokens at most for MGSM (default 256).
    #[serde(default)]
    pub max_gen_toks: Option<usize>,
    /// Cut prompts that do not fit even with zero shots from the left instead of failing (`hashi eval
    /// --truncate-overlong`).
    #[serde(default)]
    pub truncate_overlong: bool,
}

impl EvalDecl {
    /// `tasks`, then the tasks of each of `protocols` not already named.
    ///
    /// # Errors
    /// An unknown protocol, naming the known ones.
    pub fn all_tasks(&self) -> Result<Vec<String>, hashi_eval::EvalError> {
        hashi_eval::with_protocols(&self.tasks, &self.protocols)
    }

    /// The shots of single tasks: the protocols', then `task_shots` over them.
    ///
    /// # Errors
    /// An unknown protocol or task, or an llm-jp-eval task in `task_shots`.
    pub fn task_shots(&self) -> Result<std::collections::BTreeMap<String, usize>, hashi_eval::EvalError> {
        hashi_eval::protocol_shots(&self.all_tasks()?, &self.protocols, &self.task_shots)
    }
}

fn sixteen() -> usize {
    16
}

fn yes() -> bool {
    true
}

fn three() -> usize {
    3
}
fn bpb_bytes() -> usize {
    50_000
}

/// One variant: a curriculum, a starting point and training settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantDecl {
    /// Its name (`--only`, the report).
    pub name: String,
    /// What the report calls it.
    #[serde(default)]
    pub label: Option<String>,
    /// Its curriculum (Lua plan).
    pub curriculum: String,
    /// Train from random weights (the starting model's config, the variant's seed) instead of the starting model.
    #[serde(default)]
    pub from_scratch: bool,
    /// The vocabulary it trains with: replacement, expansion or the base model's own (default: see
    /// [`RunDecl::vocabulary`]).
    #[serde(default)]
    pub vocabulary: Option<Vocabulary>,
    /// Fields replacing the run's `train` fields for this variant.
    #[serde(default)]
    pub train: Map<String, Value>,
}

/// `LANG[:FIELD]=PATH` with PATH made relative to `base`.
pub fn input_spec(base: &Path, spec: &str) -> Result<(String, PathBuf)> {
    let Some((lang, path)) = spec.split_once('=') else { bail!("{spec:?}: expected LANG=PATH") };
    Ok((lang.to_string(), crate::paths::resolve(base, path)))
}

/// `over` merged into `base` field by field: a table in both is merged key by key (at any depth), anything else
/// in `over` replaces `base`'s. A variant's `train = { optimizer = { weight_decay = 0 } }` keeps the run's other
/// optimizer settings.
pub fn merge(base: &mut Map<String, Value>, over: &Map<String, Value>) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(Value::Object(b)), Value::Object(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_settings_merge_field_by_field() {
        let mut run = serde_json::json!({"optimizer": {"clip": 1.0, "weight_decay": 0.1, "freeze": ["a"]},
                                          "accumulation": 2});
        let variant = serde_json::json!({"optimizer": {"weight_decay": 0.0, "freeze": []}, "backend": "x"});
        merge(run.as_object_mut().expect("object"), variant.as_object().expect("object"));
        assert_eq!(
            run,
            serde_json::json!({"optimizer": {"clip": 1.0, "weight_decay": 0.0, "freeze": []}, "accumulation": 2,
                               "backend": "x"})
        );
    }
}
