//! Evaluation against its upstreams: `PyRandom` reproduces CPython's `random.Random` draw for draw, and the task
//! prompts, document order, few-shot picks and requests equal the 165 golden prompts that the upstream Japanese
//! harness produced (`../shared/data/golden/jp-harness/`) and the 150 of every prompt version of its eight Japanese
//! tasks (`tests/fixtures/eval/jp-stable/`, made by `tests/python/jp_stable_prompts.py` from upstream's code).

use hashi_eval::PyRandom;

use crate::common::*;

#[test]
fn pyrandom_matches_cpython_random() {
    let want: serde_json::Value =
        serde_json::from_str(&run_python("pyrandom_reference.py", &[])).expect("json");
    for seed in [0u64, 1, 42, 1234, (1 << 40) + 7] {
        let w = &want[seed.to_string()];
        let mut r = PyRandom::new(seed);
        let mut xs: Vec<u64> = (0..100).collect();
        r.shuffle(&mut xs);
        assert_eq!(serde_json::json!(xs), w["shuffle100"], "seed {seed}: shuffle");
        let big: Vec<u64> = (0..8939).collect();
        assert_eq!(serde_json::json!(r.sample(&big, 3)), w["sample_big"], "seed {seed}: sample (set method)");
        let pool: Vec<u64> = (0..8).collect();
        assert_eq!(
            serde_json::json!(r.sample(&pool, 3)),
            w["sample_pool"],
            "seed {seed}: sample (pool method)"
        );
        let mid: Vec<u64> = (0..60).collect();
        assert_eq!(serde_json::json!(r.sample(&mid, 10)), w["sample_k10"], "seed {seed}: sample k=10");
        let bits: Vec<u64> = [1, 7, 31, 32, 33, 40, 64].iter().map(|&k| r.getrandbits(k)).collect();
        assert_eq!(serde_json::json!(bits), w["bits"], "seed {seed}: getrandbits");
        // Compared as integers (random() is k / 2^53 exactly), immune to decimal round trips.
        let floats: Vec<u64> = (0..5).map(|_| (r.random() * 9_007_199_254_740_992.0) as u64).collect();
        assert_eq!(serde_json::json!(floats), w["random_x2p53"], "seed {seed}: random()");
        let below: Vec<u64> = [1u64, 2, 3, 1000, (1 << 33) + 5].iter().map(|&n| r.randbelow(n)).collect();
        assert_eq!(serde_json::json!(below), w["below"], "seed {seed}: randrange");
    }
}

/// Asserts that `rows` (golden prompts of task `name`, in upstream's document order) are what hashi builds from
/// `train` and `eval`: the seed-42 order, the few-shot picks, the context byte for byte, the request with its
/// continuations or stop strings. Returns the documents' indices in `eval`.
fn assert_golden_prompts(
    name: &str,
    task: hashi_eval::Task,
    rows: &[&serde_json::Value],
    train: &[serde_json::Value],
    eval: &[serde_json::Value],
) -> Vec<usize> {
    use hashi_eval::Request;
    let mut rnd = PyRandom::new(42);
    let mut order: Vec<usize> = (0..eval.len()).collect();
    rnd.shuffle(&mut order);
    for (row, &i) in rows.iter().zip(&order) {
        assert_eq!(row["source_index"], i, "{name}: document order");
        let (ctx, shots) = task.fewshot_context(&eval[i], train, 3, &mut rnd).expect("context");
        assert_eq!(serde_json::json!(shots), row["fewshot_train_indices"], "{name}: few-shot picks");
        assert_eq!(ctx, row["context"].as_str().expect("context"), "{name}: doc {i}");
        match task.request() {
            Request::Choices => {
                assert_eq!(row["request_type"], "loglikelihood", "{name}");
                let choices = task.choices(&eval[i]).expect("choices");
                assert_eq!(serde_json::json!(choices), row["choices"], "{name}: continuations");
            }
            Request::Generate { until } => {
                assert_eq!(row["request_type"], "greedy_until", "{name}");
                assert_eq!(serde_json::json!(until), row["until"], "{name}: stop strings");
            }
        }
    }
    order.truncate(rows.len());
    order
}

