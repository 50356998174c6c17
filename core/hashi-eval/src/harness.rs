//! The evaluation harness behind `hashi eval` and the evaluation stages of `hashi run`: reads each task's data,
//! builds the upstream prompts, scores choices (built-in model or a backend) or generates (built-in model),
//! computes the upstream metrics and bits per byte, and returns [`EvalResults`].

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use hashi_core::{Backend, Reporter};
use hashi_model::Llama;
use hashi_tokenizer::Tokenizer;
use hashi_tokenizer::input::InputSpec;
use serde_json::{Value, json};

use crate::llmjp::LlmJpTask;
use crate::metrics::{balanced_accuracy, macro_f1, mcc};
use crate::results::{EvalConfig, EvalResults, TaskResult};
use crate::{PyRandom, Question, Request, Scored, Task, score_questions, score_questions_with};

/// Why an evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Bad settings or task data; the message names the file (and line) or the setting.
    #[error("{0}")]
    Input(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The model, its tokenizer or the scorer failed.
    #[error("{0}")]
    Model(String),
}

impl From<hashi_model::ModelError> for EvalError {
    fn from(e: hashi_model::ModelError) -> Self {
        Self::Model(e.to_string())
    }
}

impl From<hashi_tokenizer::TokenizerError> for EvalError {
    fn from(e: hashi_tokenizer::TokenizerError) -> Self {
        Self::Input(e.to_string())
    }
}

pub(crate) fn input(m: impl Into<String>) -> EvalError {
    EvalError::Input(m.into())
}

/// What to evaluate and how (the options of `hashi eval`).
#[derive(Debug, Clone)]
pub struct EvalSettings {
    /// The model directory (with its tokenizer.json).
    pub model: PathBuf,
    /// Tasks in upstream form (`jnli-1.3-0.3`, `mnli`, ...).
    pub tasks: Vec<String>,
    /// Held-out text for bits per byte.
    pub bpb: Vec<InputSpec>,
    /// UTF-8 bytes per language for bits per byte (whole documents).
    pub bpb_bytes: usize,
    /// Few-shot examples per prompt.
    pub shots: usize,
    /// Few-shot examples of single tasks, instead of `shots` (as the Japanese harness's per-task
    /// `--num_fewshot` list); [`protocol_shots`] gives a protocol's. Not for llm-jp-eval tasks, whose shots are
    /// part of the task.
    pub task_shots: BTreeMap<String, usize>,
    /// Only the first N documents of each task (after upstream's shuffle).
    pub limit: Option<usize>,
    /// Task data folder (`TASK/{train,validation,test}.jsonl`).
    pub data: PathBuf,
    /// Every scored request as JSON lines here.
    pub log_requests: Option<PathBuf>,
    /// Compiled UniDic folder for the QA tasks' F1.
    pub mecab_dict: Option<PathBuf>,
    /// New tokens at most for MGSM (lm-eval's max_gen_toks).
    pub max_gen_toks: usize,
    /// Cut prompts that do not fit even with zero shots from the left instead of failing.
    pub truncate_overlong: bool,
    /// llm-jp-eval tasks: encode the prompt with the tokenizer's special tokens (its BOS, if it adds one), as
    /// transformers' text-generation pipeline does by default. Recorded in the results' config.
    pub llmjp_add_special_tokens: bool,
    /// Documents generated together (llm-jp-eval tasks, [`crate::greedy_batch`]) and questions scored together
    /// (choice tasks, [`Scorer`]); the scores do not depend on it.
    pub batch_size: usize,
}

/// Every task name `hashi eval` knows: jp-stable and GLUE variants, then the llm-jp-eval tasks.
pub fn known_tasks() -> Vec<&'static str> {
    Task::ALL.iter().map(|(n, _)| *n).chain(LlmJpTask::ALL.iter().map(|(n, _)| *n)).collect()
}

/// Whether `name` is a task `hashi eval` knows.
pub fn is_known_task(name: &str) -> bool {
    Task::from_name(name).is_some() || LlmJpTask::from_name(name).is_some()
}

