//! `hashi run RUN_FILE.lua`: tokenizer → transfer → shards → training of every variant (and seed) →
//! evaluation of the base model, the starting points and every data-switch checkpoint → report, in one run
//! directory. Each stage is a function call whose key hashes its settings, its input files and the keys of the
//! stages it reads; a finished stage with the same key is reused, so a re-run redoes only what changed, and
//! `resume` continues an unfinished training from its latest checkpoint. The whole run file, every variant's
//! training settings included, is checked before the first stage runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use hashi_core::Reporter;
use hashi_script::{Script, ScriptOptions};
use hashi_tokenizer::input::InputSpec;
use serde_json::{Value, json};

use hashi_core::artifacts::{
    RunCheckpoint, RunIndex, RunModel, RunTokenizer, RunTransfer, RunVariant, Vocabulary,
};

use crate::cache::{Key, StageAction};
use crate::experiment::ExperimentDecl;
use crate::paths::{normalize, resolve as rel};
use crate::run_file::{EvalDecl, RunDecl, VariantDecl, input_spec, merge};

/// How a run is run (the options of `hashi run`).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Continue an unfinished training from its latest checkpoint (finished stages are reused in any case).
    pub resume: bool,
    /// The run file's small setting (`hashi.quick` is true while it runs): for tests.
    pub quick: bool,
    /// Run directory (default: the run file's `out`).
    pub out: Option<PathBuf>,
    /// Seeds to train every variant with (default: the run file's `seeds`).
    pub seeds: Vec<u64>,
    /// Only these variants (default: all).
    pub only: Vec<String>,
    /// Do not write the report at the end.
    pub no_report: bool,
    /// The source model directory instead of the run file's `base`.
    pub base: Option<PathBuf>,
    /// No stage lines on stderr.
    pub quiet: bool,
}

/// The run directory and what the stages share.
struct Runner<'a> {
    out: PathBuf,
    progress: &'a dyn Reporter,
    resume: bool,
    quiet: bool,
    done: usize,
}

impl Runner<'_> {
    /// Runs `body` as a stage (unless cached) with the settings `settings` (recorded in its marker); `outputs` are
    /// removed before a fresh start.
    fn stage(
        &mut self,
        id: &str,
        key: &str,
        outputs: &[&Path],
        settings: Value,
        body: impl FnOnce(&dyn Reporter) -> Result<()>,
    ) -> Result<()> {
        self.stage_with(id, key, outputs, false, settings, |_, p| body(p))
    }

    /// A stage whose body is told whether it continues an unfinished execution.
    fn stage_with(
        &mut self,
        id: &str,
        key: &str,
        outputs: &[&Path],
        resumable: bool,
        settings: Value,
        body: impl FnOnce(bool, &dyn Reporter) -> Result<()>,
    ) -> Result<()> {
        self.done += 1;
        let marker = self.out.join("stages").join(format!("{id}.json"));
        let mut action = crate::cache::action(&marker, key, resumable && self.resume);
        if action == StageAction::Reuse && outputs.iter().any(|o| !o.exists()) {
            action = StageAction::Start; // finished once, but its outputs were removed since
        }
        if action == StageAction::Reuse {
            self.say(&format!("[{}] {id}: cached", self.done));
            return Ok(());
        }
        if action == StageAction::Start {
            for o in outputs {
                remove(o)?;
            }
        }
        let resuming = action == StageAction::Resume;
        let verb = if resuming { "resuming" } else { "running" };
        self.say(&format!("[{}] {id}: {verb}", self.done));
        let progress = self.progress;
        let seconds = crate::cache::execute(&marker, key, settings, || {
            body(resuming, progress).with_context(|| format!("stage {id}"))
        })?;
        self.say(&format!("[{}] {id}: done in {seconds:.1} s", self.done));
        Ok(())
    }

    fn say(&self, line: &str) {
        if !self.quiet {
            eprintln!("── {line}");
        }
    }
}

fn remove(p: &Path) -> Result<()> {
    if p.is_dir() {
        std::fs::remove_dir_all(p).with_context(|| format!("removing {}", p.display()))?;
    } else if p.exists() {
        std::fs::remove_file(p).with_context(|| format!("removing {}", p.display()))?;
    }
    Ok(())
}

/// A model to evaluate, and the key that names its content.
struct EvalTarget {
    label: String,
    model: PathBuf,
    key: String,
}

