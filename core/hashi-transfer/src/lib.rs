//! Vocabulary replacement: swap an English Llama's vocabulary for a new one.
//!
//! Tokens are matched by piece (metaspace pieces, byte tokens `<0xHH>` and special tokens compare as strings);
//! matched rows of `embed_tokens` and `lm_head` are copied bit for bit (ids re-ordered), the other rows come from
//! an [`EmbeddingInit`] strategy's recipes. Every other tensor is copied through byte for byte, streamed, so the
//! memory used is that of the two vocabulary matrices whatever the model's size. The output is written into a
//! temporary directory next to `--out` and renamed into place at the end: a failure leaves nothing behind.
//! Not handled: byte-level (GPT-2 `Ġ`) vocabularies, whose pieces would need another normalisation.

mod error;
mod recipe;
pub mod safetensors_io;
mod similarity;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hashi_core::Reporter;
use hashi_model::LlamaConfig;
use hashi_tokenizer::Tokenizer;
use hashi_tokenizer::script::Category;
use rustc_hash::FxHashMap;
use serde::Serialize;

pub use error::{Result, TransferError};
pub use recipe::{EmbeddingInit, InitContext, NewToken, Recipe};
pub use similarity::SimilarityIndex;

use safetensors_io::{Header, Source};

const EMBED: &str = "model.embed_tokens.weight";
const LM_HEAD: &str = "lm_head.weight";
const TOKENIZER_FILES: [&str; 3] = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];

/// Options of [`transfer`].
#[derive(Debug, Clone, Default)]
pub struct TransferOptions {
    /// The old tokenizer, if not `SRC/tokenizer.json`.
    pub old_tokenizer: Option<PathBuf>,
    /// Seed of recipe noise.
    pub seed: u64,
}

/// Matched and unmatched counts of one script category.
#[derive(Debug, Clone, Serialize)]
pub struct CategoryCount {
    /// Category name.
    pub category: &'static str,
    /// New tokens found in the old vocabulary.
    pub matched: usize,
    /// New tokens initialised by the strategy.
    pub unmatched: usize,
}

/// Mean row norms of one matrix.
#[derive(Debug, Clone, Serialize)]
pub struct Norms {
    /// Tensor name.
    pub tensor: String,
    /// Old rows.
    pub old: f64,
    /// Copied rows.
    pub matched: f64,
    /// Initialised rows.
    pub initialised: f64,
}

/// What a transfer did.
#[derive(Debug, Clone, Serialize)]
pub struct TransferReport {
    /// Strategy name.
    pub strategy: String,
    /// Source model.
    pub source: PathBuf,
    /// Output directory.
    pub out: PathBuf,
    /// Rows before.
    pub old_vocab_size: usize,
    /// Rows after.
    pub new_vocab_size: usize,
    /// New tokens found in the old vocabulary.
    pub matched: usize,
    /// Per category.
    pub by_category: Vec<CategoryCount>,
    /// Row norms per vocabulary matrix.
    pub norms: Vec<Norms>,
    /// (new id, old id) of every matched token.
    pub matches: Vec<(u32, u32)>,
}

/// Source checkpoint: config and shard headers.
struct SourceModel {
    config: LlamaConfig,
    shards: Vec<Header>,
    index: Option<serde_json::Value>,
}

