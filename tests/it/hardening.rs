//! Hardening (issue 18): nothing written is lost, Lua cannot hang or crash hashi, run folders are owned.
//!
//! The inputs are those of the failure cases 08, 13, 19, 28–32 (`tests/fixtures/hardening/`): a 1.1 M-parameter
//! Llama with random weights and the mini example's tokenizer, shards of the demo corpus, a 60-step curriculum.
//! The kill tests at an exact system call need `strace` (they say so and pass without it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures/hardening")
}

fn sh(dir: &Path, args: &[&str]) -> Output {
    Command::new(hashi_bin()).args(args).current_dir(dir).output().expect("hashi starts")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output, what: &str) {
    assert!(o.status.success(), "{what} failed: {}", stderr(o));
}

/// The tiny fixture in a fresh folder: `tiny/` (model + tokenizer), `shards/`, curriculum and schedule.
struct Fx {
    dir: PathBuf,
}

impl Fx {
    fn new(name: &str) -> Self {
        let dir = scratch_dir(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        for f in ["tiny.json", "curriculum.lua", "schedule.lua"] {
            std::fs::copy(fixtures().join(f), dir.join(f)).expect("copy fixture");
        }
        let demo = repo_root().join("examples/demo/corpus");
        std::fs::write(
            dir.join("corpora.lua"),
            format!(
                "return {{ {{ name = 'ja_books', lang = 'ja', tier = 'high', paths = {{ '{0}/ja_books.jsonl' }} }},\n\
                 {{ name = 'en_books', lang = 'en', tier = 'high', paths = {{ '{0}/en_books.jsonl' }} }} }}\n",
                demo.display()
            ),
        )
        .expect("corpora");
        ok(
            &sh(&dir, &["-q", "model", "init", "--config", "tiny.json", "--seed", "0", "--out", "tiny"]),
            "model init",
        );
        let mini = repo_root().join("examples/mini/base/model");
        for f in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"] {
            std::fs::copy(mini.join(f), dir.join("tiny").join(f)).expect("copy tokenizer");
        }
        ok(
            &sh(&dir, &["-q", "data", "prepare", "corpora.lua", "--tokenizer", "tiny", "--out", "shards"]),
            "data prepare",
        );
        Self { dir }
    }

    /// An experiment over the fixture: `extra` goes into the table (e.g. `tokenizer = "tiny",`).
    fn experiment(&self, extra: &str, every: u64, keep: usize) -> String {
        let text = format!(
            "return {{ name = 'x', model = 'tiny', {extra} shards = 'shards', curriculum = 'curriculum.lua',\n\
             schedule = {{ script = 'schedule.lua', params = {{ max_lr = 3e-3 }} }},\n\
             optimizer = {{ weight_decay = 0.1, clip = 1.0 }}, checkpoint = {{ every = {every}, keep = {keep} }},\n\
             out = 'run' }}\n"
        );
        std::fs::write(self.dir.join("exp.lua"), text).expect("experiment");
        "exp.lua".into()
    }

    fn run(&self, args: &[&str]) -> Output {
        sh(&self.dir, args)
    }

    fn steps(&self) -> Vec<u64> {
        let text = std::fs::read_to_string(self.dir.join("run/metrics.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .and_then(|v| v["step"].as_u64())
                    .unwrap_or(0)
            })
            .collect()
    }

    /// Step folders with DONE that lack a file of `reference`.
    fn damaged(&self, reference: &[String]) -> Vec<String> {
        let mut bad = vec![];
        for e in std::fs::read_dir(self.dir.join("run/ckpt")).expect("ckpt").flatten() {
            let d = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("step_")
                && d.join("DONE").is_file()
                && let Some(f) = reference.iter().find(|f| !d.join(f).exists())
            {
                bad.push(format!("{name} (DONE, but no {f})"));
            }
        }
        bad
    }
}