/// What a vocabulary's stages made, for its variants: the keys of its starting model and of its shards.
struct Start {
    model_key: String,
    shards_key: String,
}

/// What the shared stages made, for every variant: the run file's folder, the held-out text, and the starting point
/// of every vocabulary the variants to run name.
struct Shared {
    /// The run file's folder (its paths are relative to it).
    base: PathBuf,
    heldout: Vec<InputSpec>,
    starts: BTreeMap<Vocabulary, Start>,
}

/// Runs the run file `run_file` with `opts`; `progress` shows each stage's progress.
pub fn run(run_file: &Path, opts: &RunOptions, progress: &dyn Reporter) -> Result<()> {
    let started = Instant::now();
    let experiment = normalize(&std::path::absolute(run_file)?);
    let quick = opts.quick;
    let script =
        Script::load_with(&experiment, &ScriptOptions::default(), |_, hashi| hashi.set("quick", quick))?;
    let mut d: RunDecl = script.exports()?;
    if let Some(b) = &opts.base {
        d.base = std::path::absolute(b)?.display().to_string();
    }
    let base = experiment.parent().map(PathBuf::from).unwrap_or_default();
    let out = opts
        .out
        .as_ref()
        .map_or_else(|| rel(&base, &d.out), |o| normalize(&std::path::absolute(o).unwrap_or(o.clone())));
    let seeds = if opts.seeds.is_empty() { d.seeds.clone() } else { opts.seeds.clone() };
    for name in &opts.only {
        if !d.variants.iter().any(|v| &v.name == name) {
            bail!("{}: no variant {name:?}", experiment.display());
        }
    }
    let wiring = Wiring::new(&d, &experiment, &out);
    // Everything a stage could refuse later, before the first one runs.
    let trainings = validate(&d, &wiring, &seeds, &opts.only)?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    // One process at a time in a run folder (a stale lock after a crash is recognised and taken over).
    let _lock = hashi_train::RunLock::acquire(&out)?;
    let mut r = Runner { out: out.clone(), progress, resume: opts.resume, quiet: opts.quiet, done: 0 };
    r.say(&format!("run {} ({}) in {}", d.name, experiment.display(), out.display()));

    // The vocabularies of the variants to run, each with its own tokenizer, transfer, shards and step 0.
    let vocabularies: BTreeSet<Vocabulary> = trainings.iter().map(|(v, _, _)| d.vocabulary(v)).collect();
    // The base model's content, hashed once: the original vocabulary's start and the base model's evaluation.
    let base_key = Key::new("model").content(&wiring.base_model)?.finish();
    let sh = shared_stages(&mut r, &d, &wiring, &vocabularies, &base_key)?;
    let ev = Evaluator::new(&d.eval, &sh)?;
    let base_eval = ev.eval(
        &mut r,
        &EvalTarget { label: "base".into(), model: wiring.base_model.clone(), key: base_key },
    )?;
    // Step 0 of each vocabulary: its transfer's evaluation (the original's is the base model's).
    let mut step0 = BTreeMap::new();
    let mut transfers = vec![];
    for (&v, start) in &sh.starts {
        if v == Vocabulary::Original {
            step0.insert(v, base_eval.clone());
            continue;
        }
        let label = format!("transfer{}", suffix(v));
        let model = wiring.start_model(v);
        let eval =
            ev.eval(&mut r, &EvalTarget { label: label.clone(), model, key: start.model_key.clone() })?;
        transfers.push(RunTransfer {
            vocabulary: v,
            tokenizer: rel_to(&out, &wiring.tokenizer(v)),
            analysis: analysis_file(v),
            dir: label.clone(),
            report: format!("{label}/transfer_report.json"),
            eval: rel_to(&out, &eval),
        });
        step0.insert(v, eval);
    }
    let mut variants = vec![];
    for (v, seed, exp) in &trainings {
        let vocabulary = d.vocabulary(v);
        let start = Step0 { vocabulary, keys: &sh.starts[&vocabulary], eval: &step0[&vocabulary] };
        variants.push(train_variant(&mut r, &experiment, &wiring, &ev, v, *seed, exp, &start)?);
    }
    let index = RunIndex {
        name: d.name.clone(),
        experiment: experiment.clone(),
        quick,
        seeds: seeds.clone(),
        base: RunModel { model: wiring.base_model.clone(), eval: rel_to(&out, &base_eval) },
        tokenizer: RunTokenizer { dir: "tokenizer".into(), analysis: analysis_file(Vocabulary::Replace) },
        transfers,
        variants,
        machine: machine(),
        stage_seconds: stage_seconds(&out)?,
        seconds_this_invocation: started.elapsed().as_secs_f64(),
    };
    index.write(&out).map_err(anyhow::Error::msg)?;
    if !opts.no_report {
        hashi_report::write(std::slice::from_ref(&out), &out.join("report"))?;
        r.say(&format!("report: {}", out.join("report").join("report.md").display()));
    }
    r.say(&format!("run {} finished in {:.0} s", d.name, started.elapsed().as_secs_f64()));
    Ok(())
}

