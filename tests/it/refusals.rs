//! Bad inputs refused with a message that names the file, the field and the cause (issues 18 and 19): the
//! inputs of the failure cases in `../shared/cases/` (05–07, 09–11, 16–18, 20–22, 25–27), kept under
//! `tests/fixtures/refusals/`, plus neighbours of the same kind.
//!
//! The fixture is the cases' tiny set-up: a 1.1 M-parameter Llama with random weights (`fx/tiny.json`), the
//! mini example's tokenizer, shards of the demo corpus and a 60-step curriculum in three phases. Nothing here
//! trains more than a few steps; most commands must stop before the first one.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::common::*;

fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures/refusals")
}

fn mini_model() -> PathBuf {
    repo_root().join("examples/mini/base/model")
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The tiny set-up, made once per test process: `fx/` with `tiny/` (model + tokenizer), `shards/`, and the
/// curriculum and schedule of the cases.
struct Fx {
    dir: PathBuf,
}

impl Fx {
    fn tiny(&self) -> PathBuf {
        self.dir.join("tiny")
    }
    fn shards(&self) -> PathBuf {
        self.dir.join("shards")
    }
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn fx() -> &'static Fx {
    static FX: OnceLock<Fx> = OnceLock::new();
    FX.get_or_init(|| {
        let dir = scratch_dir("refusals-fx");
        for f in ["tiny.json", "corpora.lua", "curriculum.lua", "schedule.lua"] {
            std::fs::copy(fixtures().join("fx").join(f), dir.join(f)).expect("copy fixture");
        }
        std::os::unix::fs::symlink(repo_root().join("examples/demo/corpus"), dir.join("corpus"))
            .expect("link");
        let tiny = dir.join("tiny");
        hashi_ok(&[
            "-q",
            "model",
            "init",
            "--config",
            &s(&dir.join("tiny.json")),
            "--seed",
            "0",
            "--out",
            &s(&tiny),
        ]);
        for f in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"] {
            std::fs::copy(mini_model().join(f), tiny.join(f)).expect("copy tokenizer");
        }
        hashi_ok(&[
            "-q",
            "data",
            "prepare",
            &s(&dir.join("corpora.lua")),
            "--tokenizer",
            &s(&tiny),
            "--out",
            &s(&dir.join("shards")),
        ]);
        Fx { dir }
    })
}

/// An experiment on the fixture with `optimizer` entries, extra top-level entries and `schedule.params`.
fn experiment(dir: &Path, name: &str, optimizer: &str, extra: &str, max_lr: &str) -> PathBuf {
    let fx = fx();
    let p = dir.join(format!("{name}.lua"));
    std::fs::write(
        &p,
        format!(
            r#"return {{ name = "x", model = "{tiny}", shards = "{shards}", curriculum = "{cur}",
  schedule = {{ script = "{sched}", params = {{ max_lr = {max_lr} }} }},
  optimizer = {{ clip = 1.0, {optimizer} }},
  {extra} out = "{out}" }}"#,
            tiny = s(&fx.tiny()),
            shards = s(&fx.shards()),
            cur = s(&fx.file("curriculum.lua")),
            sched = s(&fx.file("schedule.lua")),
            out = s(&dir.join(format!("{name}-run"))),
        ),
    )
    .expect("write experiment");
    p
}

/// `err` mentions every one of `words` (case-insensitive).
fn says(err: &str, words: &[&str]) {
    let low = err.to_lowercase();
    for w in words {
        assert!(low.contains(&w.to_lowercase()), "the message should mention {w:?}:\n{err}");
    }
}

// --- plans (cases 06, 07, 20) ---------------------------------------------------------------------------

#[test]
fn blend_weights_must_be_positive() {
    let dir = scratch_dir("refusals-blend");
    for f in ["corpora.lua", "en_a.jsonl", "en_b.jsonl", "ja_a.jsonl", "negw.lua", "zerow.lua"] {
        std::fs::copy(fixtures().join("blend").join(f), dir.join(f)).expect("copy");
    }
    let shards = dir.join("shards");
    hashi_ok(&[
        "-q",
        "data",
        "prepare",
        &s(&dir.join("corpora.lua")),
        "--tokenizer",
        &s(&mini_model()),
        "--out",
        &s(&shards),
    ]);
    for (file, value) in [("negw.lua", "-1"), ("zerow.lua", "is 0")] {
        let e = hashi_err(&["-q", "data", "plan", &s(&dir.join(file)), "--shards", &s(&shards), "--json"]);
        says(&e, &["phase p1", "blend weight", value]);
    }
    // Neighbours: NaN and infinite weights, a weight count that differs from the sources.
    for (weights, want) in
        [("{ 0/0, 1 }", "NaN"), ("{ math.huge, 1 }", "inf"), ("{ 1 }", "1 blend weights for 2 sources")]
    {
        let p = dir.join("w.lua");
        let text = std::fs::read_to_string(dir.join("negw.lua")).expect("read").replace("{ 2, -1 }", weights);
        std::fs::write(&p, text).expect("write");
        let e = hashi_err(&["-q", "data", "plan", &s(&p), "--shards", &s(&shards)]);
        says(&e, &["phase p1", want]);
    }
}

