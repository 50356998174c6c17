//! `hashi eval`: few-shot evaluation of the choice tasks (Japanese harness prompts, byte-identical to upstream;
//! EleutherAI's MNLI/QNLI), results in the lm-evaluation-harness layout.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use hashi_core::Reporter;
use hashi_eval::metrics::{balanced_accuracy, macro_f1, mcc};
use hashi_eval::{PyRandom, Request, Task, score_choices};
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
    /// Tokens per language for bits-per-byte.
    #[arg(long, default_value_t = 50_000)]
    bpb_tokens: usize,
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
}

fn read_jsonl(path: &std::path::Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{}:{}: bad JSON", path.display(), i + 1))
        })
        .collect()
}

fn stderr_of_mean(xs: &[f64]) -> f64 {
    let n = xs.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let m = xs.iter().sum::<f64>() / n;
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() / n.sqrt()
}

pub fn run(a: EvalArgs, progress: &dyn Reporter) -> Result<()> {
    let model = Llama::load(&a.model)?;
    let tok = Tokenizer::from_file(&a.model)?;
    let mut results = serde_json::Map::new();
    let mut log = match &a.log_requests {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => None,
    };
    let (mut versions, mut nshot) = (serde_json::Map::new(), serde_json::Map::new());
    for name in &a.tasks {
        let task = Task::from_name(name).with_context(|| {
            let known: Vec<&str> = Task::ALL.iter().map(|(n, _)| *n).collect();
            format!("unknown task {name:?} (known: {})", known.join(", "))
        })?;
        if task.request() != Request::Choices {
            bail!(
                "task {name} is scored by generation, which `hashi eval` does not run yet (choice tasks only)"
            );
        }
        let (dir, split) = task.data();
        let eval = read_jsonl(&a.data.join(dir).join(format!("{split}.jsonl")))?;
        let train = read_jsonl(&a.data.join(dir).join("train.jsonl"))?;
        let mut rnd = PyRandom::new(42);
        let mut order: Vec<usize> = (0..eval.len()).collect();
        rnd.shuffle(&mut order);
        order.truncate(a.limit.unwrap_or(order.len()));
        progress.start(name, Some(order.len() as u64), "docs");
        let (mut golds, mut preds, mut preds_norm) = (vec![], vec![], vec![]);
        for &i in &order {
            let doc = &eval[i];
            let err = |e: String| anyhow::anyhow!("{name}: document {i}: {e}");
            let (ctx, _) = task.fewshot_context(doc, &train, a.shots, &mut rnd).map_err(err)?;
            let choices = task.choices(doc).map_err(err)?;
            let scored = score_choices(&model, &tok, &ctx, &choices).map_err(err)?;
            if let Some(w) = log.as_mut() {
                use std::io::Write;
                for (c, s) in choices.iter().zip(&scored) {
                    let rec = json!({"task": name, "doc": i, "context": ctx, "continuation": c,
                                     "loglikelihood": s.loglikelihood, "is_greedy": s.is_greedy});
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
            hashi_eval::bits_per_byte(&model, &tok, &t.lang, &t.docs, a.bpb_tokens)
                .map_err(anyhow::Error::msg)
        })
        .collect::<Result<Vec<_>>>()?;
    let out = json!({
        "results": results,
        "bits_per_byte": bpb,
        "versions": versions,
        "n-shot": nshot,
        "config": {"model": a.model, "num_fewshot": a.shots, "limit": a.limit, "data": a.data,
                   "harness": "hashi (prompts of Stability-AI jp-stable effdbeaf / EleutherAI glue)"},
    });
    if let Some(p) = &a.out {
        std::fs::write(p, serde_json::to_string_pretty(&out)? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
    }
    for b in &bpb {
        println!(
            "bits per byte, {}: {:.4} ({} tokens, {} bytes)",
            b.lang, b.bits_per_byte, b.tokens, b.bytes
        );
    }
    if results.is_empty() {
        return Ok(());
    }
    println!("{:<26} {:>6} {:>8} {:>8} {:>8} {:>8}", "task", "docs", "acc", "acc_norm", "bal_acc", "mcc");
    for (name, r) in &results {
        let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "{name:<26} {:>6} {:>8.4} {:>8.4} {:>8.4} {:>8.4}",
            r["docs"],
            f("acc"),
            f("acc_norm"),
            f("balanced_acc"),
            f("mcc")
        );
    }
    Ok(())
}