/// The run file, its folder, and where every stage's output goes (known before any stage runs).
struct Wiring {
    /// The run file (absolute).
    experiment: PathBuf,
    /// Its folder (the run file's paths are relative to it).
    base: PathBuf,
    /// The English source model.
    base_model: PathBuf,
    out: PathBuf,
}

impl Wiring {
    fn new(d: &RunDecl, experiment: &Path, out: &Path) -> Self {
        let base = experiment.parent().map(PathBuf::from).unwrap_or_default();
        Self {
            experiment: experiment.to_path_buf(),
            base_model: rel(&base, &d.base),
            base,
            out: out.to_path_buf(),
        }
    }

    /// The trained bilingual tokenizer, `RUN/tokenizer`.
    fn trained_tokenizer(&self) -> PathBuf {
        self.out.join("tokenizer")
    }

    /// The tokenizer of `v`'s variants: the trained one, `RUN/tokenizer-expanded`, or the base model's own.
    fn tokenizer(&self, v: Vocabulary) -> PathBuf {
        match v {
            Vocabulary::Replace => self.trained_tokenizer(),
            Vocabulary::Expand => self.out.join("tokenizer-expanded"),
            Vocabulary::Original => self.base_model.clone(),
        }
    }

    /// The model `v`'s variants start from: `RUN/transfer`, `RUN/transfer-expanded`, or the base model.
    fn start_model(&self, v: Vocabulary) -> PathBuf {
        match v {
            Vocabulary::Original => self.base_model.clone(),
            _ => self.out.join(format!("transfer{}", suffix(v))),
        }
    }

    /// The shards of `v`'s variants: `RUN/shards`, `RUN/shards-expanded`, `RUN/shards-original`.
    fn shards(&self, v: Vocabulary) -> PathBuf {
        self.out.join(format!("shards{}", suffix(v)))
    }

    /// `RUN/variants/ID` of a variant and seed.
    fn variant_dir(&self, v: &VariantDecl, seed: u64) -> PathBuf {
        self.out.join("variants").join(format!("{}-s{seed}", v.name))
    }
}

/// What a vocabulary's stages, folders and evaluation add to their names: nothing for replacement (the method's,
/// and what runs wrote before there were several), `-expanded`, `-original`.
fn suffix(v: Vocabulary) -> &'static str {
    match v {
        Vocabulary::Replace => "",
        Vocabulary::Expand => "-expanded",
        Vocabulary::Original => "-original",
    }
}

/// A held-out or training text spec (`LANG[:FIELD]=PATH`, PATH relative to the run file) as an [`InputSpec`].
fn spec(base: &Path, s: &str) -> Result<InputSpec> {
    let (lang, path) = input_spec(base, s)?;
    format!("{lang}={}", path.display()).parse::<InputSpec>().map_err(anyhow::Error::msg)
}