#[test]
fn shares_and_fractions_are_checked() {
    let fx = fx();
    let shards = s(&fx.shards());
    let plan = |f: &str| {
        hashi_err(&["-q", "data", "plan", &s(&fixtures().join("curricula").join(f)), "--shards", &shards])
    };
    says(&plan("share_nan.lua"), &["share of en", "NaN"]);
    says(&plan("fractions_over_one.lua"), &["fractional token budgets sum to 1.6"]);
    says(&plan("share_negative.lua"), &["share of ja is -0.5", "negative"]);
    // Training on the NaN share is refused before anything is written.
    let dir = scratch_dir("refusals-share-train");
    let exp = dir.join("exp.lua");
    std::fs::write(
        &exp,
        format!(
            r#"return {{ name = "x", model = "{}", shards = "{shards}", curriculum = "{}",
  schedule = {{ script = "{}", params = {{ max_lr = 3e-3 }} }}, out = "{}" }}"#,
            s(&fx.tiny()),
            s(&fixtures().join("curricula/share_nan.lua")),
            s(&fx.file("schedule.lua")),
            s(&dir.join("run"))
        ),
    )
    .expect("write");
    says(&hashi_err(&["-q", "train", &s(&exp)]), &["share of en", "NaN"]);
    assert!(!dir.join("run").exists(), "nothing written");
    // Neighbours: a share above 1, a NaN budget, non-positive total_tokens.
    let cur = std::fs::read_to_string(fx.file("curriculum.lua")).expect("read");
    for (from, to, want) in [
        (
            "shares = { en = en, ja = 1 - en }",
            "shares = { en = 1.25, ja = 0 }",
            "share of en is 1.25: above 1",
        ),
        ("tokens = 1/3", "tokens = 0/0", "tokens = NaN"),
        ("total_tokens = 64 * 4 * 60", "total_tokens = -5", "total_tokens = -5"),
    ] {
        let p = dir.join("c.lua");
        std::fs::write(&p, cur.replace(from, to)).expect("write");
        says(&hashi_err(&["-q", "data", "plan", &s(&p), "--shards", &shards]), &[want]);
    }
}

// --- experiments (cases 21, 22) --------------------------------------------------------------------------

#[test]
fn optimizer_and_checkpoint_settings_are_checked() {
    let dir = scratch_dir("refusals-optimizer");
    for (i, (opt, extra, want)) in [
        ("beta1 = 1.5", "", &["optimizer.beta1 = 1.5", "[0, 1)"][..]),
        ("beta2 = -0.1", "", &["optimizer.beta2"][..]),
        ("eps = -1", "", &["optimizer.eps = -1"][..]),
        (
            "freeze = { \"model.layer.\" }",
            "",
            &["optimizer.freeze", "\"model.layer.\"", "matches no parameter"][..],
        ),
        (
            "freeze_rows = { [\"model.embed_tokens.weight\"] = { { 0, 99999 } } }",
            "",
            &["freeze_rows", "99999", "8000 rows"][..],
        ),
        (
            "freeze_rows = { [\"model.embed.weight\"] = { { 0, 2 } } }",
            "",
            &["freeze_rows", "not a parameter"][..],
        ),
        ("beta2 = 0.95", "checkpoint = { every = 5, keep = 0 },", &["checkpoint.keep = 0"][..]),
        ("beta2 = 0.95", "accumulation = 0,", &["accumulation = 0", "at least 1"][..]),
        ("weight_decay = 0/0", "", &["weight_decay"][..]),
        ("beta2 = 0.95", "stop = { spike = -1, max_bad_steps = 3 },", &["stop.spike = -1"][..]),
    ]
    .into_iter()
    .enumerate()
    {
        let exp = experiment(&dir, &format!("e{i}"), opt, extra, "3e-3");
        let e = hashi_err(&["-q", "train", &s(&exp), "--stop-after", "6"]);
        says(&e, want);
        says(&e, &[&format!("e{i}.lua")]);
        assert!(!dir.join(format!("e{i}-run")).exists(), "{opt}: refused before the run folder is made");
    }
}

