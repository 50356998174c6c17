//! `hashi model import FILE.gguf` against transformers' own GGUF loading of the same file, and hashi's
//! dequantization against the `gguf` package's (`tests/python/gguf_peer.py` writes the files and runs the peer).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::{DType, Device, Tensor};
use hashi_model::{GenerateOptions, Llama, Sampling};
use hashi_tokenizer::Tokenizer;

use crate::common::*;

/// Japanese and English texts whose ids must agree (spaces, digits, CRLF, emoji, code, special-token text).
const TEXTS: [&str; 8] = [
    "The capital of France is Paris. It has 2,148,000 inhabitants (2020).",
    "東京は日本の首都であり、人口は約1400万人です。",
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。",
    "  leading spaces,\ttabs\r\nand CRLF line ends;   runs   of spaces.",
    "Emoji 🤗🎉 and ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ, ｶﾀｶﾅ, 𠮷野家.",
    "def f(x):\n    return x ** 2  # square\n",
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    "",
];

/// The files of `gguf_peer.py write`, made once per process.
fn written() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch_dir("gguf-written");
        run_python("gguf_peer.py", &["write", dir.to_str().expect("utf-8 path")]);
        dir
    })
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// What `gguf_peer.py transformers` printed, and its output directory.
fn transformers_peer(
    gguf: &Path,
    name: &str,
    prompt: &str,
    new_tokens: usize,
) -> (serde_json::Value, PathBuf) {
    let dir = scratch_dir(&format!("gguf-peer-{name}"));
    let texts = dir.join("texts.json");
    std::fs::write(&texts, serde_json::to_string(&TEXTS).expect("json")).expect("write texts");
    let out = run_python(
        "gguf_peer.py",
        &["transformers", s(gguf), s(&dir), s(&texts), prompt, &new_tokens.to_string()],
    );
    (serde_json::from_str(&out).expect("peer JSON"), dir)
}

/// Every tensor of hashi's import equals transformers' state dict (same names, ≤ `tol`).
fn assert_weights_equal(imported: &Path, peer: &Path, tol: f32) {
    let ours =
        candle_core::safetensors::load(imported.join("model.safetensors"), &Device::Cpu).expect("ours");
    let theirs =
        candle_core::safetensors::load(peer.join("state.safetensors"), &Device::Cpu).expect("theirs");
    let mut names: Vec<&String> = ours.keys().collect();
    names.sort();
    let mut want: Vec<&String> = theirs.keys().collect();
    want.sort();
    assert_eq!(names, want, "tensor names differ from transformers' state dict");
    for name in names {
        let diff = max_abs_diff(&ours[name], &theirs[name]);
        assert!(diff <= tol, "{name}: differs from transformers by {diff}");
    }
}

/// Ids (special tokens added) and decodes of the imported tokenizer equal transformers' GGUF tokenizer's.
fn assert_tokenizer_equal(imported: &Path, peer: &serde_json::Value) {
    let tok = Tokenizer::from_file(imported).expect("imported tokenizer loads");
    for (i, text) in TEXTS.iter().enumerate() {
        let ids = tok.encode(text, true).expect("encode");
        let want: Vec<u32> = serde_json::from_value(peer["ids"][i].clone()).expect("ids");
        assert_eq!(ids, want, "ids of {text:?}");
        let plain = tok.encode(text, false).expect("encode");
        let want: Vec<u32> = serde_json::from_value(peer["ids_no_special"][i].clone()).expect("ids");
        assert_eq!(plain, want, "ids of {text:?} without special tokens");
        let decoded = tok.decode(&ids, false).expect("decode");
        assert_eq!(decoded, peer["decoded"][i].as_str().expect("decoded"), "decode of {text:?}");
    }
}

/// The imported config describes the model transformers built from the same file.
fn assert_config_equal(imported: &Path, peer: &serde_json::Value) {
    let ours: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(imported.join("config.json")).expect("config"))
            .expect("json");
    for (k, want) in peer["config"].as_object().expect("config object") {
        if k == "rope_theta" {
            continue;
        }
        let got = &ours[k];
        let same = match (got.as_f64(), want.as_f64()) {
            (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * b.abs().max(1e-30),
            _ => got == want || (got.is_null() && want.is_null()),
        };
        assert!(same, "config.json {k}: {got} vs transformers {want}");
    }
    let theta = ours["rope_theta"].as_f64().expect("rope_theta");
    let want = peer["rope_theta"].as_f64().expect("peer rope_theta");
    assert!((theta - want).abs() <= 1e-6 * want, "rope_theta {theta} vs {want}");
}

