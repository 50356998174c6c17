//! `hashi transfer`: vocabulary replacement with a Lua embedding-init strategy, and its report (match classes by
//! script, what happened to each special token, row norms, step-0 bits-per-byte on held-out text). Everything the
//! transfer can refuse (tokenizers, special tokens, config, strategies) is checked before the source model is
//! evaluated or its matrices are read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use hashi_core::Reporter;
use hashi_model::Llama;
use hashi_script::{Script, ScriptOptions};
use hashi_tokenizer::input::{InputSpec, read_inputs};
use hashi_tokenizer::{PieceBytes, Tokenizer};
use hashi_transfer::{
    EmbeddingInit, InitContext, NewToken, Recipe, SimilarityIndex, SpecialMapping, TransferError,
    TransferOptions,
};
use serde::Serialize;
use serde_json::json;

#[derive(Args)]
pub struct TransferArgs {
    /// The source model (HF directory with its tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// The new tokenizer (tokenizer.json or its directory).
    #[arg(long)]
    tokenizer: PathBuf,
    /// Embedding-init strategy (Lua). Repeat with --dry-run to compare strategies.
    #[arg(long = "init", required = true)]
    inits: Vec<PathBuf>,
    /// Output directory (must not exist).
    #[arg(long)]
    out: PathBuf,
    /// Report only: nothing is kept in --out.
    #[arg(long)]
    dry_run: bool,
    /// The old tokenizer, if not MODEL/tokenizer.json.
    #[arg(long)]
    old_tokenizer: Option<PathBuf>,
    /// A source special token mapped onto a token of the new tokenizer (OLD=NEW), or dropped (OLD=); the
    /// others are carried into the new vocabulary (repeat).
    #[arg(long = "map-special", value_name = "OLD=NEW")]
    map_special: Vec<SpecialMapping>,
    /// Held-out text for step-0 bits-per-byte, as LANG=PATH or LANG:FIELD=PATH (repeat).
    #[arg(long = "eval-text")]
    eval_texts: Vec<InputSpec>,
    /// UTF-8 bytes per language for bits-per-byte (whole documents, the same text for the source and every
    /// strategy).
    #[arg(long, default_value_t = 50_000)]
    eval_bytes: usize,
    /// Folder `require` searches besides the script's own.
    #[arg(long, default_value = "scripts/lib")]
    script_lib: PathBuf,
    /// Seed of recipe noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// JSON instead of tables.
    #[arg(long)]
    json: bool,
}

/// A Lua strategy: `return { name = "...", recipe = function(token, ctx) ... end }`.
pub(crate) struct LuaInit {
    script: Script,
    name: String,
}

impl EmbeddingInit for LuaInit {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn recipe(&self, token: &NewToken, ctx: &InitContext) -> hashi_transfer::Result<Recipe> {
        self.script.call("recipe", &[token, ctx]).map_err(|e| TransferError::Strategy(e.to_string()))
    }
}

/// Loads a strategy script: `hashi.similar` searches `index`.
pub(crate) fn load_strategy(
    path: &Path,
    opts: &ScriptOptions,
    index: Arc<SimilarityIndex>,
) -> Result<LuaInit> {
    #[derive(Serialize)]
    struct Scored {
        id: u32,
        score: f64,
    }
    let script = Script::load_with(path, opts, move |lua, hashi| {
        let idx = index.clone();
        let similar = lua.create_function(move |lua, (piece, k): (String, usize)| {
            use hashi_script::mlua::LuaSerdeExt;
            let found: Vec<Scored> =
                idx.similar(&piece, k).into_iter().map(|(id, score)| Scored { id, score }).collect();
            lua.to_value(&found)
        })?;
        hashi.set("similar", similar)
    })?;
    if !script.has_function("recipe") {
        bail!("{}: a strategy must return a table with a `recipe(token, ctx)` function", path.display());
    }
    let name: Option<String> = script.field("name")?;
    let name = name
        .unwrap_or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
    Ok(LuaInit { script, name })
}

/// Bits per byte of `model` on every language's text.
fn bits_per_byte(
    model: &Llama,
    tok: &Tokenizer,
    texts: &[hashi_tokenizer::input::LangTexts],
    max_bytes: usize,
) -> Result<Vec<hashi_eval::Bpb>> {
    texts
        .iter()
        .map(|t| {
            hashi_eval::bits_per_byte(model, tok, &t.lang, &t.docs, max_bytes).map_err(anyhow::Error::msg)
        })
        .collect()
}

/// The old pieces a similarity search may return: text pieces in the common spelling (`▁` for spaces), neither
/// special, added, byte nor partial characters.
pub(crate) fn similarity_index(old: &[PieceBytes]) -> SimilarityIndex {
    let pieces: Vec<Option<String>> = old
        .iter()
        .map(|b| match b {
            PieceBytes::Text(bytes) if std::str::from_utf8(bytes).is_ok() => {
                Some(hashi_transfer::matching::spelled(b))
            }
            _ => None,
        })
        .collect();
    SimilarityIndex::new(&pieces)
}

