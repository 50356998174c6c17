//! Vocabulary replacement: swap a model's vocabulary for a new tokenizer's.
//!
//! New tokens are matched to old ones by canonical bytes ([`matching`]), so SentencePiece (`▁the`, `<0xE3>`) and
//! byte-level (`Ġthe`, `ã`) vocabularies meet in every direction; matched rows of `embed_tokens` and `lm_head`
//! (tied or untied) are copied bit for bit, the source's special tokens are carried or mapped ([`specials`]), and
//! the other rows come from an [`EmbeddingInit`] strategy's recipes. Every other tensor is copied through byte for
//! byte, streamed, so the memory used is that of the two vocabulary matrices whatever the model's size.
//!
//! A transfer is planned first ([`plan`]: config, shard headers, tokenizers, special tokens, matches; every
//! refusal happens there, before any matrix is read), then executed ([`TransferPlan::execute`]). The output is
//! written into a temporary directory next to `--out` and renamed into place at the end: a failure leaves nothing
//! behind.

mod error;
pub mod matching;
mod matrices;
mod plan;
mod recipe;
mod report;
pub mod safetensors_io;
mod similarity;
pub mod space;
pub mod specials;
mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hashi_core::Reporter;

pub use error::{Result, TransferError};
pub use matching::{Match, MatchClass};
pub use plan::{SourceCheck, TransferPlan, check_source, plan};
pub use recipe::{EmbeddingInit, InitContext, NewToken, Recipe};
pub use report::{CategoryCount, Norms, REPORT_FILE, TransferReport};
pub use similarity::SimilarityIndex;
pub use space::{EmbeddingSpace, Target};
pub use specials::{SpecialMapping, SpecialOutcome};

const EMBED: &str = "model.embed_tokens.weight";
const LM_HEAD: &str = "lm_head.weight";

/// Options of [`transfer`].
#[derive(Debug, Clone, Default)]
pub struct TransferOptions {
    /// The old tokenizer, if not `SRC/tokenizer.json`.
    pub old_tokenizer: Option<PathBuf>,
    /// Seed of recipe noise.
    pub seed: u64,
    /// Source special tokens mapped onto new tokens or dropped (the others are carried).
    pub special_tokens: Vec<SpecialMapping>,
}

/// Replaces the vocabulary of the model in `src` by the tokenizer in `new_tokenizer`, writing `dst`:
/// [`plan`] then [`TransferPlan::execute`].
pub fn transfer(
    src: &Path,
    new_tokenizer: &Path,
    init: &dyn EmbeddingInit,
    dst: &Path,
    opts: &TransferOptions,
    reporter: &dyn Reporter,
) -> Result<TransferReport> {
    plan(src, new_tokenizer, opts)?.execute(init, dst, opts.seed, reporter)
}

impl TransferPlan {
    /// Reads the vocabulary matrices, builds the new ones (recipes from `init`, noise seeded by `seed`) and writes
    /// the new model into `dst`, which must not exist.
    pub fn execute(
        &self,
        init: &dyn EmbeddingInit,
        dst: &Path,
        seed: u64,
        reporter: &dyn Reporter,
    ) -> Result<TransferReport> {
        if dst.exists() {
            return Err(TransferError::Checkpoint {
                path: dst.into(),
                message: "output already exists".into(),
            });
        }
        let cfg = &self.source.config;
        let h = cfg.hidden_size;
        let find = |name: &str| self.source.shards.iter().find(|s| s.tensors.contains_key(name));
        let missing = |name: &str, why: &str| TransferError::Checkpoint {
            path: self.src.clone(),
            message: format!("{name} is missing{why}"),
        };
        let embed_shard = find(EMBED).ok_or_else(|| missing(EMBED, ""))?;
        let lm_head_shard = if cfg.tie_word_embeddings {
            None
        } else {
            Some(
                find(LM_HEAD)
                    .ok_or_else(|| missing(LM_HEAD, " (config.json says the embeddings are untied)"))?,
            )
        };
        reporter.start("reading embeddings", None, "");
        let old_embed = matrices::decode(
            &safetensors_io::read_tensor(embed_shard, EMBED)?,
            &embed_shard.tensors[EMBED].dtype,
            &embed_shard.path,
        )?;
        reporter.finish();
        let (_, old_norm, old_std) = matrices::row_stats(&old_embed, h);
        let space = std::sync::Arc::new(EmbeddingSpace::new(old_embed, h));
        let matched = self.matched();
        let new_rows = self.new_vocab_size();
        let ctx = InitContext {
            old_vocab_size: cfg.vocab_size,
            new_vocab_size: new_rows,
            hidden_size: h,
            matched,
            old_row_norm: old_norm,
            old_std,
        };
        let recipes = self.recipes(init, &ctx, &space, reporter)?;
        let sources: Vec<Option<u32>> = self.matches.iter().map(|m| m.old).collect();

        let tmp = dst.with_file_name(format!(
            ".{}.partial-{}",
            dst.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
            std::process::id()
        ));
        let result = (|| {
            std::fs::create_dir_all(&tmp).map_err(|e| TransferError::io(&tmp, e))?;
            let mut norms = Vec::new();
            let mut replaced: BTreeMap<&str, (String, Vec<u8>)> = BTreeMap::new();
            let inputs = std::iter::once((EMBED, embed_shard)).chain(lm_head_shard.map(|s| (LM_HEAD, s)));
            for (k, (name, shard)) in inputs.enumerate() {
                let lm_head;
                let old = if name == EMBED {
                    space.data()
                } else {
                    let m = &shard.tensors[LM_HEAD];
                    lm_head = matrices::decode(
                        &safetensors_io::read_tensor(shard, LM_HEAD)?,
                        &m.dtype,
                        &shard.path,
                    )?;
                    &lm_head
                };
                reporter.start(&format!("building {name}"), None, "");
                let dtype_name = shard.tensors[name].dtype.clone();
                let dtype = matrices::Dtype::parse(&dtype_name).unwrap_or(matrices::Dtype::F32);
                let (_, old_norm, _) = matrices::row_stats(old, h);
                let seed = seed.wrapping_add(k as u64);
                let (bytes, row_norms) = matrices::build_matrix(old, h, &sources, &recipes, seed, dtype);
                norms.push(Norms {
                    tensor: name.into(),
                    old: old_norm,
                    matched: matrices::mean_of(&row_norms, (0..new_rows).filter(|&i| sources[i].is_some())),
                    initialised: matrices::mean_of(
                        &row_norms,
                        (0..new_rows).filter(|&i| recipes[i].is_some()),
                    ),
                });
                replaced.insert(name, (dtype_name, bytes));
                reporter.finish();
            }
            write::shards(self, &replaced, &tmp, reporter)?;
            write::configs(self, &tmp)?;
            write::tokenizer_files(self, &tmp)?;
            let (by_class, by_category) = report::counts(&self.matches, &self.new_bytes);
            let report = TransferReport {
                strategy: init.name(),
                source: self.src.clone(),
                out: dst.into(),
                old_vocab_size: cfg.vocab_size,
                new_vocab_size: new_rows,
                matched,
                by_class,
                by_category,
                special_tokens: self.specials.outcomes.clone(),
                norms,
                matches: sources.iter().enumerate().filter_map(|(i, m)| m.map(|o| (i as u32, o))).collect(),
            };
            write::json_file(&tmp.join(REPORT_FILE), &report)?;
            std::fs::rename(&tmp, dst).map_err(|e| TransferError::io(dst, e))?;
            Ok(report)
        })();
        if result.is_err() && tmp.exists() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result
    }
}
