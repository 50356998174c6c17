//! Bits per byte against lm-evaluation-harness' rolling log-likelihood (`tests/python/bpb_reference.py`, lm-eval's
//! own `HFLM.loglikelihood_rolling` on the same checkpoint): every token of every document scored once, with
//! documents longer than the model's context, the same byte budget (whole documents), and the first token scored
//! after the BOS a tokenizer adds or, for a tokenizer that adds none, after the model's EOS.

use std::path::Path;

use crate::common::*;

/// Documents of random words `w3`..`w255` (the reference checkpoints' word-level vocabulary), some longer than
/// the 128 positions of the model, one of a single word.
fn write_docs(path: &Path) {
    let mut state = 7u64;
    let mut word = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        format!("w{}", 3 + (state >> 33) % 253)
    };
    let mut lines = vec![];
    for len in [1usize, 40, 300, 128, 129, 17, 700] {
        let words: Vec<String> = (0..len).map(|_| word()).collect();
        lines.push(serde_json::json!({ "text": words.join(" ") }).to_string());
    }
    std::fs::write(path, lines.join("\n") + "\n").expect("write docs");
}

fn hashi_bpb(model: &Path, docs: &Path, max_bytes: usize, out: &Path) -> serde_json::Value {
    let spec = format!("en={}", docs.display());
    let bytes = max_bytes.to_string();
    let (m, o) = (model.display().to_string(), out.display().to_string());
    hashi_ok(&["eval", "--model", &m, "--bpb", &spec, "--bpb-bytes", &bytes, "--out", &o]);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out).expect("results")).expect("json");
    r["bits_per_byte"][0].clone()
}

fn check(model: &Path, docs: &Path, max_bytes: usize, out: &Path) {
    let got = hashi_bpb(model, docs, max_bytes, out);
    let peer: serde_json::Value = serde_json::from_str(&run_python(
        "bpb_reference.py",
        &[&model.display().to_string(), &docs.display().to_string(), &max_bytes.to_string(), "128"],
    ))
    .expect("peer json");
    assert_eq!(got["bytes"], peer["bytes"], "{}: the same bytes are read", model.display());
    assert_eq!(got["documents"], peer["documents"], "{}: the same documents", model.display());
    let (a, b) = (got["bits_per_byte"].as_f64().expect("bpb"), peer["bits_per_byte"].as_f64().expect("bpb"));
    assert!((a - b).abs() <= 1e-5 * b.abs(), "{}: hashi {a} vs lm-eval {b}", model.display());
}

#[test]
fn bits_per_byte_equals_lm_eval_rolling_loglikelihood() {
    let dir = scratch_dir("bpb");
    let docs = dir.join("docs.jsonl");
    write_docs(&docs);
    let model = reference_dir().join("gqa");
    check(&model, &docs, 1_000_000, &dir.join("all.json"));
    // A budget that ends inside the third document reads three whole documents.
    check(&model, &docs, 400, &dir.join("budget.json"));
    // A tokenizer that adds no BOS: the first token of each document is scored after the model's EOS.
    let plain = dir.join("no-bos");
    std::fs::create_dir_all(&plain).expect("mkdir");
    for f in std::fs::read_dir(&model).expect("model dir") {
        let f = f.expect("entry").path();
        std::fs::copy(&f, plain.join(f.file_name().expect("name"))).expect("copy");
    }
    let edit = |name: &str, f: &dyn Fn(&mut serde_json::Value)| {
        let p = plain.join(name);
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("json");
        f(&mut v);
        std::fs::write(&p, v.to_string()).expect("write");
    };
    edit("tokenizer.json", &|v| v["post_processor"] = serde_json::Value::Null);
    edit("tokenizer_config.json", &|v| {
        v.as_object_mut().expect("object").remove("bos_token");
    });
    check(&plain, &docs, 1_000_000, &dir.join("no-bos.json"));
}
