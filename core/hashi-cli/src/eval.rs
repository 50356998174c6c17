//! `hashi eval`: few-shot evaluation (Japanese harness prompts, byte-identical to upstream; EleutherAI's
//! MNLI/QNLI): log-likelihood choice tasks and greedy-generation tasks (JSQuAD, JaQuAD with EM/F1 over MeCab
//! words; MGSM), results in the lm-evaluation-harness layout.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use hashi_core::Reporter;
use hashi_eval::metrics::{balanced_accuracy, macro_f1, mcc};
use hashi_eval::{PyRandom, Request, Task, score_choices, score_choices_with};
use hashi_model::Llama;
use hashi_tokenizer::Tokenizer;
use serde_json::{Value, json};

#[derive(Args)]
pub struct EvalArgs {
    /// The model directory (with its tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// Comma-separated tasks in upstream form (e.g. jcommonsenseqa-1.1-0.3,jnli-1.3-0.3,jcola-0.2-0.3,mnli,qnli).
    #[arg(long, value_delimiter = ',', required_unless_present = "bpb")]
    tasks: Vec<String>,
    /// Held-out text for bits-per-byte (comparable across vocabularies), as LANG=PATH or LANG:FIELD=PATH.
    #[arg(long)]
    bpb: Vec<hashi_tokenizer::input::InputSpec>,
    /// UTF-8 bytes per language for bits-per-byte: whole documents in file order until this many bytes, the same
    /// text whatever the tokenizer (every token of them scored once, lm-eval's rolling log-likelihood).
    #[arg(long, default_value_t = 100_000)]
    bpb_bytes: usize,
    /// Replaced by --bpb-bytes (a token budget makes two tokenizers read different text): N tokens read as
    /// 4·N bytes, with a warning.
    #[arg(long, hide = true, conflicts_with = "bpb_bytes")]
    bpb_tokens: Option<usize>,
    /// Few-shot examples per prompt.
    #[arg(long, default_value_t = 3)]
    shots: usize,
    /// Evaluate only the first N documents (after upstream's seeded shuffle).
    #[arg(long)]
    limit: Option<usize>,
    /// Folder with the task data (`TASK/{train,validation,test}.jsonl`).
    #[arg(long, default_value = "../shared/data/eval")]
    data: PathBuf,
    /// Results JSON.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write every scored request (context, continuation, log-likelihood) as JSON lines here.
    #[arg(long)]
    log_requests: Option<PathBuf>,
    /// MeCab dictionary for QA F1 (a compiled UniDic folder, as the upstream scorer's unidic-lite:
    /// `python -c "import unidic_lite; print(unidic_lite.DICDIR)"`).
    #[arg(long, env = "HASHI_MECAB_DIC")]
    mecab_dict: Option<PathBuf>,
    /// New tokens at most for MGSM (lm-eval's max_gen_toks).
    #[arg(long, default_value_t = 256)]
    max_gen_toks: usize,
    /// Cut a prompt that does not fit even with zero shots from the left (counted in `truncated_contexts`)
    /// instead of failing as the upstream harness does (models with short contexts, e.g. an English tokenizer
    /// on Japanese text).
    #[arg(long)]
    truncate_overlong: bool,
    /// Score log-likelihood tasks with a backend plugin (e.g. torch, on a GPU) instead of the built-in model.
    #[arg(long)]
    backend: Option<String>,
    /// Options for the backend plugin (JSON object).
    #[arg(long, default_value = "{}")]
    backend_options: String,
    #[command(flatten)]
    plugins: crate::plugins::PluginArgs,
}

/// A JSONL split: its documents and the line each came from, so that every document error names `file:line`.
struct Split {
    path: PathBuf,
    docs: Vec<Value>,
    lines: Vec<usize>,
}

