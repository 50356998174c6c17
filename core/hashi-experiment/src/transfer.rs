//! The transfer stage: vocabulary replacement with a Lua embedding-init strategy ([`LuaInit`], the strategy as a
//! `hashi_transfer::EmbeddingInit`), and its report (match classes by script, what happened to each special token,
//! row norms, step-0 bits-per-byte on held-out text).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result, bail};
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

/// A Lua strategy: `return { name = "...", recipe = function(token, ctx) ... end }`.
pub struct LuaInit {
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
pub fn load_strategy(path: &Path, opts: &ScriptOptions, index: Arc<SimilarityIndex>) -> Result<LuaInit> {
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
pub fn similarity_index(old: &[PieceBytes]) -> SimilarityIndex {
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

/// A transfer, or a dry-run comparison of strategies (the options of `hashi transfer`).
#[derive(Debug, Clone)]
pub struct TransferSettings {
    /// The source model (HF directory with its tokenizer.json).
    pub model: PathBuf,
    /// The new tokenizer (tokenizer.json or its directory).
    pub tokenizer: PathBuf,
    /// Embedding-init strategies (Lua); several only with `dry_run`.
    pub inits: Vec<PathBuf>,
    /// Output directory (must not exist).
    pub out: PathBuf,
    /// Report only: nothing is kept in `out`.
    pub dry_run: bool,
    /// The old tokenizer, if not MODEL/tokenizer.json.
    pub old_tokenizer: Option<PathBuf>,
    /// Source special tokens mapped onto new ones or dropped; the others are carried.
    pub map_special: Vec<SpecialMapping>,
    /// Held-out text for step-0 bits per byte.
    pub eval_texts: Vec<InputSpec>,
    /// UTF-8 bytes per language for bits per byte.
    pub eval_bytes: usize,
    /// Folder `require` searches besides the script's own.
    pub script_lib: PathBuf,
    /// Seed of recipe noise.
    pub seed: u64,
}

/// One strategy's transfer.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct StrategyResult {
    /// The strategy script.
    pub script: PathBuf,
    /// What the transfer did.
    pub report: hashi_transfer::TransferReport,
    /// Step-0 bits per byte of the transferred model, when held-out text was given.
    pub bits_per_byte: Option<Vec<hashi_eval::Bpb>>,
}

/// What `hashi transfer --json` prints.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TransferComparison {
    /// The source model's bits per byte on the same text.
    pub source_bits_per_byte: Option<Vec<hashi_eval::Bpb>>,
    /// Every strategy's result, in the order given.
    pub strategies: Vec<StrategyResult>,
    /// Peak resident memory (MiB).
    pub peak_rss_mib: Option<f64>,
}

/// Replaces `s.model`'s vocabulary by `s.tokenizer`'s with each strategy (into `s.out`, or a scratch folder for
/// a dry run), measuring step-0 bits per byte when held-out text is given. Everything that can be refused is
/// checked before the source model is evaluated or a matrix read.
pub fn transfer(s: &TransferSettings, progress: &dyn Reporter) -> Result<TransferComparison> {
    if s.inits.len() > 1 && !s.dry_run {
        bail!("several --init strategies can only be compared with --dry-run");
    }
    if !s.dry_run && s.out.exists() {
        bail!("{}: output already exists", s.out.display());
    }
    let topts = TransferOptions {
        old_tokenizer: s.old_tokenizer.clone(),
        seed: s.seed,
        special_tokens: s.map_special.clone(),
    };
    let plan = hashi_transfer::plan(&s.model, &s.tokenizer, &topts)?;
    let index = Arc::new(similarity_index(plan.old_piece_bytes()));
    let opts = ScriptOptions::default().lib_dirs(vec![s.script_lib.clone()]);
    let strategies: Vec<LuaInit> =
        s.inits.iter().map(|p| load_strategy(p, &opts, index.clone())).collect::<Result<_>>()?;
    let texts = if s.eval_texts.is_empty() { vec![] } else { read_inputs(&s.eval_texts)? };
    let source_bits_per_byte = if texts.is_empty() {
        None
    } else {
        Some(bits_per_byte(&Llama::load(&s.model)?, plan.old_tokenizer(), &texts, s.eval_bytes)?)
    };
    let scratch = if s.dry_run {
        Some(tempfile::tempdir_in(s.out.parent().filter(|p| p.is_dir()).unwrap_or(Path::new(".")))?)
    } else {
        None
    };
    let mut results = Vec::new();
    for (i, (init_path, strategy)) in s.inits.iter().zip(&strategies).enumerate() {
        let dst = match &scratch {
            Some(dir) => dir.path().join(format!("strategy-{i}")),
            None => s.out.clone(),
        };
        let report = plan
            .execute(strategy, &dst, s.seed, progress)
            .with_context(|| format!("transfer with {}", init_path.display()))?;
        let bits_per_byte = if texts.is_empty() {
            None
        } else {
            let new_tok = Tokenizer::from_file(&dst)?;
            Some(bits_per_byte(&Llama::load(&dst)?, &new_tok, &texts, s.eval_bytes)?)
        };
        results.push(StrategyResult { script: init_path.clone(), report, bits_per_byte });
    }
    Ok(TransferComparison {
        source_bits_per_byte,
        strategies: results,
        peak_rss_mib: hashi_core::peak_rss_mib(),
    })
}

/// What the transfer stage of a run will need, checked before any stage runs (no matrix is read): the base
/// model's config, tokenizer and special tokens, the special-token mappings, and the strategy script.
pub fn check_transfer_inputs(
    base_model: &Path,
    init: &Path,
    map_special: &[String],
    origin: &Path,
) -> Result<()> {
    let in_run = || format!("{}: transfer", origin.display());
    let special_tokens = map_special
        .iter()
        .map(|m| m.parse::<SpecialMapping>().map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()
        .with_context(in_run)?;
    let opts = TransferOptions { special_tokens, ..Default::default() };
    hashi_transfer::check_source(base_model, &opts).with_context(in_run)?;
    let scripts = ScriptOptions::default().lib_dirs(vec![PathBuf::from("scripts/lib")]);
    let index = Arc::new(SimilarityIndex::new(&[]));
    load_strategy(init, &scripts, index).with_context(in_run)?;
    Ok(())
}