/// The stages the variants share: the trained tokenizer (analysed on the held-out text against the base model's),
/// then for each vocabulary in `vocabularies` its tokenizer (expansion: the base's with the trained one's pieces
/// appended), the transfer of the base model to it (none for the original) and the shards of the corpora.
/// `base_key` is the base model's content key.
fn shared_stages(
    r: &mut Runner,
    d: &RunDecl,
    w: &Wiring,
    vocabularies: &BTreeSet<Vocabulary>,
    base_key: &str,
) -> Result<Shared> {
    let out = r.out.clone();
    let inputs: Vec<InputSpec> =
        d.tokenizer.inputs.iter().map(|i| spec(&w.base, i)).collect::<Result<_>>()?;
    let heldout: Vec<InputSpec> = d.eval.bpb.iter().map(|i| spec(&w.base, i)).collect::<Result<_>>()?;

    let mut key = Key::new("tokenizer")
        .value("vocab", &d.tokenizer.vocab_size)?
        .value("sampling", &d.tokenizer.sampling)?;
    for i in inputs.iter().chain(&heldout) {
        key = key.value("lang", &i.lang)?;
        for f in expand(Path::new(&i.pattern))? {
            key = key.content(&f)?;
        }
    }
    // `expand` false: the key this stage had when it also expanded, so that runs made then stay cached.
    let tok_key = key.content(&w.base_model.join("tokenizer.json"))?.value("expand", &false)?.finish();
    let trained = w.trained_tokenizer();
    let cfg = hashi_tokenizer::train::TrainConfig {
        vocab_size: d.tokenizer.vocab_size,
        sampling: crate::tokenizer::parse_sampling(d.tokenizer.sampling.as_deref().unwrap_or("equal"))?,
        ..Default::default()
    };
    let settings = json!({"tokenizer": d.tokenizer, "out": trained});
    let analysis = out.join(analysis_file(Vocabulary::Replace));
    r.stage("tokenizer", &tok_key, &[&trained, &analysis], settings, |progress| {
        crate::tokenizer::train_tokenizer(&inputs, &cfg, 4096, &trained, progress)?;
        crate::tokenizer::analyze_tokenizer(&trained, Some(&w.base_model), &heldout)?.write(&analysis)?;
        Ok(())
    })?;

    let corpora = rel(&w.base, &d.corpora);
    let corpus_files = corpus_files(&corpora)?;
    let mut starts = BTreeMap::new();
    for &v in vocabularies {
        let tok_dir = w.tokenizer(v);
        let tok_key = match v {
            Vocabulary::Replace => tok_key.clone(),
            Vocabulary::Original => base_key.to_string(),
            Vocabulary::Expand => {
                let key = Key::new("tokenizer-expanded").upstream(&tok_key).finish();
                let settings = json!({"base": w.base_model, "add": trained, "out": tok_dir});
                let analysis = out.join(analysis_file(v));
                r.stage("tokenizer-expanded", &key, &[&tok_dir, &analysis], settings, |_| {
                    crate::tokenizer::expand_tokenizer(&w.base_model, &trained, &tok_dir)?;
                    crate::tokenizer::analyze_tokenizer(&tok_dir, Some(&w.base_model), &heldout)?
                        .write(&analysis)?;
                    Ok(())
                })?;
                key
            }
        };
        let model_key = if v == Vocabulary::Original {
            base_key.to_string()
        } else {
            transfer_stage(r, d, w, v, &tok_key)?
        };

        let mut key = Key::new("shards").upstream(&tok_key).content(&corpora)?;
        for f in &corpus_files {
            key = key.content(f)?;
        }
        let shards_key = key.finish();
        let shards = w.shards(v);
        let settings = json!({"corpora": corpora, "tokenizer": tok_dir, "out": shards});
        r.stage(&format!("shards{}", suffix(v)), &shards_key, &[&shards], settings, |progress| {
            let opts = hashi_data::PrepareOptions::default();
            crate::plan::prepare(&corpora, &tok_dir, &shards, &opts, None, progress).map(drop)
        })?;
        starts.insert(v, Start { model_key, shards_key });
    }
    Ok(Shared { base: w.base.clone(), heldout, starts })
}

/// `tokenizer-analysis.json` (the trained tokenizer's, which replacement reads with) or
/// `tokenizer-expanded-analysis.json`, each against the base model's tokenizer on the held-out text.
fn analysis_file(v: Vocabulary) -> String {
    format!("tokenizer{}-analysis.json", suffix(v))
}

