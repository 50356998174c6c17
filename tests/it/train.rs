//! Training pieces against PyTorch: AdamW follows `torch.optim.AdamW` (groups, clipping, varying LR) to 1e-6.

use candle_core::{D, DType, Tensor};
use hashi_model::ParamStore;
use hashi_train::{AdamW, AdamWConfig};

use crate::common::*;

#[test]
fn adamw_matches_torch_over_20_steps() {
    let out = scratch_dir("adamw").join("ref.safetensors");
    run_python("adamw_reference.py", &[&out.display().to_string()]);
    let t = |n: &str| load_tensor(&out, n);
    let params = ParamStore::from_tensors([
        ("W".to_string(), t("W0")),
        ("E".to_string(), t("E0")),
        ("b".to_string(), t("b0")),
    ])
    .expect("params");
    let (x, y) = (t("x"), t("y"));
    let cfg = AdamWConfig {
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weight_decay: 0.1,
        clip: 1.0,
        ..Default::default()
    };
    let mut opt = AdamW::new(cfg, &params);
    let lrs: Vec<f64> = t("lrs").to_vec1().expect("lrs");
    let norms: Vec<f64> = t("norms").to_vec1().expect("norms");
    for (step, lr) in lrs.iter().enumerate() {
        let w = params.get("W").expect("W").as_tensor();
        let e = params.get("E").expect("E").as_tensor();
        let b = params.get("b").expect("b").as_tensor();
        let pred = w.matmul(&x).expect("mm").broadcast_add(&b.unsqueeze(D::Minus1).expect("b")).expect("add");
        let mse = (pred - &y).expect("sub").sqr().expect("sqr").mean_all().expect("mean");
        let reg = (e.sqr().expect("sqr").sum_all().expect("sum") * 0.01).expect("scale");
        let reg = reg.broadcast_mul(&x.mean_all().expect("mean")).expect("mul");
        let loss = (mse + reg).expect("loss");
        let grads = loss.backward().expect("backward");
        let stats = opt.step(&params, &grads, *lr, 1.0).expect("step");
        assert!(
            (stats.grad_norm - norms[step]).abs() < 1e-4 * norms[step].max(1.0),
            "step {step}: norm {} vs {}",
            stats.grad_norm,
            norms[step]
        );
    }
    for name in ["W", "E", "b"] {
        let ours: &Tensor = params.get(name).expect("param").as_tensor();
        let diff = max_abs_diff(&ours.to_dtype(DType::F32).expect("f32"), &t(name));
        assert!(diff <= 1e-6, "{name}: {diff} from torch.optim.AdamW after 20 steps");
    }
}

/// Shards of the demo corpus with the 8k test tokenizer, and a tiny from-scratch experiment over them.
pub(crate) struct Run {
    pub(crate) dir: std::path::PathBuf,
}

fn write(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).expect("write");
}

pub(crate) fn setup(name: &str, every: u64) -> Run {
    let dir = scratch_dir(name);
    let demo = repo_root().join("examples/demo/corpus");
    write(
        &dir.join("corpora.lua"),
        &format!(
            "return {{ {{ name = 'ja', lang = 'ja', paths = {{ '{0}/ja_books.jsonl' }} }},\n\
             {{ name = 'en', lang = 'en', paths = {{ '{0}/en_books.jsonl' }} }} }}\n",
            demo.display()
        ),
    );
    let tok = crate::tokenizer::trained().display().to_string();
    let shards = dir.join("shards").display().to_string();
    hashi_ok(&[
        "data",
        "prepare",
        &dir.join("corpora.lua").display().to_string(),
        "--tokenizer",
        &tok,
        "--out",
        &shards,
    ]);
    write(
        &dir.join("cfg.json"),
        r#"{"vocab_size": 8000, "hidden_size": 32, "intermediate_size": 88, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 128}"#,
    );
    write(
        &dir.join("plan.lua"),
        "return { name = 't', seq_len = 32, batch_size = 4, total_tokens = 7680, seed = 3, on_exhausted = 'repeat',\n\
         phases = {\n\
           { name = 'a', tokens = 0.5, shares = { en = 0.75, ja = 0.25 },\n\
             sources = { en = { order = 'blend', names = { 'en' } }, ja = { order = 'sequential', names = { 'ja' } } } },\n\
           { name = 'b', tokens = 0.5, shares = { en = 0.25, ja = 0.75 },\n\
             sources = { en = { order = 'blend', names = { 'en' } }, ja = { order = 'sequential', names = { 'ja' } } } } } }\n",
    );
    write(
        &dir.join("schedule.lua"),
        &std::fs::read_to_string(repo_root().join("scripts/schedules/rewarmup_cosine.lua"))
            .expect("schedule"),
    );
    write(
        &dir.join("exp.lua"),
        &format!(
            "return {{ name = 'tiny', init = {{ config = 'cfg.json', seed = 1 }}, shards = 'shards', curriculum = 'plan.lua',\n\
             schedule = {{ script = 'schedule.lua', params = {{ max_lr = 1e-2, min_lr = 1e-3, warmup = 3 }} }},\n\
             checkpoint = {{ every = {every}, keep = 2 }}, out = 'run' }}\n"
        ),
    );
    Run { dir }
}

