//! The Swallow protocol (llm-jp-eval v1.3.0) against the output of upstream's own code on the shared data
//! (`../shared/data/golden/swallow/`): every sample's input and gold, the few-shot picks, the prompts byte for byte
//! (library and `hashi eval`), and every scoring case (answer post-processing, `exact_match`, `char_f1` and its
//! token-sorted strings, the corpus-level means).

use hashi_eval::llmjp::{LlmJpTask, prompt, scoring};
use serde_json::Value;

use crate::common::*;

fn shared(rel: &str) -> std::path::PathBuf {
    repo_root().parent().expect("parent").join("shared/data").join(rel)
}

fn jsonl(rel: &str) -> Vec<Value> {
    let p = shared(rel);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

fn task_of(upstream: &str) -> LlmJpTask {
    LlmJpTask::from_name(&format!("llmjp-1.3.0:{upstream}")).expect("task")
}

/// The evaluated samples of a task as `(source line index, sample)`.
fn samples(task: LlmJpTask) -> Vec<(usize, hashi_eval::llmjp::Sample)> {
    let (dir, split) = task.files();
    jsonl(&format!("eval/{dir}/{split}.jsonl"))
        .iter()
        .enumerate()
        .filter_map(|(i, d)| task.sample(d).expect("sample").map(|s| (i, s)))
        .collect()
}

#[test]
fn samples_fewshots_and_prompts_equal_upstreams() {
    let templates: Value =
        serde_json::from_str(&std::fs::read_to_string(shared("golden/swallow/templates.json")).expect("read"))
            .expect("json");
    let golden_samples = jsonl("golden/swallow/samples.jsonl");
    let golden_prompts = jsonl("golden/swallow/prompts.jsonl");
    let (mut n_samples, mut n_prompts) = (0, 0);
    for (upstream, t) in templates.as_object().expect("object") {
        let task = task_of(upstream);
        assert_eq!(task.instruction(), t["instruction"], "{upstream}");
        assert_eq!(task.output_length(), t["output_length"], "{upstream}");
        assert_eq!(task.num_fewshot(), t["num_fewshot"], "{upstream}");
        assert_eq!(serde_json::json!([task.metric().name()]), t["metrics"], "{upstream}");
        let pool = jsonl(&format!("eval/{}/train.jsonl", task.files().0));
        let shots = task.fewshots(&pool, task.num_fewshot()).expect("shots");
        let want = t["fewshot"].as_array().expect("fewshot");
        assert_eq!(shots.len(), want.len(), "{upstream}");
        for ((line, s), w) in shots.iter().zip(want) {
            assert_eq!(*line, w["pool_index"], "{upstream}: few-shot pick");
            assert_eq!(s.input, w["input"], "{upstream}: few-shot input");
            assert_eq!(s.output, w["output"], "{upstream}: few-shot output");
        }
        let shots: Vec<_> = shots.into_iter().map(|(_, s)| s).collect();
        let ours = samples(task);
        let theirs: Vec<&Value> = golden_samples.iter().filter(|r| r["task"] == upstream.as_str()).collect();
        assert!(!theirs.is_empty(), "{upstream}");
        for (k, row) in theirs.iter().enumerate() {
            let (i, s) = &ours[row["doc_index"].as_u64().expect("doc_index") as usize];
            assert_eq!(row["doc_index"], k, "{upstream}: sample order");
            assert_eq!(row["source_index"], *i, "{upstream}: doc {k}: which record");
            assert_eq!(row["input"], s.input, "{upstream}: doc {k}: input");
            assert_eq!(row["gold"], s.output, "{upstream}: doc {k}: gold");
            n_samples += 1;
        }
        if upstream != "jsquad" {
            assert_eq!(ours.len(), theirs.len(), "{upstream}: every evaluated document");
        }
        for row in golden_prompts.iter().filter(|r| r["task"] == upstream.as_str()) {
            let (i, s) = &ours[row["doc_index"].as_u64().expect("doc_index") as usize];
            assert_eq!(row["source_index"], *i, "{upstream}");
            let p = prompt(task.instruction(), &shots, &s.input);
            assert_eq!(row["prompt"], p, "{upstream}: doc {}: prompt", row["doc_index"]);
            assert_eq!(t["prompt_prefix"].as_str().map(|x| p.starts_with(x)), Some(true), "{upstream}");
            assert_eq!(row["gold_normalized"], scoring::nfkc(&s.output), "{upstream}: normalised gold");
            n_prompts += 1;
        }
    }
    assert_eq!((n_samples, n_prompts), (4282, 150));
}

#[test]
fn every_scoring_case_equals_upstreams_value() {
    let rows = jsonl("golden/swallow/scores.jsonl");
    assert_eq!(rows.len(), 1023);
    let mut sums: std::collections::BTreeMap<String, (usize, f64, f64)> = Default::default();
    for (k, r) in rows.iter().enumerate() {
        let s = |f: &str| r[f].as_str().unwrap_or_else(|| panic!("row {k}: {f}"));
        let what = format!("scores.jsonl row {} ({} {})", k + 1, s("task"), s("kind"));
        let pred = scoring::answer(s("raw_output"));
        let gold = scoring::nfkc(s("gold_raw"));
        assert_eq!(pred, s("pred"), "{what}: answer");
        assert_eq!(gold, s("gold"), "{what}: gold");
        assert_eq!(scoring::token_sort_key(&pred), s("token_sort_pred"), "{what}: processed prediction");
        assert_eq!(scoring::token_sort_key(&gold), s("token_sort_gold"), "{what}: processed gold");
        let (em, f1) = (scoring::exact_match(&pred, &gold), scoring::char_f1(&pred, &gold));
        assert!((em - r["exact_match"].as_f64().expect("em")).abs() < 1e-9, "{what}: exact_match {em}");
        assert!((f1 - r["char_f1"].as_f64().expect("f1")).abs() < 1e-9, "{what}: char_f1 {f1}");
        let e = sums.entry(s("task").into()).or_default();
        *e = (e.0 + 1, e.1 + em, e.2 + f1);
    }
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(shared("golden/swallow/meta.json")).expect("read"))
            .expect("json");
    let aggregates = meta["scores_aggregate"].as_object().expect("scores_aggregate");
    assert_eq!(aggregates.len(), 5);
    // The 20 synthetic metric edge cases have no corpus-level score.
    assert_eq!(sums.get("synthetic").map(|s| s.0), Some(20));
    for (task, want) in aggregates {
        let (n, em, f1) = sums[task];
        assert_eq!(want["n"], n, "{task}");
        assert!((em / n as f64 - want["exact_match"].as_f64().expect("em")).abs() < 1e-9, "{task}: exact_match");
        assert!((f1 / n as f64 - want["char_f1"].as_f64().expect("f1")).abs() < 1e-9, "{task}: char_f1");
    }
}
