//! `hashi eval`: few-shot evaluation (Japanese harness prompts, byte-identical to upstream; EleutherAI's
//! MNLI/QNLI): log-likelihood choice tasks and greedy-generation tasks (JSQuAD, JaQuAD with EM/F1 over MeCab
//! words; MGSM), results in the lm-evaluation-harness layout.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use hashi_core::Reporter;
use hashi_eval::EvalSettings;

#[derive(Args)]
pub struct EvalArgs {
    /// The model directory (with its tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// Comma-separated tasks in upstream form (e.g. jcommonsenseqa-1.1-0.3,jnli-1.3-0.3,mnli,llmjp-1.3.0:niilc).
    #[arg(long, value_delimiter = ',', required_unless_present_any = ["bpb", "protocols"])]
    tasks: Vec<String>,
    /// Whole protocols: jp-stable (the method's), llmjp (llm-jp-eval v1.3.0 as Swallow runs it), swallow
    /// (Swallow's Japanese columns hashi scores: llmjp's and MGSM at 4 shots); jp-stable with another: a delta
    /// table.
    #[arg(long, value_delimiter = ',')]
    protocols: Vec<String>,
    /// llm-jp-eval: prompts get the tokenizer's special tokens (BOS), as transformers' pipeline (recorded).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    llmjp_add_special_tokens: bool,
    /// Documents decoded together (llm-jp-eval) and questions scored together (choice tasks); scores do not
    /// depend on it.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
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
    /// Few-shot examples per prompt (llm-jp-eval tasks and Swallow's MGSM have their own).
    #[arg(long, default_value_t = 3)]
    shots: usize,
    /// Few-shot examples of single tasks evaluated, instead of --shots, as TASK=N (comma-separated; e.g.
    /// --tasks jnli-1.3-0.4,mgsm-1.0-0.3 --task-shots mgsm-1.0-0.3=4), over a protocol's own.
    #[arg(long, value_delimiter = ',', value_parser = parse_task_shots)]
    task_shots: Vec<(String, usize)>,
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
    /// on Japanese text). jp-stable's JSQuAD, JaQuAD and JaQKET prompts are always cut from the left and counted,
    /// as upstream's `greedy_until` does.
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

fn parse_task_shots(s: &str) -> Result<(String, usize), String> {
    let (task, n) = s.split_once('=').ok_or_else(|| format!("{s:?}: expected TASK=N"))?;
    let n = n.trim().parse().map_err(|_| format!("{s:?}: {n:?} is not a number of shots"))?;
    Ok((task.trim().to_string(), n))
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
    let tasks = hashi_eval::with_protocols(&a.tasks, &a.protocols)?;
    let mut explicit_shots = std::collections::BTreeMap::new();
    for (t, n) in &a.task_shots {
        if explicit_shots.insert(t.clone(), *n).is_some() {
            anyhow::bail!("--task-shots names {t} twice");
        }
    }
    let settings = EvalSettings {
        model: a.model.clone(),
        tasks: tasks.clone(),
        bpb: a.bpb.clone(),
        bpb_bytes: a.bpb_bytes,
        shots: a.shots,
        task_shots: hashi_eval::protocol_shots(&tasks, &a.protocols, &explicit_shots)?,
        limit: a.limit,
        data: a.data.clone(),
        log_requests: a.log_requests.clone(),
        mecab_dict: a.mecab_dict.clone(),
        max_gen_toks: a.max_gen_toks,
        truncate_overlong: a.truncate_overlong,
        llmjp_add_special_tokens: a.llmjp_add_special_tokens,
        batch_size: a.batch_size,
    };
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
    let scorer = backend.as_mut().map(|b| &mut **b as &mut dyn hashi_core::Backend);
    let results = hashi_eval::evaluate(&settings, scorer, progress)?;
    if let Some(p) = &a.out {
        results.write(p)?;
    }
    out!("{}", results.summary())?;
    Ok(())
}