#[test]
fn training_errors_name_the_path_or_the_setting() {
    let dir = scratch_dir("refusals-train");
    let exp = experiment(&dir, "lr", "beta2 = 0.95", "", "1e30");
    says(&hashi_err(&["-q", "train", &s(&exp), "--stop-after", "8"]), &["lr()", "learning rate 1e30"]);
    let exp = experiment(&dir, "proc", "beta2 = 0.95", "", "3e-3");
    let text = std::fs::read_to_string(&exp).expect("read");
    let out = s(&dir.join("proc-run"));
    std::fs::write(&exp, text.replace(&out, "/proc/self/hashi-run")).expect("write");
    says(
        &hashi_err(&["-q", "train", &s(&exp), "--stop-after", "8"]),
        &["/proc/self/hashi-run", "run folder"],
    );
    // Resume from a checkpoint without plan.json, and from a run folder with an empty experiment.json.
    let exp = experiment(&dir, "p", "beta2 = 0.95", "checkpoint = { every = 5, keep = 2 },", "3e-3");
    hashi_ok(&["-q", "train", &s(&exp), "--stop-after", "5"]);
    let run = dir.join("p-run");
    std::fs::remove_file(run.join("ckpt/step_00000005/plan.json")).expect("rm plan.json");
    says(&hashi_err(&["-q", "train", &s(&exp), "--resume"]), &["plan.json"]);
    std::fs::write(run.join("experiment.json"), "").expect("truncate");
    says(&hashi_err(&["-q", "train", "--resume", &s(&run)]), &["experiment.json"]);
}

// --- shards and manifests (cases 16, 26) ------------------------------------------------------------------

/// A copy of the fixture's shards, damaged by `damage`, and an experiment training on them.
fn damaged(name: &str, damage: impl FnOnce(&Path)) -> (PathBuf, PathBuf) {
    let dir = scratch_dir(&format!("refusals-{name}"));
    let shards = dir.join("s");
    std::fs::create_dir_all(&shards).expect("mkdir");
    for e in std::fs::read_dir(fx().shards()).expect("ls") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, shards.join(p.file_name().expect("name"))).expect("copy");
    }
    damage(&shards);
    let fxd = fx();
    let exp = dir.join("experiment.lua");
    std::fs::write(
        &exp,
        format!(
            r#"return {{ name = "x", model = "{}", shards = "{}", curriculum = "{}",
  schedule = {{ script = "{}", params = {{ max_lr = 3e-3 }} }}, out = "{}" }}"#,
            s(&fxd.tiny()),
            s(&shards),
            s(&fxd.file("curriculum.lua")),
            s(&fxd.file("schedule.lua")),
            s(&dir.join("run"))
        ),
    )
    .expect("write");
    (shards, exp)
}

/// A way to damage a copy of the shards.
type Damage = Box<dyn FnOnce(&Path)>;

fn dmg(f: impl FnOnce(&Path) + 'static) -> Damage {
    Box::new(f)
}

fn patch(path: &Path, at: usize, bytes: &[u8]) {
    let mut b = std::fs::read(path).expect("read");
    b[at..at + bytes.len()].copy_from_slice(bytes);
    std::fs::write(path, b).expect("write");
}

#[test]
fn damaged_shards_are_refused_naming_the_file() {
    // The fixture has one en_books sequence and two ja_books sequences; pointers start at byte 34 + 4 n.
    let cases: Vec<(&str, Damage, &[&str])> = vec![
        (
            "negative-pointer",
            dmg(|d: &Path| patch(&d.join("en_books.idx"), 34 + 4, &(-1000i64).to_le_bytes())),
            &["en_books.idx", "pointer of sequence 0 is -1000"][..],
        ),
        (
            "pointer-past-end",
            dmg(|d: &Path| patch(&d.join("ja_books.idx"), 34 + 8, &(10i64.pow(12)).to_le_bytes())),
            &["ja_books.idx", "pointer of sequence 0"][..],
        ),
        (
            "negative-length",
            dmg(|d: &Path| patch(&d.join("en_books.idx"), 34, &(-5i32).to_le_bytes())),
            &["en_books.idx", "negative length"][..],
        ),
        (
            "count-too-large",
            dmg(|d: &Path| patch(&d.join("ja_books.idx"), 18, &u64::MAX.to_le_bytes())),
            &["ja_books.idx"][..],
        ),
        (
            "bin-truncated",
            dmg(|d: &Path| {
                let p = d.join("en_books.bin");
                let n = std::fs::metadata(&p).expect("meta").len();
                std::fs::File::options().write(true).open(p).expect("open").set_len(n - 2).expect("truncate");
            }),
            &["en_books.bin", "describes"][..],
        ),
        (
            "ids-out-of-vocab",
            dmg(|d: &Path| {
                let p = d.join("en_books.bin");
                let n = std::fs::metadata(&p).expect("meta").len() as usize;
                std::fs::write(p, b"\xff\xfe".repeat(n / 2)).expect("write");
            }),
            &["en_books", "token id 65279", "vocabulary of 8000"][..],
        ),
    ];
    for (name, damage, want) in cases {
        let (_, exp) = damaged(name, damage);
        let e = hashi_err(&["-q", "train", &s(&exp), "--stop-after", "3"]);
        says(&e, want);
    }
}