/// The evaluation protocols by name, each with its tasks and the shots of those whose shots are not the run's:
/// `jp-stable` (the method's: Stability-AI's jp-stable harness, the prompt versions the paper's evaluation
/// uses), `llmjp` (llm-jp-eval v1.3.0 as Swallow runs it) and `swallow` (Swallow's Japanese columns that hashi can
/// score: llm-jp-eval's five and MGSM, which Swallow runs as lm-evaluation-harness-jp's `mgsm` = prompt version
/// 0.0 at 4 shots; its XL-Sum, WMT20 and JHumanEval columns are not implemented).
pub const PROTOCOLS: [(&str, ProtocolTasks); 3] = [
    (
        "jp-stable",
        &[
            ("jcommonsenseqa-1.1-0.1", None),
            ("jnli-1.3-0.2", None),
            ("jcola-0.2-0.3", None),
            ("jsquad-1.1-0.1", None),
            ("jaquad-0.1-0.1", None),
            ("mgsm-1.0-0.3", None),
        ],
    ),
    ("llmjp", LLMJP_TASKS),
    (
        "swallow",
        &[
            ("llmjp-1.3.0:jemhopqa", None),
            ("llmjp-1.3.0:niilc", None),
            ("llmjp-1.3.0:jsquad", None),
            ("llmjp-1.3.0:jcommonsenseqa", None),
            ("llmjp-1.3.0:jmmlu", None),
            ("mgsm-1.0-0.0", Some(4)),
        ],
    ),
];

/// A protocol's tasks, each with its shots where the protocol fixes them (`None`: the run's).
pub type ProtocolTasks = &'static [(&'static str, Option<usize>)];

const LLMJP_TASKS: ProtocolTasks = &[
    ("llmjp-1.3.0:jemhopqa", None),
    ("llmjp-1.3.0:niilc", None),
    ("llmjp-1.3.0:jsquad", None),
    ("llmjp-1.3.0:jcommonsenseqa", None),
    ("llmjp-1.3.0:jmmlu", None),
];

fn protocol(name: &str) -> Result<ProtocolTasks, EvalError> {
    PROTOCOLS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t).ok_or_else(|| {
        let known: Vec<&str> = PROTOCOLS.iter().map(|(n, _)| *n).collect();
        input(format!("unknown protocol {name:?} (known: {})", known.join(", ")))
    })
}

/// `tasks`, then the tasks of the named protocols, in order and without repeats.
///
/// # Errors
/// An unknown protocol name.
pub fn with_protocols(tasks: &[String], protocols: &[String]) -> Result<Vec<String>, EvalError> {
    let mut out: Vec<String> = vec![];
    for t in tasks {
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    for p in protocols {
        for (t, _) in protocol(p)? {
            if !out.iter().any(|o| o == t) {
                out.push((*t).into());
            }
        }
    }
    Ok(out)
}

/// The per-task shots of the named protocols (Swallow's MGSM: 4), then `explicit` over them; `tasks` are the
/// tasks evaluated ([`with_protocols`]).
///
/// # Errors
/// An unknown protocol; in `explicit` an unknown task, an llm-jp-eval task (their shots are the task's) or one
/// that is not among `tasks`.
pub fn protocol_shots(
    tasks: &[String],
    protocols: &[String],
    explicit: &BTreeMap<String, usize>,
) -> Result<BTreeMap<String, usize>, EvalError> {
    let mut out = BTreeMap::new();
    for p in protocols {
        for (t, n) in protocol(p)? {
            if let Some(n) = n {
                out.insert((*t).to_string(), *n);
            }
        }
    }
    for (t, n) in explicit {
        if Task::from_name(t).is_none() {
            let why = if LlmJpTask::from_name(t).is_some() {
                "an llm-jp-eval task's shots are fixed by the task".to_string()
            } else {
                format!("unknown task (known: {})", Task::ALL.map(|(n, _)| n).join(", "))
            };
            return Err(input(format!("task shots {t}={n}: {why}")));
        }
        if !tasks.contains(t) {
            return Err(input(format!(
                "task shots {t}={n}: {t} is not among the tasks evaluated ({})",
                tasks.join(", ")
            )));
        }
        out.insert(t.clone(), *n);
    }
    Ok(out)
}

/// Whether `task` evaluated with `shots` examples is one of Swallow's columns (the `swallow` protocol).
pub fn is_swallow_column(task: &str, shots: usize) -> bool {
    PROTOCOLS
        .iter()
        .filter(|(n, _)| *n == "swallow")
        .flat_map(|(_, t)| t.iter())
        .any(|(t, n)| *t == task && n.is_none_or(|n| n == shots))
}

/// Scores the continuations of many questions: the built-in model, each context run once and the continuations
/// of `batch` questions fed together ([`score_questions`]), or any [`Backend`]'s log-probabilities, `batch`
/// questions per call ([`score_questions_with`]).
pub trait Scorer {
    /// Log-likelihood and greediness of each continuation of each question; `done(i)` as question `i` is
    /// finished.
    ///
    /// # Errors
    /// The index of a question whose prompt does not fit or whose computation fails, with a message.
    fn score(
        &mut self,
        tok: &Tokenizer,
        questions: &[Question],
        done: &mut dyn FnMut(usize),
    ) -> Result<Vec<Vec<Scored>>, (usize, String)>;
}

/// The built-in model as a [`Scorer`].
pub struct ModelScorer<'a> {
    /// The model.
    pub model: &'a Llama,
    /// Questions scored together.
    pub batch: usize,
}

