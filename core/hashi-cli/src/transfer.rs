//! `hashi transfer`: vocabulary replacement with a Lua embedding-init strategy, and its report (match classes by
//! script, what happened to each special token, row norms, step-0 bits-per-byte on held-out text). Everything the
//! transfer can refuse (tokenizers, special tokens, config, strategies) is checked before the source model is
//! evaluated or its matrices are read.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result, bail};
use clap::Args;
use hashi_core::Reporter;
use hashi_model::Llama;
use hashi_script::mlua::{self, LuaSerdeExt};
use hashi_script::{Script, ScriptOptions};
use hashi_tokenizer::input::{InputSpec, read_inputs};
use hashi_tokenizer::{PieceBytes, Tokenizer};
use hashi_transfer::{
    EmbeddingInit, EmbeddingSpace, InitContext, NewToken, Recipe, SimilarityIndex, SpecialMapping, Target,
    TransferError, TransferOptions,
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
    /// The old embedding space while a transfer runs (`hashi.norm`, `hashi.nearest`, `hashi.omp` read it).
    space: SpaceSlot,
}

type SpaceSlot = Arc<RwLock<Option<Arc<EmbeddingSpace>>>>;

impl EmbeddingInit for LuaInit {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn recipe(
        &self,
        token: &NewToken,
        ctx: &InitContext,
        space: &Arc<EmbeddingSpace>,
    ) -> hashi_transfer::Result<Recipe> {
        let mut slot = self.space.write().unwrap_or_else(|e| e.into_inner());
        if !slot.as_ref().is_some_and(|s| Arc::ptr_eq(s, space)) {
            *slot = Some(space.clone());
        }
        drop(slot);
        self.script.call("recipe", &[token, ctx]).map_err(|e| TransferError::Strategy(e.to_string()))
    }
}

/// A vector of the old embedding space from Lua: an old id, a list of `{id, weight}` pairs, or a recipe's
/// `terms` (a table with `terms` and nothing that is not a row: `mean`/`noise` are refused).
fn lua_target(v: mlua::Value) -> mlua::Result<Target> {
    let bad = || {
        mlua::Error::runtime(
            "a target is an old id, a list of {id, weight} pairs, or a recipe { terms = ... } without mean or noise",
        )
    };
    let id = |n: f64| {
        if n >= 0.0 && n.fract() == 0.0 && n <= f64::from(u32::MAX) { Ok(n as u32) } else { Err(bad()) }
    };
    match v {
        mlua::Value::Integer(i) => id(i as f64).map(Target::Row),
        mlua::Value::Number(n) => id(n).map(Target::Row),
        mlua::Value::Table(t) => {
            let terms = match t.get::<mlua::Value>("terms")? {
                mlua::Value::Table(terms) => {
                    for key in ["mean", "noise"] {
                        if !matches!(t.get::<mlua::Value>(key)?, mlua::Value::Nil) {
                            return Err(bad());
                        }
                    }
                    terms
                }
                mlua::Value::Nil => t,
                _ => return Err(bad()),
            };
            let mut out = vec![];
            for pair in terms.sequence_values::<mlua::Table>() {
                let pair = pair.map_err(|_| bad())?;
                out.push((
                    id(pair.get::<f64>(1).map_err(|_| bad())?)?,
                    pair.get::<f64>(2).map_err(|_| bad())?,
                ));
            }
            Ok(Target::Combination(out))
        }
        _ => Err(bad()),
    }
}

/// Old ids from Lua: a list of integers.
fn lua_ids(v: Option<mlua::Table>) -> mlua::Result<Vec<u32>> {
    v.map(|t| t.sequence_values::<u32>().collect()).unwrap_or(Ok(vec![]))
}