/// Logits of hashi's model on the imported directory against transformers', with the same argmax everywhere, and
/// greedy continuations equal.
fn assert_model_equal(
    imported: &Path,
    peer_dir: &Path,
    peer: &serde_json::Value,
    tol: f32,
    new_tokens: usize,
) {
    let model = Llama::load(imported).expect("imported model loads");
    let reference = peer_dir.join("logits.safetensors");
    let ids = load_tensor(&reference, "ids").to_dtype(DType::U32).expect("u32");
    let logits = model.forward(&ids).expect("forward");
    let want = load_tensor(&reference, "logits");
    let diff = max_abs_diff(&logits, &want);
    assert!(diff <= tol, "logits differ by {diff} (max |logit| {})", max_abs(&want));
    let argmax = |t: &Tensor| -> Vec<u32> {
        t.argmax(2).expect("argmax").flatten_all().expect("f").to_vec1().expect("v")
    };
    assert_eq!(argmax(&logits), argmax(&want), "argmax differs at some position");
    let prompt: Vec<u32> = serde_json::from_value(peer["prompt_ids"].clone()).expect("prompt");
    let want_gen: Vec<u32> = serde_json::from_value(peer["generated"].clone()).expect("generated");
    let eos: Vec<u32> = match &peer["config"]["eos_token_id"] {
        serde_json::Value::Null => vec![],
        v => vec![v.as_u64().expect("eos") as u32],
    };
    let opts = GenerateOptions { max_new_tokens: new_tokens, sampling: Sampling::Greedy, stop_ids: eos };
    let got = hashi_model::generate(&model, &prompt, &opts, &hashi_core::NoReporter).expect("generate");
    assert_eq!(got, want_gen, "greedy continuation differs from transformers'");
}