/// The transfer of the base model to vocabulary `v`'s tokenizer (made by the stage keyed `tok_key`): the stage
/// `transfer` or `transfer-expanded`. Returns its key.
fn transfer_stage(r: &mut Runner, d: &RunDecl, w: &Wiring, v: Vocabulary, tok_key: &str) -> Result<String> {
    let init = rel(&w.base, &d.transfer.init);
    let mut key = Key::new("transfer")
        .upstream(tok_key)
        .content(&w.base_model)?
        .value("seed", &d.transfer.seed)?
        .value("map_special", &d.transfer.map_special)?;
    for f in &script_files(&init) {
        key = key.content(f)?;
    }
    let transfer_key = key.finish();
    let (tokenizer, out) = (w.tokenizer(v), w.start_model(v));
    let transfer = crate::transfer::TransferSettings {
        model: w.base_model.clone(),
        tokenizer: tokenizer.clone(),
        inits: vec![init.clone()],
        out: out.clone(),
        dry_run: false,
        old_tokenizer: None,
        map_special: d
            .transfer
            .map_special
            .iter()
            .map(|m| m.parse().map_err(anyhow::Error::msg))
            .collect::<Result<_>>()?,
        eval_texts: vec![],
        eval_bytes: 0,
        script_lib: PathBuf::from("scripts/lib"),
        seed: d.transfer.seed,
    };
    let settings = json!({"model": w.base_model, "tokenizer": tokenizer, "init": init, "seed": d.transfer.seed,
                          "map_special": d.transfer.map_special, "out": out});
    r.stage(&format!("transfer{}", suffix(v)), &transfer_key, &[&out], settings, |progress| {
        crate::transfer::transfer(&transfer, progress).map(drop)
    })?;
    Ok(transfer_key)
}

/// Evaluates models with the run's settings; its key covers the settings, the task data and the held-out text.
struct Evaluator<'a> {
    d: &'a EvalDecl,
    data: PathBuf,
    heldout: &'a [InputSpec],
    key: String,
}

impl<'a> Evaluator<'a> {
    fn new(d: &'a EvalDecl, sh: &'a Shared) -> Result<Self> {
        let data = rel(&sh.base, &d.data);
        let mut settings = serde_json::to_value(d)?;
        settings["data"] = json!(data);
        let key = Key::new("eval-settings").value("eval", &settings)?.content(&data)?;
        let key = sh.heldout.iter().try_fold(key, |k, i| k.content(Path::new(&i.pattern)))?.finish();
        Ok(Self { d, data, heldout: &sh.heldout, key })
    }

    /// `RUN/evals/LABEL.json` of `t` (a stage; the file is written atomically when complete).
    fn eval(&self, r: &mut Runner, t: &EvalTarget) -> Result<PathBuf> {
        let d = self.d;
        let file = r.out.join("evals").join(format!("{}.json", t.label));
        std::fs::create_dir_all(file.parent().context("evals")?)?;
        let settings = hashi_eval::EvalSettings {
            model: t.model.clone(),
            tasks: d.all_tasks()?,
            bpb: self.heldout.to_vec(),
            bpb_bytes: d.bpb_bytes,
            shots: d.shots,
            task_shots: d.task_shots()?,
            limit: d.limit,
            data: self.data.clone(),
            log_requests: None,
            mecab_dict: std::env::var_os("HASHI_MECAB_DIC").map(PathBuf::from),
            max_gen_toks: d.max_gen_toks.unwrap_or(256),
            truncate_overlong: d.truncate_overlong,
            llmjp_add_special_tokens: d.llmjp_add_special_tokens,
            batch_size: d.batch_size,
        };
        let key = Key::new("eval").upstream(&t.key).upstream(&self.key).finish();
        let record = json!({"model": t.model, "eval": d, "data": self.data, "out": file});
        r.stage(&format!("eval-{}", t.label), &key, &[&file], record, |progress| {
            hashi_eval::evaluate(&settings, None, progress)?.write(&file)?;
            Ok(())
        })?;
        Ok(file)
    }
}

/// Where a variant starts: its vocabulary, the keys of that vocabulary's starting model and shards, and the
/// starting model's evaluation (step 0).
struct Step0<'a> {
    vocabulary: Vocabulary,
    keys: &'a Start,
    eval: &'a Path,
}