/// Registers the embedding-space primitives on `hashi`; each reads `slot` and charges its multiply-adds to the
/// script's budget (one instruction per 64).
fn register_space(lua: &mlua::Lua, hashi: &mlua::Table, slot: &SpaceSlot) -> mlua::Result<()> {
    fn with_space<T>(
        lua: &mlua::Lua,
        slot: &SpaceSlot,
        passes: usize,
        f: impl FnOnce(&EmbeddingSpace) -> hashi_transfer::Result<T>,
    ) -> mlua::Result<T> {
        let guard = slot.read().unwrap_or_else(|e| e.into_inner());
        let space = guard.as_ref().ok_or_else(|| {
            mlua::Error::runtime("the old embedding space can only be read inside recipe(token, ctx)")
        })?;
        hashi_script::charge(lua, (passes * space.rows() * space.hidden_size() / 64) as u64)?;
        f(space).map_err(mlua::Error::external)
    }
    let s = slot.clone();
    let norm = lua.create_function(move |lua, target: mlua::Value| {
        let target = lua_target(target)?;
        with_space(lua, &s, 0, |sp| sp.norm(&target))
    })?;
    hashi.set("norm", norm)?;
    let s = slot.clone();
    let nearest =
        lua.create_function(move |lua, (target, k, exclude): (mlua::Value, usize, Option<mlua::Table>)| {
            let (target, exclude) = (lua_target(target)?, lua_ids(exclude)?);
            let found = with_space(lua, &s, 1, |sp| sp.nearest(&target, k, &exclude))?;
            lua.to_value(&found.into_iter().map(|(id, score)| Scored { id, score }).collect::<Vec<_>>())
        })?;
    hashi.set("nearest", nearest)?;
    let s = slot.clone();
    let omp = lua.create_function(
        move |lua, (target, candidates, k): (mlua::Value, Option<mlua::Table>, usize)| {
            let (target, candidates) = (lua_target(target)?, lua_ids(candidates)?);
            let guard = s.read().unwrap_or_else(|e| e.into_inner());
            let rows = guard.as_ref().map_or(1, |sp| sp.rows());
            drop(guard);
            let share = if candidates.is_empty() { 1.0 } else { candidates.len() as f64 / rows as f64 };
            let passes = ((k as f64 * share).ceil() as usize).max(1);
            let terms = with_space(lua, &s, passes, |sp| sp.omp(&target, &candidates, k))?;
            lua.to_value(&terms)
        },
    )?;
    hashi.set("omp", omp)
}

#[derive(Serialize)]
struct Scored {
    id: u32,
    score: f64,
}

/// Loads a strategy script: `hashi.similar` searches `index`; `hashi.norm`, `hashi.nearest` and `hashi.omp`
/// read the old embedding space during a transfer.
pub(crate) fn load_strategy(
    path: &Path,
    opts: &ScriptOptions,
    index: Arc<SimilarityIndex>,
) -> Result<LuaInit> {
    let space: SpaceSlot = Arc::default();
    let slot = space.clone();
    let script = Script::load_with(path, opts, move |lua, hashi| {
        let idx = index.clone();
        let similar = lua.create_function(move |lua, (piece, k): (String, usize)| {
            let found: Vec<Scored> =
                idx.similar(&piece, k).into_iter().map(|(id, score)| Scored { id, score }).collect();
            lua.to_value(&found)
        })?;
        hashi.set("similar", similar)?;
        register_space(lua, hashi, &slot)
    })?;
    if !script.has_function("recipe") {
        bail!("{}: a strategy must return a table with a `recipe(token, ctx)` function", path.display());
    }
    let name: Option<String> = script.field("name")?;
    let name = name
        .unwrap_or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
    Ok(LuaInit { script, name, space })
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
        let source: Vec<serde_json::Value> = src.iter().map(|b| json!(b)).collect();
        let mut rows: Vec<(&str, &Vec<serde_json::Value>)> = vec![("source", &source)];
        for r in &results {
            if let Some(b) = r["bits_per_byte"].as_array() {
                rows.push((r["report"]["strategy"].as_str().unwrap_or(""), b));
            }
        }
        for (k, lang) in src.iter().enumerate() {
            let scripts: Vec<&str> = lang.by_script.iter().map(|s| s.script).collect();
            let bytes: Vec<String> = lang.by_script.iter().map(|s| s.bytes.to_string()).collect();
            outln!("\n{} by script (bytes: {})", lang.lang, bytes.join(" / "))?;
            outln!("{:<16} {}", "model", scripts.iter().map(|s| format!("{s:>8}")).collect::<String>())?;
            for (name, bpb) in &rows {
                let per = &bpb[k]["by_script"];
                let row: String = scripts
                    .iter()
                    .map(|s| {
                        let v = per.as_array().into_iter().flatten().find(|x| x["script"] == *s);
                        format!("{:>8.4}", v.and_then(|v| v["bits_per_byte"].as_f64()).unwrap_or(f64::NAN))
                    })
                    .collect();
                outln!("{name:<16} {row}")?;
            }
        }
    }
    Ok(())
}