/// A named damage to a JSON file and the words its refusal must contain.
type JsonEdit = (&'static str, fn(&mut serde_json::Value), &'static [&'static str]);

#[test]
fn manifests_that_disagree_with_their_shards_are_refused() {
    let edits: [JsonEdit; 5] = [
        (
            "inflated",
            |c| {
                c["tokens"] = 10u64.pow(12).into();
                c["documents"] = 10u64.pow(6).into();
            },
            &["manifest.json", "en_books", "documents"],
        ),
        (
            "zero",
            |c| {
                c["tokens"] = 0.into();
                c["documents"] = 0.into();
            },
            &["manifest.json", "en_books"],
        ),
        ("dtype", |c| c["dtype"] = "i32".into(), &["manifest.json", "en_books", "dtype"]),
        ("prefix", |c| c["prefix"] = "nonexistent".into(), &["manifest.json", "en_books", "nonexistent"]),
        (
            "tokens",
            |c| c["tokens"] = (c["tokens"].as_u64().expect("tokens") + 1).into(),
            &["manifest.json", "tokens"],
        ),
    ];
    for (name, edit, want) in edits {
        let (shards, exp) = damaged(&format!("manifest-{name}"), |d| {
            let p = d.join("manifest.json");
            let mut m: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("json");
            for c in m["corpora"].as_array_mut().expect("corpora") {
                if c["corpus"]["name"] == "en_books" {
                    edit(c);
                }
            }
            std::fs::write(p, m.to_string()).expect("write");
        });
        says(&hashi_err(&["-q", "train", &s(&exp), "--stop-after", "3"]), want);
        // `data plan` reads the same manifest: an inflated count must not hide a source that runs out.
        let cur = fixtures().join("curricula/cur_error.lua");
        says(&hashi_err(&["-q", "data", "plan", &s(&cur), "--shards", &s(&shards)]), &["manifest.json"]);
    }
}

// --- corpora and outputs (cases 05, 25, 27) --------------------------------------------------------------

#[test]
fn a_leading_bom_is_not_text() {
    let dir = scratch_dir("refusals-bom");
    let jsonl = dir.join("bom.jsonl");
    std::fs::write(jsonl, "\u{feff}{\"text\": \"first doc\"}\n{\"text\": \"second doc\"}\n").expect("write");
    std::fs::copy(fixtures().join("corpora/bom.txt"), dir.join("notes.txt")).expect("copy");
    let corpora = dir.join("corpora.lua");
    std::fs::write(
        &corpora,
        r#"return { { name = "notes", lang = "en", paths = { "notes.txt" } }, { name = "j", lang = "en", paths = { "bom.jsonl" } } }"#,
    )
    .expect("write");
    let out = dir.join("sh");
    hashi_ok(&["-q", "data", "prepare", &s(&corpora), "--tokenizer", &s(&mini_model()), "--out", &s(&out)]);
    let tok = hashi_tokenizer::Tokenizer::from_file(&mini_model()).expect("tokenizer");
    for name in ["notes", "j"] {
        let ds = hashi_data::IndexedDataset::open(&out.join(name)).expect("open");
        let ids = ds.get(0).expect("first document");
        let text = tok.decode(&ids, true).expect("decode");
        assert_eq!(text.trim(), "first doc", "{name}: the BOM is not part of the first document");
    }
}

#[test]
fn corpus_declaration_errors_name_the_cause_and_the_file() {
    let dir = scratch_dir("refusals-corpora");
    for f in ["a.txt", "bad_name.lua", "dup_name.lua", "dir_path.lua"] {
        std::fs::copy(fixtures().join("corpora").join(f), dir.join(f)).expect("copy");
    }
    let prep = |f: &str, out: &str| {
        hashi_err(&[
            "-q",
            "data",
            "prepare",
            &s(&dir.join(f)),
            "--tokenizer",
            &s(&mini_model()),
            "--out",
            &s(&dir.join(out)),
        ])
    };
    says(&prep("dir_path.lua", "s1"), &["is a directory", "dir_path.lua"]);
    says(&prep("bad_name.lua", "s2"), &["bad_name.lua", "../../evil"]);
    says(&prep("dup_name.lua", "s3"), &["dup_name.lua", "declared twice"]);
    let e = hashi_err(&[
        "-q",
        "tokenizer",
        "train",
        "--input",
        &format!("en={}", s(&dir)),
        "--vocab-size",
        "400",
        "--out",
        &s(&dir.join("t")),
    ]);
    says(&e, &["is a directory"]);
}

/// Every file under `dir` with its content.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("ls") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn outputs_are_not_overwritten_without_force() {
    let fx = fx();
    let dir = scratch_dir("refusals-outputs");
    let model = dir.join("model");
    std::fs::create_dir_all(&model).expect("mkdir");
    std::fs::copy(fx.tiny().join("config.json"), model.join("config.json")).expect("copy");
    std::fs::write(model.join("notes.txt"), "precious notes\n").expect("write");
    let before = snapshot(&model);
    let cfg = s(&fx.file("tiny.json"));
    let e = hashi_err(&["-q", "model", "init", "--config", &cfg, "--seed", "1", "--out", &s(&model)]);
    says(&e, &["already exists", "--force"]);
    assert_eq!(snapshot(&model), before, "model init left the folder as it was");
    hashi_ok(&["-q", "model", "init", "--config", &cfg, "--seed", "1", "--out", &s(&model), "--force"]);
    assert!(model.join("model.safetensors").is_file());

    let tok = dir.join("tok");
    std::fs::create_dir_all(&tok).expect("mkdir");
    std::fs::copy(fx.tiny().join("tokenizer.json"), tok.join("tokenizer.json")).expect("copy");
    let before = snapshot(&tok);
    let input = format!("en={}", s(&repo_root().join("examples/demo/corpus/en_books.jsonl")));
    let e =
        hashi_err(&["-q", "tokenizer", "train", "--input", &input, "--vocab-size", "600", "--out", &s(&tok)]);
    says(&e, &["already exists"]);
    assert_eq!(snapshot(&tok), before, "tokenizer train left the folder as it was");

    // A folder with other files is refused; a folder of earlier shards is updated with a warning.
    let other = dir.join("other");
    std::fs::create_dir_all(&other).expect("mkdir");
    std::fs::write(other.join("notes.txt"), "precious").expect("write");
    let corpora = s(&fx.file("corpora.lua"));
    let e =
        hashi_err(&["-q", "data", "prepare", &corpora, "--tokenizer", &s(&fx.tiny()), "--out", &s(&other)]);
    says(&e, &["already exists", "--force"]);
    assert_eq!(snapshot(&other).len(), 1);
    let shards = dir.join("shards");
    std::fs::create_dir_all(&shards).expect("mkdir");
    for e in std::fs::read_dir(fx.shards()).expect("ls") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, shards.join(p.file_name().expect("name"))).expect("copy");
    }
    let before = snapshot(&shards);
    let res = hashi(&["data", "prepare", &corpora, "--tokenizer", &s(&fx.tiny()), "--out", &s(&shards)]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    says(&String::from_utf8_lossy(&res.stderr), &["already holds prepared shards"]);
    assert_eq!(snapshot(&shards), before, "up-to-date shards are kept as they are");
}