#[test]
fn prompts_are_byte_identical_to_the_upstream_harness() {
    use hashi_eval::{Request, Task};
    let golden = shared_jsonl("golden/jp-harness/prompts.jsonl");
    let mut checked = 0;
    for (name, task) in Task::ALL {
        use hashi_eval::Dataset;
        if matches!(task.dataset, Dataset::Mnli | Dataset::Qnli | Dataset::MarcJa | Dataset::JaqketV2) {
            // EleutherAI's tasks, and the two whose data is not available here: not in the golden file.
            continue;
        }
        let rows: Vec<&serde_json::Value> = golden.iter().filter(|r| r["task"] == name).collect();
        if rows.is_empty() {
            // Prompt versions this golden file does not hold: the next test's.
            continue;
        }
        assert_eq!(rows.len(), 15, "{name}");
        assert_eq!(rows[0]["stratified"], task.stratified(), "{name}");
        let (train, eval) = task_data(task);
        for (row, i) in rows.iter().zip(assert_golden_prompts(name, task, &rows, &train, &eval)) {
            match task.request() {
                Request::Choices => {
                    assert_eq!(serde_json::json!(task.gold(&eval[i]).expect("gold")), row["gold"]);
                }
                Request::Generate { .. } => {
                    if row.get("answers").is_some() {
                        assert_eq!(
                            serde_json::json!(task.answers(&eval[i]).expect("answers")),
                            row["answers"]
                        );
                    } else {
                        assert_eq!(
                            row["answer_number"].to_string(),
                            task.answers(&eval[i]).expect("answers")[0]
                        );
                    }
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 165, "every golden prompt");
}

/// Evaluation data as the tasks read it: the shared sets, MARC-ja and JaQKET v2 from the repo's fixtures.
fn task_data(task: hashi_eval::Task) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let (dir, split) = task.data();
    if matches!(task.dataset, hashi_eval::Dataset::MarcJa | hashi_eval::Dataset::JaqketV2) {
        let read = |f: &str| read_jsonl(&repo_root().join("tests/fixtures/eval").join(dir).join(f));
        (read("train.jsonl"), read(&format!("{split}.jsonl")))
    } else {
        (shared_jsonl(&format!("eval/{dir}/train.jsonl")), shared_jsonl(&format!("eval/{dir}/{split}.jsonl")))
    }
}

#[test]
fn every_jp_stable_prompt_version_is_byte_identical_to_upstream() {
    use hashi_eval::Task;
    let golden = read_jsonl(&repo_root().join("tests/fixtures/eval/jp-stable/prompts.jsonl"));
    let mut checked = 0;
    for (name, task) in Task::ALL {
        if task.eleuther() {
            continue;
        }
        let rows: Vec<&serde_json::Value> = golden.iter().filter(|r| r["task"] == name).collect();
        assert_eq!(rows.len(), 3, "{name}: every jp-stable variant has its upstream prompts");
        let (train, eval) = task_data(task);
        assert_golden_prompts(name, task, &rows, &train, &eval);
        checked += rows.len();
    }
    assert_eq!(checked, 150, "50 variants x 3 documents");
    let names: std::collections::BTreeSet<&str> = golden.iter().filter_map(|r| r["task"].as_str()).collect();
    assert_eq!(names.len(), 50, "every upstream variant in the golden file is a hashi task");
    assert!(names.iter().all(|n| Task::from_name(n).is_some()));
}

#[test]
fn mgsm_and_jaqket_draw_fewer_shots_until_the_prompt_fits() {
    // Upstream's loop: the k-shot prompt, then (k-1)-shot drawn again from the same stream, ... down to 0.
    let task = hashi_eval::Task::from_name("jaqket_v2-0.2-0.1").expect("task");
    let (train, eval) = task_data(task);
    let lengths = |limit: usize| {
        let mut rnd = PyRandom::new(42);
        let mut seen = vec![];
        let fit = task
            .fitted_fewshot_context(&eval[0], &train, 3, &mut rnd, |c| {
                seen.push(c.chars().count());
                Ok(c.chars().count() <= limit)
            })
            .expect("fit");
        (fit, seen, rnd.getrandbits(32))
    };
    let (all, seen, _) = lengths(usize::MAX);
    assert_eq!((all.dropped, all.examples.len(), all.fits, seen.len()), (0, 3, true, 1));
    let zero_shot = task.text(&eval[0]).expect("text").chars().count()
        + "[題名]と[問題]から[質問]に対する[答え]を抜き出しなさい\n\n".chars().count();
    // Room for one example: two draws dropped, and the stream moved on by three draws.
    let (one, seen, next) = lengths(seen[0] - 1);
    assert!(one.fits && one.examples.len() <= 2 && one.dropped >= 1, "{one:?} {seen:?}");
    assert_eq!(seen.len(), one.dropped + 1);
    let mut rnd = PyRandom::new(42);
    let mut stream = vec![];
    for k in (3 - one.dropped..=3).rev() {
        stream.push(task.fewshot_context(&eval[0], &train, k, &mut rnd).expect("ctx").1);
    }
    assert_eq!(stream.last(), Some(&one.examples));
    assert_eq!(rnd.getrandbits(32), next, "every redraw consumes the stream as upstream's does");
    // Not even the zero-shot prompt fits: it comes back marked, after all four draws.
    let (none, seen, _) = lengths(zero_shot - 1);
    assert_eq!((none.fits, none.dropped, none.examples.len(), seen.len()), (false, 3, 0, 4));
    assert_eq!(*seen.last().expect("seen"), zero_shot);
}

/// `--protocols swallow` adds Swallow's MGSM (prompt version 0.0) at its 4 shots beside llm-jp-eval's tasks;
/// `--task-shots` sets single tasks' shots; both are recorded per task in `n-shot`.
#[test]
fn task_shots_and_swallows_protocol_set_shots_per_task() {
    let dir = scratch_dir("eval-task-shots");
    let model_dir = dir.join("model");
    tiny_model(&model_dir);
    let data = repo_root().parent().expect("parent").join("shared/data/eval").display().to_string();
    let (out, log) = (dir.join("r.json"), dir.join("requests.jsonl"));
    let m = model_dir.display().to_string();
    hashi_ok(&[
        "--quiet",
        "eval",
        "--model",
        &m,
        "--protocols",
        "swallow",
        "--tasks",
        "jcola-0.2-0.3,jnli-1.3-0.2",
        "--task-shots",
        "jcola-0.2-0.3=1,jnli-1.3-0.2=0",
        "--limit",
        "1",
        "--max-gen-toks",
        "4",
        "--truncate-overlong",
        "--data",
        &data,
        "--out",
        &out.display().to_string(),
        "--log-requests",
        &log.display().to_string(),
    ]);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("r")).expect("json");
    let shots: Vec<(&str, u64)> = [
        ("jcola-0.2-0.3", 1),
        ("jnli-1.3-0.2", 0),
        ("mgsm-1.0-0.0", 4),
        ("llmjp-1.3.0:niilc", 4),
        ("llmjp-1.3.0:jmmlu", 5),
    ]
    .into();
    for (t, n) in shots {
        assert_eq!(r["n-shot"][t], n, "{t}");
        assert_eq!(r["results"][t]["docs"], 1, "{t}");
    }
    let reqs = read_jsonl(&log);
    let context = |task: &str| -> String {
        let r = reqs.iter().find(|r| r["task"] == task).unwrap_or_else(|| panic!("{task} logged"));
        r["context"].as_str().expect("context").to_string()
    };
    // Version 0.0's examples are `問題：...ステップごとの答え：...`; the tiny model's positions may drop some.
    let dropped = r["results"]["mgsm-1.0-0.0"]["shots_dropped_to_fit"].as_u64().expect("dropped");
    assert_eq!(context("mgsm-1.0-0.0").matches("問題：").count() as u64 + dropped, 5);
    assert_eq!(context("jcola-0.2-0.3").matches("### 指示:").count(), 2, "one example, then the document");
    assert!(
        context("jnli-1.3-0.2").starts_with("前提と仮説の関係を")
            && !context("jnli-1.3-0.2").contains("関係:含意")
    );
    for (arg, want) in [
        ("llmjp-1.3.0:niilc=2", "an llm-jp-eval task's shots are fixed by the task"),
        ("jnli-9.9=2", "task shots jnli-9.9=2: unknown task"),
        ("jnli-1.3-0.4=2", "jnli-1.3-0.4 is not among the tasks evaluated (mnli)"),
        ("mnli=1,mnli=2", "--task-shots names mnli twice"),
        (
            "mnli=500",
            "mnli/train.jsonl: the few-shot pool has 200 documents, fewer than the 500 shots asked for",
        ),
    ] {
        let e = hashi_err(&["eval", "--model", &m, "--tasks", "mnli", "--task-shots", arg, "--data", &data]);
        assert!(e.contains(want), "{arg}: {e}");
    }
    // Malformed values are usage errors (clap's exit code 2), named with the flag.
    for (arg, want) in [("mgsm-1.0-0.0", "expected TASK=N"), ("mgsm-1.0-0.0=x", "is not a number of shots")] {
        let out = hashi(&["eval", "--model", &m, "--tasks", "mnli", "--task-shots", arg]);
        let e = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{arg}: {e}");
        assert!(e.contains("--task-shots") && e.contains(want), "{arg}: {e}");
    }
}

#[test]
fn classification_metrics_equal_the_upstream_ones() {
    use hashi_eval::metrics::{balanced_accuracy, macro_f1, mcc};
    let cases = shared_jsonl("golden/jp-harness/metrics.jsonl");
    assert_eq!(cases.len(), 6);
    for c in cases {
        let v = |k: &str| -> Vec<i64> {
            c[k].as_array()
                .expect("list")
                .iter()
                .map(|x| x.as_i64().or(x.as_bool().map(i64::from)).expect("label"))
                .collect()
        };
        let (g, p) = (v("golds"), v("preds"));
        for (name, got) in [
            ("balanced_acc", balanced_accuracy(&g, &p)),
            ("mcc", mcc(&g, &p)),
            ("macro_f1", macro_f1(&g, &p)),
        ] {
            let want = c[name].as_f64().expect("value");
            assert!((got - want).abs() < 1e-12, "{}: {name} {got} vs upstream {want}", c["name"]);
        }
    }
}

/// A tiny random model over the 8k test tokenizer, saved with the tokenizer files.
/// A tiny random model with the 8k test tokenizer (`max_positions` 2048).
pub(crate) fn tiny_model(dir: &std::path::Path) -> hashi_model::Llama {
    tiny_model_sized(dir, 2048)
}

/// A tiny random model with the 8k test tokenizer and `max_positions` positions.
fn tiny_model_sized(dir: &std::path::Path, max_positions: usize) -> hashi_model::Llama {
    let mut cfg = hashi_model::Config::tiny_test();
    cfg.vocab_size = 8000;
    cfg.max_position_embeddings = max_positions;
    let model = hashi_model::Llama::random(cfg.clone(), 11).expect("model");
    hashi_model::save_pretrained(&cfg, model.params(), dir, Default::default(), &hashi_core::NoReporter)
        .expect("save");
    for f in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"] {
        std::fs::copy(crate::tokenizer::trained().join(f), dir.join(f)).expect("copy tokenizer");
    }
    model
}