fn has_strace() -> bool {
    Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Cases 08 and 28: retention never deletes what a resume needs; the tokenizer files of every checkpoint come
/// from the run's own copy (with and without `tokenizer =`, keep = 1 and keep = 2).
#[test]
fn a_resume_survives_retention_of_the_checkpoint_it_started_from() {
    let fx = Fx::new("harden-resume-retention");
    for (extra, keep) in [("", 2), ("tokenizer = 'tiny',", 1)] {
        let _ = std::fs::remove_dir_all(fx.dir.join("run"));
        let exp = fx.experiment(extra, 5, keep);
        ok(&fx.run(&["-q", "train", &exp, "--stop-after", "12"]), "the first 12 steps");
        ok(&fx.run(&["-q", "train", &exp, "--resume"]), &format!("train --resume with keep = {keep}"));
        let last = fx.dir.join("run/ckpt/step_00000060");
        assert!(last.join("DONE").is_file(), "keep = {keep}: no final checkpoint");
        assert_eq!(
            std::fs::read(last.join("tokenizer.json")).expect("tokenizer in the final checkpoint"),
            std::fs::read(fx.dir.join("tiny/tokenizer.json")).expect("tokenizer")
        );
        assert_eq!(
            fx.steps(),
            (1..=60).collect::<Vec<_>>(),
            "keep = {keep}: every step once in metrics.jsonl"
        );
    }
}

/// Case 29: metrics.jsonl is never rewritten in place; a kill at the first write of a resumed run keeps steps
/// 1–10, and the next resume ends with 1–15 once each.
#[test]
fn metrics_survive_a_kill_during_resume() {
    let fx = Fx::new("harden-metrics-kill");
    let exp = fx.experiment("tokenizer = 'tiny',", 5, 2);
    ok(&fx.run(&["-q", "train", &exp, "--stop-after", "12"]), "the first 12 steps");
    assert_eq!(fx.steps(), (1..=12).collect::<Vec<_>>());
    if has_strace() {
        let metrics = fx.dir.join("run/metrics.jsonl").display().to_string();
        let _ = Command::new("strace")
            .args(["-f", "-qq", "-o", "/dev/null", "-P", &metrics, "-e", "trace=write"])
            .args(["-e", "inject=write:signal=SIGKILL:when=1"])
            .arg(hashi_bin())
            .args(["-q", "train", &exp, "--resume", "--stop-after", "15"])
            .current_dir(&fx.dir)
            .output()
            .expect("strace starts");
        let after = fx.steps();
        assert!(
            after.len() >= 10 && after == (1..=after.len() as u64).collect::<Vec<_>>(),
            "after a kill during the resume: {after:?}"
        );
    } else {
        eprintln!("strace is not installed: the kill at the first metrics write is not tried");
    }
    ok(&fx.run(&["-q", "train", &exp, "--resume", "--stop-after", "15"]), "the next resume");
    assert_eq!(fx.steps(), (1..=15).collect::<Vec<_>>());
}

/// Case 30: a kill while a step folder is written or deleted never leaves DONE over missing files, and a
/// resume without `ckpt/latest` succeeds.
#[test]
fn a_kill_while_checkpoints_are_replaced_leaves_no_half_checkpoint() {
    if !has_strace() {
        eprintln!("strace is not installed: the kills at exact system calls are not tried");
        return;
    }
    let fx = Fx::new("harden-half-deleted");
    let exp = fx.experiment("tokenizer = 'tiny',", 5, 2);
    let killat = |call: &str, n: u32, args: &[&str]| {
        let _ = Command::new("strace")
            .args(["-f", "-qq", "-o", "/dev/null", "-e", &format!("trace={call}")])
            .args(["-e", &format!("inject={call}:signal=SIGKILL:when={n}")])
            .arg(hashi_bin())
            .args(["-q", "train", &exp])
            .args(args)
            .current_dir(&fx.dir)
            .output()
            .expect("strace starts");
    };
    killat("rename", 8, &["--stop-after", "12"]);
    let ckpt = fx.dir.join("run/ckpt");
    let mut complete: Vec<PathBuf> = std::fs::read_dir(&ckpt)
        .expect("ckpt")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("step_"))
                && p.join("DONE").is_file()
        })
        .collect();
    complete.sort();
    let reference: Vec<String> = std::fs::read_dir(complete.first().expect("a complete checkpoint"))
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(fx.damaged(&reference), Vec::<String>::new(), "after a kill at a rename");
    for n in [2, 4, 6, 9] {
        killat("unlinkat", n, &["--resume", "--stop-after", "12"]);
        assert_eq!(fx.damaged(&reference), Vec::<String>::new(), "after a kill at unlinkat #{n}");
    }
    let _ = std::fs::remove_file(ckpt.join("latest"));
    ok(&fx.run(&["-q", "train", &exp, "--resume", "--stop-after", "15"]), "resume without ckpt/latest");
}

