//! `hashi data prepare` against megatron-core: its `IndexedDataset` reads our shards and returns exactly the
//! documents tokenized by Python `tokenizers` plus EOS. Up-to-date corpora are skipped; bad records fail with
//! file:line, or are counted and listed with --skip-bad.

use std::path::Path;

use crate::common::*;
use crate::tokenizer::trained;

fn corpora_file(dir: &Path, decls: &str) -> String {
    let p = dir.join("corpora.lua");
    std::fs::write(&p, format!("return {{\n{decls}\n}}\n")).expect("write corpora");
    p.display().to_string()
}

fn prepare(corpora: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let (t, o) = (trained().display().to_string(), out.display().to_string());
    let mut args = vec!["-v", "data", "prepare", corpora, "--tokenizer", &t, "--out", &o];
    args.extend_from_slice(extra);
    hashi(&args)
}

#[test]
fn megatron_core_reads_our_shards_exactly() {
    let dir = scratch_dir("data-prepare");
    let demo = repo_root().join("examples/demo/corpus");
    let shared = repo_root().parent().expect("parent").join("shared/data/corpus/ja_web_low.jsonl");
    let plain = dir.join("plain.txt");
    std::fs::write(&plain, "first document\n\n second,   with spaces \nサード・ドキュメント\n")
        .expect("write");
    let corpora = corpora_file(
        &dir,
        &format!(
            r#"{{ name = "ja_books", lang = "ja", tier = "high", paths = {{ "{}/ja_books.jsonl" }} }},
               {{ name = "en_books", lang = "en", paths = {{ "{}/en_*.jsonl" }} }},
               {{ name = "ja_web_low", lang = "ja", tier = "low", paths = {{ "{}" }} }},
               {{ name = "plain", lang = "en", paths = {{ "plain.txt" }} }},"#,
            demo.display(),
            demo.display(),
            shared.display()
        ),
    );
    let out = dir.join("shards");
    let res = prepare(&corpora, &out, &["--threads", "2"]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let check: serde_json::Value =
        serde_json::from_str(&run_python("megatron_check.py", &[&out.display().to_string()])).expect("json");
    assert_eq!(check["plain"]["sequences"], 3, "{check}");
    assert_eq!(check["ja_web_low"]["sequences"], 1656);
    assert_eq!(check["ja_books"]["dtype"], "uint16");
    // Our own reader agrees with the manifest.
    let ds = hashi_data::IndexedDataset::open(&out.join("plain")).expect("open");
    assert_eq!(ds.len(), 3);
    assert_eq!(*ds.get(0).expect("seq").last().expect("eos"), 2, "documents end with </s>");
    // A second run skips every corpus; touching an input redoes only that one.
    let again = prepare(&corpora, &out, &[]);
    let log = String::from_utf8_lossy(&again.stderr);
    assert_eq!(log.matches("up to date, skipped").count(), 4, "{log}");
    std::fs::write(&plain, "a changed document\n").expect("write");
    let third = prepare(&corpora, &out, &[]);
    let log = String::from_utf8_lossy(&third.stderr);
    assert_eq!(log.matches("up to date, skipped").count(), 3, "{log}");
    assert_eq!(hashi_data::IndexedDataset::open(&out.join("plain")).expect("open").len(), 1);
}

#[test]
fn bad_records_fail_with_file_and_line_or_are_counted() {
    let dir = scratch_dir("data-bad");
    let cases: [(&str, &[u8], &str); 4] = [
        ("json.jsonl", b"{\"text\": \"ok\"}\n{\"text\": oops}\n", "json.jsonl:2: bad JSON"),
        ("field.jsonl", b"{\"text\": \"ok\"}\n{\"body\": \"x\"}\n", "field.jsonl:2: no field \"text\""),
        ("utf8.jsonl", b"{\"text\": \"ok\"}\n{\"text\": \"\xff\"}\n", "utf8.jsonl:2: invalid UTF-8"),
        ("empty.jsonl", b"", "empty.jsonl:1: no documents in this file"),
    ];
    for (name, bytes, want) in cases {
        std::fs::write(dir.join(name), bytes).expect("write");
        let corpora =
            corpora_file(&dir, &format!(r#"{{ name = "c", lang = "ja", paths = {{ "{name}" }} }},"#));
        let out = dir.join(format!("out-{name}"));
        let res = prepare(&corpora, &out, &[]);
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "{err}");
        assert!(err.contains(want), "{name}: {err}");
        assert!(!out.join("c.bin").exists() && !out.join("manifest.json").exists(), "nothing half-written");
    }
    let corpora = corpora_file(
        &dir,
        r#"{ name = "c", lang = "ja", paths = { "json.jsonl", "field.jsonl", "utf8.jsonl", "empty.jsonl" } },"#,
    );
    let out = dir.join("out-skip");
    let res = prepare(&corpora, &out, &["--skip-bad"]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).expect("manifest"))
            .expect("json");
    let c = &manifest["corpora"][0];
    assert_eq!(c["documents"], 3);
    assert_eq!(
        c["rejected"],
        serde_json::json!({"bad_json": 1, "missing_field": 1, "invalid_utf8": 1, "empty_file": 1})
    );
    let rejects = std::fs::read_to_string(out.join("c.rejects.jsonl")).expect("rejects");
    assert_eq!(rejects.lines().count(), 3, "{rejects}");
    let e = hashi_err(&[
        "data",
        "prepare",
        &corpora_file(&dir, r#"{ name = "c", lang = "ja", paths = { "nope*.jsonl" } },"#),
        "--tokenizer",
        &trained().display().to_string(),
        "--out",
        &dir.join("x").display().to_string(),
    ]);
    assert!(e.contains("matches no file"), "{e}");
}

#[test]
fn the_four_curricula_resolve_on_the_shared_corpora() {
    let dir = scratch_dir("data-plans");
    let out = dir.join("shards");
    let res = prepare("scripts/corpora/shared.lua", &out, &[]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let o = out.display().to_string();
    for (exp, phases) in [
        ("exp0_quality_curriculum", 6),
        ("exp1_ratio_1to1", 6),
        ("exp2_from_scratch", 6),
        ("exp3_shuffled_sources", 2),
    ] {
        let svg = dir.join(format!("{exp}.svg"));
        let script = format!("scripts/curricula/{exp}.lua");
        let json = hashi_ok(&[
            "data",
            "plan",
            &script,
            "--shards",
            &o,
            "--json",
            "--svg",
            &svg.display().to_string(),
        ]);
        let plan: serde_json::Value = serde_json::from_str(&json).expect("plan json");
        let ps = plan["phases"].as_array().expect("phases");
        assert_eq!(ps.len(), phases, "{exp}");
        let batch = plan["decl"]["batch_size"].as_u64().expect("batch");
        let mut total = 0;
        for p in ps {
            let seqs: u64 = p["langs"]
                .as_array()
                .expect("langs")
                .iter()
                .map(|l| l["sequences"].as_u64().expect("n"))
                .sum();
            assert_eq!(
                seqs,
                p["batches"].as_u64().expect("batches") * batch,
                "{exp}: phase sequences fill its batches"
            );
            for l in p["langs"].as_array().expect("langs") {
                let by_source: u64 = l["sources"]
                    .as_array()
                    .expect("s")
                    .iter()
                    .map(|s| s["sequences"].as_u64().expect("n"))
                    .sum();
                assert_eq!(
                    by_source,
                    l["sequences"].as_u64().expect("n"),
                    "{exp}: sources add up to the language"
                );
            }
            total += p["batches"].as_u64().expect("b") * batch * 512;
        }
        assert!((total as f64 - 12e6).abs() < 0.01 * 12e6, "{exp}: {total} tokens");
        assert!(std::fs::read_to_string(&svg).expect("svg").starts_with("<svg"), "{exp}: picture written");
    }
    // The same plan with on_exhausted = "error" is refused: the web tiers are far smaller than the plan asks.
    let strict = dir.join("strict.lua");
    std::fs::write(
        &strict,
        "return { name = 'strict', seq_len = 512, batch_size = 32, total_tokens = 12e6, on_exhausted = 'error',\n\
         phases = { { name = 'all low', tokens = 1, shares = { ja = 1 },\n\
         sources = { ja = { order = 'sequential', names = { 'ja_web_low' } } } } } }\n",
    )
    .expect("write");
    let e = hashi_err(&["data", "plan", &strict.display().to_string(), "--shards", &o]);
    assert!(e.contains("source ja_web_low runs out") && e.contains("on_exhausted = \"repeat\""), "{e}");
}