#[test]
fn shared_prefix_scores_equal_full_forward_scores() {
    use candle_core::{D, Device, Tensor};
    let dir = scratch_dir("eval-score");
    let model = tiny_model(&dir);
    let tok = hashi_tokenizer::Tokenizer::from_file(&dir).expect("tokenizer");
    let ctx = "### 指示:\n与えられた選択肢の中から選んでください。\n\n### 応答:\n";
    let choices: Vec<String> =
        ["東京", "大阪府", " yes", "True", "しわ"].iter().map(|s| s.to_string()).collect();
    let scored = hashi_eval::score_choices(&model, &tok, ctx, &choices).expect("scores");
    for (c, s) in choices.iter().zip(&scored) {
        let (ctx_ids, cont) = hashi_eval::encode_pair(&tok, ctx, c).expect("pair");
        let whole: Vec<u32> = ctx_ids.iter().chain(&cont).copied().collect();
        let start = ctx_ids.len();
        let x = Tensor::from_vec(whole.clone(), (1, whole.len()), &Device::Cpu).expect("x");
        let logits = model.forward(&x).expect("forward").squeeze(0).expect("squeeze");
        let max = logits.max_keepdim(D::Minus1).expect("max");
        let sh = logits.broadcast_sub(&max).expect("sub");
        let lsm: Vec<Vec<f32>> = sh
            .broadcast_sub(&sh.exp().expect("exp").sum_keepdim(D::Minus1).expect("sum").log().expect("log"))
            .expect("lsm")
            .to_vec2()
            .expect("vec");
        let want: f64 = (start..whole.len()).map(|p| f64::from(lsm[p - 1][whole[p] as usize])).sum();
        assert!((s.loglikelihood - want).abs() < 1e-4, "{c:?}: cached {} vs full {want}", s.loglikelihood);
        assert_eq!(s.tokens, whole.len() - start);
    }
}