impl Scorer for ModelScorer<'_> {
    fn score(
        &mut self,
        tok: &Tokenizer,
        questions: &[Question],
        done: &mut dyn FnMut(usize),
    ) -> Result<Vec<Vec<Scored>>, (usize, String)> {
        score_questions(self.model, tok, questions, self.batch, done)
    }
}

/// A backend (a plugin) as a [`Scorer`], with the model's positions.
pub struct BackendScorer<'a> {
    /// The backend.
    pub backend: &'a mut dyn Backend,
    /// `max_position_embeddings` of the model it runs.
    pub max_positions: usize,
    /// Questions per call.
    pub batch: usize,
}

impl Scorer for BackendScorer<'_> {
    fn score(
        &mut self,
        tok: &Tokenizer,
        questions: &[Question],
        done: &mut dyn FnMut(usize),
    ) -> Result<Vec<Vec<Scored>>, (usize, String)> {
        let b = &mut *self.backend;
        let mut lp = |rows: &[Vec<u32>]| b.logprobs(rows).map_err(|e| e.to_string());
        score_questions_with(&mut lp, tok, self.max_positions, questions, self.batch, done)
    }
}

/// A JSONL split: its documents and the line each came from, so that every document error names `file:line`.
pub(crate) struct Split {
    pub(crate) path: PathBuf,
    pub(crate) docs: Vec<Value>,
    lines: Vec<usize>,
}

impl Split {
    /// Reads `path` (blank lines skipped; a UTF-8 byte-order mark at the start is ignored).
    pub(crate) fn read(path: &Path) -> Result<Self, EvalError> {
        if path.is_dir() {
            return Err(input(format!("{}: is a directory, not a JSONL file", path.display())));
        }
        let text =
            std::fs::read_to_string(path).map_err(|source| EvalError::Io { path: path.into(), source })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let (mut docs, mut lines) = (vec![], vec![]);
        for (i, l) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(l)
                .map_err(|e| input(format!("{}:{}: not a JSON document: {e}", path.display(), i + 1)))?;
            if !v.is_object() {
                return Err(input(format!(
                    "{}:{}: a document is a JSON object, not {v}",
                    path.display(),
                    i + 1
                )));
            }
            docs.push(v);
            lines.push(i + 1);
        }
        Ok(Self { path: path.to_path_buf(), docs, lines })
    }

    /// An empty split (no few-shot pool is needed for zero shots).
    fn empty(path: &Path) -> Self {
        Self { path: path.to_path_buf(), docs: vec![], lines: vec![] }
    }

    /// `file:line` of document `i`.
    pub(crate) fn at(&self, i: usize) -> String {
        format!("{}:{}", self.path.display(), self.lines.get(i).copied().unwrap_or(0))
    }
}