#[test]
fn smollm2_gguf_imports_like_transformers_loads_it() {
    let gguf = PathBuf::from(run_python("gguf_peer.py", &["smollm2"]).trim());
    let dir = scratch_dir("gguf-smollm2");
    let out = dir.join("model");
    let summary: serde_json::Value =
        serde_json::from_str(&hashi_ok(&["model", "import", s(&gguf), "--out", s(&out), "--json"]))
            .expect("json");
    assert_eq!(summary["tie_word_embeddings"], true, "{summary}");
    let prompt = "The capital of France is Paris, and the capital of Japan is";
    let (peer, peer_dir) = transformers_peer(&gguf, "smollm2", prompt, 20);
    assert_weights_equal(&out, &peer_dir, 1e-6);
    assert_config_equal(&out, &peer);
    assert_tokenizer_equal(&out, &peer);
    assert_model_equal(&out, &peer_dir, &peer, 5e-4, 20);
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("tokenizer_config.json")).expect("tc"))
            .expect("json");
    assert_eq!(cfg["chat_template"], peer["chat_template"], "chat template");
    for k in ["bos_token", "eos_token", "pad_token"] {
        assert_eq!(cfg[k], peer["special"][k], "{k}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&peer_dir);
}

#[test]
fn tiny_gguf_models_import_like_transformers_loads_them() {
    for tokenizer in ["gpt2", "llama"] {
        let gguf = written().join(format!("tiny_{tokenizer}.gguf"));
        let out = scratch_dir(&format!("gguf-tiny-{tokenizer}"));
        hashi_ok(&["model", "import", s(&gguf), "--out", s(&out)]);
        let (peer, peer_dir) = transformers_peer(&gguf, tokenizer, "The quick brown fox", 8);
        assert_weights_equal(&out, &peer_dir, 1e-6);
        assert_config_equal(&out, &peer);
        assert_tokenizer_equal(&out, &peer);
        assert_model_equal(&out, &peer_dir, &peer, 1e-4, 8);
    }
}

#[test]
fn bf16_import_is_the_rounded_f32_import() {
    let gguf = written().join("tiny_gpt2.gguf");
    let dir = scratch_dir("gguf-bf16");
    hashi_ok(&["model", "import", s(&gguf), "--out", s(&dir.join("f32"))]);
    hashi_ok(&["model", "import", s(&gguf), "--out", s(&dir.join("bf16")), "--dtype", "bf16"]);
    let f32s = candle_core::safetensors::load(dir.join("f32/model.safetensors"), &Device::Cpu).expect("f32");
    let bf16s =
        candle_core::safetensors::load(dir.join("bf16/model.safetensors"), &Device::Cpu).expect("bf16");
    assert_eq!(f32s.len(), bf16s.len());
    for (name, t) in &f32s {
        let b = &bf16s[name];
        assert_eq!(b.dtype(), DType::BF16, "{name}");
        let rounded = t.to_dtype(DType::BF16).expect("bf16");
        assert_eq!(max_abs_diff(b, &rounded), 0.0, "{name}");
    }
    let cfg = std::fs::read_to_string(dir.join("bf16/config.json")).expect("config");
    assert!(cfg.contains("\"torch_dtype\": \"bfloat16\""), "{cfg}");
}

#[test]
fn every_quant_type_dequantizes_like_the_gguf_package() {
    let mut gguf = hashi_import::Gguf::open(&written().join("quants.gguf")).expect("opens");
    let expected =
        candle_core::safetensors::load(written().join("quants_expected.safetensors"), &Device::Cpu)
            .expect("expected");
    let want_types = [
        "F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
    ];
    let mut names: Vec<&String> = expected.keys().collect();
    names.sort();
    let mut want_sorted = want_types.to_vec();
    want_sorted.sort();
    assert_eq!(names, want_sorted, "the peer wrote one tensor per type");
    for name in want_types {
        let (_, t) = gguf.tensor_info(name).expect("tensor present");
        assert_eq!(hashi_import::tensors::ggml_type_name(t), name, "stored type");
        let got = gguf.dequantize(name).expect("dequantizes");
        let want = &expected[name];
        let diff = max_abs_diff(&got, want);
        let tol = 1e-6 * max_abs(want).max(1.0);
        assert!(diff <= tol, "{name}: hashi's dequantization differs from gguf's by {diff}");
    }
}

#[test]
fn unsupported_types_and_bad_files_are_clean_errors_naming_them() {
    let dir = scratch_dir("gguf-errors");
    let e = hashi_err(&["model", "import", s(&written().join("q8_1.gguf")), "--out", s(&dir.join("a"))]);
    assert!(e.contains("q8_1.gguf") && e.contains("blk.1.ffn_up.weight") && e.contains("Q8_1"), "{e}");
    assert!(!dir.join("a/model.safetensors").exists(), "nothing written before the refusal");
    let e = hashi_err(&["model", "import", s(&written().join("iq4_nl.gguf")), "--out", s(&dir.join("b"))]);
    assert!(e.contains("iq4_nl.gguf") && e.contains("IQ4_NL"), "{e}");
    let text = dir.join("notes.gguf");
    std::fs::write(&text, "this is not a GGUF file\n").expect("write");
    let e = hashi_err(&["model", "import", s(&text), "--out", s(&dir.join("c"))]);
    assert!(e.contains("notes.gguf") && e.contains("not a readable GGUF file"), "{e}");
    let whole = std::fs::read(written().join("tiny_llama.gguf")).expect("read");
    for (name, len) in [("head.gguf", 40), ("half.gguf", whole.len() / 2), ("short.gguf", whole.len() - 1)] {
        let cut = dir.join(name);
        std::fs::write(&cut, &whole[..len]).expect("write");
        let e = hashi_err(&["model", "import", s(&cut), "--out", s(&dir.join("d"))]);
        assert!(e.contains(name) && e.contains("not a readable GGUF file"), "{name}: {e}");
    }
    let e = hashi_err(&["model", "import", s(&dir.join("missing.gguf")), "--out", s(&dir.join("e"))]);
    assert!(e.contains("missing.gguf"), "{e}");
}
