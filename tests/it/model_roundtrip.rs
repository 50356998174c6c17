//! Checkpoints written by hashi load in transformers with the same logits (f32, bf16, sharded, tied), and
//! `model init` is deterministic in its seed.

use std::path::Path;

use crate::common::*;

const IDS: [&str; 2] = ["1,5,9,200,3,77,12,250", "4,4,4,8,100,101,102,2"];

fn write_config(dir: &Path, json: &str) -> String {
    std::fs::create_dir_all(dir).expect("mkdir");
    let path = dir.join("config.json");
    std::fs::write(&path, json).expect("write config");
    path.display().to_string()
}

/// `hashi model logits` vs `transformers` on the same directory.
fn assert_transformers_agrees(model: &Path) {
    let ours = model.join("hashi_logits.safetensors");
    let (m, o) = (model.display().to_string(), ours.display().to_string());
    hashi_ok(&["model", "logits", "--model", &m, "--ids", IDS[0], "--ids", IDS[1], "--out", &o]);
    let theirs = model.join("hf_logits.safetensors");
    let ids_json = format!("[[{}],[{}]]", IDS[0], IDS[1]);
    run_python("hf_logits.py", &[&m, &ids_json, &theirs.display().to_string()]);
    let diff = max_abs_diff(&load_tensor(&ours, "logits"), &load_tensor(&theirs, "logits"));
    assert!(diff <= 1e-4, "{m}: transformers' logits differ from hashi's by {diff}");
}

#[test]
fn hashi_checkpoints_load_in_transformers() {
    let root = scratch_dir("roundtrip");
    let gqa = r#"{"vocab_size": 256, "hidden_size": 64, "intermediate_size": 176, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "rope_theta": 50000.0, "initializer_range": 0.1,
        "my_custom_key": "kept"}"#;
    let tied = r#"{"vocab_size": 256, "hidden_size": 64, "intermediate_size": 176, "num_hidden_layers": 2,
        "num_attention_heads": 4, "tie_word_embeddings": true, "initializer_range": 0.1}"#;
    let cases: [(&str, &str, &[&str]); 4] = [
        ("gqa_f32", gqa, &[]),
        ("gqa_f16", gqa, &["--dtype", "f16"]),
        ("tied_bf16", tied, &["--dtype", "bf16"]),
        ("gqa_sharded", gqa, &["--max-shard-bytes", "100000"]),
    ];
    for (name, json, extra) in cases {
        let dir = root.join(name);
        let cfg = write_config(&root.join(format!("{name}-cfg")), json);
        let d = dir.display().to_string();
        let mut args = vec!["model", "init", "--config", &cfg, "--seed", "7", "--out", &d];
        args.extend_from_slice(extra);
        hashi_ok(&args);
        assert_transformers_agrees(&dir);
    }
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("gqa_f32/config.json")).expect("config"))
            .expect("json");
    assert_eq!(written["my_custom_key"], "kept", "unknown config keys survive");
    let sharded = root.join("gqa_sharded");
    assert!(sharded.join("model.safetensors.index.json").is_file(), "sharded output has an index");
    assert!(!sharded.join("model.safetensors").exists());
    let shards = std::fs::read_dir(&sharded)
        .expect("ls")
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().starts_with("model-0000")))
        .count();
    assert!(shards >= 3, "a 0.5 MB model over 100 kB shards has several shards, got {shards}");
    let info: serde_json::Value = serde_json::from_str(&hashi_ok(&[
        "model",
        "info",
        "--json",
        &root.join("tied_bf16").display().to_string(),
    ]))
    .expect("info json");
    assert_eq!(info["dtypes"], serde_json::json!(["BF16"]));
    assert_eq!(info["tie_word_embeddings"], true);
    // embed 256*64 + 2 layers * (4*64*64 + 3*64*176 + 2*64) + final norm 64; no lm_head when tied.
    assert_eq!(info["parameters"], 256 * 64 + 2 * (4 * 64 * 64 + 3 * 64 * 176 + 2 * 64) + 64);
}

#[test]
fn model_init_is_deterministic_in_its_seed() {
    let root = scratch_dir("seeds");
    let run = |name: &str, seed: &str| {
        let d = root.join(name);
        hashi_ok(&[
            "model",
            "init",
            "--preset",
            "tiny-test",
            "--seed",
            seed,
            "--out",
            &d.display().to_string(),
        ]);
        std::fs::read(d.join("model.safetensors")).expect("weights")
    };
    let a = run("a", "3");
    assert_eq!(a, run("b", "3"), "same seed, same bytes");
    assert_ne!(a, run("c", "4"), "another seed, other weights");
}

/// A model of every family and scaled RoPE type, loaded by hashi and saved with `save_pretrained` (the path of
/// training checkpoints), loads in transformers with the reference logits: the config is written back faithfully.
#[test]
fn saved_families_and_rope_types_load_in_transformers() {
    let root = scratch_dir("family-save");
    for name in ["mistral_window", "qwen2_tied_window", "rope_dynamic", "rope_llama3", "rope_yarn_mscale"] {
        let src = reference_dir().join(name);
        let reference = src.join("reference.safetensors");
        let model = hashi_model::Llama::load(&src).unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = root.join(name);
        hashi_model::save_pretrained(
            model.config(),
            model.params(),
            &out,
            Default::default(),
            &hashi_core::NoReporter,
        )
        .expect("save");
        let source: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).expect("config"))
                .expect("json");
        let written: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).expect("config"))
                .expect("json");
        assert_eq!(written["model_type"], source["model_type"], "{name}: model_type kept");
        let ids: Vec<Vec<u32>> = load_tensor(&reference, "ids")
            .to_dtype(candle_core::DType::U32)
            .expect("u32")
            .to_vec2()
            .expect("rows");
        let theirs = out.join("hf_logits.safetensors");
        let ids_json = serde_json::to_string(&ids).expect("json");
        run_python("hf_logits.py", &[&out.display().to_string(), &ids_json, &theirs.display().to_string()]);
        let diff = max_abs_diff(&load_tensor(&theirs, "logits"), &load_tensor(&reference, "logits"));
        assert!(
            diff <= 1e-4,
            "{name}: transformers on the re-saved model differs from the reference by {diff}"
        );
    }
}