/// One variant with one seed: its starting point (its vocabulary's starting model, or a random init of that
/// model's config), its training, and the evaluation of every data-switch checkpoint; returns its entry of
/// `run.json`.
#[allow(clippy::too_many_arguments)]
fn train_variant(
    r: &mut Runner,
    run_file: &Path,
    w: &Wiring,
    ev: &Evaluator,
    v: &VariantDecl,
    seed: u64,
    exp: &ExperimentDecl,
    start: &Step0,
) -> Result<RunVariant> {
    let out = r.out.clone();
    let id = format!("{}-s{seed}", v.name);
    let vdir = out.join("variants").join(&id);
    std::fs::create_dir_all(&vdir)?;
    let curriculum = PathBuf::from(&exp.curriculum);
    let (start_key, start_eval) = if v.from_scratch {
        let dir = vdir.join("init");
        let key = Key::new("init").upstream(&start.keys.model_key).value("seed", &seed)?.finish();
        let config = w.start_model(start.vocabulary).join("config.json");
        let tokenizer = w.tokenizer(start.vocabulary);
        let settings = json!({"config": config, "seed": seed, "out": dir});
        r.stage(&format!("init-{id}"), &key, &[&dir], settings, |progress| {
            let save = hashi_model::SaveOptions::default();
            crate::model::init_model(Some(&config), None, seed, save, &dir, progress)?;
            for f in
                hashi_tokenizer::TOKENIZER_FILES.iter().map(|f| tokenizer.join(f)).filter(|f| f.is_file())
            {
                std::fs::copy(&f, dir.join(f.file_name().context("tokenizer file")?))?;
            }
            Ok(())
        })?;
        let e =
            ev.eval(r, &EvalTarget { label: format!("{id}-init"), model: dir.clone(), key: key.clone() })?;
        (key, e)
    } else {
        (start.keys.model_key.clone(), start.eval.to_path_buf())
    };
    let train_dir = PathBuf::from(&exp.out);
    let mut key = Key::new("train")
        .upstream(&start_key)
        .upstream(&start.keys.shards_key)
        .value("experiment", exp)?
        .content(&curriculum)?;
    let schedule = PathBuf::from(&exp.schedule.script);
    for f in [&curriculum, &schedule].into_iter().filter(|p| p.is_file()).flat_map(|p| script_files(p)) {
        key = key.content(&f)?;
    }
    let train_key = key.finish();
    let hash = format!("{:016x}", hashi_core::fnv1a(serde_json::to_string(exp)?.as_bytes()));
    let origin = PathBuf::from(format!("{} (variant {}, seed {seed})", run_file.display(), v.name));
    r.stage_with(
        &format!("train-{id}"),
        &train_key,
        &[&train_dir],
        true,
        serde_json::to_value(exp)?,
        |resuming, progress| {
            let resume = resuming && hashi_train::latest_checkpoint(&train_dir).is_some();
            if !resume {
                // Killed before its first checkpoint: nothing to continue, start clean.
                let _ = std::fs::remove_dir_all(&train_dir);
            }
            let opts = crate::train::TrainOptions { resume, ..Default::default() };
            crate::train::train(exp, &origin, &hash, &opts, progress).map(drop)
        },
    )?;
    // Every data switch (and the end) is a kept checkpoint; evaluate each.
    let bytes_per_token = bytes_per_token(&w.shards(start.vocabulary))?;
    let mut points = vec![RunCheckpoint {
        step: 0,
        tokens: 0,
        tokens_by_lang: None,
        text_bytes_by_lang: None,
        phase: None,
        checkpoint: None,
        eval: rel_to(&out, &start_eval),
    }];
    for ckpt in phase_checkpoints(&train_dir)? {
        let name = ckpt.file_name().and_then(|n| n.to_str()).context("checkpoint name")?.to_string();
        let state = hashi_train::TrainerState::read(&ckpt).map_err(anyhow::Error::msg)?;
        let target = EvalTarget {
            label: format!("{id}-{name}"),
            model: ckpt.clone(),
            key: Key::new("checkpoint").upstream(&train_key).value("name", &name)?.finish(),
        };
        let e = ev.eval(r, &target)?;
        points.push(RunCheckpoint {
            step: state.step,
            tokens: state.tokens(),
            tokens_by_lang: Some(state.tokens_by_lang.clone()),
            text_bytes_by_lang: Some(
                state
                    .tokens_by_lang
                    .iter()
                    .map(|(l, &n)| {
                        (
                            l.clone(),
                            (n as f64 * bytes_per_token.get(l).copied().unwrap_or(0.0)).round() as u64,
                        )
                    })
                    .collect(),
            ),
            phase: Some(state.cursor.phase),
            checkpoint: Some(rel_to(&out, &ckpt)),
            eval: rel_to(&out, &e),
        });
    }
    let last = hashi_train::latest_checkpoint(&train_dir).context("no checkpoint after training")?;
    Ok(RunVariant {
        id,
        name: v.name.clone(),
        label: v.label.clone().unwrap_or_else(|| v.name.clone()),
        seed,
        from_scratch: v.from_scratch,
        vocabulary: start.vocabulary,
        curriculum,
        train: rel_to(&out, &train_dir),
        plan: rel_to(&out, &last.join("plan.json")),
        checkpoints: points,
    })
}

