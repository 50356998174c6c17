//! Runs one llm-jp-eval task ([`crate::llmjp`]) on the built-in model: upstream's samples and few-shot examples,
//! the prompt, greedy generation of at most `output_length` new tokens, the answer and both metrics per document,
//! JMMLU's categories, and the chance and majority-answer baselines under the official metric.

use std::collections::BTreeMap;

use hashi_core::Reporter;
use hashi_model::Llama;
use hashi_tokenizer::Tokenizer;
use serde_json::json;

use crate::harness::{EvalError, RequestLog, Split, input, mean, stderr_of_mean};
use crate::llmjp::{LlmJpTask, Metric, Sample, jmmlu, prompt, scoring};
use crate::results::TaskResult;

/// What a run of one task needs besides its data.
pub(crate) struct LlmJpRun<'a> {
    pub(crate) model: &'a Llama,
    pub(crate) tok: &'a Tokenizer,
    pub(crate) add_special_tokens: bool,
    pub(crate) batch_size: usize,
    pub(crate) truncate_overlong: bool,
    pub(crate) limit: Option<usize>,
    pub(crate) log: &'a mut RequestLog,
    pub(crate) progress: &'a dyn Reporter,
}

/// The evaluated documents of a task: `(index in the evaluation file, sample)`, in upstream's order (the file's).
///
/// # Errors
/// [`EvalError::Input`] naming `file:line` of a record that is not the task's schema, or an empty split.
pub(crate) fn samples(name: &str, task: LlmJpTask, eval: &Split) -> Result<Vec<(usize, Sample)>, EvalError> {
    let mut out = vec![];
    for (i, doc) in eval.docs.iter().enumerate() {
        match task.sample(doc) {
            Ok(Some(s)) => out.push((i, s)),
            Ok(None) => {}
            Err(e) => return Err(input(format!("{name}: {}: {e}", eval.at(i)))),
        }
    }
    if out.is_empty() {
        return Err(input(format!("{name}: {}: no documents to evaluate", eval.path.display())));
    }
    Ok(out)
}

/// Mean of `metric(answer, gold)` over the golds when every answer is the most frequent gold (ties: the first
/// in sorted order), and the uniform-random expectation for multiple choice.
fn baselines(task: LlmJpTask, golds: &[String]) -> (Option<f64>, f64) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for g in golds {
        *counts.entry(g.as_str()).or_default() += 1;
    }
    let top = counts.iter().fold(("", 0), |best, (g, &n)| if n > best.1 { (g, n) } else { best }).0;
    let score = |p: &str, g: &str| match task.metric() {
        Metric::ExactMatch => scoring::exact_match(p, g),
        Metric::CharF1 => scoring::char_f1(p, g),
    };
    let majority = mean(&golds.iter().map(|g| score(top, g)).collect::<Vec<_>>());
    let chance = (!task.labels().is_empty()).then(|| 1.0 / task.labels().len() as f64);
    (chance, majority)
}

impl LlmJpRun<'_> {
    /// Scores `task` on `eval` with shots from `pool`.
    ///
    /// # Errors
    /// [`EvalError::Input`] naming the file and line of bad data; [`EvalError::Model`] when generation fails.
    pub(crate) fn run(
        self,
        name: &str,
        task: LlmJpTask,
        eval: &Split,
        pool: &Split,
    ) -> Result<TaskResult, EvalError> {
        let mut docs = samples(name, task, eval)?;
        let shots = task
            .fewshots(&pool.docs, task.num_fewshot())
            .map_err(|e| input(format!("{name}: {}: {e}", pool.path.display())))?;
        let shot_lines: Vec<usize> = shots.iter().map(|(i, _)| i + 1).collect();
        let shots: Vec<Sample> = shots.into_iter().map(|(_, s)| s).collect();
        docs.truncate(self.limit.unwrap_or(docs.len()));
        self.progress.start(name, Some(docs.len() as u64), "docs");
        // The instruction and shots are the same for every document: computed once.
        let head = self
            .tok
            .encode(&crate::llmjp::prompt_head(task.instruction(), &shots), self.add_special_tokens)
            .map_err(|e| EvalError::Model(format!("{name}: {e}")))?;
        let head = crate::PromptPrefix::new(self.model, head).map_err(EvalError::Model)?;
        let mut prompts = vec![];
        let mut ids = vec![];
        let room = self.model.config().max_position_embeddings.saturating_sub(task.output_length());
        for (i, sample) in &docs {
            let p = prompt(task.instruction(), &shots, &sample.input);
            let encoded = self
                .tok
                .encode(&p, self.add_special_tokens)
                .map_err(|e| EvalError::Model(format!("{name}: {}: {e}", eval.at(*i))))?;
            if encoded.len() > room && !self.truncate_overlong {
                return Err(input(format!(
                    "{name}: {}: the prompt is {} tokens, the model has room for {room} before the {} new tokens \
                     (--truncate-overlong cuts it from the left)",
                    eval.at(*i),
                    encoded.len(),
                    task.output_length()
                )));
            }
            ids.push(encoded);
            prompts.push(p);
        }
        let progress = self.progress;
        let gens = crate::greedy_batch(
            self.model,
            self.tok,
            Some(&head),
            ids,
            task.output_length(),
            self.batch_size,
            |_| progress.advance(1),
        )
        .map_err(|e| EvalError::Model(format!("{name}: {e}")))?;
        let (mut em, mut f1, mut golds) = (vec![], vec![], vec![]);
        let mut by_category: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        let (mut truncated, mut at_limit) = (0usize, 0usize);
        for (((i, sample), p), g) in docs.iter().zip(&prompts).zip(&gens) {
            truncated += usize::from(g.truncated);
            at_limit += usize::from(g.tokens == task.output_length());
            let pred = scoring::answer(&g.text);
            let gold = scoring::nfkc(&sample.output);
            let (e, f) = (scoring::exact_match(&pred, &gold), scoring::char_f1(&pred, &gold));
            if task == LlmJpTask::Jmmlu {
                let subject = eval.docs[*i].get("subject").and_then(|v| v.as_str()).unwrap_or("");
                let c = jmmlu::category(subject).ok_or_else(|| {
                    input(format!("{name}: {}: unknown JMMLU subject {subject:?}", eval.at(*i)))
                })?;
                let slot = by_category.entry(c).or_default();
                slot.0 += usize::from(e == 1.0);
                slot.1 += 1;
            }
            self.log.write(&json!({"task": name, "doc": i, "context": p, "generation": g.text,
                                   "pred": pred, "gold": gold, "exact_match": e, "char_f1": f,
                                   "fewshot_pool_lines": shot_lines,
                                   "max_new_tokens": task.output_length()}))?;
            em.push(e);
            f1.push(f);
            golds.push(gold);
        }
        self.progress.finish();
        let (chance, majority) = baselines(task, &golds);
        Ok(TaskResult {
            docs: em.len(),
            exact_match: Some(mean(&em)),
            exact_match_stderr: Some(stderr_of_mean(&em)),
            char_f1: Some(mean(&f1)),
            char_f1_stderr: Some(stderr_of_mean(&f1)),
            main_metric: Some(task.metric().name().into()),
            chance,
            majority_baseline: Some(majority),
            by_category: by_category
                .into_iter()
                .map(|(c, (hit, n))| (c.to_string(), hit as f64 / n as f64))
                .collect(),
            truncated_contexts: Some(truncated),
            generations_at_limit: Some(at_limit),
            max_tokens: Some(format!("{} (upstream output_length)", task.output_length())),
            ..Default::default()
        })
    }
}