/// Checks every document of the evaluation split and of the few-shot pool before anything is scored: the
/// split is not empty, the pool holds at least `shots` documents, and each document has what its role needs
/// (prompt, choices and gold label, or answers; a few-shot example also its target). Errors name `file:line`.
fn check_task_data(
    name: &str,
    task: Task,
    eval: &Split,
    train: &Split,
    shots: usize,
) -> Result<(), EvalError> {
    if eval.docs.is_empty() {
        return Err(input(format!(
            "{name}: {}: no documents (the evaluation split is empty)",
            eval.path.display()
        )));
    }
    if shots > 0 && train.docs.len() < shots {
        return Err(input(format!(
            "{name}: {}: the few-shot pool has {} documents, fewer than the {shots} shots asked for",
            train.path.display(),
            train.docs.len()
        )));
    }
    for (i, doc) in eval.docs.iter().enumerate() {
        let err = |e: String| input(format!("{name}: {}: {e}", eval.at(i)));
        task.text(doc).map_err(err)?;
        match task.request() {
            Request::Choices => {
                task.choices(doc).map_err(err)?;
                task.gold(doc).map_err(err)?;
            }
            Request::Generate { .. } => {
                task.answers(doc).map_err(err)?;
            }
        }
    }
    if shots > 0 {
        for (i, doc) in train.docs.iter().enumerate() {
            let err = |e: String| input(format!("{name}: {} (few-shot pool): {e}", train.at(i)));
            task.text(doc).map_err(err)?;
            task.target(doc).map_err(err)?;
        }
    }
    Ok(())
}

/// Tokens (without special tokens) of the longest gold answer, at least 1.
fn longest_answer(tok: &Tokenizer, golds: &[String]) -> Result<usize, EvalError> {
    let mut longest = 1;
    for g in golds {
        longest = longest.max(tok.encode(g, false)?.len());
    }
    Ok(longest)
}

pub(crate) fn stderr_of_mean(xs: &[f64]) -> f64 {
    crate::metrics::mean_and_sd(xs).map_or(0.0, |(_, sd)| sd / (xs.len() as f64).sqrt())
}

pub(crate) fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// The request log (`log_requests`), if asked for.
pub(crate) struct RequestLog(Option<(PathBuf, std::io::BufWriter<std::fs::File>)>);

impl RequestLog {
    fn open(path: Option<&Path>) -> Result<Self, EvalError> {
        let Some(p) = path else { return Ok(Self(None)) };
        let f = std::fs::File::create(p).map_err(|source| EvalError::Io { path: p.into(), source })?;
        Ok(Self(Some((p.to_path_buf(), std::io::BufWriter::new(f)))))
    }

    pub(crate) fn write(&mut self, rec: &Value) -> Result<(), EvalError> {
        if let Some((p, w)) = self.0.as_mut() {
            writeln!(w, "{rec}").map_err(|source| EvalError::Io { path: p.clone(), source })?;
        }
        Ok(())
    }

    fn finish(self) -> Result<(), EvalError> {
        if let Some((p, mut w)) = self.0 {
            w.flush().map_err(|source| EvalError::Io { path: p, source })?;
        }
        Ok(())
    }
}