// --- evaluation (cases 09, 10, 17, 18) -------------------------------------------------------------------

fn eval_err(data: &Path, shots: &str) -> String {
    hashi_err(&[
        "-q",
        "eval",
        "--model",
        &s(&mini_model()),
        "--tasks",
        "jcommonsenseqa-1.1-0.3",
        "--shots",
        shots,
        "--data",
        &s(data),
    ])
}

#[test]
fn empty_splits_and_small_few_shot_pools_are_refused() {
    let data = fixtures().join("eval");
    says(&eval_err(&data.join("empty_split"), "2"), &["jcommonsenseqa/validation.jsonl", "no documents"]);
    says(
        &eval_err(&data.join("few_train"), "3"),
        &["jcommonsenseqa/train.jsonl", "2 documents", "fewer than the 3 shots asked for"],
    );
    let dir = scratch_dir("refusals-eval-empty");
    let d = dir.join("jcommonsenseqa");
    std::fs::create_dir_all(&d).expect("mkdir");
    std::fs::copy(data.join("few_train/jcommonsenseqa/validation.jsonl"), d.join("validation.jsonl"))
        .expect("copy");
    std::fs::write(d.join("train.jsonl"), "").expect("write");
    says(&eval_err(&dir, "2"), &["jcommonsenseqa/train.jsonl", "0 documents"]);
}

