//! `hashi transfer` against its Python peers: matched rows bit-identical in `safetensors`, the output loads in
//! transformers with hashi's logits; bad tokenizers and strategies fail clearly and leave nothing in --out.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::common::*;

/// (English model dir, new bilingual tokenizer dir) for an untied f32 and a tied, sharded bf16 source.
struct Fixture {
    untied: PathBuf,
    tied: PathBuf,
    new_tok: PathBuf,
    root: PathBuf,
}

fn demo_corpus(name: &str) -> String {
    repo_root().join("examples/demo/corpus").join(name).display().to_string()
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let root = scratch_dir("transfer");
        let en_tok = root.join("en_tok");
        hashi_ok(&[
            "tokenizer", "train", "--input", &format!("en={}", demo_corpus("en_books.jsonl")),
            "--vocab-size", "1200", "--out", &en_tok.display().to_string(),
        ]);
        let new_tok = root.join("bi_tok");
        hashi_ok(&[
            "tokenizer", "train", "--input", &format!("ja={}", demo_corpus("ja_books.jsonl")),
            "--input", &format!("en={}", demo_corpus("en_books.jsonl")), "--vocab-size", "3000",
            "--out", &new_tok.display().to_string(),
        ]);
        let make = |name: &str, tied: bool, extra: &[&str]| {
            let cfg = root.join(format!("{name}.json"));
            std::fs::write(
                &cfg,
                format!(
                    r#"{{"vocab_size": 1200, "hidden_size": 64, "intermediate_size": 176, "num_hidden_layers": 2,
                    "num_attention_heads": 4, "num_key_value_heads": 2, "tie_word_embeddings": {tied},
                    "bos_token_id": 1, "eos_token_id": 2, "max_position_embeddings": 256}}"#
                ),
            )
            .expect("config");
            let dir = root.join(name);
            let mut args = vec!["model", "init", "--seed", "3"];
            let (c, d) = (cfg.display().to_string(), dir.display().to_string());
            args.extend(["--config", &c, "--out", &d]);
            args.extend_from_slice(extra);
            hashi_ok(&args);
            for f in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"] {
                std::fs::copy(en_tok.join(f), dir.join(f)).expect("copy tokenizer");
            }
            dir
        };
        let untied = make("en_untied", false, &[]);
        let tied = make("en_tied_bf16", true, &["--dtype", "bf16", "--max-shard-bytes", "60000"]);
        Fixture { untied, tied, new_tok, root }
    })
}

fn transfer(src: &Path, init: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let (s, t, o) =
        (src.display().to_string(), fixture().new_tok.display().to_string(), out.display().to_string());
    let mut args = vec!["transfer", "--model", &s, "--tokenizer", &t, "--init", init, "--out", &o];
    args.extend_from_slice(extra);
    hashi(&args)
}

#[test]
fn transferred_models_keep_matched_rows_and_load_in_transformers() {
    let f = fixture();
    for (src, init) in
        [(&f.untied, "scripts/init/subword_mean.lua"), (&f.tied, "scripts/init/similarity.lua")]
    {
        let out = f.root.join(format!("{}-out", src.file_name().and_then(|n| n.to_str()).unwrap_or("x")));
        let res = transfer(src, init, &out, &["--json"]);
        assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
        let report: serde_json::Value = serde_json::from_slice(&res.stdout).expect("json report");
        let r = &report["strategies"][0]["report"];
        assert_eq!(r["new_vocab_size"], 3000);
        assert!(r["matched"].as_u64().expect("matched") > 300, "{r}");
        let check: serde_json::Value = serde_json::from_str(&run_python(
            "transfer_check.py",
            &[&src.display().to_string(), &out.display().to_string()],
        ))
        .expect("check json");
        assert_eq!(
            check["matched_rows_checked"],
            r["matched"].as_u64().expect("n") * if src == &f.tied { 1 } else { 2 }
        );
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).expect("config"))
                .expect("json");
        assert_eq!(config["vocab_size"], 3000);
        // transformers loads the output with the same logits as hashi.
        let ids = "1,15,300,1999,42,7";
        let (o, ours) = (out.display().to_string(), out.join("hashi_logits.safetensors"));
        hashi_ok(&["model", "logits", "--model", &o, "--ids", ids, "--out", &ours.display().to_string()]);
        let theirs = out.join("hf_logits.safetensors");
        run_python("hf_logits.py", &[&o, &format!("[[{ids}]]"), &theirs.display().to_string()]);
        let diff = max_abs_diff(&load_tensor(&ours, "logits"), &load_tensor(&theirs, "logits"));
        assert!(diff <= 1e-4, "{o}: transformers' logits differ by {diff}");
    }
}

