//! Shared fixtures: the Python peer, the `hashi` binary, reference checkpoints, tensor comparison.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use candle_core::{Device, Tensor};

/// The workspace root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The Python interpreter with torch + transformers: `HASHI_PYTHON`, else the repo's `.venv`.
pub fn python() -> PathBuf {
    let py = std::env::var_os("HASHI_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    assert!(
        py.exists(),
        "no Python peer at {}: run the README's test command (it installs torch + transformers into .venv) \
         or set HASHI_PYTHON",
        py.display()
    );
    py
}

/// Runs `tests/python/SCRIPT args...` and returns its stdout; panics with its stderr on failure.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(repo_root().join("tests/python").join(script))
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_VERBOSITY", "error")
        .output()
        .expect("python starts");
    assert!(out.status.success(), "{script} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// The unidic-lite dictionary of the peer environment (MeCab words for the QA metrics).
pub fn unidic_dir() -> PathBuf {
    let out = Command::new(python())
        .args(["-c", "import unidic_lite; print(unidic_lite.DICDIR)"])
        .output()
        .expect("python starts");
    assert!(
        out.status.success(),
        "unidic-lite is not installed in the peer environment (tests/requirements.txt)"
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The `hashi` binary of this build profile, built once per test process (so it is never stale).
pub fn hashi_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test exe path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/it-*");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "hashi-cli", "--bin", "hashi"]).current_dir(repo_root());
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "building the hashi binary failed");
        profile_dir.join("hashi")
    })
}

/// The ids `hashi tokenizer encode --json` gives `text` with the tokenizer `tok` (plus `extra` flags).
pub fn hashi_ids(tok: &Path, text: &str, extra: &[&str]) -> serde_json::Value {
    let tok = tok.display().to_string();
    let mut args = vec!["-q", "tokenizer", "encode", "--tokenizer", &tok, "--text", text, "--json"];
    args.extend_from_slice(extra);
    let out: serde_json::Value = serde_json::from_str(&hashi_ok(&args)).expect("encode json");
    out["ids"].clone()
}

/// Runs `hashi args...` from the repository root (where `scripts/lib` is).
pub fn hashi(args: &[&str]) -> Output {
    Command::new(hashi_bin()).args(args).current_dir(repo_root()).output().expect("hashi starts")
}

/// Runs `hashi args...`, asserts success and returns stdout.
pub fn hashi_ok(args: &[&str]) -> String {
    let out = hashi(args);
    assert!(
        out.status.success(),
        "hashi {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Runs `hashi args...`, asserts a clean failure (exit code 1, not a panic) and returns stderr.
pub fn hashi_err(args: &[&str]) -> String {
    let out = hashi(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "hashi {args:?} should fail cleanly, got {}:\n{stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "hashi {args:?} panicked:\n{stderr}");
    stderr
}

/// The reference checkpoints and outputs of `tests/python/make_reference.py`, made once per process.
pub fn reference_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch_dir("reference");
        run_python("make_reference.py", &[dir.to_str().expect("utf-8 path")]);
        dir
    })
}

/// Names of the reference configs (Llama unless named otherwise; `rope_*` are the RoPE types).
pub const REFERENCE_CONFIGS: [&str; 14] = [
    "gqa",
    "tied",
    "rope_theta",
    "rope_linear",
    "bias",
    "bf16",
    "sharded",
    "mistral_window",
    "qwen2_untied",
    "qwen2_tied_window",
    "rope_dynamic",
    "rope_llama3",
    "rope_yarn",
    "rope_yarn_mscale",
];

/// A fresh directory under `target/tmp/` for this test process.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("clear scratch dir");
    }
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Removes a scratch directory a test no longer needs. Called at the end of the tests that write checkpoints (a
/// full run keeps gigabytes): a passing test leaves nothing behind, a failing one (which never gets here) keeps its
/// files to look at.
pub fn remove_scratch(dir: &Path) {
    std::fs::remove_dir_all(dir).unwrap_or_else(|e| panic!("removing {}: {e}", dir.display()));
}

/// Tensor `name` of a safetensors file, on the CPU.
pub fn load_tensor(path: &Path, name: &str) -> Tensor {
    let mut all = candle_core::safetensors::load(path, &Device::Cpu).expect("readable safetensors");
    all.remove(name).unwrap_or_else(|| panic!("{}: no tensor {name}", path.display()))
}

/// Largest absolute elementwise difference (shapes must match).
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shape mismatch");
    let a = a.to_dtype(candle_core::DType::F32).expect("f32");
    let b = b.to_dtype(candle_core::DType::F32).expect("f32");
    (a - b)
        .expect("sub")
        .abs()
        .expect("abs")
        .flatten_all()
        .expect("flat")
        .max(0)
        .expect("max")
        .to_scalar()
        .expect("scalar")
}

/// Largest absolute value.
pub fn max_abs(a: &Tensor) -> f32 {
    a.to_dtype(candle_core::DType::F32)
        .expect("f32")
        .abs()
        .expect("abs")
        .flatten_all()
        .expect("flat")
        .max(0)
        .expect("max")
        .to_scalar()
        .expect("scalar")
}

/// The JSON documents of a JSONL file (blank lines skipped).
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

/// The JSON documents of a JSONL file under `../shared/data` (blank lines skipped).
pub fn shared_jsonl(rel: &str) -> Vec<serde_json::Value> {
    read_jsonl(&repo_root().parent().expect("parent").join("shared/data").join(rel))
}