impl Split {
    /// Reads `path` (blank lines skipped; a UTF-8 byte-order mark at the start is ignored).
    fn read(path: &std::path::Path) -> Result<Self> {
        if path.is_dir() {
            bail!("{}: is a directory, not a JSONL file", path.display());
        }
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let (mut docs, mut lines) = (vec![], vec![]);
        for (i, l) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not a JSON document", path.display(), i + 1))?;
            if !v.is_object() {
                bail!("{}:{}: a document is a JSON object, not {v}", path.display(), i + 1);
            }
            docs.push(v);
            lines.push(i + 1);
        }
        Ok(Self { path: path.to_path_buf(), docs, lines })
    }

    /// An empty split (no few-shot pool is needed for zero shots).
    fn empty(path: &std::path::Path) -> Self {
        Self { path: path.to_path_buf(), docs: vec![], lines: vec![] }
    }

    /// `file:line` of document `i`.
    fn at(&self, i: usize) -> String {
        format!("{}:{}", self.path.display(), self.lines.get(i).copied().unwrap_or(0))
    }
}

/// Checks every document of the evaluation split and of the few-shot pool before anything is scored: the
/// split is not empty, the pool holds at least `shots` documents, and each document has what its role needs
/// (prompt, choices and gold label, or answers; a few-shot example also its target). Errors name `file:line`.
fn check_task_data(name: &str, task: Task, eval: &Split, train: &Split, shots: usize) -> Result<()> {
    if eval.docs.is_empty() {
        bail!("{name}: {}: no documents (the evaluation split is empty)", eval.path.display());
    }
    if shots > 0 && train.docs.len() < shots {
        bail!(
            "{name}: {}: the few-shot pool has {} documents, fewer than --shots {shots}",
            train.path.display(),
            train.docs.len()
        );
    }
    for (i, doc) in eval.docs.iter().enumerate() {
        let err = |e: String| anyhow::anyhow!("{name}: {}: {e}", eval.at(i));
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
            let err = |e: String| anyhow::anyhow!("{name}: {} (few-shot pool): {e}", train.at(i));
            task.example_text(doc).map_err(err)?;
            task.target(doc).map_err(err)?;
        }
    }
    Ok(())
}

fn stderr_of_mean(xs: &[f64]) -> f64 {
    let n = xs.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let m = xs.iter().sum::<f64>() / n;
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() / n.sqrt()
}