/// A second process on a training folder is refused while the first is alive (the message names its pid);
/// once the holder is killed, its lock is stale and a resume goes on.
#[test]
fn a_training_folder_has_one_writer_and_a_stale_lock_is_taken_over() {
    let fx = Fx::new("harden-lock");
    // A schedule that spends a few ms of Lua per step keeps the first trainer alive long enough.
    std::fs::write(
        fx.dir.join("schedule.lua"),
        "return { lr = function(s, p) local x = 0 for i = 1, 5000000 do x = x + i end \
         return p.max_lr * (1 - s.step / s.total_steps) + 1e-5 end }\n",
    )
    .expect("schedule");
    let exp = fx.experiment("tokenizer = 'tiny',", 5, 2);
    let mut first = Command::new(hashi_bin())
        .args(["-q", "train", &exp])
        .current_dir(&fx.dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("first trainer starts");
    let t0 = Instant::now();
    // Until its first checkpoint is complete (so that the run can be resumed after the kill below).
    while !fx.dir.join("run/ckpt/latest").is_file() && t0.elapsed() < Duration::from_secs(600) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(fx.dir.join("run/ckpt/latest").is_file(), "the first trainer wrote no checkpoint in 600 s");
    let second = fx.run(&["-q", "train", &exp, "--resume"]);
    let e = stderr(&second);
    let still_running = first.try_wait().expect("wait").is_none();
    first.kill().expect("kill -9 the first trainer");
    let _ = first.wait();
    assert!(still_running, "the first trainer ended before the second started; the test proves nothing");
    assert_eq!(second.status.code(), Some(1), "{e}");
    assert!(
        e.contains("in use by another hashi process") && e.contains(&format!("pid {}", first.id())),
        "{e}"
    );
    assert!(fx.dir.join("run").join(hashi_train::LOCK_FILE).is_file());
    ok(&fx.run(&["-q", "train", &exp, "--resume"]), "resume after the holder was killed (stale lock)");
    assert!(fx.dir.join("run/ckpt/step_00000060/DONE").is_file());
}

/// Cases 19, 31, 32 and 13 at the command line: every Lua error keeps its message; finalizers, costly patterns
/// and deep tables end with exit code 1 and a message, never a hang or a crash.
#[test]
fn lua_cannot_hang_or_crash_hashi() {
    let fx = Fx::new("harden-lua");
    let lua = fixtures().join("lua");
    let shards = fx.dir.join("shards").display().to_string();
    let refused = |o: &Output, what: &str, needles: &[&str]| {
        let e = stderr(o);
        assert_eq!(o.status.code(), Some(1), "{what}: {e}");
        assert!(!e.contains("panicked") && !e.contains("overflowed"), "{what}: {e}");
        assert!(needles.iter().any(|n| e.contains(n)), "{what}: none of {needles:?} in {e}");
    };
    let plan = |file: &str| {
        let t0 = Instant::now();
        let o = sh(&fx.dir, &["data", "plan", &lua.join(file).display().to_string(), "--shards", &shards]);
        assert!(t0.elapsed() < Duration::from_secs(20), "{file}: took {:?}", t0.elapsed());
        o
    };
    refused(
        &plan("error_level0.lua"),
        "error(msg, 0)",
        &["error_level0.lua:1: the warmup must be shorter than the phase"],
    );
    refused(
        &plan("error_table.lua"),
        "error({...})",
        &["error_table.lua:1: error value is a table: {code = 42, reason = \"bad\"}"],
    );
    refused(
        &plan("yield_main.lua"),
        "yield outside a coroutine",
        &["yield_main.lua:1: attempt to yield from outside a coroutine"],
    );
    refused(
        &plan("require_cycle.lua"),
        "require cycle",
        &["circular require (cycle_a -> cycle_b -> cycle_a)"],
    );
    refused(
        &plan("gc_curriculum.lua"),
        "__gc finalizer",
        &["gc_curriculum.lua:2: setmetatable: __gc metamethods (finalizers) are not allowed"],
    );
    refused(&plan("pattern.lua"), "backtracking string.find", &["pattern.lua", "time limit"]);

    let sched = lua.join("gc_schedule.lua").display().to_string();
    std::fs::write(
        fx.dir.join("gc.lua"),
        format!(
            "return {{ name = 'x', model = 'tiny', shards = 'shards', curriculum = 'curriculum.lua',\n\
             schedule = {{ script = '{sched}', params = {{ max_lr = 3e-3 }} }}, out = 'run_gc' }}\n"
        ),
    )
    .expect("experiment");
    refused(
        &fx.run(&["-q", "train", "gc.lua", "--stop-after", "2"]),
        "__gc in lr()",
        &["__gc metamethods (finalizers)"],
    );

    for e in ["exp_params.lua", "exp_overrides.lua"] {
        let text = std::fs::read_to_string(fixtures().join(e)).expect("fixture").replace("FX/", "");
        std::fs::write(fx.dir.join(e), text).expect("experiment");
        refused(&fx.run(&["-q", "train", e, "--stop-after", "1"]), e, &["nested more than 100 levels deep"]);
    }
}

/// Case 33's kind: a library that crashes while it is loaded is probed in a child process and refused, naming
/// it; discovery lists it as refused beside the good plugins, and hashi keeps running.
#[test]
fn a_plugin_that_crashes_at_load_is_refused_by_the_probe() {
    let crash = crate::plugins::lib("hashi_testplugin_crash_at_load");
    let o = hashi(&["plugins", "list", "--plugin", &crash.display().to_string()]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("libhashi_testplugin_crash_at_load") && e.contains("segmentation fault"), "{e}");
    let dir = scratch_dir("harden-plugin-dir");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::copy(crate::plugins::lib("hashi_plugin_example"), dir.join("libhashi_plugin_example.so"))
        .expect("copy");
    std::fs::copy(&crash, dir.join("libhashi_plugin_crash.so")).expect("copy");
    let o = Command::new(hashi_bin())
        .args(["plugins", "list"])
        .env("HASHI_PLUGIN_PATH", &dir)
        .current_dir(repo_root())
        .output()
        .expect("hashi starts");
    let all = String::from_utf8_lossy(&o.stdout).into_owned() + &stderr(&o);
    assert!(o.status.success(), "{all}");
    assert!(
        all.contains("example") && all.contains("refused:") && all.contains("libhashi_plugin_crash.so"),
        "{all}"
    );
}