#[test]
fn document_errors_name_file_and_line() {
    let data = fixtures().join("eval/doc_errors");
    says(&eval_err(&data, "2"), &["jcommonsenseqa/validation.jsonl:6", "label 7"]);
    // A bad few-shot document is blamed on train.jsonl, not on the evaluation split.
    let dir = scratch_dir("refusals-eval-train");
    let d = dir.join("jcommonsenseqa");
    std::fs::create_dir_all(&d).expect("mkdir");
    let val = std::fs::read_to_string(data.join("jcommonsenseqa/validation.jsonl")).expect("read");
    std::fs::write(d.join("validation.jsonl"), val.replace("\"label\": 7", "\"label\": 1")).expect("write");
    let train = std::fs::read_to_string(data.join("jcommonsenseqa/train.jsonl")).expect("read");
    let lines: Vec<String> = train
        .lines()
        .enumerate()
        .map(|(i, l)| if i == 3 { l.replace("\"question\"", "\"questio\"") } else { l.to_string() })
        .collect();
    std::fs::write(d.join("train.jsonl"), lines.join("\n") + "\n").expect("write");
    says(&eval_err(&dir, "2"), &["jcommonsenseqa/train.jsonl:4", "question"]);
}

#[test]
fn nli_labels_are_read_in_the_upstream_encodings() {
    use hashi_eval::Task;
    let mnli = Task::from_name("mnli").expect("mnli");
    for (label, gold) in [("entailment", 0), ("neutral", 1), ("contradiction", 2)] {
        let by_name = serde_json::json!({"premise": "p", "hypothesis": "h", "label": label});
        let by_index = serde_json::json!({"premise": "p", "hypothesis": "h", "label": gold});
        assert_eq!(mnli.gold(&by_name), Ok(gold));
        assert_eq!(mnli.gold(&by_index), Ok(gold), "HF glue/mnli ClassLabel {gold}");
    }
    assert!(mnli.gold(&serde_json::json!({"label": 3})).is_err());
    assert!(mnli.gold(&serde_json::json!({"label": -1})).is_err(), "GLUE's unlabelled test rows");
    let qnli = Task::from_name("qnli").expect("qnli");
    assert_eq!(qnli.gold(&serde_json::json!({"label": 1})), Ok(1));
    let jnli = Task::from_name("jnli-1.3-0.3").expect("jnli");
    assert_eq!(
        jnli.gold(&serde_json::json!({"label": "neutral"})),
        jnli.gold(&serde_json::json!({"label": 2}))
    );
}

// --- standard output (case 11) ---------------------------------------------------------------------------

#[test]
fn a_failed_stdout_write_is_an_error_not_a_panic() {
    let full = std::fs::File::options().write(true).open("/dev/full").expect("/dev/full");
    let m = s(&mini_model());
    let commands: [&[&str]; 4] = [
        &["model", "info", &m],
        &["tokenizer", "encode", "--tokenizer", &m, "--text", "a bridge"],
        &["tokenizer", "encode", "--tokenizer", &m, "--text", "a bridge", "--json"],
        &["tokenizer", "decode", "--tokenizer", &m, "--ids", "5,6,7"],
    ];
    for args in commands {
        let out = std::process::Command::new(hashi_bin())
            .args(args)
            .stdout(full.try_clone().expect("dup"))
            .output()
            .expect("hashi starts");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        says(&err, &["writing standard output"]);
        assert!(!err.contains("panicked"), "{err}");
    }
    // A closed pipe is the same error, not a panic or a signal.
    let mut child = std::process::Command::new(hashi_bin())
        .args(["model", "info", &m])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("hashi starts");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    says(&err, &["writing standard output"]);
}

// --- tokenizers (cases 01, 03) ---------------------------------------------------------------------------