fn open_source(dir: &Path) -> Result<SourceModel> {
    let ckpt = hashi_model::Checkpoint::open(dir)?; // validates config, shapes exist, refuses pickles
    let index_path = dir.join(hashi_model::INDEX_FILE);
    let (files, index) = if index_path.is_file() {
        let text = std::fs::read_to_string(&index_path).map_err(|e| TransferError::io(&index_path, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| TransferError::Checkpoint { path: index_path.clone(), message: e.to_string() })?;
        let idx: hashi_model::ShardIndex = serde_json::from_value(v.clone())
            .map_err(|e| TransferError::Checkpoint { path: index_path.clone(), message: e.to_string() })?;
        let mut files: Vec<String> = idx.weight_map.values().cloned().collect();
        files.sort();
        files.dedup();
        (files, Some(v))
    } else {
        (vec![hashi_model::SINGLE_FILE.to_string()], None)
    };
    let shards = files.iter().map(|f| Header::read(&dir.join(f))).collect::<Result<Vec<_>>>()?;
    Ok(SourceModel { config: ckpt.hf_config().clone(), shards, index })
}

fn decode(bytes: &[u8], dtype: &str, path: &Path) -> Result<(Vec<f32>, recipe::Dtype)> {
    let d = recipe::Dtype::parse(dtype).ok_or_else(|| TransferError::Checkpoint {
        path: path.into(),
        message: format!("vocabulary matrix dtype {dtype} is not supported (F32, F16, BF16)"),
    })?;
    Ok((d.decode(bytes), d))
}

fn piece_list(tok: &Tokenizer) -> Vec<String> {
    tok.pieces().into_iter().map(|p| p.map(|(s, _)| s).unwrap_or_default()).collect()
}

/// Replaces the vocabulary of the model in `src` by the tokenizer in `new_tokenizer`, writing `dst`.
pub fn transfer(
    src: &Path,
    new_tokenizer: &Path,
    init: &dyn EmbeddingInit,
    dst: &Path,
    opts: &TransferOptions,
    reporter: &dyn Reporter,
) -> Result<TransferReport> {
    if dst.exists() {
        return Err(TransferError::Checkpoint { path: dst.into(), message: "output already exists".into() });
    }
    let source = open_source(src)?;
    let old_tok_path = opts.old_tokenizer.clone().unwrap_or_else(|| src.join("tokenizer.json"));
    let old_tok = Tokenizer::from_file(&old_tok_path)?;
    let new_tok = Tokenizer::from_file(new_tokenizer)?;
    let (old_pieces, new_pieces) = (piece_list(&old_tok), piece_list(&new_tok));
    let cfg = &source.config;
    if old_pieces.len() != cfg.vocab_size {
        tracing::warn!(
            tokenizer = old_pieces.len(),
            model = cfg.vocab_size,
            "old tokenizer and model vocab sizes differ"
        );
    }
    let old_index: FxHashMap<&str, u32> =
        old_pieces.iter().enumerate().map(|(i, p)| (p.as_str(), i as u32)).collect();
    let new_index: FxHashMap<&str, u32> =
        new_pieces.iter().enumerate().map(|(i, p)| (p.as_str(), i as u32)).collect();
    let matches: Vec<Option<u32>> = new_pieces
        .iter()
        .map(|p| old_index.get(p.as_str()).copied().filter(|&id| (id as usize) < cfg.vocab_size))
        .collect();
    // The model's special tokens must exist in the new vocabulary (their ids are rewritten in config.json).
    let remap = |id: u32, what: &str| -> Result<u32> {
        let piece = old_pieces.get(id as usize).ok_or_else(|| {
            TransferError::Tokenizer(format!(
                "{what} {id} is outside the old tokenizer {}",
                old_tok_path.display()
            ))
        })?;
        new_index.get(piece.as_str()).copied().ok_or_else(|| {
            TransferError::Tokenizer(format!(
                "special tokens do not match: the model's {what} {piece:?} (id {id}) is not in the new tokenizer {}",
                new_tokenizer.display()
            ))
        })
    };
    let bos = cfg.bos_token_id.map(|id| remap(id, "bos_token_id")).transpose()?;
    let eos_ids: Vec<u32> = match &cfg.eos_token_id {
        Some(serde_json::Value::Number(n)) => n.as_u64().map(|n| vec![n as u32]).unwrap_or_default(),
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_u64().map(|n| n as u32)).collect(),
        _ => vec![],
    };
    let eos = eos_ids.iter().map(|&id| remap(id, "eos_token_id")).collect::<Result<Vec<_>>>()?;
    let pad = cfg.pad_token_id.map(|id| remap(id, "pad_token_id")).transpose()?;

    let find = |name: &str| source.shards.iter().find(|h| h.tensors.contains_key(name));
    let embed_shard = find(EMBED).ok_or_else(|| TransferError::Checkpoint {
        path: src.into(),
        message: format!("{EMBED} is missing"),
    })?;
    let h = cfg.hidden_size;
    let embed_dtype = embed_shard.tensors[EMBED].dtype.clone();
    reporter.start("reading embeddings", None, "");
    let (old_embed, _) =
        decode(&safetensors_io::read_tensor(embed_shard, EMBED)?, &embed_dtype, &embed_shard.path)?;
    reporter.finish();
    let (_, old_norm, old_std) = recipe::row_stats(&old_embed, h);
    let matched = matches.iter().filter(|m| m.is_some()).count();
    let ctx = InitContext {
        old_vocab_size: cfg.vocab_size,
        new_vocab_size: new_pieces.len(),
        hidden_size: h,
        matched,
        old_row_norm: old_norm,
        old_std,
    };
    let strategy = init.name();
    let unmatched: Vec<usize> = (0..new_pieces.len()).filter(|&i| matches[i].is_none()).collect();
    reporter.start("recipes", Some(unmatched.len() as u64), "tokens");
    let mut recipes: Vec<Option<Recipe>> = vec![None; new_pieces.len()];
    for &i in &unmatched {
        let piece = &new_pieces[i];
        let text = piece.replace('▁', " ");
        let (starts_word, body) = text.strip_prefix(' ').map_or((false, text.as_str()), |b| (true, b));
        let token = NewToken {
            id: i as u32,
            piece: piece.clone(),
            category: Category::of_piece(piece).name().into(),
            old_ids: old_tok
                .encode_piece(body.as_bytes(), starts_word)?
                .into_iter()
                .filter(|&id| (id as usize) < cfg.vocab_size)
                .collect(),
            text,
        };
        let r = init.recipe(&token, &ctx)?;
        r.validate(&token, cfg.vocab_size, &strategy)?;
        recipes[i] = Some(r);
        reporter.advance(1);
    }
    reporter.finish();

    let tmp = dst.with_file_name(format!(
        ".{}.partial-{}",
        dst.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    let result = (|| {
        std::fs::create_dir_all(&tmp).map_err(|e| TransferError::io(&tmp, e))?;
        let mut norms = Vec::new();
        let mut replaced: BTreeMap<&str, (String, Vec<u8>)> = BTreeMap::new();
        let mut matrices = vec![(EMBED, old_embed)];
        if !cfg.tie_word_embeddings {
            let shard = find(LM_HEAD).ok_or_else(|| TransferError::Checkpoint {
                path: src.into(),
                message: format!("{LM_HEAD} is missing (config.json says the embeddings are untied)"),
            })?;
            let dt = &shard.tensors[LM_HEAD].dtype;
            matrices
                .push((LM_HEAD, decode(&safetensors_io::read_tensor(shard, LM_HEAD)?, dt, &shard.path)?.0));
        }
        for (k, (name, old)) in matrices.into_iter().enumerate() {
            reporter.start(&format!("building {name}"), None, "");
            let dtype_name =
                find(name).map(|s| s.tensors[name].dtype.clone()).unwrap_or_else(|| "F32".into());
            let dtype = recipe::Dtype::parse(&dtype_name).unwrap_or(recipe::Dtype::F32);
            let (_, old_norm, _) = recipe::row_stats(&old, h);
            let seed = opts.seed.wrapping_add(k as u64);
            let (bytes, row_norms) = recipe::build_matrix(&old, h, &matches, &recipes, seed, dtype);
            drop(old);
            norms.push(Norms {
                tensor: name.into(),
                old: old_norm,
                matched: recipe::mean_of(&row_norms, (0..new_pieces.len()).filter(|&i| matches[i].is_some())),
                initialised: recipe::mean_of(&row_norms, unmatched.iter().copied()),
            });
            replaced.insert(name, (dtype_name, bytes));
            reporter.finish();
        }
        let mut total = 0u64;
        reporter.start("writing shards", Some(source.shards.len() as u64), "files");
        for shard in &source.shards {
            let file = shard.path.file_name().map(PathBuf::from).unwrap_or_default();
            let tensors: Vec<(String, Source<'_>)> = shard
                .tensors
                .iter()
                .map(|(name, e)| {
                    let src = match replaced.get(name.as_str()) {
                        Some((dtype, bytes)) => Source::Memory {
                            dtype: dtype.clone(),
                            shape: vec![new_pieces.len(), e.shape[1]],
                            bytes,
                        },
                        None => Source::Copy { header: shard, name },
                    };
                    (name.clone(), src)
                })
                .collect();
            total += safetensors_io::write(&tmp.join(&file), &tensors, shard.metadata.as_ref())?;
            reporter.advance(1);
        }
        reporter.finish();
        if let Some(mut index) = source.index.clone() {
            index["metadata"]["total_size"] = total.into();
            write_json(&tmp.join(hashi_model::INDEX_FILE), &index)?;
        }
        let mut config = cfg.clone();
        config.vocab_size = new_pieces.len();
        config.bos_token_id = bos;
        config.eos_token_id = match eos.as_slice() {
            [] => None,
            [one] => Some((*one).into()),
            many => Some(many.into()),
        };
        config.pad_token_id = pad;
        write_json(&tmp.join("config.json"), &config)?;
        let gen_path = src.join("generation_config.json");
        if gen_path.is_file() {
            let text = std::fs::read_to_string(&gen_path).map_err(|e| TransferError::io(&gen_path, e))?;
            let mut g: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| TransferError::Checkpoint { path: gen_path.clone(), message: e.to_string() })?;
            g["bos_token_id"] = serde_json::json!(bos);
            g["eos_token_id"] = config.eos_token_id.clone().unwrap_or(serde_json::Value::Null);
            g["pad_token_id"] = serde_json::json!(pad);
            write_json(&tmp.join("generation_config.json"), &g)?;
        }
        let tok_dir = if new_tokenizer.is_dir() {
            new_tokenizer.to_path_buf()
        } else {
            new_tokenizer.parent().unwrap_or(Path::new(".")).to_path_buf()
        };
        for f in TOKENIZER_FILES {
            let from = tok_dir.join(f);
            if from.is_file() {
                std::fs::copy(&from, tmp.join(f)).map_err(|e| TransferError::io(&from, e))?;
            }
        }
        let mut counts: BTreeMap<Category, (usize, usize)> = BTreeMap::new();
        for (i, p) in new_pieces.iter().enumerate() {
            let c = counts.entry(Category::of_piece(p)).or_default();
            if matches[i].is_some() { c.0 += 1 } else { c.1 += 1 }
        }
        let report = TransferReport {
            strategy: strategy.clone(),
            source: src.into(),
            out: dst.into(),
            old_vocab_size: cfg.vocab_size,
            new_vocab_size: new_pieces.len(),
            matched,
            by_category: counts
                .into_iter()
                .map(|(c, (m, u))| CategoryCount { category: c.name(), matched: m, unmatched: u })
                .collect(),
            norms,
            matches: matches.iter().enumerate().filter_map(|(i, m)| m.map(|o| (i as u32, o))).collect(),
        };
        write_json(&tmp.join("transfer_report.json"), &report)?;
        std::fs::rename(&tmp, dst).map_err(|e| TransferError::io(dst, e))?;
        Ok(report)
    })();
    if result.is_err() && tmp.exists() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    let text =
        serde_json::to_string_pretty(v).map_err(|e| TransferError::io(path, std::io::Error::other(e)))?;
    std::fs::write(path, text + "\n").map_err(|e| TransferError::io(path, e))
}
