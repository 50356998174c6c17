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

fn task_of(upstream: &str) -> LlmJpTask {
    LlmJpTask::from_name(&format!("llmjp-1.3.0:{upstream}")).expect("task")
}

/// The evaluated samples of a task as `(source line index, sample)`.
fn samples(task: LlmJpTask) -> Vec<(usize, hashi_eval::llmjp::Sample)> {
    let (dir, split) = task.files();
    shared_jsonl(&format!("eval/{dir}/{split}.jsonl"))
        .iter()
        .enumerate()
        .filter_map(|(i, d)| task.sample(d).expect("sample").map(|s| (i, s)))
        .collect()
}

#[test]
fn samples_fewshots_and_prompts_equal_upstreams() {
    let templates: Value = serde_json::from_str(
        &std::fs::read_to_string(shared("golden/swallow/templates.json")).expect("read"),
    )
    .expect("json");
    let golden_samples = shared_jsonl("golden/swallow/samples.jsonl");
    let golden_prompts = shared_jsonl("golden/swallow/prompts.jsonl");
    let (mut n_samples, mut n_prompts) = (0, 0);
    for (upstream, t) in templates.as_object().expect("object") {
        let task = task_of(upstream);
        assert_eq!(task.instruction(), t["instruction"], "{upstream}");
        assert_eq!(task.output_length(), t["output_length"], "{upstream}");
        assert_eq!(task.num_fewshot(), t["num_fewshot"], "{upstream}");
        assert_eq!(serde_json::json!([task.metric().name()]), t["metrics"], "{upstream}");
        let pool = shared_jsonl(&format!("eval/{}/train.jsonl", task.files().0));
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
    let rows = shared_jsonl("golden/swallow/scores.jsonl");
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
        assert!(
            (em / n as f64 - want["exact_match"].as_f64().expect("em")).abs() < 1e-9,
            "{task}: exact_match"
        );
        assert!((f1 / n as f64 - want["char_f1"].as_f64().expect("f1")).abs() < 1e-9, "{task}: char_f1");
    }
}

/// `hashi eval --protocols jp-stable,llmjp` on the mini's model: the prompts it generated for are upstream's (the
/// first documents of every task, byte for byte), the generations and scores are the same whether documents are
/// generated one at a time or 8 or 32 together, and the datasets both protocols score get a delta row.
#[test]
fn hashi_eval_generates_for_upstreams_prompts_at_any_batch_size() {
    let dir = scratch_dir("llmjp-eval");
    let model = repo_root().join("examples/mini/base/model");
    let data = shared("eval");
    let run = |batch: usize, protocols: &str| -> (Value, Vec<Value>) {
        let out = dir.join(format!("b{batch}.json"));
        let log = dir.join(format!("b{batch}.jsonl"));
        let mecab = unidic_dir();
        hashi_ok(&[
            "--quiet",
            "eval",
            "--model",
            model.to_str().expect("utf-8"),
            "--data",
            data.to_str().expect("utf-8"),
            "--protocols",
            protocols,
            "--limit",
            "6",
            "--truncate-overlong",
            "--batch-size",
            &batch.to_string(),
            "--out",
            out.to_str().expect("utf-8"),
            "--log-requests",
            log.to_str().expect("utf-8"),
            "--mecab-dict",
            mecab.to_str().expect("utf-8"),
        ]);
        let results: Value =
            serde_json::from_str(&std::fs::read_to_string(&out).expect("results")).expect("json");
        let reqs = std::fs::read_to_string(&log)
            .expect("log")
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("json"))
            .filter(|r| r["task"].as_str().is_some_and(|t| t.starts_with("llmjp-")))
            .collect();
        (results, reqs)
    };
    let (one, reqs1) = run(1, "llmjp");
    let golden = shared_jsonl("golden/swallow/prompts.jsonl");
    let mut checked = 0;
    for r in &reqs1 {
        let task = r["task"].as_str().expect("task").trim_start_matches("llmjp-1.3.0:");
        let doc = r["doc"].as_u64().expect("doc");
        let want =
            golden.iter().find(|g| g["task"] == task && g["source_index"] == doc).expect("golden prompt");
        assert_eq!(r["context"], want["prompt"], "{task} doc {doc}: the prompt generated for");
        assert_eq!(r["max_new_tokens"], want["max_new_tokens"], "{task}");
        assert_eq!(r["gold"], want["gold_normalized"], "{task} doc {doc}");
        assert_eq!(
            r["pred"].as_str(),
            Some(scoring::answer(r["generation"].as_str().expect("text")).as_str())
        );
        checked += 1;
    }
    assert_eq!(checked, 30, "6 documents of each of the 5 tasks");
    assert_eq!(one["config"]["llmjp_add_special_tokens"], true);
    assert_eq!(one["n-shot"]["llmjp-1.3.0:jmmlu"], 5);
    assert_eq!(one["n-shot"]["llmjp-1.3.0:niilc"], 4);
    assert_eq!(one["results"]["llmjp-1.3.0:jcommonsenseqa"]["chance"], 0.2);
    assert_eq!(one["results"]["llmjp-1.3.0:niilc"]["main_metric"], "char_f1");
    for batch in [8, 32] {
        let (r, reqs) = run(batch, "llmjp");
        let gens = |v: &[Value]| v.iter().map(|r| r["generation"].clone()).collect::<Vec<_>>();
        assert_eq!(gens(&reqs), gens(&reqs1), "batch {batch}: the same generations");
        assert_eq!(r["results"], one["results"], "batch {batch}: the same scores");
    }
    let (both, _) = run(8, "jp-stable,llmjp");
    let deltas = both["protocol_deltas"].as_array().expect("protocol deltas");
    let datasets: Vec<&str> = deltas.iter().map(|d| d["dataset"].as_str().expect("dataset")).collect();
    assert_eq!(datasets, ["JCommonsenseQA", "JSQuAD"]);
    for d in deltas {
        let (jp, lj) = (d["jp_stable"][2].as_f64().expect("score"), d["llmjp"][2].as_f64().expect("score"));
        assert!((d["delta"].as_f64().expect("delta") - (lj - jp)).abs() < 1e-12);
        assert_eq!(d["same_documents"], false, "--limit picks different documents in the two protocols");
    }
    let jcqa = &both["results"]["llmjp-1.3.0:jcommonsenseqa"];
    assert_eq!(deltas[0]["llmjp"][2].as_f64(), jcqa["exact_match"].as_f64().map(|x| 100.0 * x));
    remove_scratch(&dir);
}