/// Evaluates `s.model` on every task and on the held-out text. Log-likelihood tasks are scored by `backend` when
/// one is given, else by the built-in model; generation tasks and bits per byte always run on the built-in model
/// (loaded only when needed).
///
/// # Errors
/// [`EvalError::Input`] for an unknown task, bad task data (naming `file:line`) or settings; [`EvalError::Io`] and
/// [`EvalError::Model`] otherwise.
pub fn evaluate(
    s: &EvalSettings,
    mut backend: Option<&mut dyn Backend>,
    progress: &dyn Reporter,
) -> Result<EvalResults, EvalError> {
    if s.limit == Some(0) {
        return Err(input("--limit 0 evaluates no documents"));
    }
    let max_positions = hashi_model::Checkpoint::open(&s.model)?.config().max_position_embeddings;
    let model = match backend.is_none() || !s.bpb.is_empty() {
        true => Some(Llama::load(&s.model)?.detached()?),
        false => None,
    };
    let cpu = || {
        model.as_ref().ok_or_else(|| {
            EvalError::Model("the built-in model is not loaded when scoring through a backend".into())
        })
    };
    let tok = Tokenizer::from_file(&s.model)?;
    let mut log = RequestLog::open(s.log_requests.as_deref())?;
    let mut out = EvalResults {
        results: Default::default(),
        bits_per_byte: vec![],
        versions: Default::default(),
        n_shot: Default::default(),
        config: EvalConfig {
            model: s.model.clone(),
            num_fewshot: s.shots,
            limit: s.limit,
            data: s.data.clone(),
            truncate_overlong: s.truncate_overlong,
            harness: "hashi (prompts of Stability-AI jp-stable effdbeaf / EleutherAI glue / llm-jp-eval v1.3.0 as in \
                      swallow-evaluation 57c4ecd)"
                .into(),
            llmjp_add_special_tokens: None,
        },
        protocol_deltas: vec![],
    };
    let mut mecab: Option<crate::qa::Mecab> = None;
    for name in &s.tasks {
        if let Some(task) = LlmJpTask::from_name(name) {
            if backend.is_some() {
                return Err(input(format!(
                    "{name}: generation runs on the built-in model; plugin backends score log-likelihood tasks"
                )));
            }
            let (dir, split) = task.files();
            let eval = Split::read(&s.data.join(dir).join(format!("{split}.jsonl")))?;
            let pool = Split::read(&s.data.join(dir).join("train.jsonl"))?;
            let run = crate::llmjp_run::LlmJpRun {
                model: cpu()?,
                tok: &tok,
                add_special_tokens: s.llmjp_add_special_tokens,
                batch_size: s.batch_size,
                truncate_overlong: s.truncate_overlong,
                limit: s.limit,
                log: &mut log,
                progress,
            };
            out.results.insert(name.clone(), run.run(name, task, &eval, &pool)?);
            out.versions.insert(name.clone(), crate::llmjp::PROTOCOL.into());
            out.n_shot.insert(name.clone(), task.num_fewshot());
            out.config.llmjp_add_special_tokens = Some(s.llmjp_add_special_tokens);
            continue;
        }
        let task = Task::from_name(name)
            .ok_or_else(|| input(format!("unknown task {name:?} (known: {})", known_tasks().join(", "))))?;
        let shots = s.task_shots.get(name).copied().unwrap_or(s.shots);
        let (dir, split) = task.data();
        let eval = Split::read(&s.data.join(dir).join(format!("{split}.jsonl")))?;
        let train_path = s.data.join(dir).join("train.jsonl");
        let train = if shots == 0 && !train_path.exists() {
            Split::empty(&train_path)
        } else {
            Split::read(&train_path)?
        };
        check_task_data(name, task, &eval, &train, shots)?;
        // The Japanese harness shuffles the documents with `Random(42)` and samples shots from that stream;
        // EleutherAI's keeps the dataset order and samples with the task's `Random(1234)` few-shot generator.
        let eleuther = task.eleuther();
        let mut rnd = PyRandom::new(if eleuther { 1234 } else { 42 });
        let mut order: Vec<usize> = (0..eval.docs.len()).collect();
        if !eleuther {
            rnd.shuffle(&mut order);
        }
        order.truncate(s.limit.unwrap_or(order.len()));
        progress.start(name, Some(order.len() as u64), "docs");
        let docs = Docs { name, task, eval: &eval, pool: &train, order: &order, shots };
        let r = match task.request() {
            Request::Generate { until } => {
                if backend.is_some() {
                    return Err(input(format!(
                        "{name}: generation runs on the built-in model; plugin backends score log-likelihood tasks"
                    )));
                }
                let generator =
                    Generator { model: cpu()?, tok: &tok, mecab: &mut mecab, log: &mut log, progress };
                generator.run(s, &docs, &until, &mut rnd)?
            }
            Request::Choices => {
                let mut scorer: Box<dyn Scorer + '_> = match backend.as_deref_mut() {
                    None => Box::new(ModelScorer { model: cpu()?, batch: s.batch_size }),
                    Some(b) => Box::new(BackendScorer { backend: b, max_positions, batch: s.batch_size }),
                };
                score_task(&docs, &mut *scorer, &tok, &mut rnd, &mut log, progress)?
            }
        };
        progress.finish();
        out.results.insert(name.clone(), r);
        out.versions.insert(name.clone(), name.split_once('-').map_or("1.0", |(_, v)| v).into());
        out.n_shot.insert(name.clone(), shots);
    }
    log.finish()?;
    out.protocol_deltas = crate::protocol_deltas(&out);
    let texts = if s.bpb.is_empty() { vec![] } else { hashi_tokenizer::input::read_inputs(&s.bpb)? };
    for t in &texts {
        let b =
            crate::bits_per_byte(cpu()?, &tok, &t.lang, &t.docs, s.bpb_bytes).map_err(EvalError::Model)?;
        out.bits_per_byte.push(b);
    }
    Ok(out)
}

/// A task's documents in evaluation order, with the few-shot pool.
struct Docs<'a> {
    name: &'a str,
    task: Task,
    eval: &'a Split,
    pool: &'a Split,
    order: &'a [usize],
    /// Few-shot examples per prompt.
    shots: usize,
}

