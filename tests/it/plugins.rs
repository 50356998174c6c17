//! Plugins: the example backend trains exactly like the built-in one through the C ABI; broken plugins (wrong
//! ABI, no entry point, errors, panics) are refused or reported and the host keeps running.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hashi_plugin_host::{Plugin, PluginError};
use hashi_train::Backend;

use crate::common::*;
use crate::train::setup;

/// The example plugin and the test plugins of this build profile, built once per test process.
pub(crate) fn libs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = hashi_bin().parent().expect("profile dir").to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = std::process::Command::new(cargo);
        cmd.args(["build", "--quiet"]).current_dir(repo_root());
        for p in [
            "hashi-plugin-example",
            "hashi-plugin-export",
            "hashi-plugin-test-faulty",
            "hashi-plugin-test-bad-abi",
            "hashi-plugin-test-no-entry",
            "hashi-plugin-test-crash-at-load",
        ] {
            cmd.args(["-p", p]);
        }
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        assert!(cmd.status().expect("cargo runs").success(), "building the plugins failed");
        dir
    })
}

pub(crate) fn lib(name: &str) -> PathBuf {
    libs().join(format!("{}{name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX))
}

fn tiny_model(name: &str) -> PathBuf {
    let dir = scratch_dir(name);
    let model = dir.join("model");
    hashi_ok(&[
        "model",
        "init",
        "--preset",
        "tiny-test",
        "--seed",
        "5",
        "--out",
        &model.display().to_string(),
    ]);
    model
}

fn rows(vocab: u32) -> Vec<Vec<u32>> {
    (0..3u32).map(|r| (0..17u32).map(|i| (r * 7919 + i * 104_729) % vocab).collect()).collect()
}

#[test]
fn plugins_list_shows_the_example_and_refuses_broken_libraries_clearly() {
    let example = lib("hashi_plugin_example").display().to_string();
    let out = hashi_ok(&["plugins", "list", "--plugin", &example, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let p = &v["plugins"][0];
    assert_eq!(p["name"], "example");
    assert_eq!(p["abi"], "1.0");
    assert_eq!(p["capabilities"], serde_json::json!(["backend"]));
    assert_eq!(p["same_compiler"], true);
    let e =
        hashi_err(&["plugins", "list", "--plugin", &lib("hashi_testplugin_bad_abi").display().to_string()]);
    assert!(
        e.contains("libhashi_testplugin_bad_abi")
            && e.contains("plugin ABI 99.0")
            && e.contains("speaks 1.0"),
        "{e}"
    );
    let e =
        hashi_err(&["plugins", "list", "--plugin", &lib("hashi_testplugin_no_entry").display().to_string()]);
    assert!(e.contains("not a hashi plugin") && e.contains("hashi_plugin_entry"), "{e}");
    let e = hashi_err(&["plugins", "list", "--plugin", "/nonexistent/libhashi_plugin_x.so"]);
    assert!(e.contains("/nonexistent/libhashi_plugin_x.so") && e.contains("cannot load"), "{e}");
    // A folder with a refused library next to a good one: the good one stays usable, the bad one is reported.
    let dir = scratch_dir("plugin-dir");
    for n in ["hashi_plugin_example", "hashi_testplugin_bad_abi"] {
        let to = dir.join(format!("libhashi_plugin_{}.so", n.rsplit('_').next().expect("suffix")));
        std::fs::copy(lib(n), to).expect("copy");
    }
    let reg = hashi_plugin_host::Registry::discover(&[], std::slice::from_ref(&dir)).expect("discover");
    assert_eq!(reg.plugins().len(), 1);
    assert_eq!(reg.refused().len(), 1);
    assert!(reg.backend("example").is_ok());
    let e = reg.backend("cuda").expect_err("no such backend").to_string();
    assert!(e.contains("backend \"cuda\"") && e.contains("loaded: example") && e.contains("ABI 99.0"), "{e}");
}

#[test]
fn training_through_the_example_plugin_equals_the_built_in_backend() {
    let builtin = setup("plugin-builtin", 30);
    hashi_ok(&["train", &builtin.exp()]);
    let via = setup("plugin-example", 30);
    let exp = via.dir.join("exp.lua");
    let text = std::fs::read_to_string(&exp).expect("exp");
    std::fs::write(&exp, text.replace("out = 'run'", "out = 'run', backend = 'example'")).expect("write");
    let example = lib("hashi_plugin_example").display().to_string();
    hashi_ok(&["train", &via.exp(), "--plugin", &example]);
    let (want, got) = (builtin.outcome(), via.outcome());
    assert_eq!(got.2.len(), 60);
    assert_eq!(got.2, want.2, "losses, learning rates and gradient norms equal step by step");
    assert!(got.0 == want.0, "final weights equal");
    assert!(got.1 == want.1, "final optimizer state equal");
    // Resume through the plugin (optimizer state read back through the ABI).
    hashi_ok(&["train", &via.exp(), "--plugin", &example, "--resume"]);
}

#[test]
fn example_plugin_log_probabilities_equal_the_cpu_backend() {
    let model = tiny_model("plugin-logprobs");
    let plugin = Plugin::load(&lib("hashi_plugin_example")).expect("load");
    let mut via = plugin.backend(&model, "{}").expect("backend");
    let mut cpu = hashi_train::CpuBackend::new(
        hashi_model::Llama::load(&model).expect("model"),
        hashi_train::AdamWConfig::default(),
    );
    let vocab = hashi_model::Llama::load(&model).expect("model").config().vocab_size as u32;
    let seqs = rows(vocab);
    let (a, b) = (via.logprobs(&seqs).expect("plugin"), cpu.logprobs(&seqs).expect("cpu"));
    assert_eq!(a, b);
    // The loss is the mean negative log-probability.
    let mean = -a.iter().flatten().map(|&x| f64::from(x)).sum::<f64>() / (3.0 * 16.0);
    let loss = via.accumulate(&seqs).expect("accumulate");
    assert!((loss - mean).abs() < 1e-4, "loss {loss} vs mean -logprob {mean}");
    let e = via.logprobs(&[vec![1, vocab + 5]]).expect_err("out of range").to_string();
    assert!(e.contains("out of range"), "{e}");
}

#[test]
fn errors_and_panics_inside_a_plugin_are_reported_and_the_host_keeps_running() {
    let model = tiny_model("plugin-faulty");
    let plugin = Plugin::load(&lib("hashi_testplugin_faulty")).expect("load");
    let e = plugin.backend(&model, r#"{"fail": "create"}"#).expect_err("create fails");
    assert!(
        matches!(e, PluginError::Call { call: "create", .. }) && e.to_string().contains("deliberate error")
    );
    let e = plugin.backend(&model, r#"{"panic": "create"}"#).expect_err("create panics");
    assert!(matches!(e, PluginError::Panicked { call: "create", .. }), "{e}");
    let seqs = rows(100);
    let mut b = plugin.backend(&model, r#"{"panic": "accumulate"}"#).expect("backend");
    let e = b.accumulate(&seqs).expect_err("panics").to_string();
    assert!(
        e.contains("faulty") && e.contains("accumulate panicked") && e.contains("deliberate panic"),
        "{e}"
    );
    let e = b.accumulate(&seqs).expect_err("poisoned").to_string();
    assert!(e.contains("unusable after an earlier panic"), "{e}");
    drop(b);
    let mut b = plugin.backend(&model, r#"{"fail": "apply"}"#).expect("backend");
    assert_eq!(b.accumulate(&seqs).expect("works"), 51.0);
    let e = b.apply(1e-3).expect_err("fails").to_string();
    assert!(e.contains("apply: deliberate error in apply"), "{e}");
    assert_eq!(b.logprobs(&seqs).expect("still usable after an error")[0][0], -1.0);
    let e = plugin.export("panic", "{}", &model).expect_err("export panics");
    assert!(matches!(e, PluginError::Panicked { call: "export", .. }), "{e}");
    let e = plugin.export("fail", "{}", &model).expect_err("export fails").to_string();
    assert!(e.contains("deliberate error in export"), "{e}");
    // Through the CLI: a panicking plugin is a clean exit 1 with the plugin's message, not a crash.
    let run = setup("plugin-cli-panic", 0);
    let exp = run.dir.join("exp.lua");
    let text = std::fs::read_to_string(&exp).expect("exp");
    let faulty = lib("hashi_testplugin_faulty").display().to_string();
    std::fs::write(
        &exp,
        text.replace(
            "out = 'run'",
            "out = 'run', backend = 'faulty', backend_options = { panic = 'accumulate' }",
        ),
    )
    .expect("write");
    let out = hashi(&["train", &run.exp(), "--plugin", &faulty]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: ")
            && stderr.contains("accumulate panicked: plugin panicked: deliberate panic"),
        "{stderr}"
    );
    std::fs::write(&exp, text.replace("out = 'run'", "out = 'run', backend = 'nonesuch'")).expect("write");
    let e = hashi_err(&["train", &run.exp(), "--plugin", &faulty]);
    assert!(e.contains("exp.lua") && e.contains("no plugin provides backend \"nonesuch\""), "{e}");
}

#[test]
fn eval_through_a_plugin_backend_gives_the_built_in_scores() {
    let dir = scratch_dir("plugin-eval");
    let model = dir.join("model");
    crate::eval::tiny_model(&model);
    let data = repo_root().parent().expect("parent").join("shared/data/eval").display().to_string();
    let example = lib("hashi_plugin_example").display().to_string();
    let run = |extra: &[&str], log: &std::path::Path| {
        let mut args = vec![
            "eval",
            "--model",
            model.to_str().expect("utf-8"),
            "--tasks",
            "jcommonsenseqa-1.1-0.1,jnli-1.3-0.2,mnli",
            "--limit",
            "3",
            "--data",
            &data,
            "--log-requests",
            log.to_str().expect("utf-8"),
        ];
        args.extend_from_slice(extra);
        hashi_ok(&args);
        std::fs::read_to_string(log)
            .expect("log")
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).expect("json")["loglikelihood"]
                    .as_f64()
                    .expect("ll")
            })
            .collect::<Vec<f64>>()
    };
    let builtin = run(&[], &dir.join("a.jsonl"));
    let via = run(&["--backend", "example", "--plugin", &example], &dir.join("b.jsonl"));
    assert_eq!(builtin.len(), via.len());
    assert_eq!(builtin.len(), 3 * 5 + 3 * 3 + 3 * 3);
    for (x, y) in builtin.iter().zip(&via) {
        assert!((x - y).abs() < 1e-3 * x.abs().max(1.0), "{x} vs {y}");
    }
    let e = hashi_err(&[
        "eval",
        "--model",
        model.to_str().expect("utf-8"),
        "--tasks",
        "jsquad-1.1-0.3",
        "--limit",
        "1",
        "--data",
        &data,
        "--backend",
        "example",
        "--plugin",
        &example,
    ]);
    assert!(e.contains("plugin backends score log-likelihood tasks"), "{e}");
}

/// Cases 34 and 35: a backend plugin that segfaults, overflows its stack, aborts or calls `exit(0)` inside a call
/// runs in a worker process, so `hashi train` survives: exit code 1, an error naming the plugin, the call and how
/// its process ended, nothing on stderr that reads like a crash of hashi, and the checkpoints written before stay.
#[test]
fn a_backend_plugin_that_crashes_in_a_call_does_not_take_hashi_down() {
    let faulty = lib("hashi_testplugin_faulty").display().to_string();
    for (call, how, says) in [
        ("create", "segv", "segmentation fault"),
        ("accumulate", "stack", "SIGABRT"),
        ("apply", "abort", "SIGABRT"),
        ("accumulate", "exit0", "exited with code 0 in the middle of the call"),
    ] {
        let run = setup(&format!("plugin-crash-{call}-{how}"), 0);
        let exp = run.dir.join("exp.lua");
        let text = std::fs::read_to_string(&exp).expect("exp");
        let options = format!(
            "out = 'run', backend = 'faulty', backend_options = {{ crash = '{call}', how = '{how}' }}"
        );
        std::fs::write(&exp, text.replace("out = 'run'", &options)).expect("write");
        let out = hashi(&["train", &run.exp(), "--plugin", &faulty]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{call}/{how}: {stderr}");
        assert!(
            stderr.contains("plugin faulty") && stderr.contains(call) && stderr.contains(says),
            "{call}/{how}: {stderr}"
        );
        assert!(
            !stderr.contains("panicked at") && !stderr.contains("overflowed its stack"),
            "{call}/{how}: {stderr}"
        );
    }
}