#[test]
fn tasks_run_end_to_end_and_bad_tasks_fail_clearly() {
    let dir = scratch_dir("eval-cli");
    let model_dir = dir.join("model");
    tiny_model(&model_dir);
    let data = repo_root().parent().expect("parent").join("shared/data/eval").display().to_string();
    let out = dir.join("results.json");
    let (m, o) = (model_dir.display().to_string(), out.display().to_string());
    let tasks = "jcommonsenseqa-1.1-0.1,jnli-1.3-0.2,jcola-0.2-0.3,mnli,qnli";
    hashi_ok(&[
        "eval", "--model", &m, "--tasks", tasks, "--shots", "3", "--limit", "8", "--data", &data, "--out", &o,
    ]);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("results")).expect("json");
    for t in tasks.split(',') {
        let acc = r["results"][t]["acc"].as_f64().expect("acc");
        assert!((0.0..=1.0).contains(&acc), "{t}: {acc}");
        assert_eq!(r["results"][t]["docs"], 8);
        assert_eq!(r["n-shot"][t], 3);
    }
    assert_eq!(r["versions"]["jnli-1.3-0.2"], "1.3-0.2");
    let ja = repo_root().join("examples/demo/corpus/ja_books.jsonl").display().to_string();
    let bpb =
        hashi_ok(&["eval", "--model", &m, "--bpb", &format!("ja={ja}"), "--bpb-bytes", "1000", "--out", &o]);
    assert!(bpb.contains("bits per byte, ja:"), "{bpb}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("results")).expect("json");
    let v = r["bits_per_byte"][0]["bits_per_byte"].as_f64().expect("bpb");
    assert!(v > 0.5 && v < 20.0, "a random model's bits per byte: {v}");
    let e = hashi_err(&["eval", "--model", &m, "--tasks", "jnli-9.9-0.3", "--data", &data]);
    assert!(e.contains("unknown task \"jnli-9.9-0.3\""), "{e}");
    // Generation tasks: JSQuAD/JaQuAD (EM/F1 over MeCab words) and MGSM (extracted number).
    let dic = unidic_dir().display().to_string();
    let gen_tasks = "jsquad-1.1-0.3,jsquad-1.2-0.3,jaquad-0.1-0.1,mgsm-1.0-0.3";
    let log = dir.join("requests.jsonl");
    let shown = hashi_ok(&[
        "eval",
        "--model",
        &m,
        "--tasks",
        gen_tasks,
        "--limit",
        "3",
        "--data",
        &data,
        "--out",
        &o,
        "--mecab-dict",
        &dic,
        "--max-gen-toks",
        "24",
        "--log-requests",
        &log.display().to_string(),
    ]);
    assert!(shown.contains("jsquad-1.1-0.3") && shown.contains("f1 "), "{shown}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("results")).expect("json");
    for t in ["jsquad-1.1-0.3", "jsquad-1.2-0.3", "jaquad-0.1-0.1"] {
        for k in ["exact_match", "f1"] {
            let v = r["results"][t][k].as_f64().expect("metric");
            assert!((0.0..=100.0).contains(&v), "{t} {k}: {v}");
        }
        assert_eq!(r["results"][t]["docs"], 3);
    }
    let acc = r["results"]["mgsm-1.0-0.3"]["acc"].as_f64().expect("acc");
    assert!((0.0..=1.0).contains(&acc));
    // Each logged generation is re-scored here with the library's scorer: the recorded metrics are its own.
    let mecab = hashi_eval::qa::Mecab::open(&unidic_dir()).expect("dictionary");
    let logged = std::fs::read_to_string(&log).expect("log");
    let mut qa_rows = 0;
    for line in logged.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        assert!(
            v["context"].as_str().expect("context").ends_with("### 応答:\n") || v["task"] == "jaquad-0.1-0.1"
        );
        if let Some(f1) = v["f1"].as_f64() {
            let golds: Vec<String> = v["golds"]
                .as_array()
                .expect("golds")
                .iter()
                .map(|g| g.as_str().expect("s").to_string())
                .collect();
            let (_, want) = hashi_eval::qa::score(&mecab, v["generation"].as_str().expect("gen"), &golds);
            assert!((f1 - 100.0 * want).abs() < 1e-9);
            qa_rows += 1;
        }
    }
    assert_eq!(qa_rows, 9);
    let e = hashi_err(&["eval", "--model", &m, "--tasks", "jsquad-1.1-0.3", "--data", &data, "--limit", "1"]);
    assert!(e.contains("needs a MeCab dictionary") && e.contains("unidic-lite"), "{e}");
}