/// A log-likelihood choice task: accuracy (raw and length-normalised), balanced accuracy, MCC and macro-F1.
fn score_task(
    d: &Docs,
    scorer: &mut dyn Scorer,
    tok: &Tokenizer,
    rnd: &mut PyRandom,
    log: &mut RequestLog,
    progress: &dyn Reporter,
) -> Result<TaskResult, EvalError> {
    let (name, eval) = (d.name, d.eval);
    // The prompts first, in document order (the few-shot draws follow the harness' random stream), then every
    // question scored in batches, then the metrics in document order.
    let mut questions = Vec::with_capacity(d.order.len());
    let mut shots = Vec::with_capacity(d.order.len());
    let mut golds = Vec::with_capacity(d.order.len());
    for &i in d.order {
        let doc = &eval.docs[i];
        let err = |e: String| input(format!("{name}: {}: {e}", eval.at(i)));
        let (context, fewshot) = d.task.fewshot_context(doc, &d.pool.docs, d.shots, rnd).map_err(|e| {
            input(format!("{name}: {} (few-shot examples from {}): {e}", eval.at(i), d.pool.path.display()))
        })?;
        questions.push(Question { context, choices: d.task.choices(doc).map_err(err)? });
        shots.push(fewshot);
        golds.push(d.task.gold(doc).map_err(err)? as i64);
    }
    let scores = scorer
        .score(tok, &questions, &mut |_| progress.advance(1))
        .map_err(|(q, e)| input(format!("{name}: {}: {e}", eval.at(d.order[q]))))?;
    let (mut preds, mut preds_norm, mut chance) = (vec![], vec![], vec![]);
    for (((&i, q), scored), fewshot) in d.order.iter().zip(&questions).zip(&scores).zip(&shots) {
        let choices = &q.choices;
        chance.push(1.0 / choices.len().max(1) as f64);
        for (c, sc) in choices.iter().zip(scored) {
            log.write(&json!({"task": name, "doc": i, "context": q.context, "continuation": c,
                              "loglikelihood": sc.loglikelihood, "is_greedy": sc.is_greedy, "fewshot": fewshot}))?;
        }
        let argmax =
            |f: &dyn Fn(usize) -> f64| (0..choices.len()).fold(0, |b, c| if f(c) > f(b) { c } else { b });
        preds.push(argmax(&|c| scored[c].loglikelihood) as i64);
        preds_norm
            .push(argmax(&|c| scored[c].loglikelihood / choices[c].chars().count().max(1) as f64) as i64);
    }
    let hits =
        |p: &[i64]| -> Vec<f64> { golds.iter().zip(p).map(|(g, p)| f64::from(u8::from(g == p))).collect() };
    let (acc, acc_n) = (hits(&preds), hits(&preds_norm));
    let mut counts: std::collections::BTreeMap<i64, usize> = Default::default();
    for g in &golds {
        *counts.entry(*g).or_default() += 1;
    }
    let majority = counts.values().max().map(|&n| n as f64 / golds.len() as f64);
    Ok(TaskResult {
        docs: golds.len(),
        acc: Some(mean(&acc)),
        acc_stderr: Some(stderr_of_mean(&acc)),
        acc_norm: Some(mean(&acc_n)),
        acc_norm_stderr: Some(stderr_of_mean(&acc_n)),
        balanced_acc: Some(balanced_accuracy(&golds, &preds)),
        mcc: Some(mcc(&golds, &preds)),
        macro_f1: Some(macro_f1(&golds, &preds)),
        chance: Some(mean(&chance)),
        majority_baseline: majority,
        ..Default::default()
    })
}

/// What a generation task needs besides its data.
struct Generator<'a> {
    model: &'a Llama,
    tok: &'a Tokenizer,
    mecab: &'a mut Option<crate::qa::Mecab>,
    log: &'a mut RequestLog,
    progress: &'a dyn Reporter,
}