impl Run {
    pub(crate) fn exp(&self) -> String {
        self.dir.join("exp.lua").display().to_string()
    }

    /// Waits (at most a minute) until a running trainer has written `n` metrics lines.
    fn wait_for(&self, n: usize) {
        let t0 = std::time::Instant::now();
        while self.metrics().len() < n && t0.elapsed() < std::time::Duration::from_secs(60) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub(crate) fn metrics(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir.join("run/metrics.jsonl")).unwrap_or_default();
        // A line being written by a running trainer may be incomplete: only whole lines count.
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// Final weights, optimizer state and metrics without the timing fields.
    pub(crate) fn outcome(&self) -> (Vec<u8>, Vec<u8>, Vec<serde_json::Value>) {
        let last = self.dir.join("run/ckpt/step_00000060");
        let metrics = self
            .metrics()
            .into_iter()
            .map(|mut m| {
                let o = m.as_object_mut().expect("object");
                o.remove("seconds");
                o.remove("tokens_per_s");
                m
            })
            .collect();
        (
            std::fs::read(last.join("model.safetensors")).expect("weights"),
            std::fs::read(last.join("optimizer.safetensors")).expect("optimizer"),
            metrics,
        )
    }
}

/// `checkpoint.optimizer_state = "latest"`: every checkpoint but the newest keeps its weights only, and a run
/// stopped and resumed (from the newest, the only one with moments) ends bitwise where an uninterrupted run ends.
#[test]
fn optimizer_state_in_the_latest_checkpoint_only_still_resumes_bitwise() {
    let with = |name: &str| {
        let run = setup(name, 5);
        let exp = std::fs::read_to_string(run.dir.join("exp.lua")).expect("exp");
        let exp = exp.replace("keep = 2 }", "keep = 2, optimizer_state = 'latest' }");
        write(&run.dir.join("exp.lua"), &exp);
        run
    };
    let full = with("train-moments-full");
    hashi_ok(&["train", &full.exp()]);
    let ckpt = full.dir.join("run/ckpt");
    let latest = hashi_train::latest_checkpoint(&full.dir.join("run")).expect("latest");
    let mut kept = 0;
    for e in std::fs::read_dir(&ckpt).expect("ckpt") {
        let d = e.expect("entry").path();
        if !d.join("DONE").is_file() {
            continue;
        }
        kept += 1;
        assert!(d.join("model.safetensors").is_file(), "{}: weights kept", d.display());
        assert_eq!(d.join("optimizer.safetensors").is_file(), d == latest, "{}", d.display());
    }
    assert!(kept >= 3, "phase ends and periodic checkpoints are kept: {kept}");
    let want = full.outcome();
    let stopped = with("train-moments-stopped");
    hashi_ok(&["train", &stopped.exp(), "--stop-after", "23"]);
    hashi_ok(&["train", &stopped.exp(), "--resume"]);
    let got = stopped.outcome();
    assert!(got.0 == want.0 && got.1 == want.1, "final weights and moments differ after stop + resume");
    assert_eq!(got.2, want.2, "metrics differ after stop + resume");
}

#[test]
fn loss_falls_and_a_killed_run_resumes_bitwise() {
    let full = setup("train-full", 5);
    hashi_ok(&["train", &full.exp()]);
    let m = full.metrics();
    assert_eq!(m.len(), 60, "60 steps: 2 phases of 30 batches");
    let mean = |r: std::ops::Range<usize>| {
        r.clone().map(|i| m[i]["loss"].as_f64().expect("loss")).sum::<f64>() / r.len() as f64
    };
    assert!(mean(50..60) < mean(0..10) - 0.5, "loss falls: {} -> {}", mean(0..10), mean(50..60));
    let lr = |i: usize| m[i]["lr"].as_f64().expect("lr");
    assert!(
        lr(29) < lr(20) && lr(30) < lr(31) && lr(31) < lr(32),
        "decay, then re-warmup at the phase start"
    );
    let want = full.outcome();
    // The same run killed with SIGKILL at several points, resumed each time from its last complete checkpoint.
    let killed = setup("train-killed", 5);
    let bin = hashi_bin();
    // Kill points are set by progress (metrics lines), not by time, so a slow machine kills at the same places.
    for kill_after in [7usize, 23, 44] {
        let mut args = vec!["train".to_string(), killed.exp()];
        if killed.dir.join("run/ckpt/latest").exists() {
            args.push("--resume".into());
        }
        let mut child = std::process::Command::new(bin)
            .args(&args)
            .current_dir(repo_root())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        let t0 = std::time::Instant::now();
        while killed.metrics().len() < kill_after && t0.elapsed() < std::time::Duration::from_secs(120) {
            std::thread::sleep(std::time::Duration::from_millis(5)); // tight: kill close to the mark
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    assert!(killed.dir.join("run/ckpt/latest").exists(), "a checkpoint was written before the last kill");
    assert!(killed.metrics().len() < 60, "the killed run had not finished");
    hashi_ok(&["train", &killed.exp(), "--resume"]);
    let got = killed.outcome();
    assert!(got.0 == want.0, "final weights differ after kill + resume");
    assert!(got.1 == want.1, "final optimizer state differs after kill + resume");
    assert_eq!(got.2, want.2, "metrics differ after kill + resume");
}

#[test]
fn schedule_edits_apply_from_the_next_step_and_broken_ones_are_kept_out() {
    let run = setup("train-reload", 0);
    let child = std::process::Command::new(hashi_bin())
        .args(["train", &run.exp()])
        .current_dir(repo_root())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    run.wait_for(3);
    write(&run.dir.join("schedule.lua"), "return { lr = function(s, p) return 0.000125 end }\n");
    run.wait_for(25);
    write(&run.dir.join("schedule.lua"), "return { lr = function(s, p)\n  return 0.5 +\nend }\n");
    let out = child.wait_with_output().expect("finish");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m = run.metrics();
    let first_new = m.iter().position(|x| x["generation"] == 1).expect("the edit was picked up");
    assert!(first_new >= 3, "applied after it was written");
    for x in &m[first_new..] {
        assert_eq!(x["generation"], 1, "the broken edit never took effect");
        assert_eq!(x["lr"].as_f64(), Some(0.000125));
    }
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("schedule.lua:3:"),
        "the broken edit is reported with its line"
    );
}

#[test]
fn bad_experiments_and_incomplete_checkpoints() {
    let run = setup("train-bad", 10);
    let shown = hashi_ok(&["data", "plan", &run.exp()]);
    assert!(
        shown.contains("2 phases, 60 batches of 4 x 32 tokens"),
        "an experiment's plan is shown: {shown}"
    );
    let exp = run.dir.join("exp.lua");
    let good = std::fs::read_to_string(&exp).expect("exp");
    write(&exp, &good.replace("curriculum = 'plan.lua'", "curriculum = 'missing.lua'"));
    let e = hashi_err(&["train", &run.exp()]);
    assert!(e.contains("exp.lua") && e.contains("missing.lua") && e.contains("does not exist"), "{e}");
    write(&exp, &good.replace("out = 'run'", "out = 'run', learning_rate = 1"));
    let e = hashi_err(&["train", &run.exp()]);
    assert!(e.contains("exp.lua") && e.contains("unknown field `learning_rate`"), "{e}");
    // A plan larger than the data, with on_exhausted = "error", is refused before any step.
    let plan = std::fs::read_to_string(run.dir.join("plan.lua")).expect("plan");
    write(
        &run.dir.join("big.lua"),
        &plan.replace("total_tokens = 7680", "total_tokens = 7680000").replace("'repeat'", "'error'"),
    );
    write(&exp, &good.replace("curriculum = 'plan.lua'", "curriculum = 'big.lua'"));
    let e = hashi_err(&["train", &run.exp()]);
    assert!(e.contains("big.lua") && e.contains("runs out"), "{e}");
    assert!(!run.dir.join("run/ckpt/latest").exists(), "nothing trained");
    write(&exp, &good);
    hashi_ok(&["train", &run.exp(), "--stop-after", "25"]);
    // A checkpoint directory without DONE (a crash while writing) is skipped with a warning.
    let fake = run.dir.join("run/ckpt/step_00000099");
    std::fs::create_dir_all(&fake).expect("mkdir");
    write(&run.dir.join("run/ckpt/latest"), "step_00000099");
    let run_dir = run.dir.join("run").display().to_string();
    let out = hashi(&["-v", "train", "--resume", &run_dir, "--stop-after", "30"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("checkpoint without DONE skipped") && log.contains("step_00000020"), "{log}");
}

#[test]
fn shipped_schedules_are_bounded_and_rewarm_at_every_phase() {
    use hashi_script::{Script, ScriptOptions};
    let params = serde_json::json!({"max_lr": 1e-3, "min_lr": 1e-4, "warmup": 5, "decay": 0.2});
    for name in ["warmup_cosine", "rewarmup_cosine", "wsd"] {
        let s = Script::load(
            &repo_root().join(format!("scripts/schedules/{name}.lua")),
            &ScriptOptions::default(),
        )
        .expect("schedule loads");
        for phases in [vec![50u64], vec![10, 30, 7], vec![3, 3], vec![1, 12]] {
            let total: u64 = phases.iter().sum();
            let mut lrs = vec![];
            let (mut step, mut starts) = (0u64, vec![]);
            for (phase, &n) in phases.iter().enumerate() {
                starts.push(lrs.len());
                for phase_step in 0..n {
                    let info = hashi_train::StepInfo {
                        step,
                        total_steps: total,
                        phase,
                        phase_step,
                        phase_steps: n,
                        steps_per_phase: phases.clone(),
                        phases: phases
                            .iter()
                            .enumerate()
                            .map(|(i, &steps)| hashi_train::PhaseSpan {
                                name: format!("p{i}"),
                                first_step: phases[..i].iter().sum(),
                                steps,
                            })
                            .collect(),
                        schedule_params: Default::default(),
                    };
                    let args: [&dyn hashi_script::Arg; 2] = [&info, &params];
                    let lr: f64 = s.call("lr", &args).expect("lr");
                    assert!(
                        lr.is_finite() && lr > 0.0 && lr <= 1e-3 + 1e-12,
                        "{name} {phases:?} step {step}: {lr}"
                    );
                    lrs.push(lr);
                    step += 1;
                }
            }
            let warm = 5.min(lrs.len());
            if name != "rewarmup_cosine" {
                assert!(
                    lrs[..warm].windows(2).all(|w| w[0] <= w[1]),
                    "{name}: warmup rises {:?}",
                    &lrs[..warm]
                );
                continue;
            }
            for (p, &start) in starts.iter().enumerate() {
                let n = phases[p] as usize;
                let w = 5.min(n.saturating_sub(1).max(1));
                let seg = &lrs[start..start + n];
                assert!(
                    seg[..w].windows(2).all(|x| x[0] < x[1]),
                    "{name} {phases:?}: phase {p} warms up {seg:?}"
                );
                // Every phase starts again from the first warmup value.
                assert!(
                    (seg[0] - 1e-3 / w as f64).abs() < 1e-12,
                    "{name} {phases:?}: phase {p} starts at {}",
                    seg[0]
                );
            }
        }
    }
}

#[test]
fn a_loss_spike_is_skipped_and_repeated_failures_stop_with_the_last_checkpoint() {
    let run = setup("train-spike", 5);
    write(
        &run.dir.join("schedule.lua"),
        // 10 is the largest learning rate a schedule may answer; AdamW steps of that size wreck the weights.
        "return { lr = function(s, p) if s.step < 7 then return 1e-3 end return 10.0 end }\n",
    );
    let out = hashi(&["train", &run.exp()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("bad steps in a row"), "{err}");
    let m = run.metrics();
    let first_bad = m.iter().position(|x| x["skipped"] == true).expect("a skipped step") as u64 + 1;
    assert!(m.iter().filter(|x| x["skipped"] == true).count() >= 4, "skipped steps are logged");
    let last = err.split("last good checkpoint: ").nth(1).and_then(|s| s.split(')').next()).expect("named");
    let last = std::path::Path::new(last);
    assert!(last.join("DONE").is_file(), "the last good checkpoint is intact: {}", last.display());
    let step: u64 = last
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("step_"))
        .and_then(|n| n.parse().ok())
        .expect("step");
    assert!(step < first_bad, "checkpoint {step} predates the first bad step {first_bad}");
}

#[test]
fn curriculum_edits_change_later_phases_only() {
    let run = setup("train-plan-reload", 0);
    // The edits reach the trainer through a 150 ms debounce and must land while phase a runs: a model whose
    // steps take tens of milliseconds (rather than the setup's few) gives phase a about a second.
    write(
        &run.dir.join("cfg.json"),
        r#"{"vocab_size": 8000, "hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4,
            "num_attention_heads": 4, "num_key_value_heads": 4, "max_position_embeddings": 128}"#,
    );
    let original = std::fs::read_to_string(run.dir.join("plan.lua")).expect("plan");
    let child = std::process::Command::new(hashi_bin())
        .args(["train", &run.exp()])
        .current_dir(repo_root())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    run.wait_for(4);
    // Changing the phase in progress is refused.
    write(&run.dir.join("plan.lua"), &original.replacen("en = 0.75, ja = 0.25", "en = 0.5, ja = 0.5", 1));
    run.wait_for(12);
    // Changing a later phase is taken from the next step.
    write(&run.dir.join("plan.lua"), &original.replacen("en = 0.25, ja = 0.75", "en = 0.5, ja = 0.5", 1));
    let out = child.wait_with_output().expect("finish");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("curriculum edit rejected"), "{log}");
    let m = run.metrics();
    assert_eq!(m.len(), 60);
    let ja = |i: usize| m[i]["tokens_by_lang"]["ja"].as_u64().unwrap_or(0);
    for (i, line) in m.iter().enumerate().skip(31) {
        assert_eq!(ja(i) - ja(i - 1), 64, "step {}: 2 of 4 sequences are Japanese after the edit", i + 1);
        assert_eq!(line["curriculum_generation"], 1);
    }
    assert_eq!(ja(29) - ja(28), 32, "phase a kept its 1 of 4");
}

/// A curriculum whose phase 0 trains only the embedding rows the transfer initialised, at its own peak LR, and
/// whose phase 1 trains everything with restarted moments: at the phase-0 checkpoint every other parameter and every
/// copied row is bitwise the transferred model's, the new rows moved; afterwards everything moves. Stopped and
/// resumed inside and at the edges of both phases (the first step of a phase, the step before a switch), the run
/// takes the uninterrupted run's learning rate at every step and ends bitwise where it ends.
#[test]
fn a_phase_that_trains_only_the_new_rows_then_everything_with_restarted_moments() {
    use hashi_core::artifacts::Metrics;
    let with = |name: &str, every: u64| {
        let run = setup(name, every);
        let model = run.dir.join("transferred");
        hashi_ok(&[
            "transfer",
            "--model",
            &crate::transfer::fixture().untied.display().to_string(),
            "--tokenizer",
            &crate::tokenizer::trained().display().to_string(),
            "--init",
            "scripts/init/mean.lua",
            "--out",
            &model.display().to_string(),
        ]);
        let plan = std::fs::read_to_string(run.dir.join("plan.lua")).expect("plan");
        let plan = plan
            .replacen(
                "ja = { order = 'sequential', names = { 'ja' } } } },",
                "ja = { order = 'sequential', names = { 'ja' } } },\n\
                 training = { params = { 'model.embed_tokens', 'lm_head' }, new_rows_only = true,\n\
                   schedule = { max_lr = 5e-2 } } },",
                1,
            )
            .replacen(
                "ja = { order = 'sequential', names = { 'ja' } } } } } }",
                "ja = { order = 'sequential', names = { 'ja' } } },\n\
                 training = { reset_moments = true } } } }",
                1,
            );
        assert_eq!(plan.matches("training =").count(), 2, "{plan}");
        write(&run.dir.join("plan.lua"), &plan);
        let exp = std::fs::read_to_string(run.dir.join("exp.lua")).expect("exp");
        write(
            &run.dir.join("exp.lua"),
            &exp.replace("init = { config = 'cfg.json', seed = 1 }", "model = 'transferred'"),
        );
        run
    };
    let full = with("train-phase-recipe", 5);
    let shown = hashi_ok(&[
        "data",
        "plan",
        &full.dir.join("plan.lua").display().to_string(),
        "--shards",
        &full.dir.join("shards").display().to_string(),
    ]);
    assert!(shown.contains("params: model.embed_tokens, lm_head; new rows only; max_lr = 0.05"), "{shown}");
    assert!(shown.contains("all params; moments restart"), "{shown}");
    hashi_ok(&["train", &full.exp()]);

    let model = full.dir.join("transferred");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("transfer_report.json")).expect("report"))
            .expect("json");
    let matched: std::collections::BTreeSet<usize> = report["matches"]
        .as_array()
        .expect("matches")
        .iter()
        .map(|m| m[0].as_u64().expect("id") as usize)
        .collect();
    assert!(matched.len() > 300 && matched.len() < 7000, "{} matched rows", matched.len());
    let tensors = |dir: &std::path::Path| {
        candle_core::safetensors::load(dir.join("model.safetensors"), &candle_core::Device::Cpu)
            .expect("weights")
    };
    let rows = |t: &candle_core::Tensor| t.to_vec2::<f32>().expect("matrix");
    let (start, switch, end) = (
        tensors(&model),
        tensors(&full.dir.join("run/ckpt/step_00000030")),
        tensors(&full.dir.join("run/ckpt/step_00000060")),
    );
    assert_eq!(start.len(), switch.len());
    for (name, t0) in &start {
        let (t1, t2) = (&switch[name], &end[name]);
        let bits = |t: &candle_core::Tensor| t.flatten_all().expect("flat").to_vec1::<f32>().expect("v");
        if name == "model.embed_tokens.weight" || name == "lm_head.weight" {
            let (r0, r1, r2) = (rows(t0), rows(t1), rows(t2));
            let moved_new = (0..r0.len()).filter(|i| !matched.contains(i) && r1[*i] != r0[*i]).count();
            for &i in &matched {
                assert!(r1[i] == r0[i], "{name}: copied row {i} changed in the new-rows phase");
            }
            assert!(moved_new * 10 >= (r0.len() - matched.len()) * 9, "{name}: {moved_new} new rows moved");
            let moved_matched = matched.iter().filter(|&&i| r2[i] != r1[i]).count();
            assert!(
                moved_matched * 10 >= matched.len() * 9,
                "{name}: copied rows train in phase 1: {moved_matched}"
            );
        } else {
            assert!(bits(t1) == bits(t0), "{name} changed in the new-rows phase");
            assert!(bits(t2) != bits(t1), "{name} did not train in phase 1");
        }
    }
    let metrics = Metrics::read_all(&full.dir.join("run/metrics.jsonl")).expect("metrics");
    let peak = |phase: usize| metrics.iter().filter(|m| m.phase == phase).map(|m| m.lr).fold(0.0, f64::max);
    assert!(
        (peak(0) - 5e-2).abs() < 1e-12 && (peak(1) - 1e-2).abs() < 1e-12,
        "peaks {} {}",
        peak(0),
        peak(1)
    );

    // Stopped after 1, 29 (the step before the switch), 30 (the next step is phase 1's first, where the moments
    // restart), 31 and 47 steps, resumed each time from a checkpoint at that very step.
    let stopped = with("train-phase-recipe-stopped", 1);
    for at in [1, 29, 30, 31, 47] {
        let mut args = vec!["train".to_string(), stopped.exp(), "--stop-after".into(), at.to_string()];
        if at > 1 {
            args.push("--resume".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        hashi_ok(&args);
        assert_eq!(stopped.metrics().len(), at as usize);
    }
    hashi_ok(&["train", &stopped.exp(), "--resume"]);
    let (got, want) = (stopped.outcome(), full.outcome());
    let lrs = |m: &[serde_json::Value]| m.iter().map(|m| m["lr"].as_f64().expect("lr")).collect::<Vec<_>>();
    assert_eq!(lrs(&got.2), lrs(&want.2), "the learning rate of a step differs after a resume");
    assert!(got.0 == want.0 && got.1 == want.1, "final weights and moments differ after stops + resumes");
    assert_eq!(got.2, want.2, "metrics differ after stops + resumes");
    remove_scratch(&full.dir);
    remove_scratch(&stopped.dir);
}

/// A phase's recipe is checked before the first step: each error names the curriculum, the phase and the setting.
#[test]
fn bad_phase_recipes_are_refused_naming_the_phase() {
    let run = setup("train-phase-refusals", 5);
    let plan = std::fs::read_to_string(run.dir.join("plan.lua")).expect("plan");
    for (training, want) in [
        ("new_rows_only = true", &["plan.lua", "phase a", "new_rows_only", "transfer_report.json"][..]),
        (
            "params = { 'model.embedding' }",
            &["plan.lua", "phase a", "training.params", "model.embedding"][..],
        ),
        ("params = { '' }", &["phase a", "training.params", "empty prefix"][..]),
        ("accumulation = 0", &["phase a", "training.accumulation"][..]),
        ("accumulation = 7", &["phase a", "not a multiple of the accumulation 7"][..]),
        ("schedule = { max_Lr = 1 }", &["phase a", "training.schedule", "schedule.lua", "max_Lr"][..]),
        ("reset_moment = true", &["plan.lua", "reset_moment"][..]),
    ] {
        let edited = plan.replacen(
            "ja = { order = 'sequential', names = { 'ja' } } } },",
            &format!(
                "ja = {{ order = 'sequential', names = {{ 'ja' }} }} }}, training = {{ {training} }} }},"
            ),
            1,
        );
        write(&run.dir.join("plan.lua"), &edited);
        let err = hashi_err(&["train", &run.exp()]);
        for w in want {
            assert!(err.contains(w), "{training}: {w:?} not in:\n{err}");
        }
        assert!(!run.dir.join("run/ckpt/latest").exists(), "{training}: nothing trained");
    }
    remove_scratch(&run.dir);
}

/// Megatron's rule on resume: a schedule that now gives steps already taken other learning rates is refused
/// (naming the first such step) unless `--override-schedule`; a change of later phases only is accepted.
#[test]
fn a_resume_whose_schedule_rewrites_past_steps_is_refused() {
    let run = setup("train-past-lrs", 5);
    hashi_ok(&["train", &run.exp(), "--stop-after", "7"]);
    // Phase b (not started) gets its own peak: the steps taken keep their rates.
    let plan = std::fs::read_to_string(run.dir.join("plan.lua")).expect("plan");
    let later = plan.replacen(
        "ja = { order = 'sequential', names = { 'ja' } } } } } }",
        "ja = { order = 'sequential', names = { 'ja' } } }, training = { schedule = { max_lr = 2e-2 } } } } }",
        1,
    );
    assert_ne!(later, plan);
    write(&run.dir.join("plan.lua"), &later);
    hashi_ok(&["train", &run.exp(), "--resume", "--stop-after", "12"]);
    // The experiment's peak changes: every step taken had another rate.
    let exp = std::fs::read_to_string(run.dir.join("exp.lua")).expect("exp");
    write(&run.dir.join("exp.lua"), &exp.replace("max_lr = 1e-2", "max_lr = 3e-2"));
    let err = hashi_err(&["train", &run.exp(), "--resume"]);
    for want in ["step 1 the learning rate", "metrics.jsonl", "--override-schedule"] {
        assert!(err.contains(want), "{want:?} not in:\n{err}");
    }
    assert_eq!(run.metrics().len(), 10, "the refused resume trained nothing (checkpoint at 10)");
    hashi_ok(&["train", &run.exp(), "--resume", "--override-schedule", "--stop-after", "15"]);
    let m = run.metrics();
    assert_eq!(m.len(), 15);
    let lr = |i: usize| m[i]["lr"].as_f64().expect("lr");
    assert!(lr(14) > lr(9), "the new peak applies from the resumed step on: {} -> {}", lr(9), lr(14));
    remove_scratch(&run.dir);
}

/// In-loop bits per byte: every 10 steps and at the data switch, per language, in metrics.jsonl — the evaluation
/// stage's measure on the same bytes (itself checked against a Python peer in `bpb.rs`), and it falls as the model
/// trains. Evaluation leaves training bitwise as it was.
#[test]
fn in_loop_bits_per_byte_is_the_evaluation_stages_measure() {
    let demo = repo_root().join("examples/demo/corpus");
    let (ja, en) = (
        demo.join("ja_books.jsonl").display().to_string(),
        demo.join("en_books.jsonl").display().to_string(),
    );
    let run = setup("train-in-loop", 5);
    let exp = std::fs::read_to_string(run.dir.join("exp.lua")).expect("exp");
    let exp = exp.replace(
        "out = 'run' }",
        &format!(
            "out = 'run', tokenizer = '{}',\n eval = {{ every = 10, bpb = {{ 'ja={ja}', 'en={en}' }}, bpb_bytes = 3000 }} }}",
            crate::tokenizer::trained().display()
        ),
    );
    write(&run.dir.join("exp.lua"), &exp);
    hashi_ok(&["train", &run.exp()]);
    let m = run.metrics();
    let at: Vec<u64> =
        m.iter().filter(|l| l.get("bpb").is_some()).map(|l| l["step"].as_u64().expect("step")).collect();
    assert_eq!(at, vec![10, 20, 30, 40, 50, 60], "every 10 steps, the switch (30) and the end");
    assert!(m.iter().filter(|l| l.get("bpb").is_some()).all(|l| l["eval_seconds"].as_f64().is_some()));
    let bpb = |step: usize, lang: &str| m[step - 1]["bpb"][lang].as_f64().expect("bpb");
    for lang in ["ja", "en"] {
        assert!(bpb(60, lang) < bpb(10, lang) - 0.2, "{lang}: {} -> {}", bpb(10, lang), bpb(60, lang));
        // The evaluation stage on the step-30 checkpoint, same text and budget.
        let out = run.dir.join(format!("eval-{lang}.json"));
        let spec = format!("{lang}={}", if lang == "ja" { &ja } else { &en });
        let ckpt = run.dir.join("run/ckpt/step_00000030").display().to_string();
        hashi_ok(&[
            "eval",
            "--model",
            &ckpt,
            "--bpb",
            &spec,
            "--bpb-bytes",
            "3000",
            "--out",
            &out.display().to_string(),
        ]);
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).expect("results")).expect("json");
        let stage = r["bits_per_byte"][0]["bits_per_byte"].as_f64().expect("bpb");
        assert!(
            (stage - bpb(30, lang)).abs() <= 1e-5 * stage,
            "{lang}: in the loop {}, the stage {stage}",
            bpb(30, lang)
        );
    }
    // The same run without in-loop evaluation ends with the same weights.
    let plain = setup("train-in-loop-off", 5);
    let exp = std::fs::read_to_string(plain.dir.join("exp.lua")).expect("exp");
    write(
        &plain.dir.join("exp.lua"),
        &exp.replace(
            "out = 'run' }",
            &format!("out = 'run', tokenizer = '{}' }}", crate::tokenizer::trained().display()),
        ),
    );
    hashi_ok(&["train", &plain.exp()]);
    assert!(plain.outcome().0 == run.outcome().0, "in-loop evaluation changed the training");
    remove_scratch(&run.dir);
    remove_scratch(&plain.dir);
}