/// Checks everything of a run file that can be checked without running a stage, in well under a second, and
/// returns the training experiment of every variant and seed to run: each is the run's `train` merged field by
/// field with the variant's, plus the run's wiring, decoded and checked as `hashi train` checks an experiment;
/// the task names, the transfer's inputs and the files the run names. Errors name the run file and the field.
fn validate<'d>(
    d: &'d RunDecl,
    w: &Wiring,
    seeds: &[u64],
    only: &[String],
) -> Result<Vec<(&'d VariantDecl, u64, ExperimentDecl)>> {
    let file = w.experiment.display();
    crate::train::must_exist(&w.base_model.join("config.json"), "base model", &w.experiment)?;
    if d.variants.is_empty() {
        bail!("{file}: variants: no variant to train");
    }
    for (i, v) in d.variants.iter().enumerate() {
        // The name becomes folder and stage names: nothing that leaves the run directory or hides a file.
        let plain = !v.name.is_empty()
            && !v.name.starts_with('.')
            && v.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !plain {
            bail!(
                "{file}: variants[{}].name: {:?} is not a plain name (ASCII letters, digits, '.', '_' and '-', not \
                 starting with '.'): it names the variant's folders and stages",
                i + 1,
                v.name
            );
        }
        if let Some(j) = d.variants[..i].iter().position(|o| o.name == v.name) {
            bail!("{file}: variants[{}].name: {:?} is variants[{}]'s name too", i + 1, v.name, j + 1);
        }
    }
    for (field, specs) in [("tokenizer.inputs", &d.tokenizer.inputs), ("eval.bpb", &d.eval.bpb)] {
        for (i, s) in specs.iter().enumerate() {
            let at = |e: anyhow::Error| anyhow::anyhow!("{file}: {field}[{}]: {e}", i + 1);
            let (_, path) = input_spec(&w.base, s).map_err(at)?;
            expand(&path).map_err(at)?;
        }
    }
    if d.variants.iter().any(|v| d.vocabulary(v) != Vocabulary::Original) {
        crate::transfer::check_transfer_inputs(
            &w.base_model,
            &rel(&w.base, &d.transfer.init),
            &d.transfer.map_special,
            &w.experiment,
        )?;
    }
    for (i, t) in d.eval.tasks.iter().enumerate() {
        if !hashi_eval::is_known_task(t) {
            bail!(
                "{file}: eval.tasks[{}]: unknown task {t:?} (known: {})",
                i + 1,
                hashi_eval::known_tasks().join(", ")
            );
        }
    }
    d.eval.all_tasks().map_err(|e| anyhow::anyhow!("{file}: eval.protocols: {e}"))?;
    d.eval.task_shots().map_err(|e| anyhow::anyhow!("{file}: eval.task_shots: {e}"))?;
    if let Some(Value::String(p)) = d.train.get("schedule").and_then(|s| s.get("script")) {
        let script = rel(&w.base, p);
        if !script.is_file() {
            bail!("{file}: train.schedule.script: {} is not a file", script.display());
        }
    }
    let mut out = vec![];
    for (i, v) in d.variants.iter().enumerate() {
        let curriculum = rel(&w.base, &v.curriculum);
        if !curriculum.is_file() {
            bail!("{file}: variants[{}].curriculum: {} is not a file", i + 1, curriculum.display());
        }
        for &seed in seeds {
            let exp = variant_experiment(d, w, v, seed).map_err(|e| {
                anyhow::anyhow!(
                    "{file}: train (merged with variants[{}].train, variant {:?}): {e}",
                    i + 1,
                    v.name
                )
            })?;
            exp.validate(Path::new(&format!("{file}: variant {:?}", v.name)))?;
            let script = hashi_script::Script::load(&curriculum, &hashi_script::ScriptOptions::default())?;
            let plan = crate::plan::plan_decl(&script, &exp.plan_overrides)?;
            crate::train::check_schedule(&exp, &plan)
                .with_context(|| format!("{file}: variant {:?}", v.name))?;
            if only.is_empty() || only.contains(&v.name) {
                out.push((v, seed, exp));
            }
        }
    }
    Ok(out)
}