impl Generator<'_> {
    /// JSQuAD/JaQuAD (EM and F1 over MeCab words, ×100 as upstream) and MGSM (accuracy of the extracted number).
    fn run(
        self,
        s: &EvalSettings,
        d: &Docs,
        until: &[&str],
        rnd: &mut PyRandom,
    ) -> Result<TaskResult, EvalError> {
        let (name, task, eval) = (d.name, d.task, d.eval);
        let mgsm = matches!(task.dataset, crate::Dataset::Mgsm);
        if !mgsm && self.mecab.is_none() {
            let dir = s.mecab_dict.as_ref().ok_or_else(|| {
                input(format!(
                    "{name} needs a MeCab dictionary for its F1: pip install unidic-lite, then pass --mecab-dict \
                     \"$(python -c 'import unidic_lite; print(unidic_lite.DICDIR)')\" (or set HASHI_MECAB_DIC)"
                ))
            })?;
            *self.mecab =
                Some(crate::qa::Mecab::open(dir).map_err(|e| input(format!("{}: {e}", dir.display())))?);
        }
        let max_len = self.model.config().max_position_embeddings;
        let (mut em, mut f1, mut acc) = (vec![], vec![], vec![]);
        let (mut truncated, mut dropped) = (0usize, 0usize);
        for &i in d.order {
            let doc = &eval.docs[i];
            let err = |e: String| input(format!("{name}: {}: {e}", eval.at(i)));
            let golds = task.answers(doc).map_err(err)?;
            let ctx = if mgsm || matches!(task.dataset, crate::Dataset::JaqketV2) {
                // Upstream's MGSM and JaQKET draw the examples again with one shot fewer while the prompt's
                // tokens (without special tokens) leave no room for the answer: MGSM's generation budget, JaQKET's
                // longest gold answer.
                let reserve = if mgsm { s.max_gen_toks } else { longest_answer(self.tok, &golds)? };
                let room = max_len.saturating_sub(reserve);
                let tok = self.tok;
                let fit = task
                    .fitted_fewshot_context(doc, &d.pool.docs, d.shots, rnd, |c| {
                        Ok(tok.encode(c, false).map_err(|e| e.to_string())?.len() <= room)
                    })
                    .map_err(err)?;
                if !fit.fits && !s.truncate_overlong {
                    return Err(err(format!(
                        "even the 0-shot prompt does not fit in {room} tokens ({max_len} positions less {reserve} \
                         for the answer); pass --truncate-overlong to cut it from the left"
                    )));
                }
                dropped += fit.dropped;
                fit.context
            } else {
                task.fewshot_context(doc, &d.pool.docs, d.shots, rnd).map_err(err)?.0
            };
            // Upstream's DYNAMIC_MAX_LENGTH: at most as many tokens as the longest gold answer (MGSM: its budget).
            let max_tokens = if mgsm { s.max_gen_toks } else { longest_answer(self.tok, &golds)? };
            let g = crate::greedy_until(self.model, self.tok, &ctx, until, max_tokens).map_err(err)?;
            truncated += usize::from(g.truncated);
            let mut rec =
                json!({"task": name, "doc": i, "context": ctx, "generation": g.text, "golds": golds});
            if mgsm {
                let want: f64 = golds[0].parse().map_err(|_| err(format!("answer_number {:?}", golds[0])))?;
                let got = crate::mgsm_answer(&g.text);
                acc.push(f64::from(u8::from(got == Some(want))));
                rec["extracted"] = json!(got);
            } else {
                let mecab = self.mecab.as_ref().ok_or_else(|| input("MeCab dictionary"))?;
                let (e, f) = crate::qa::score(mecab, &g.text, &golds);
                em.push(100.0 * e);
                f1.push(100.0 * f);
                rec["exact_match"] = json!(100.0 * e);
                rec["f1"] = json!(100.0 * f);
            }
            self.log.write(&rec)?;
            self.progress.advance(1);
        }
        Ok(if mgsm {
            TaskResult {
                docs: acc.len(),
                acc: Some(mean(&acc)),
                acc_stderr: Some(stderr_of_mean(&acc)),
                shots_dropped_to_fit: Some(dropped),
                truncated_contexts: Some(truncated),
                ..Default::default()
            }
        } else {
            TaskResult {
                docs: em.len(),
                exact_match: Some(mean(&em)),
                exact_match_stderr: Some(stderr_of_mean(&em)),
                f1: Some(mean(&f1)),
                f1_stderr: Some(stderr_of_mean(&f1)),
                truncated_contexts: Some(truncated),
                shots_dropped_to_fit: Some(dropped),
                max_tokens: Some("longest gold answer (upstream DYNAMIC_MAX_LENGTH)".into()),
                ..Default::default()
            }
        })
    }
}
