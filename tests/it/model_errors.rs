//! Bad inputs give a clean error (exit code 1, no panic) that names the file at fault.

use std::path::{Path, PathBuf};

use crate::common::*;

/// A fresh tiny model written by hashi into `root/name`.
fn tiny_model(root: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let dir = root.join(name);
    let d = dir.display().to_string();
    let mut args = vec!["model", "init", "--preset", "tiny-test", "--out", &d];
    args.extend_from_slice(extra);
    hashi_ok(&args);
    dir
}

fn logits_err(dir: &Path) -> String {
    hashi_err(&[
        "model",
        "logits",
        "--model",
        &dir.display().to_string(),
        "--ids",
        "1,2,3",
        "--out",
        "/dev/null",
    ])
}

#[test]
fn missing_config_is_named() {
    let dir = tiny_model(&scratch_dir("err-noconfig"), "m", &[]);
    std::fs::remove_file(dir.join("config.json")).expect("rm");
    let e = logits_err(&dir);
    assert!(e.contains("config.json") && e.contains("not found"), "{e}");
}

#[test]
fn malformed_config_names_file_and_line() {
    let dir = tiny_model(&scratch_dir("err-badconfig"), "m", &[]);
    std::fs::write(dir.join("config.json"), "{\n  \"vocab_size\": 128,\n  oops\n}\n").expect("write");
    let e = logits_err(&dir);
    assert!(e.contains("config.json") && e.contains("line 3"), "{e}");
    std::fs::write(dir.join("config.json"), r#"{"vocab_size": 128}"#).expect("write");
    let e = logits_err(&dir);
    assert!(e.contains("config.json") && e.contains("missing field `hidden_size`"), "{e}");
}

#[test]
fn wrong_tensor_shape_names_tensor_and_file() {
    let dir = tiny_model(&scratch_dir("err-shape"), "m", &[]);
    let file = dir.join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&file, &candle_core::Device::Cpu).expect("load");
    let bad = candle_core::Tensor::ones(33, candle_core::DType::F32, &candle_core::Device::Cpu).expect("t");
    tensors.insert("model.norm.weight".into(), bad);
    candle_core::safetensors::save(&tensors, &file).expect("save");
    let e = logits_err(&dir);
    assert!(e.contains("model.safetensors") && e.contains("model.norm.weight") && e.contains("[33]"), "{e}");
}

#[test]
fn truncated_safetensors_is_named() {
    let dir = tiny_model(&scratch_dir("err-trunc"), "m", &[]);
    let file = dir.join("model.safetensors");
    let bytes = std::fs::read(&file).expect("read");
    std::fs::write(&file, &bytes[..bytes.len() / 2]).expect("truncate");
    let e = logits_err(&dir);
    assert!(e.contains("model.safetensors") && e.contains("not a valid safetensors file"), "{e}");
}

#[test]
fn missing_shard_is_named() {
    let dir = tiny_model(&scratch_dir("err-shard"), "m", &["--max-shard-bytes", "20000"]);
    let shard = std::fs::read_dir(&dir)
        .expect("ls")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .find(|n| n.starts_with("model-00002-of-"))
        .expect("a second shard");
    std::fs::remove_file(dir.join(&shard)).expect("rm shard");
    let e = hashi_err(&["model", "info", &dir.display().to_string()]);
    assert!(
        e.contains("model.safetensors.index.json") && e.contains(&shard) && e.contains("does not exist"),
        "{e}"
    );
}

#[test]
fn pickle_checkpoints_are_refused() {
    let root = scratch_dir("err-pickle");
    let dir = tiny_model(&root, "m", &[]);
    std::fs::remove_file(dir.join("model.safetensors")).expect("rm");
    // Contents never matter: hashi refuses pickles by name, before reading them.
    std::fs::write(dir.join("pytorch_model.bin"), b"\x80\x02}q\x00.").expect("write");
    let e = logits_err(&dir);
    assert!(e.contains("pytorch_model.bin") && e.contains("refusing to load a pickle"), "{e}");
    let pt = root.join("weights.pt");
    std::fs::write(&pt, b"\x80\x02}q\x00.").expect("write");
    let e = hashi_err(&["model", "info", &pt.display().to_string()]);
    assert!(e.contains("weights.pt") && e.contains("arbitrary code"), "{e}");
}

#[test]
fn out_of_range_token_ids_are_refused() {
    let dir = tiny_model(&scratch_dir("err-ids"), "m", &[]);
    let e = hashi_err(&[
        "model",
        "logits",
        "--model",
        &dir.display().to_string(),
        "--ids",
        "1,128",
        "--out",
        "x",
    ]);
    assert!(e.contains("token id 128 is out of range"), "{e}");
}