/// A variant's training experiment: the run's `train` fields merged field by field with the variant's, then the
/// run's own wiring (model, tokenizer, shards, curriculum, output, and the seed as a plan override).
fn variant_experiment(d: &RunDecl, w: &Wiring, v: &VariantDecl, seed: u64) -> Result<ExperimentDecl> {
    let mut exp = d.train.clone();
    merge(&mut exp, &v.train);
    let vdir = w.variant_dir(v, seed);
    let vocabulary = d.vocabulary(v);
    let model = if v.from_scratch { vdir.join("init") } else { w.start_model(vocabulary) };
    let wiring = json!({
        "name": format!("{} {}-s{seed}", d.name, v.name), "model": model, "tokenizer": w.tokenizer(vocabulary),
        "shards": w.shards(vocabulary), "curriculum": rel(&w.base, &v.curriculum), "out": vdir.join("train"),
        "plan_overrides": {"seed": seed},
    });
    merge(&mut exp, wiring.as_object().context("wiring")?);
    // In-loop evaluation reads the run's held-out text unless the variant names its own.
    if let Some(Value::Object(ev)) = exp.get_mut("eval")
        && ev.get("bpb").is_none_or(|b| {
            b.as_array().is_some_and(Vec::is_empty) || b.as_object().is_some_and(serde_json::Map::is_empty)
        })
    {
        ev.insert("bpb".into(), json!(d.eval.bpb));
    }
    let exp: ExperimentDecl = serde_json::from_value(Value::Object(exp))?;
    Ok(exp.resolved(&w.base))
}

/// The CPU model and the threads available, for the report.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|p| p.1.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {threads} threads")
}

/// `path` relative to the run directory (the index stays valid when the directory moves).
fn rel_to(out: &Path, path: &Path) -> String {
    path.strip_prefix(out).unwrap_or(path).display().to_string()
}

/// Seconds of every finished stage, by stage id.
fn stage_seconds(out: &Path) -> Result<std::collections::BTreeMap<String, f64>> {
    let mut m = std::collections::BTreeMap::new();
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(out.join("stages"))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if let (Some(id), Some(mk)) = (p.file_stem().and_then(|s| s.to_str()), crate::cache::Marker::read(&p))
            && mk.finished
        {
            m.insert(id.to_string(), mk.seconds);
        }
    }
    Ok(m)
}

/// UTF-8 bytes of text per token of each language in the shards at `dir` (its corpora's `text_bytes` over their
/// `tokens`, EOS included).
fn bytes_per_token(dir: &Path) -> Result<BTreeMap<String, f64>> {
    let manifest = hashi_data::Manifest::load(dir)?;
    let mut sums: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for c in &manifest.corpora {
        let e = sums.entry(c.corpus.lang.clone()).or_default();
        e.0 += c.text_bytes;
        e.1 += c.tokens;
    }
    Ok(sums.into_iter().filter(|(_, (_, t))| *t > 0).map(|(l, (b, t))| (l, b as f64 / t as f64)).collect())
}

/// The checkpoints that end a phase, in step order.
fn phase_checkpoints(train_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(train_dir.join("ckpt"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("DONE").is_file())
        .collect();
    dirs.sort();
    let mut out = vec![];
    for d in dirs {
        let state = hashi_train::TrainerState::read(&d).map_err(anyhow::Error::msg)?;
        if state.phase_end {
            out.push(d);
        }
    }
    Ok(out)
}

/// A script and every module it requires (the script alone if it does not load: its stage reports the error).
fn script_files(path: &Path) -> Vec<PathBuf> {
    Script::load(path, &ScriptOptions::default())
        .map(|s| s.files())
        .unwrap_or_else(|_| vec![path.to_path_buf()])
}

/// Files named by a corpora declaration (globs expanded).
fn corpus_files(corpora: &Path) -> Result<Vec<PathBuf>> {
    let decls: Vec<hashi_data::CorpusDecl> = Script::load(corpora, &ScriptOptions::default())?.exports()?;
    let base = corpora.parent().map(PathBuf::from).unwrap_or_default();
    let mut files = vec![];
    for d in decls {
        for p in &d.paths {
            files.extend(expand(&base.join(p))?);
        }
    }
    Ok(files)
}

fn expand(pattern: &Path) -> Result<Vec<PathBuf>> {
    let text = pattern.to_string_lossy();
    let mut files: Vec<PathBuf> =
        glob::glob(&text).with_context(|| format!("bad pattern {text}"))?.filter_map(|p| p.ok()).collect();
    if files.is_empty() {
        bail!("{text}: no such file");
    }
    files.sort();
    Ok(files)
}