#[test]
fn user_defined_symbols_have_one_id_each_and_the_ids_of_tokenizers() {
    let dir = scratch_dir("refusals-user-symbols");
    let tok = dir.join("tok");
    let corpus = fixtures().join("tokenizer/user_symbols_corpus.txt");
    hashi_ok(&[
        "-q",
        "tokenizer",
        "train",
        "--input",
        &format!("en={}", s(&corpus)),
        "--vocab-size",
        "320",
        "--user-defined-symbol",
        "した",
        "--user-defined-symbol",
        "the",
        "--out",
        &s(&tok),
    ]);
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tok.join("tokenizer.json")).expect("read"))
            .expect("json");
    let vocab = j["model"]["vocab"].as_object().expect("vocab");
    assert_eq!(vocab.len(), 320, "every id has its own piece (a piece listed twice leaves a hole)");
    for sym in ["した", "the"] {
        assert!(vocab[sym].is_u64(), "{sym}: a piece of the vocabulary");
        let added =
            j["added_tokens"].as_array().expect("added").iter().filter(|a| a["content"] == sym).count();
        assert_eq!(added, 0, "{sym}: cut out by the pre-tokenizer, not an added token with a second id");
    }
    let texts = ["彼はそれをした。the cat", "other theme した the", "そしたら"];
    let texts_path = dir.join("texts.json");
    std::fs::write(&texts_path, serde_json::json!(texts).to_string()).expect("write");
    let peers: serde_json::Value =
        serde_json::from_str(&run_python("tokenizer_peers.py", &["encode", &s(&tok), &s(&texts_path)]))
            .expect("peer json");
    for (i, text) in texts.iter().enumerate() {
        let ids = hashi_ids(&tok, text, &[]);
        assert_eq!(ids, peers["tokenizers"][i], "{text:?}: hashi and the tokenizers library differ");
    }
}

/// Case 02: an imported SentencePiece model with user-defined symbols gives the sentencepiece library's ids: one
/// dummy-prefix `▁` at the start of the text (also before a leading symbol), none after a symbol.
#[test]
fn imported_user_defined_symbols_give_the_sentencepiece_librarys_ids() {
    let dir = scratch_dir("refusals-sp-symbols");
    let tok = dir.join("tok");
    let model = fixtures().join("tokenizer/user_symbols_sp.model");
    hashi_ok(&["-q", "tokenizer", "import-sentencepiece", &s(&model), "--out", &s(&tok)]);
    let texts = [
        "a<mask>b",
        "<mask> cat",
        "cat <mask> dog",
        "<sep>",
        "cat<sep>dog",
        "the cat",
        "<mask><sep> the<mask>",
        "  two spaces <sep>  and  a mat",
    ];
    let texts_path = dir.join("texts.json");
    std::fs::write(&texts_path, serde_json::json!(texts).to_string()).expect("write");
    let sp: serde_json::Value =
        serde_json::from_str(&run_python("tokenizer_peers.py", &["sp_encode", &s(&model), &s(&texts_path)]))
            .expect("peer json");
    for (i, text) in texts.iter().enumerate() {
        assert_eq!(
            hashi_ids(&tok, text, &["--no-special"]),
            sp["ids"][i],
            "{text:?}: hashi and sentencepiece differ"
        );
    }
}

#[test]
fn sentencepiece_models_the_library_refuses_are_refused() {
    let dir = scratch_dir("refusals-sp");
    let models = fixtures().join("tokenizer");
    hashi_ok(&[
        "-q",
        "tokenizer",
        "import-sentencepiece",
        &s(&models.join("base.model")),
        "--out",
        &s(&dir.join("base")),
    ]);
    for (m, want) in [("dup", "\"▁cat\" is defined twice"), ("empty", "is empty"), ("missing_byte", "<0x41>")]
    {
        let model = models.join(format!("{m}.model"));
        let e =
            hashi_err(&["-q", "tokenizer", "import-sentencepiece", &s(&model), "--out", &s(&dir.join(m))]);
        says(&e, &[&format!("{m}.model"), want]);
        assert!(!dir.join(m).exists(), "{m}: nothing written");
    }
}

/// Case 24: `generate` refuses a NaN temperature and a prompt longer than the model's positions, `tokenizer
/// decode` an id outside the vocabulary, each naming what is wrong.
#[test]
fn generation_and_decoding_inputs_are_checked() {
    let model = reference_dir().join("gqa");
    let m = model.display().to_string();
    let e = hashi_err(&["generate", "--model", &m, "--prompt", "w5 w6", "--temperature", "NaN"]);
    assert!(e.contains("--temperature NaN"), "{e}");
    let long: Vec<String> = (0..200).map(|i| format!("w{}", 3 + i % 250)).collect();
    let e = hashi_err(&["generate", "--model", &m, "--prompt", &long.join(" ")]);
    assert!(e.contains("more than the model's 128 positions") && e.contains("config.json"), "{e}");
    let tok = model.join("tokenizer.json").display().to_string();
    let e = hashi_err(&["tokenizer", "decode", "--tokenizer", &tok, "--ids", "5,99999"]);
    assert!(e.contains("id 99999") && e.contains("tokenizer.json"), "{e}");
}