#[test]
fn every_shipped_strategy_and_the_example_run_in_a_dry_run_comparison() {
    let f = fixture();
    let out = f.root.join("dry");
    let mut args = vec![];
    for s in ["random", "mean", "subword_mean", "similarity", "method"] {
        args.push("--init".to_string());
        args.push(format!("scripts/init/{s}.lua"));
    }
    args.extend(["--init".into(), "examples/custom_init/half_and_half.lua".into(), "--dry-run".into()]);
    args.extend([
        "--eval-text".into(),
        format!("ja={}", demo_corpus("ja_books.jsonl")),
        "--eval-bytes".into(),
        "1500".into(),
        "--json".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let res = transfer(&f.untied, "scripts/init/mean.lua", &out, &args);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    assert!(!out.exists(), "a dry run writes nothing");
    let report: serde_json::Value = serde_json::from_slice(&res.stdout).expect("json");
    let names: Vec<&str> = report["strategies"]
        .as_array()
        .expect("list")
        .iter()
        .map(|s| s["report"]["strategy"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["mean", "random", "mean", "subword_mean", "similarity", "method", "half_and_half"]);
    for s in report["strategies"].as_array().expect("list") {
        let bpb = s["bits_per_byte"][0]["bits_per_byte"].as_f64().expect("bpb");
        assert!(bpb.is_finite() && bpb > 0.0, "{s}");
    }
    // Mean init has (near) zero-norm new rows on a zero-mean random model; random init matches the old norms.
    let norm =
        |i: usize| report["strategies"][i]["report"]["norms"][0]["initialised"].as_f64().expect("norm");
    assert!(norm(2) < 0.2 * norm(1), "mean {} vs random {}", norm(2), norm(1));
}

#[test]
fn bad_tokenizers_and_strategies_fail_clearly_and_leave_nothing() {
    let f = fixture();
    let bad_dir = f.root.join("bad");
    std::fs::create_dir_all(&bad_dir).expect("mkdir");
    let out = bad_dir.join("out");
    let fail = |init: &str, tok: Option<&Path>| -> String {
        let (s, o) = (f.untied.display().to_string(), out.display().to_string());
        let t = tok.unwrap_or(&f.new_tok).display().to_string();
        let e = hashi_err(&["transfer", "--model", &s, "--tokenizer", &t, "--init", init, "--out", &o]);
        let leftovers: Vec<_> = std::fs::read_dir(&bad_dir)
            .expect("ls")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("out"))
            .collect();
        assert!(leftovers.is_empty(), "nothing may be left in --out: {leftovers:?}");
        e
    };
    // A tokenizer without the model's `</s>`.
    let renamed = bad_dir.join("no_eos");
    std::fs::create_dir_all(&renamed).expect("mkdir");
    let text =
        std::fs::read_to_string(f.new_tok.join("tokenizer.json")).expect("tok").replace("</s>", "<|end|>");
    std::fs::write(renamed.join("tokenizer.json"), text).expect("write");
    let e = fail("scripts/init/mean.lua", Some(&renamed));
    assert!(e.contains("special tokens do not match") && e.contains("</s>"), "{e}");
    let write = |name: &str, src: &str| {
        let p = bad_dir.join(name);
        std::fs::write(&p, src).expect("write");
        p.display().to_string()
    };
    let e = fail(&write("shape.lua", "return { recipe = function(t, c) return { terms = 5 } end }"), None);
    assert!(e.contains("shape.lua") && e.contains("invalid type"), "{e}");
    let e = fail(
        &write("range.lua", "return { recipe = function(t, c) return { terms = {{ 999999, 1 }} } end }"),
        None,
    );
    assert!(e.contains("old id 999999 is out of range"), "{e}");
    let e = fail(&write("broken.lua", "return {\n  recipe = function(t, c)\n    return {\nend }"), None);
    assert!(e.contains("broken.lua:4:"), "{e}");
    let e = fail(
        &write("runtime.lua", "return { recipe = function(t, c)\n  error('no idea for ' .. t.piece)\nend }"),
        None,
    );
    assert!(e.contains("runtime.lua:2: no idea for"), "{e}");
    let e = fail(&write("nofn.lua", "return { name = 'x' }"), None);
    assert!(e.contains("recipe(token, ctx)"), "{e}");
}
