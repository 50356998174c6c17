//! The evaluation's RNG against CPython: `PyRandom` reproduces `random.Random` draw for draw, and with it the
//! upstream harness's document shuffle and few-shot picks recorded in `../shared/data/golden/jp-harness/`.

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

#[test]
fn upstream_few_shot_picks_are_reproduced() {
    let golden = repo_root().parent().expect("parent").join("shared/data/golden/jp-harness/prompts.jsonl");
    let text = std::fs::read_to_string(&golden).expect("golden prompts");
    let rows: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    let count = |name: &str, split: &str| {
        let p = repo_root().parent().expect("parent").join(format!("shared/data/eval/{name}/{split}.jsonl"));
        std::fs::read_to_string(p).expect("eval data").lines().filter(|l| !l.trim().is_empty()).count()
    };
    // Non-stratified tasks: one RNG per task, shuffle of the evaluation docs, then sample(train, 3) per doc.
    for (task, dir, eval_split) in
        [("jcommonsenseqa-1.1-0.3", "jcommonsenseqa", "validation"), ("mgsm-1.0-0.3", "mgsm_ja", "test")]
    {
        let mine: Vec<&serde_json::Value> = rows.iter().filter(|r| r["task"] == task).collect();
        assert_eq!(mine.len(), 15, "{task}");
        let mut rnd = PyRandom::new(42);
        let mut docs: Vec<u64> = (0..count(dir, eval_split) as u64).collect();
        rnd.shuffle(&mut docs);
        let train: Vec<u64> = (0..count(dir, "train") as u64).collect();
        for (row, doc) in mine.iter().zip(&docs) {
            assert_eq!(row["source_index"], *doc, "{task}: document order");
            assert_eq!(
                serde_json::json!(rnd.sample(&train, 3)),
                row["fewshot_train_indices"],
                "{task}: few-shot picks"
            );
        }
    }
}

fn shared_jsonl(rel: &str) -> Vec<serde_json::Value> {
    let p = repo_root().parent().expect("parent").join("shared/data").join(rel);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

#[test]
fn prompts_are_byte_identical_to_the_upstream_harness() {
    let golden = shared_jsonl("golden/jp-harness/prompts.jsonl");
    let mut checked = 0;
    for task in hashi_eval::Task::ALL {
        let eval = shared_jsonl(&format!("eval/{}/validation.jsonl", task.data_dir()));
        let train = shared_jsonl(&format!("eval/{}/train.jsonl", task.data_dir()));
        let rows: Vec<&serde_json::Value> = golden.iter().filter(|r| r["task"] == task.name()).collect();
        assert_eq!(rows.len(), 15, "{}", task.name());
        assert_eq!(rows[0]["stratified"], task.stratified(), "{}", task.name());
        let mut rnd = PyRandom::new(42);
        let mut order: Vec<usize> = (0..eval.len()).collect();
        rnd.shuffle(&mut order);
        for (row, &i) in rows.iter().zip(&order) {
            assert_eq!(row["source_index"], i, "{}: document order", task.name());
            let (ctx, shots) = task.fewshot_context(&eval[i], &train, 3, &mut rnd).expect("context");
            assert_eq!(
                serde_json::json!(shots),
                row["fewshot_train_indices"],
                "{}: few-shot picks",
                task.name()
            );
            assert_eq!(ctx, row["context"].as_str().expect("context"), "{}: doc {i}", task.name());
            assert_eq!(serde_json::json!(task.choices(&eval[i]).expect("choices")), row["choices"]);
            assert_eq!(serde_json::json!(task.gold(&eval[i]).expect("gold")), row["gold"]);
            checked += 1;
        }
    }
    assert_eq!(checked, 60);
}