pub fn run(mut a: EvalArgs, progress: &dyn Reporter) -> Result<()> {
    if let Some(tokens) = a.bpb_tokens {
        a.bpb_bytes = tokens.saturating_mul(4);
        tracing::warn!(
            "--bpb-tokens {tokens} is replaced by --bpb-bytes (a token budget makes two tokenizers read \
             different text): reading {} bytes per language",
            a.bpb_bytes
        );
    }
    // The built-in model is loaded only when something runs on it: without a plugin backend, or for bits per
    // byte (generation tasks are refused with a backend).
    let max_positions = hashi_model::Checkpoint::open(&a.model)?.config().max_position_embeddings;
    let model = match a.backend.is_none() || !a.bpb.is_empty() {
        true => Some(Llama::load(&a.model)?.detached()?),
        false => None,
    };
    let cpu = || model.as_ref().context("the built-in model is not loaded when scoring through a backend");
    let tok = Tokenizer::from_file(&a.model)?;
    let registry;
    let mut backend = match &a.backend {
        None => None,
        Some(name) => {
            registry = a.plugins.registry()?;
            let b = registry.backend(name)?.isolated_backend(&a.model, &a.backend_options)?;
            tracing::info!(backend = %b.name(), "scoring log-likelihoods with a plugin");
            Some(b)
        }
    };
    let mut results = serde_json::Map::new();
    let mut log = match &a.log_requests {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => None,
    };
    let (mut versions, mut nshot) = (serde_json::Map::new(), serde_json::Map::new());
    let mut mecab: Option<hashi_eval::qa::Mecab> = None;
    for name in &a.tasks {
        let task = Task::from_name(name).with_context(|| {
            let known: Vec<&str> = Task::ALL.iter().map(|(n, _)| *n).collect();
            format!("unknown task {name:?} (known: {})", known.join(", "))
        })?;
        let (dir, split) = task.data();
        let eval = Split::read(&a.data.join(dir).join(format!("{split}.jsonl")))?;
        let train_path = a.data.join(dir).join("train.jsonl");
        let train = if a.shots == 0 && !train_path.exists() {
            Split::empty(&train_path)
        } else {
            Split::read(&train_path)?
        };
        check_task_data(name, task, &eval, &train, a.shots)?;
        if a.limit == Some(0) {
            bail!("--limit 0 evaluates no documents");
        }
        let fewshot_err = |i: usize, e: String| {
            anyhow::anyhow!("{name}: {} (few-shot examples from {}): {e}", eval.at(i), train.path.display())
        };
        // The Japanese harness shuffles the documents with `Random(42)` and samples shots from that stream;
        // EleutherAI's keeps the dataset order and samples with the task's `Random(1234)` few-shot generator.
        let eleuther = task.eleuther();
        let mut rnd = PyRandom::new(if eleuther { 1234 } else { 42 });
        let mut order: Vec<usize> = (0..eval.docs.len()).collect();
        if !eleuther {
            rnd.shuffle(&mut order);
        }
        order.truncate(a.limit.unwrap_or(order.len()));
        progress.start(name, Some(order.len() as u64), "docs");
        if let Request::Generate { until } = task.request() {
            if backend.is_some() {
                bail!(
                    "{name}: generation runs on the built-in model; plugin backends score log-likelihood tasks"
                );
            }
            let ctx = GenContext { model: cpu()?, tok: &tok, mecab: &mut mecab, log: &mut log, progress };
            let r = run_generation(&a, name, task, &until, &eval, &train.docs, &order, &mut rnd, ctx)?;
            progress.finish();
            results.insert(name.clone(), r);
            let version = name.split_once('-').map_or("1.0", |(_, v)| v);
            versions.insert(name.clone(), version.into());
            nshot.insert(name.clone(), a.shots.into());
            continue;
        }
        let (mut golds, mut preds, mut preds_norm) = (vec![], vec![], vec![]);
        for &i in &order {
            let doc = &eval.docs[i];
            let err = |e: String| anyhow::anyhow!("{name}: {}: {e}", eval.at(i));
            let (ctx, shots) =
                task.fewshot_context(doc, &train.docs, a.shots, &mut rnd).map_err(|e| fewshot_err(i, e))?;
            let choices = task.choices(doc).map_err(err)?;
            let scored = match backend.as_mut() {
                None => score_choices(cpu()?, &tok, &ctx, &choices).map_err(err)?,
                Some(b) => {
                    let mut lp = |rows: &[Vec<u32>]| b.logprobs(rows).map_err(|e| e.to_string());
                    score_choices_with(&mut lp, &tok, max_positions, &ctx, &choices).map_err(err)?
                }
            };
            if let Some(w) = log.as_mut() {
                use std::io::Write;
                for (c, s) in choices.iter().zip(&scored) {
                    let rec = json!({"task": name, "doc": i, "context": ctx, "continuation": c,
                                     "loglikelihood": s.loglikelihood, "is_greedy": s.is_greedy,
                                     "fewshot": shots});
                    writeln!(w, "{rec}")?;
                }
            }
            let argmax =
                |f: &dyn Fn(usize) -> f64| (0..choices.len()).fold(0, |b, c| if f(c) > f(b) { c } else { b });
            preds.push(argmax(&|c| scored[c].loglikelihood) as i64);
            preds_norm
                .push(argmax(&|c| scored[c].loglikelihood / choices[c].chars().count().max(1) as f64) as i64);
            golds.push(task.gold(doc).map_err(err)? as i64);
            progress.advance(1);
        }
        progress.finish();
        let acc: Vec<f64> = golds.iter().zip(&preds).map(|(g, p)| f64::from(u8::from(g == p))).collect();
        let acc_n: Vec<f64> =
            golds.iter().zip(&preds_norm).map(|(g, p)| f64::from(u8::from(g == p))).collect();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        results.insert(
            name.clone(),
            json!({
                "acc": mean(&acc), "acc_stderr": stderr_of_mean(&acc),
                "acc_norm": mean(&acc_n), "acc_norm_stderr": stderr_of_mean(&acc_n),
                "balanced_acc": balanced_accuracy(&golds, &preds), "mcc": mcc(&golds, &preds),
                "macro_f1": macro_f1(&golds, &preds), "docs": golds.len(),
            }),
        );
        let version = name.split_once('-').map_or("1.0", |(_, v)| v);
        versions.insert(name.clone(), version.into());
        nshot.insert(name.clone(), a.shots.into());
    }
    if let Some(mut w) = log {
        use std::io::Write;
        w.flush()?;
    }
    let texts = if a.bpb.is_empty() { vec![] } else { hashi_tokenizer::input::read_inputs(&a.bpb)? };
    let bpb = texts
        .iter()
        .map(|t| {
            hashi_eval::bits_per_byte(cpu()?, &tok, &t.lang, &t.docs, a.bpb_bytes).map_err(anyhow::Error::msg)
        })
        .collect::<Result<Vec<_>>>()?;
    let out = json!({
        "results": results,
        "bits_per_byte": bpb,
        "versions": versions,
        "n-shot": nshot,
        "config": {"model": a.model, "num_fewshot": a.shots, "limit": a.limit, "data": a.data,
                   "truncate_overlong": a.truncate_overlong,
                   "harness": "hashi (prompts of Stability-AI jp-stable effdbeaf / EleutherAI glue)"},
    });
    if let Some(p) = &a.out {
        std::fs::write(p, serde_json::to_string_pretty(&out)? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
    }
    for b in &bpb {
        outln!(
            "bits per byte, {}: {:.4} ({} documents, {} bytes, {} tokens)",
            b.lang,
            b.bits_per_byte,
            b.documents,
            b.bytes,
            b.tokens
        )?;
    }
    if results.is_empty() {
        return Ok(());
    }
    outln!("{:<26} {:>6}  metrics", "task", "docs")?;
    for (name, r) in &results {
        let shown: Vec<String> = ["acc", "acc_norm", "balanced_acc", "mcc", "exact_match", "f1"]
            .iter()
            .filter_map(|k| r[*k].as_f64().map(|v| format!("{k} {v:.4}")))
            .collect();
        outln!("{name:<26} {:>6}  {}", r["docs"], shown.join(", "))?;
        if let Some(n) = r["truncated_contexts"].as_u64().filter(|&n| n > 0) {
            outln!("{:<26} {n} prompts cut from the left to fit the model's positions", "")?;
        }
        for key in ["shots_dropped_to_fit", "pieces_dropped_to_fit"] {
            if let Some(n) = r[key].as_u64().filter(|&n| n > 0) {
                outln!("{:<26} {n} few-shot pieces dropped to fit (upstream's rule)", "")?;
            }
        }
    }
    Ok(())
}

/// What a generation task needs besides its data.
struct GenContext<'a> {
    model: &'a Llama,
    tok: &'a Tokenizer,
    mecab: &'a mut Option<hashi_eval::qa::Mecab>,
    log: &'a mut Option<std::io::BufWriter<std::fs::File>>,
    progress: &'a dyn Reporter,
}