pub fn run(a: TransferArgs, progress: &dyn Reporter) -> Result<()> {
    if a.inits.len() > 1 && !a.dry_run {
        bail!("several --init strategies can only be compared with --dry-run");
    }
    if !a.dry_run && a.out.exists() {
        bail!("{}: output already exists", a.out.display());
    }
    // Everything that can be refused, before the source model is evaluated or a matrix read.
    let topts = TransferOptions {
        old_tokenizer: a.old_tokenizer.clone(),
        seed: a.seed,
        special_tokens: a.map_special.clone(),
    };
    let plan = hashi_transfer::plan(&a.model, &a.tokenizer, &topts)?;
    let index = Arc::new(similarity_index(plan.old_piece_bytes()));
    let opts = ScriptOptions::default().lib_dirs(vec![a.script_lib.clone()]);
    let strategies: Vec<LuaInit> =
        a.inits.iter().map(|p| load_strategy(p, &opts, index.clone())).collect::<Result<_>>()?;
    let texts = if a.eval_texts.is_empty() { vec![] } else { read_inputs(&a.eval_texts)? };
    let source_bpb = if texts.is_empty() {
        None
    } else {
        Some(bits_per_byte(&Llama::load(&a.model)?, plan.old_tokenizer(), &texts, a.eval_bytes)?)
    };
    let scratch = if a.dry_run {
        Some(tempfile::tempdir_in(a.out.parent().filter(|p| p.is_dir()).unwrap_or(Path::new(".")))?)
    } else {
        None
    };
    let mut results = Vec::new();
    for (i, (init_path, strategy)) in a.inits.iter().zip(&strategies).enumerate() {
        let dst = match &scratch {
            Some(dir) => dir.path().join(format!("strategy-{i}")),
            None => a.out.clone(),
        };
        let report = plan
            .execute(strategy, &dst, a.seed, progress)
            .with_context(|| format!("transfer with {}", init_path.display()))?;
        let bpb = if texts.is_empty() {
            None
        } else {
            let new_tok = Tokenizer::from_file(&dst)?;
            Some(bits_per_byte(&Llama::load(&dst)?, &new_tok, &texts, a.eval_bytes)?)
        };
        results.push(json!({"script": init_path, "report": report, "bits_per_byte": bpb}));
    }
    if a.json {
        let out = json!({
            "source_bits_per_byte": source_bpb,
            "strategies": results,
            "peak_rss_mib": crate::bench::peak_rss_mib(),
        });
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
        return Ok(());
    }
    let first = &results[0]["report"];
    outln!(
        "vocabulary {} -> {}: {} matched, {} initialised{}",
        first["old_vocab_size"],
        first["new_vocab_size"],
        first["matched"],
        first["new_vocab_size"].as_u64().unwrap_or(0) - first["matched"].as_u64().unwrap_or(0),
        if a.dry_run { " (dry run: nothing written)" } else { "" }
    )?;
    let classes = ["exact_string", "same_bytes", "partial_utf8", "special", "unmatched"];
    outln!("\n{:<10} {}", "category", classes.iter().map(|c| format!("{c:>13}")).collect::<String>())?;
    for c in first["by_category"].as_array().into_iter().flatten() {
        let row: String =
            classes.iter().map(|k| format!("{:>13}", c["by_class"][k].as_u64().unwrap_or(0))).collect();
        outln!("{:<10} {row}", c["category"].as_str().unwrap_or(""))?;
    }
    let total: String =
        classes.iter().map(|k| format!("{:>13}", first["by_class"][k].as_u64().unwrap_or(0))).collect();
    outln!("{:<10} {total}", "total")?;
    outln!(
        "\n{:<24} {:>7} {:<22} {:<10} {:>7} {:>9}",
        "special token",
        "old id",
        "roles",
        "action",
        "new id",
        "rows from"
    )?;
    let id = |v: &serde_json::Value| v.as_u64().map_or("-".to_string(), |n| n.to_string());
    for t in first["special_tokens"].as_array().into_iter().flatten() {
        let roles: Vec<&str> =
            t["roles"].as_array().into_iter().flatten().filter_map(|r| r.as_str()).collect();
        outln!(
            "{:<24} {:>7} {:<22} {:<10} {:>7} {:>9}",
            t["content"].as_str().unwrap_or(""),
            id(&t["old_id"]),
            roles.join(","),
            t["action"].as_str().unwrap_or(""),
            id(&t["new_id"]),
            id(&t["rows_from"])
        )?;
    }
    outln!("\n{:<16} {:<28} {:>8} {:>8} {:>11}", "strategy", "tensor", "old", "matched", "initialised")?;
    for r in &results {
        for n in r["report"]["norms"].as_array().into_iter().flatten() {
            outln!(
                "{:<16} {:<28} {:>8.4} {:>8.4} {:>11.4}",
                r["report"]["strategy"].as_str().unwrap_or(""),
                n["tensor"].as_str().unwrap_or(""),
                n["old"].as_f64().unwrap_or(0.0),
                n["matched"].as_f64().unwrap_or(0.0),
                n["initialised"].as_f64().unwrap_or(0.0)
            )?;
        }
    }
    if let Some(src) = &source_bpb {
        outln!("\nstep-0 bits per byte (lower is better)")?;
        let langs: Vec<&str> = src.iter().map(|b| b.lang.as_str()).collect();
        outln!("{:<16} {}", "model", langs.iter().map(|l| format!("{l:>8}")).collect::<String>())?;
        outln!(
            "{:<16} {}",
            "source",
            src.iter().map(|b| format!("{:>8.4}", b.bits_per_byte)).collect::<String>()
        )?;
        for r in &results {
            let row: String = r["bits_per_byte"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| format!("{:>8.4}", b["bits_per_byte"].as_f64().unwrap_or(f64::NAN)))
                .collect();
            outln!("{:<16} {row}", r["report"]["strategy"].as_str().unwrap_or(""))?;
        }
    }
    Ok(())
}