#[test]
fn mnli_and_qnli_log_likelihoods_match_lm_eval() {
    let dir = scratch_dir("eval-lm-eval");
    let model_dir = dir.join("model");
    tiny_model(&model_dir);
    let data = repo_root().parent().expect("parent").join("shared/data/eval").display().to_string();
    let (m, reqs) = (model_dir.display().to_string(), dir.join("requests.jsonl"));
    let r = reqs.display().to_string();
    hashi_ok(&[
        "eval",
        "--model",
        &m,
        "--tasks",
        "mnli,qnli",
        "--shots",
        "0",
        "--limit",
        "12",
        "--data",
        &data,
        "--log-requests",
        &r,
    ]);
    let ours: Vec<serde_json::Value> = std::fs::read_to_string(&reqs)
        .expect("log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(ours.len(), 12 * 3 + 12 * 2, "3 MNLI choices and 2 QNLI choices per document");
    let theirs: Vec<(f64, bool)> =
        serde_json::from_str(&run_python("lm_eval_loglikelihoods.py", &[&m, &r])).expect("lm-eval output");
    for (o, (ll, greedy)) in ours.iter().zip(&theirs) {
        let got = o["loglikelihood"].as_f64().expect("ll");
        assert!(
            (got - ll).abs() < 1e-4,
            "{} {:?}: hashi {got} vs lm-eval {ll}",
            o["task"],
            o["continuation"]
        );
        assert_eq!(o["is_greedy"].as_bool(), Some(*greedy));
    }
    // Same predictions, hence the same accuracy: the argmax over each document's choices.
    let mut at = 0;
    for (task, n) in [("mnli", 3), ("qnli", 2)] {
        for _ in 0..12 {
            let pick = |f: &dyn Fn(usize) -> f64| (0..n).fold(0, |b, c| if f(c) > f(b) { c } else { b });
            let ours_pick = pick(&|c| ours[at + c]["loglikelihood"].as_f64().expect("ll"));
            let theirs_pick = pick(&|c| theirs[at + c].0);
            assert_eq!(ours_pick, theirs_pick, "{task}: same prediction");
            at += n;
        }
    }
}

#[test]
fn choice_task_scores_do_not_depend_on_the_batch_size() {
    // The mini's base model (trained, so log-likelihoods spread), five choice tasks, 40 questions each: batch 1
    // (each question alone), 8 and 32 (continuations fed across questions).
    let dir = scratch_dir("eval-batch");
    let model = repo_root().join("examples/mini/base/model").display().to_string();
    let data = repo_root().parent().expect("parent").join("shared/data/eval").display().to_string();
    let run = |batch: usize| -> (serde_json::Value, Vec<serde_json::Value>) {
        let (out, log) = (dir.join(format!("b{batch}.json")), dir.join(format!("b{batch}.jsonl")));
        hashi_ok(&[
            "--quiet",
            "eval",
            "--model",
            &model,
            "--data",
            &data,
            "--tasks",
            "jcommonsenseqa-1.1-0.1,jnli-1.3-0.2,jcola-0.2-0.3,mnli,qnli",
            "--limit",
            "40",
            "--truncate-overlong",
            "--batch-size",
            &batch.to_string(),
            "--out",
            out.to_str().expect("utf-8"),
            "--log-requests",
            log.to_str().expect("utf-8"),
        ]);
        let results = serde_json::from_str(&std::fs::read_to_string(&out).expect("results")).expect("json");
        let reqs = std::fs::read_to_string(&log)
            .expect("log")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        (results, reqs)
    };
    let (one, reqs1) = run(1);
    assert_eq!(reqs1.len(), 40 * (5 + 3 + 2 + 3 + 2), "every choice of every question");
    for batch in [8, 32] {
        let (r, reqs) = run(batch);
        assert_eq!(reqs.len(), reqs1.len());
        let mut worst = 0f64;
        for (a, b) in reqs1.iter().zip(&reqs) {
            for k in ["task", "doc", "context", "continuation", "is_greedy"] {
                assert_eq!(a[k], b[k], "batch {batch}: {k} of request {a}");
            }
            let (x, y) = (a["loglikelihood"].as_f64().expect("ll"), b["loglikelihood"].as_f64().expect("ll"));
            worst = worst.max((x - y).abs());
        }
        assert!(worst < 1e-5, "batch {batch}: log-likelihoods differ by up to {worst}");
        assert_eq!(
            r["results"], one["results"],
            "batch {batch}: the same predictions, hence the same scores"
        );
    }
    remove_scratch(&dir);
}

/// The dictionary directory of the `unidic-lite` package in the Python peer environment (the dictionary the
/// upstream scorer uses through fugashi).

#[test]
fn qa_exact_match_and_f1_equal_the_upstream_scorer_on_every_golden_pair() {
    use hashi_eval::qa;
    let mecab = qa::Mecab::open(&unidic_dir()).expect("unidic-lite dictionary");
    let rows = shared_jsonl("golden/jp-harness/scores.jsonl");
    assert_eq!(rows.len(), 1090);
    let mut bad = vec![];
    for r in &rows {
        let pred = r["prediction"].as_str().expect("prediction");
        let golds: Vec<String> = r["answers"]
            .as_array()
            .expect("answers")
            .iter()
            .map(|a| a.as_str().expect("str").to_string())
            .collect();
        let norm = qa::normalize_answer(pred);
        let tokens = qa::f1_tokens(&mecab, pred);
        let (em, f1) = qa::score(&mecab, pred, &golds);
        let want_tokens: Vec<String> = r["prediction_tokens"]
            .as_array()
            .expect("tokens")
            .iter()
            .map(|t| t.as_str().expect("str").to_string())
            .collect();
        let ok = norm == r["normalized_prediction"].as_str().expect("norm")
            && tokens == want_tokens
            && (em * 100.0 - r["exact_match"].as_f64().expect("em")).abs() < 1e-9
            && (f1 * 100.0 - r["f1"].as_f64().expect("f1")).abs() < 1e-9;
        if !ok {
            bad.push(format!(
                "{} {}: {pred:?} -> {norm:?} {tokens:?} em {em} f1 {f1}; upstream {:?} {want_tokens:?} {} {}",
                r["task"], r["kind"], r["normalized_prediction"], r["exact_match"], r["f1"]
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of 1090 pairs differ, e.g.:\n{}",
        bad.len(),
        bad[..bad.len().min(8)].join("\n")
    );
}

#[test]
fn marc_ja_and_jaqket_v2_run_on_fixtures_of_their_upstream_schemas() {
    use hashi_eval::{PyRandom, Task};
    let fixtures = repo_root().join("tests/fixtures/eval");
    let read = |p: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(fixtures.join(p))
            .expect("fixture")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect()
    };
    let (train, val) = (read("jaqket_v2/train.jsonl"), read("jaqket_v2/validation.jsonl"));
    let t = Task::from_name("jaqket_v2-0.2-0.1").expect("task");
    assert_eq!(t.target(&train[2]).expect("target"), "キジ");
    // The evaluated document shows its top five passages; list-of-passages rows read like columnar ones.
    let text = t.text(&val[0]).expect("text");
    assert_eq!(text.matches("[題名]:").count(), 5, "{text}");
    assert!(text.ends_with("[質問]:沖縄県の県庁所在地はどこでしょう?\n[答え]:"));
    assert_eq!(
        Task::from_name("jaqket_v2-0.2-0.3").expect("t").text(&val[2]).expect("text").matches('\n').count(),
        12
    );
    let mut rnd = PyRandom::new(42);
    let (ctx, idx) = t.fewshot_context(&val[0], &train, 2, &mut rnd).expect("ctx");
    assert!(ctx.starts_with("[題名]と[問題]から[質問]に対する[答え]を抜き出しなさい\n\n"));
    assert_eq!(idx.len(), 2);
    // A few-shot example shows its top five passages too (upstream's `doc_to_text` at effdbeaf; its unused
    // `doc_to_answering_text` is not called), an example without an answer-bearing passage included.
    assert_eq!(ctx.matches("[題名]:").count(), 15, "{ctx}");
    let marc = Task::from_name("marc_ja-1.1-0.3").expect("task");
    let mv = read("marc_ja/validation.jsonl");
    assert_eq!(
        marc.text(&mv[0]).expect("text"),
        "### 指示:\n以下の製品レビューを、ポジティブまたはネガティブの感情クラスのいずれかに分類してください。\n\n### 入力:\n軽くて持ち運びに便利です。満足しています。\n\n### 応答:\n"
    );
    assert_eq!(marc.gold(&mv[3]).expect("string label"), 1);
    assert_eq!(Task::from_name("marc_ja-1.1-0.2").expect("t").target(&mv[4]).expect("target"), "positive");

    // End to end through the CLI on the fixtures.
    let dir = scratch_dir("eval-fixtures");
    let model_dir = dir.join("model");
    tiny_model(&model_dir);
    let out = dir.join("results.json");
    // Every prompt version of both.
    let names: Vec<&str> = hashi_eval::Task::ALL
        .iter()
        .filter(|(_, t)| matches!(t.dataset, hashi_eval::Dataset::MarcJa | hashi_eval::Dataset::JaqketV2))
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(names.len(), 11);
    let tasks = names.join(",");
    hashi_ok(&[
        "eval",
        "--model",
        &model_dir.display().to_string(),
        "--tasks",
        &tasks,
        "--shots",
        "3",
        "--data",
        &fixtures.display().to_string(),
        "--out",
        &out.display().to_string(),
        "--mecab-dict",
        &unidic_dir().display().to_string(),
    ]);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("results")).expect("json");
    for t in names.iter().filter(|n| n.starts_with("marc_ja")) {
        assert_eq!(r["results"][t]["docs"], 5);
        let b = r["results"][t]["balanced_acc"].as_f64().expect("balanced_acc");
        assert!((0.0..=1.0).contains(&b));
    }
    for t in names.iter().filter(|n| n.starts_with("jaqket_v2")) {
        assert_eq!(r["results"][t]["docs"], 3);
        assert_eq!(
            r["results"][t]["shots_dropped_to_fit"], 0,
            "{t}: the tiny model's positions hold 3 shots"
        );
        assert!((0.0..=100.0).contains(&r["results"][t]["f1"].as_f64().expect("f1")));
    }
}

#[test]
fn prompts_longer_than_the_model_are_refused_or_cut_and_counted() {
    let dir = scratch_dir("eval-short");
    tiny_model_sized(&dir, 64);
    let data = repo_root().parent().expect("parent").join("shared/data/eval").display().to_string();
    let m = dir.display().to_string();
    let e = hashi_err(&["eval", "--model", &m, "--tasks", "jnli-1.3-0.3", "--limit", "2", "--data", &data]);
    assert!(e.contains("jnli/validation.jsonl:") && e.contains("exceed the model's 64 positions"), "{e}");
    let out = dir.join("r.json");
    let shown = hashi_ok(&[
        "eval",
        "--model",
        &m,
        "--tasks",
        "jsquad-1.1-0.3",
        "--limit",
        "2",
        "--data",
        &data,
        "--mecab-dict",
        &unidic_dir().display().to_string(),
        "--out",
        &out.display().to_string(),
    ]);
    assert!(shown.contains("2 prompts cut from the left"), "{shown}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("r")).expect("json");
    assert_eq!(r["results"]["jsquad-1.1-0.3"]["truncated_contexts"], 2);
    // MGSM drops few-shot examples first and refuses when even the 0-shot prompt cannot fit.
    let e = hashi_err(&[
        "eval",
        "--model",
        &m,
        "--tasks",
        "mgsm-1.0-0.3",
        "--limit",
        "1",
        "--data",
        &data,
        "--max-gen-toks",
        "8",
    ]);
    assert!(e.contains("mgsm_ja/test.jsonl:") && e.contains("0-shot prompt does not fit"), "{e}");
}

#[test]
fn mnli_and_qnli_few_shot_picks_are_lm_evals_sampler() {
    let dir = scratch_dir("eval-eleuther-shots");
    let model_dir = dir.join("model");
    tiny_model(&model_dir);
    let data = repo_root().parent().expect("parent").join("shared/data/eval");
    let log = dir.join("requests.jsonl");
    hashi_ok(&[
        "eval",
        "--model",
        &model_dir.display().to_string(),
        "--tasks",
        "mnli,qnli",
        "--shots",
        "3",
        "--limit",
        "6",
        "--data",
        &data.display().to_string(),
        "--log-requests",
        &log.display().to_string(),
    ]);
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .expect("log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    for task in ["mnli", "qnli"] {
        // One entry per document, in the order evaluated.
        let mut docs: Vec<(u64, serde_json::Value)> = vec![];
        for r in rows.iter().filter(|r| r["task"] == task) {
            let d = r["doc"].as_u64().expect("doc");
            if docs.last().map(|x| x.0) != Some(d) {
                docs.push((d, r["fewshot"].clone()));
            }
        }
        let ids: Vec<u64> = docs.iter().map(|d| d.0).collect();
        assert_eq!(ids, (0..6).collect::<Vec<u64>>(), "{task}: documents in dataset order, as EleutherAI's");
        let train = data.join(task).join("train.jsonl").display().to_string();
        let out = run_python("lm_eval_fewshot.py", &[&train, "6", "3"]);
        let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
        let ours: Vec<serde_json::Value> = docs.into_iter().map(|d| d.1).collect();
        assert_eq!(
            serde_json::Value::Array(ours),
            v["picks"],
            "{task}: few-shot picks equal lm-eval's sampler"
        );
    }
}

#[test]
fn a_data_file_with_missing_fields_is_named_with_its_document() {
    let dir = scratch_dir("eval-missing-field");
    let model_dir = dir.join("model");
    tiny_model(&model_dir);
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("jcommonsenseqa")).expect("mkdir");
    let docs = shared_jsonl("eval/jcommonsenseqa/validation.jsonl");
    let mut rows: Vec<serde_json::Value> = docs.into_iter().take(4).collect();
    for r in &mut rows {
        r.as_object_mut().expect("object").remove("choice2");
    }
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(data.join("jcommonsenseqa/validation.jsonl"), &text).expect("write");
    std::fs::write(data.join("jcommonsenseqa/train.jsonl"), &text).expect("write");
    let e = hashi_err(&[
        "eval",
        "--model",
        &model_dir.display().to_string(),
        "--tasks",
        "jcommonsenseqa-1.1-0.3",
        "--shots",
        "0",
        "--data",
        &data.display().to_string(),
    ]);
    assert!(
        e.contains("jcommonsenseqa/validation.jsonl:1") && e.contains("no string field \"choice2\""),
        "{e}"
    );
    std::fs::write(data.join("jcommonsenseqa/validation.jsonl"), "{\"question\": \n").expect("write");
    let e = hashi_err(&[
        "eval",
        "--model",
        &model_dir.display().to_string(),
        "--tasks",
        "jcommonsenseqa-1.1-0.3",
        "--data",
        &data.display().to_string(),
    ]);
    assert!(e.contains("validation.jsonl:1: not a JSON document"), "{e}");
}
