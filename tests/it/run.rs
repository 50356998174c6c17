//! `hashi run` and `hashi report` end to end: the mini reproduction's `--quick` setting, a re-run that reuses
//! every stage, a new seed that reuses the shared stages, and a run killed during training that `--resume`
//! finishes with the same report numbers as the uninterrupted run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{hashi_bin, hashi_err, remove_scratch, repo_root, scratch_dir, unidic_dir};

const MINI: &str = "examples/mini/mini.lua";

/// The tasks of the mini's eval section, in the results' (sorted) order: jp-stable's six Japanese tasks and
/// MNLI/QNLI, and the five tasks of Swallow's protocol (`protocols = { "llmjp" }`).
const MINI_TASKS: [&str; 13] = [
    "jaquad-0.1-0.1",
    "jcola-0.2-0.3",
    "jcommonsenseqa-1.1-0.1",
    "jnli-1.3-0.2",
    "jsquad-1.1-0.1",
    "llmjp-1.3.0:jcommonsenseqa",
    "llmjp-1.3.0:jemhopqa",
    "llmjp-1.3.0:jmmlu",
    "llmjp-1.3.0:jsquad",
    "llmjp-1.3.0:niilc",
    "mgsm-1.0-0.3",
    "mnli",
    "qnli",
];

fn run_mini(out: &Path, extra: &[&str]) -> String {
    let o = Command::new(hashi_bin())
        .args(["run", MINI, "--quick", "--out"])
        .arg(out)
        .args(extra)
        .env("HASHI_MECAB_DIC", unidic_dir())
        .current_dir(repo_root())
        .output()
        .expect("hashi starts");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "hashi run {extra:?} failed:\n{stderr}");
    stderr
}