/// JSQuAD/JaQuAD (EM and F1 over MeCab words, ×100 as upstream) and MGSM (accuracy of the extracted number).
#[allow(clippy::too_many_arguments)]
fn run_generation(
    a: &EvalArgs,
    name: &str,
    task: Task,
    until: &[&str],
    eval: &Split,
    train: &[Value],
    order: &[usize],
    rnd: &mut PyRandom,
    c: GenContext<'_>,
) -> Result<Value> {
    let mgsm = matches!(task.dataset, hashi_eval::Dataset::Mgsm);
    if !mgsm && c.mecab.is_none() {
        let dir = a.mecab_dict.as_ref().with_context(|| {
            format!(
                "{name} needs a MeCab dictionary for its F1: pip install unidic-lite, then pass --mecab-dict \
                 \"$(python -c 'import unidic_lite; print(unidic_lite.DICDIR)')\" (or set HASHI_MECAB_DIC)"
            )
        })?;
        *c.mecab = Some(hashi_eval::qa::Mecab::open(dir)?);
    }
    let max_len = c.model.config().max_position_embeddings;
    let (mut em, mut f1, mut acc) = (vec![], vec![], vec![]);
    let (mut truncated, mut dropped) = (0usize, 0usize);
    for &i in order {
        let doc = &eval.docs[i];
        let err = |e: String| anyhow::anyhow!("{name}: {}: {e}", eval.at(i));
        let (ctx, _) = task.fewshot_context(doc, train, a.shots, rnd).map_err(err)?;
        let golds = task.answers(doc).map_err(err)?;
        let (ctx, max_tokens) = if mgsm {
            let room = max_len.saturating_sub(a.max_gen_toks);
            let (ctx, d) = match hashi_eval::fit_mgsm_context(c.tok, &ctx, room) {
                Ok(fit) => fit,
                Err(_) if a.truncate_overlong => {
                    // The zero-shot prompt: the description and the last question.
                    let parts: Vec<&str> = ctx.split("問題：").collect();
                    match parts.as_slice() {
                        [head, .., last] if parts.len() > 1 => {
                            (format!("{head}問題：{last}"), parts.len() - 2)
                        }
                        _ => (ctx.clone(), 0),
                    }
                }
                Err(e) => return Err(err(e)),
            };
            dropped += d;
            (ctx, a.max_gen_toks)
        } else {
            // Upstream's DYNAMIC_MAX_LENGTH: at most as many tokens as the longest gold answer.
            let longest = golds
                .iter()
                .map(|g| c.tok.encode(g, false).map(|v| v.len()))
                .collect::<std::result::Result<Vec<_>, _>>()?
                .into_iter()
                .max()
                .unwrap_or(1);
            let longest = longest.max(1);
            if matches!(task.dataset, hashi_eval::Dataset::JaqketV2) {
                let room = max_len.saturating_sub(longest);
                let (ctx, d) = match hashi_eval::fit_by_separator(c.tok, &ctx, room, "\n\n") {
                    Ok(fit) => fit,
                    Err(_) if a.truncate_overlong => (ctx.clone(), 0),
                    Err(e) => return Err(err(e)),
                };
                dropped += d;
                (ctx, longest)
            } else {
                (ctx, longest)
            }
        };
        let g = hashi_eval::greedy_until(c.model, c.tok, &ctx, until, max_tokens).map_err(err)?;
        truncated += usize::from(g.truncated);
        let mut rec = json!({"task": name, "doc": i, "context": ctx, "generation": g.text, "golds": golds});
        if mgsm {
            let want: f64 = golds[0].parse().map_err(|_| err(format!("answer_number {:?}", golds[0])))?;
            let got = hashi_eval::mgsm_answer(&g.text);
            acc.push(f64::from(u8::from(got == Some(want))));
            rec["extracted"] = json!(got);
        } else {
            let mecab = c.mecab.as_ref().context("MeCab dictionary")?;
            let (e, f) = hashi_eval::qa::score(mecab, &g.text, &golds);
            em.push(100.0 * e);
            f1.push(100.0 * f);
            rec["exact_match"] = json!(100.0 * e);
            rec["f1"] = json!(100.0 * f);
        }
        if let Some(w) = c.log.as_mut() {
            use std::io::Write;
            writeln!(w, "{rec}")?;
        }
        c.progress.advance(1);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    Ok(if mgsm {
        json!({"acc": mean(&acc), "acc_stderr": stderr_of_mean(&acc), "docs": acc.len(),
               "shots_dropped_to_fit": dropped, "truncated_contexts": truncated})
    } else {
        json!({"exact_match": mean(&em), "exact_match_stderr": stderr_of_mean(&em), "f1": mean(&f1),
               "f1_stderr": stderr_of_mean(&f1), "docs": em.len(), "truncated_contexts": truncated,
               "pieces_dropped_to_fit": dropped,
               "max_tokens": "longest gold answer (upstream DYNAMIC_MAX_LENGTH)"})
    })
}
