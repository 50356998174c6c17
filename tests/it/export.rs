//! `hashi export`: Megatron-LM and NxDT files that megatron-core reads (shards, blends, LR scheduler) and that use
//! only the engines' own flags and keys; experiments an engine cannot reproduce are refused.

use crate::common::*;
use crate::plugins::lib;
use crate::train::setup;

#[test]
fn exports_match_the_plan_and_megatron_core() {
    let run = setup("export", 0);
    let exp = run.dir.join("exp.lua");
    let text = std::fs::read_to_string(&exp).expect("exp");
    let cluster = "cluster = { nodes = 1, devices_per_node = 2, tensor_parallel = 2, micro_batch_size = 2 }";
    std::fs::write(&exp, text.replace("out = 'run'", &format!("out = 'run', {cluster}"))).expect("write");
    let plugin = lib("hashi_plugin_cluster").display().to_string();
    let (meg, neu) = (run.dir.join("megatron"), run.dir.join("neuron"));
    let shown = hashi_ok(&[
        "export",
        "--backend",
        "megatron",
        &run.exp(),
        "--out",
        &meg.display().to_string(),
        "--plugin",
        &plugin,
    ]);
    assert!(
        shown.contains("2 jobs, global batch 4 × 32 tokens") && shown.contains("en 75.0%, ja 25.0%"),
        "{shown}"
    );
    hashi_ok(&[
        "export",
        "--backend",
        "neuron",
        &run.exp(),
        "--out",
        &neu.display().to_string(),
        "--plugin",
        &plugin,
    ]);
    let flags = repo_root().join("tests/python/megatron_flags.txt").display().to_string();
    let out =
        run_python("check_export.py", &[&meg.display().to_string(), &neu.display().to_string(), &flags]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["ok"], true, "{out}");
    assert_eq!(v["jobs"], 2);
    assert_eq!(v["lr_steps_checked"], 60, "every step of both phases");
    assert_eq!(v["neuron_configs"], 2);
    // The second phase starts from the first one's checkpoint and warms up again.
    let phase1 = std::fs::read_to_string(meg.join("megatron/phase_01_b.sh")).expect("script");
    assert!(
        phase1.contains("--load \"$WORK/phase_00_a\" --finetune") && phase1.contains("--lr-warmup-iters 2"),
        "{phase1}"
    );

    // Refusals: output not empty; freezing; a schedule without an engine form.
    let refused = |out: &str| {
        hashi_err(&["export", "--backend", "megatron", &run.exp(), "--out", out, "--plugin", &plugin])
    };
    let e = refused(&meg.display().to_string());
    assert!(e.contains("not empty"), "{e}");
    let frozen = text.replace(
        "out = 'run'",
        &format!("out = 'run', {cluster}, optimizer = {{ freeze = {{ 'model.embed' }} }}"),
    );
    std::fs::write(&exp, frozen).expect("write");
    let e = refused(&run.dir.join("x").display().to_string());
    assert!(e.contains("plugin cluster") && e.contains("freeze"), "{e}");
    std::fs::write(&exp, text.replace("out = 'run'", &format!("out = 'run', {cluster}"))).expect("write");
    std::fs::write(run.dir.join("schedule.lua"), "return { lr = function(s, p) return 1e-3 end }\n")
        .expect("write");
    let e = refused(&run.dir.join("y").display().to_string());
    assert!(e.contains("schedule.lua") && e.contains("no engine_schedule"), "{e}");
    std::fs::write(
        run.dir.join("schedule.lua"),
        "return { lr = function(s, p) return 1e-3 end,\n engine_schedule = function(s, p) return { style = 'cosine', \
         max_lr = 1e-3, min_lr = 1e-4, warmup_init = 1e-3, warmup_steps = 0, decay_steps = s.phase_steps } end }\n",
    )
    .expect("write");
    let e = refused(&run.dir.join("z").display().to_string());
    assert!(e.contains("engine_schedule of phase 0 gives") && e.contains("lr() gives 0.001"), "{e}");
}

#[test]
fn the_papers_four_experiments_export() {
    let plugin = lib("hashi_plugin_cluster").display().to_string();
    let dir = scratch_dir("paper-export");
    for (exp, phases) in [("exp0", 6), ("exp1", 6), ("exp2", 6), ("exp3", 2)] {
        let out = dir.join(exp);
        let file = format!("examples/paper/{exp}.lua");
        let shown = hashi_ok(&[
            "export",
            "--backend",
            "megatron",
            &file,
            "--out",
            &out.display().to_string(),
            "--plugin",
            &plugin,
        ]);
        assert!(shown.contains(&format!("{phases} jobs")), "{exp}: {shown}");
        let first = std::fs::read_dir(out.join("megatron"))
            .expect("megatron dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("phase_00")))
            .expect("first phase job");
        let job = std::fs::read_to_string(first).expect("job");
        // exp2 starts from random weights; the others from the converted Llama-2-13B-chat.
        assert_eq!(job.contains("--load \"$WORK/source\""), exp != "exp2", "{exp}: {job}");
    }
}