/// `hashi -q run` of the mini `--quick` into `out`, in the background (to be killed).
fn spawn_mini(out: &Path, extra: &[&str]) -> std::process::Child {
    Command::new(hashi_bin())
        .args(["-q", "run", MINI, "--quick", "--out"])
        .arg(out)
        .args(extra)
        .env("HASHI_MECAB_DIC", unidic_dir())
        .current_dir(repo_root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("hashi starts")
}

/// The numbers of a report: Table 2 and the orderings (everything before Figure 1).
fn numbers(run: &Path) -> String {
    let md = std::fs::read_to_string(run.join("report/report.md")).expect("report.md");
    let start = md.find("## Table 2").expect("Table 2 in the report");
    let end = md.find("## Figure 1").expect("Figure 1 in the report");
    md[start..end].to_string()
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .expect("JSON")
}

#[test]
fn mini_quick_runs_end_to_end_reuses_stages_and_resumes_after_a_kill() {
    let dir = scratch_dir("run-mini");
    let full = dir.join("full");
    let t_full = Instant::now();
    let log = run_mini(&full, &[]);
    let t_full = t_full.elapsed();
    assert!(!log.contains("cached"), "a fresh run reuses nothing:\n{log}");

    // The index: four variants; a checkpoint per data switch (exp0/1/2: 6 phases, exp3: 2) plus step 0, each
    // evaluated on every task with bits per byte on both languages.
    let index = json(&full.join("run.json"));
    let variants = index["variants"].as_array().expect("variants");
    let names: Vec<&str> = variants.iter().map(|v| v["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["exp0", "exp1", "exp2", "exp3"]);
    for v in variants {
        let points = v["checkpoints"].as_array().expect("checkpoints");
        let phases = if v["name"] == "exp3" { 2 } else { 6 };
        assert_eq!(points.len(), phases + 1, "{}: step 0 and one checkpoint per phase", v["name"]);
        let tokens: Vec<u64> = points.iter().map(|p| p["tokens"].as_u64().expect("tokens")).collect();
        assert!(
            tokens.windows(2).all(|w| w[0] < w[1]) && tokens[phases] == 49152,
            "{}: {tokens:?}",
            v["name"]
        );
        for p in points {
            let e = json(&full.join(p["eval"].as_str().expect("eval path")));
            let tasks: Vec<&str> =
                e["results"].as_object().expect("results").keys().map(String::as_str).collect();
            assert_eq!(tasks, MINI_TASKS, "every task of both protocols");
            assert_eq!(e["bits_per_byte"].as_array().map(Vec::len), Some(2), "ja and en bits per byte");
        }
    }
    // exp2 starts from random weights, the others from the same transferred model.
    assert_eq!(variants[0]["checkpoints"][0]["eval"], "evals/transfer.json");
    assert_eq!(variants[2]["checkpoints"][0]["eval"], "evals/exp2-s1-init.json");
    let report = std::fs::read_to_string(full.join("report/report.md")).expect("report");
    for want in [
        "English base model",
        "exp0: 3:1 then 1:3",
        "exp3: shuffled sources",
        "| exp3 > exp2 |",
        "| Swallow avg |",
        "## The same datasets under jp-stable and Swallow's protocol",
    ] {
        assert!(report.contains(want), "report lacks {want:?}");
    }
    let html = std::fs::read_to_string(full.join("report/report.html")).expect("html");
    assert_eq!(
        html.matches("<svg").count(),
        10,
        "Figure 1 (4 plans), Figure 2 (4 charts), loss and LR inline"
    );
    assert!(full.join("report/figures/fig2-ja-score.svg").is_file());

    // A re-run changes nothing and reuses every stage.
    let before = numbers(&full);
    let log = run_mini(&full, &[]);
    assert!(!log.contains(": running"), "a re-run should reuse every stage:\n{log}");
    assert_eq!(numbers(&full), before);

    // Another seed of one variant: tokenizer, transfer, shards and the shared evaluations are reused.
    let log = run_mini(&full, &["--seeds", "2", "--only", "exp3", "--no-report"]);
    for cached in ["tokenizer: cached", "transfer: cached", "shards: cached", "eval-base: cached"] {
        assert!(log.contains(cached), "expected {cached:?}:\n{log}");
    }
    assert!(log.contains("train-exp3-s2: running"), "{log}");

    // Killed during the training of exp1, then `--resume`: the same report numbers.
    let killed = dir.join("killed");
    let mut child = spawn_mini(&killed, &[]);
    let metrics = killed.join("variants/exp1-s1/train/metrics.jsonl");
    let t0 = Instant::now();
    while std::fs::read_to_string(&metrics).map_or(0, |m| m.lines().count()) < 7 {
        assert!(t0.elapsed() < Duration::from_secs(900), "exp1 never reached step 7");
        assert!(child.try_wait().expect("wait").is_none(), "the run ended before it could be killed");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert!(!killed.join("run.json").exists(), "the run was killed before it finished");
    let log = run_mini(&killed, &["--resume"]);
    assert!(log.contains("train-exp0-s1: cached") && log.contains("train-exp1-s1: resuming"), "{log}");
    assert_eq!(
        numbers(&killed),
        before,
        "the resumed run's report numbers differ from the uninterrupted run's"
    );
    remove_scratch(&killed);

    // Killed with SIGKILL at 10 random points of the whole pipeline (any stage: tokenizer, transfer, shards,
    // evaluations, trainings, report), each time resumed with `--resume` until the next kill; the run that
    // finally completes has the uninterrupted run's numbers.
    let chain = dir.join("chain");
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut kills = vec![];
    let mut attempts = 0;
    while kills.len() < 10 {
        attempts += 1;
        assert!(attempts < 40, "the run kept finishing before its kill: {kills:?}");
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        // Between 2% and 20% of an uninterrupted run's time after each start.
        let delay = t_full.mul_f64(0.02 + 0.18 * ((state >> 11) as f64 / (1u64 << 53) as f64));
        let mut child = spawn_mini(&chain, &["--resume"]);
        let t0 = Instant::now();
        while t0.elapsed() < delay && child.try_wait().expect("wait").is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        if child.try_wait().expect("wait").is_none() {
            child.kill().expect("SIGKILL");
            let _ = child.wait();
            kills.push(delay.as_millis());
        } else {
            // Finished before its kill: start afresh so that later kills still land inside a run.
            std::fs::remove_dir_all(&chain).expect("remove the finished run");
        }
    }
    run_mini(&chain, &["--resume"]);
    assert_eq!(numbers(&chain), before, "killed at {kills:?} ms after each start, the numbers differ");
    remove_scratch(&dir);
}

/// One run file compares the three vocabularies (tests/fixtures/run/mini_matrix.lua): the same curriculum from
/// vocabulary expansion (`tokenizer.expand`, the variants' default), from replacement and from the untouched base
/// model. Each vocabulary gets its own tokenizer, transfer, shards and step 0; expansion keeps every base row and
/// reads English in the base's tokens and Japanese in far fewer; the original trains the base model with its own
/// tokenizer from the base model's evaluation; every trained model has its vocabulary's size; the report puts them
/// side by side with the text each read.
#[test]
fn one_run_compares_expansion_replacement_and_the_original_vocabulary() {
    let out = scratch_dir("run-matrix").join("run");
    let o = Command::new(hashi_bin())
        .args(["run", "tests/fixtures/run/mini_matrix.lua", "--out"])
        .arg(&out)
        .env("HASHI_MECAB_DIC", unidic_dir())
        .current_dir(repo_root())
        .output()
        .expect("hashi starts");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let base_vocab = json(&repo_root().join("examples/mini/base/model/config.json"))["vocab_size"].clone();
    let expanded = json(&out.join("transfer-expanded/transfer_report.json"));
    assert_eq!(expanded["matched"], expanded["old_vocab_size"], "expansion keeps every base row: {expanded}");
    assert_eq!(expanded["old_vocab_size"], base_vocab);
    assert!(expanded["new_vocab_size"].as_u64() > base_vocab.as_u64(), "{expanded}");
    let replaced = json(&out.join("transfer/transfer_report.json"));
    assert_eq!(replaced["new_vocab_size"], 4000, "the trained tokenizer's size: {replaced}");
    assert!(!out.join("transfer-original").exists(), "the original vocabulary has no transfer");

    // Each vocabulary's shards and trained model have its tokenizer's size.
    let index = json(&out.join("run.json"));
    let sizes = [
        ("expand", &expanded["new_vocab_size"]),
        ("replace", &replaced["new_vocab_size"]),
        ("original", &base_vocab),
    ];
    for (vocabulary, size) in sizes {
        let suffix = match vocabulary {
            "expand" => "-expanded",
            "original" => "-original",
            _ => "",
        };
        assert_eq!(
            &json(&out.join(format!("shards{suffix}/manifest.json")))["vocab_size"],
            size,
            "{vocabulary}"
        );
        let v = index["variants"]
            .as_array()
            .and_then(|vs| vs.iter().find(|v| v["vocabulary"] == vocabulary))
            .unwrap_or_else(|| panic!("a variant of {vocabulary}: {index}"));
        let points = v["checkpoints"].as_array().expect("checkpoints");
        let step0 = match vocabulary {
            "expand" => "evals/transfer-expanded.json",
            "original" => "evals/base.json",
            _ => "evals/transfer.json",
        };
        assert_eq!(points[0]["eval"], step0, "{vocabulary}");
        let last = points.last().expect("a checkpoint");
        let config = json(&out.join(last["checkpoint"].as_str().expect("checkpoint")).join("config.json"));
        assert_eq!(&config["vocab_size"], size, "{vocabulary}: the trained model");
        // The same tokens under each vocabulary, a different amount of Japanese text.
        assert_eq!(last["tokens"], 3072, "{vocabulary}");
        assert!(last["text_bytes_by_lang"]["ja"].as_u64() > Some(0), "{vocabulary}: {last}");
    }
    let ja_text = |vocabulary: &str| {
        index["variants"].as_array().into_iter().flatten().find(|v| v["vocabulary"] == vocabulary).and_then(
            |v| {
                v["checkpoints"]
                    .as_array()
                    .and_then(|p| p.last())
                    .and_then(|c| c["text_bytes_by_lang"]["ja"].as_u64())
            },
        )
    };
    assert!(ja_text("original") < ja_text("replace"), "byte-fallback Japanese: less text per token");
    let transfers: Vec<&serde_json::Value> =
        index["transfers"].as_array().expect("transfers").iter().map(|t| &t["vocabulary"]).collect();
    assert_eq!(transfers, ["replace", "expand"]);

    let tokens = |eval: &str, lang: usize| {
        json(&out.join("evals").join(eval))["bits_per_byte"][lang]["tokens"].as_u64().expect("tokens")
    };
    // bits_per_byte[0] is Japanese, [1] English (the run file's order).
    assert!(tokens("transfer-expanded.json", 0) * 2 < tokens("base.json", 0), "Japanese in far fewer tokens");
    assert!(
        tokens("base.json", 1).abs_diff(tokens("transfer-expanded.json", 1)) <= 2,
        "English in the base's tokens"
    );

    let report = std::fs::read_to_string(out.join("report/report.md")).expect("report");
    for row in [
        "| English base model (step 0 of the original vocabulary) |",
        "| transferred, step 0 (vocabulary replaced) |",
        "| transferred, step 0 (vocabulary expanded) |",
        "| exp0: 3:1 then 1:3 (vocabulary expanded) |",
        "| replace: 3:1 then 1:3 (vocabulary replaced) |",
        "| original: 3:1 then 1:3 (original vocabulary) |",
        "## Tokenizer (vocabulary expanded)",
        "## Vocabulary transfer (vocabulary expanded)",
        "placed by the text trained on (the variants' vocabularies differ)",
        "| original: 3:1 then 1:3 (original vocabulary) | original | 3072 | 1536 | 1536 |",
    ] {
        assert!(report.contains(row), "{row:?} not in the report:\n{report}");
    }

    // A second run directory whose variant "original" was trained with another vocabulary is not averaged with
    // this one's as if it were a second seed.
    let other = out.with_file_name("other");
    let copied = Command::new("cp").arg("-r").arg(&out).arg(&other).status().expect("cp starts");
    assert!(copied.success());
    let mut index = json(&other.join("run.json"));
    for v in index["variants"].as_array_mut().expect("variants") {
        if v["name"] == "original" {
            v["vocabulary"] = "expand".into();
        }
    }
    std::fs::write(other.join("run.json"), index.to_string()).expect("write run.json");
    let path = |p: &Path| p.display().to_string();
    let (report_dir, out_dir, other_dir) = (path(&out.with_file_name("report")), path(&out), path(&other));
    let err = hashi_err(&["report", "--out", &report_dir, &out_dir, &other_dir]);
    assert!(
        err.contains("variant \"original\" is trained with the vocabulary expanded in")
            && err.contains("and the original vocabulary in an earlier run directory"),
        "{err}"
    );
    remove_scratch(out.parent().expect("scratch dir"));
}

/// A run file with a typo in `train`, in a variant's `train`, a wrong `cluster` or `plan_overrides` key, a bad
/// optimizer number, an unknown task or a missing curriculum fails in under a second, before any stage (nothing
/// written), naming the run file and the field.
#[test]
fn run_file_mistakes_fail_before_any_stage_naming_the_field() {
    let dir = scratch_dir("run-validate");
    let fixture =
        std::fs::read_to_string(repo_root().join("tests/fixtures/run/mini_matrix.lua")).expect("fixture");
    let root = format!("\"{}/", repo_root().display());
    let fixture = fixture.replace("\"../../../", &root);
    let cases = [
        ("typo.lua", "optimizer = {", "optimiser = {", "train (merged with variants[1].train"),
        (
            "variant.lua",
            "curriculum = mini .. \"curricula/exp0.lua\" }",
            "curriculum = mini .. \"curricula/exp0.lua\", train = { checkpoints = {} } }",
            "unknown field `checkpoints`",
        ),
        (
            "task.lua",
            "\"jcommonsenseqa-1.1-0.1\"",
            "\"jcommonsenseqa\"",
            "eval.tasks[1]: unknown task \"jcommonsenseqa\"",
        ),
        (
            "protocol.lua",
            "\"jcommonsenseqa-1.1-0.1\"",
            "\"jcommonsenseqa-1.1-0.1\" }, protocols = { \"swallow-2024\"",
            "eval.protocols: unknown protocol \"swallow-2024\" (known: jp-stable, llmjp, swallow)",
        ),
        (
            "task-shots.lua",
            "    shots = 1,",
            "    shots = 1, task_shots = { [\"jnli-1.3-0.4\"] = 2 },",
            "eval.task_shots: task shots jnli-1.3-0.4=2: jnli-1.3-0.4 is not among the tasks evaluated",
        ),
        (
            "llmjp-task.lua",
            "\"jcommonsenseqa-1.1-0.1\"",
            "\"llmjp-1.3.0:jcqa\"",
            "eval.tasks[1]: unknown task \"llmjp-1.3.0:jcqa\"",
        ),
        ("curriculum.lua", "curricula/exp0.lua", "curricula/nope.lua", "variants[1].curriculum"),
        (
            "vocabulary.lua",
            "vocabulary = \"replace\"",
            "vocabulary = \"replaced\"",
            "variants[2].vocabulary: deserialize error: unknown vocabulary \"replaced\" (known: \"replace\"",
        ),
        (
            "duplicate.lua",
            "{ name = \"original\",",
            "{ name = \"replace\",",
            "variants[3].name: \"replace\" is variants[2]'s name too",
        ),
        (
            "name.lua",
            "{ name = \"original\",",
            "{ name = \"../original\",",
            "variants[3].name: \"../original\" is not a plain name",
        ),
        ("inputs.lua", "corpus/train/ja_*.jsonl", "corpus/train/jp_*.jsonl", "tokenizer.inputs[1]: "),
        ("bpb.lua", "heldout/en_wiki.jsonl", "heldout/en_wik.jsonl", "eval.bpb[2]: "),
        (
            "cluster.lua",
            "checkpoint = { every = 0, keep = 1 },",
            "checkpoint = { every = 0, keep = 1 }, cluster = { nodes = 2, gpus_per_node = 8 },",
            "unknown field `gpus_per_node`",
        ),
        (
            "overrides.lua",
            "plan_overrides = { seq_len = 128,",
            "plan_overrides = { seqlen = 128,",
            "unknown field `seqlen`",
        ),
        (
            "params.lua",
            "params = { max_lr = 1e-3,",
            "params = { max_Lr = 1e-3,",
            "unknown parameter \"max_Lr\"",
        ),
        (
            "numbers.lua",
            "optimizer = { weight_decay = 0.1, clip = 1.0 },",
            "optimizer = { weight_decay = 0.1, clip = 1.0, beta2 = 1.5 },",
            "beta2",
        ),
    ];
    let bin = hashi_bin(); // built before anything is timed
    for (name, from, to, want) in cases {
        assert!(fixture.contains(from), "{name}: the fixture changed");
        let path = dir.join(name);
        std::fs::write(&path, fixture.replace(from, to)).expect("write");
        let out = dir.join(format!("{name}.out"));
        let t0 = Instant::now();
        let o = Command::new(bin)
            .args(["run"])
            .arg(&path)
            .arg("--out")
            .arg(&out)
            .current_dir(repo_root())
            .output()
            .expect("hashi starts");
        let took = t0.elapsed();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(name) && err.contains(want), "{name}: {err}");
        assert!(took < Duration::from_secs(1), "{name}: refused after {took:?}");
        assert!(!out.exists(), "{name}: nothing written");
    }
}