/// Case 12: `model init` refuses sizes whose weights cannot exist (terabytes; a product beyond 64 bits) before
/// allocating, naming the sizes, instead of an allocator abort.
#[test]
fn absurd_model_sizes_are_refused_before_allocating() {
    let dir = scratch_dir("refusals-sizes");
    let huge = fixtures().join("model/huge-hidden.json");
    let e = hashi_err(&["model", "init", "--config", &s(&huge), "--out", &s(&dir.join("huge"))]);
    says(&e, &["parameters need", "GiB", "more than this machine"]);
    let overflow = fixtures().join("model/overflow.json");
    let e = hashi_err(&["model", "init", "--config", &s(&overflow), "--out", &s(&dir.join("overflow"))]);
    says(&e, &["overflow.json", "the sizes overflow", "vocab_size 1099511627776"]);
    assert!(!dir.join("huge").exists() && !dir.join("overflow").exists(), "nothing written");
}

/// Case 14: weights holding NaN or Inf are refused when loaded, by every command that loads them, naming the
/// file, the tensor and the count.
#[test]
fn non_finite_weights_are_refused_naming_file_and_tensor() {
    let dir = scratch_dir("refusals-nan");
    let bad = dir.join("bad");
    std::fs::create_dir_all(&bad).expect("dir");
    for f in std::fs::read_dir(fx().tiny()).expect("tiny") {
        let f = f.expect("entry").path();
        std::fs::copy(&f, bad.join(f.file_name().expect("name"))).expect("copy");
    }
    // The first two values of model.norm.weight (f32) become NaN and +Inf.
    let path = bad.join("model.safetensors");
    let mut raw = std::fs::read(&path).expect("read");
    let n = u64::from_le_bytes(raw[..8].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Value = serde_json::from_slice(&raw[8..8 + n]).expect("header");
    let start = 8 + n + header["model.norm.weight"]["data_offsets"][0].as_u64().expect("offset") as usize;
    raw[start..start + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    raw[start + 4..start + 8].copy_from_slice(&f32::INFINITY.to_le_bytes());
    std::fs::write(&path, raw).expect("write");
    let docs = dir.join("small.jsonl");
    std::fs::write(&docs, "{\"text\": \"the cat sat on the mat\"}\n").expect("docs");
    let (b, d) = (s(&bad), format!("en={}", s(&docs)));
    let out = s(&dir.join("out.json"));
    for args in [
        vec!["model", "logits", "--model", &b, "--ids", "1,2,3", "--out", &out],
        vec!["generate", "--model", &b, "--prompt", "hello", "--max-new-tokens", "5"],
        vec!["eval", "--model", &b, "--bpb", &d, "--out", &out],
    ] {
        let e = hashi_err(&args);
        says(&e, &["model.safetensors", "model.norm.weight", "1 NaN and 1 infinite", "not finite"]);
    }
}

/// Case 23: a tokenizer.json whose ids leave a gap — an added token at id 9999999 beside 8,000 pieces, which the
/// `tokenizers` library renumbers to 8000 — is refused naming the file and the id, by `transfer` and every other
/// command, instead of a model without a row for it.
#[test]
fn tokenizers_whose_ids_leave_gaps_are_refused() {
    let dir = scratch_dir("refusals-gaps");
    for (name, edit) in [
        (
            "added",
            r#"{"id": 9999999, "content": "<x>", "special": true, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false}"#,
        ),
        ("piece", ""),
    ] {
        let tok = dir.join(name);
        std::fs::create_dir_all(&tok).expect("dir");
        let mut t: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fx().tiny().join("tokenizer.json")).expect("tokenizer"),
        )
        .expect("json");
        if edit.is_empty() {
            t["model"]["vocab"]["▁the"] = 50_000.into();
        } else {
            t["added_tokens"].as_array_mut().expect("list").push(serde_json::from_str(edit).expect("token"));
        }
        std::fs::write(tok.join("tokenizer.json"), t.to_string()).expect("write");
        let out = dir.join(format!("{name}-out"));
        let e = hashi_err(&[
            "transfer",
            "--model",
            &s(&fx().tiny()),
            "--tokenizer",
            &s(&tok),
            "--init",
            "scripts/init/mean.lua",
            "--out",
            &s(&out),
        ]);
        let id = if edit.is_empty() { "id 50000" } else { "id 9999999" };
        says(&e, &["tokenizer.json", id, "without gaps"]);
        assert!(!out.exists(), "nothing written");
        let e = hashi_err(&["tokenizer", "encode", "--tokenizer", &s(&tok), "--text", "a bridge"]);
        says(&e, &["tokenizer.json", id]);
    }
}
