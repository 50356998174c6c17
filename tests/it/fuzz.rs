//! Random mutations of valid files never panic a reader and never pass it something inconsistent (issue 19):
//! the safetensors header reader (`hashi_transfer::safetensors_io::Header::read`, hashi's streaming reader), the
//! checkpoint loader (`hashi_model::Checkpoint::open` and `ParamStore::from_checkpoint`, through the
//! `safetensors` crate) and the Megatron `.idx` reader (`hashi_data::IndexedDataset::open`).
//!
//! Each input is a valid file with 1–3 random mutations (a bit flipped, a byte set, a byte inserted or deleted, a
//! range duplicated, the file truncated), mostly inside the header or index. A reader may refuse it — an error
//! naming the file — or accept it, and what it accepts must be consistent: every tensor's range inside the file,
//! holding exactly its shape's elements, none overlapping; every sequence of a dataset readable with its length,
//! the `.bin` holding exactly the tokens the index describes. The number of inputs tried is printed. The seed is
//! fixed, so a failure repeats.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use crate::common::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// `data` with 1–3 mutations, 9 in 10 of them inside `data[..hot]`.
fn mutate(rng: &mut Rng, data: &[u8], hot: usize) -> Vec<u8> {
    let mut out = data.to_vec();
    for _ in 0..1 + rng.below(3) {
        if out.is_empty() {
            break;
        }
        let span = if rng.below(10) < 9 { hot.min(out.len()) } else { out.len() };
        let at = rng.below(span);
        match rng.below(6) {
            0 => out[at] ^= 1 << rng.below(8),
            1 => out[at] = rng.next() as u8,
            2 => out.insert(at, rng.next() as u8),
            3 => {
                out.remove(at);
            }
            4 => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                let piece = out[at..end].to_vec();
                out.splice(at..at, piece);
            }
            _ => out.truncate(at),
        }
    }
    out
}

fn no_panic<T>(what: &str, i: usize, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| panic!("{what}: input {i} made the reader panic"))
}

/// A checkpoint's header, accepted: consistent with its file.
fn check_header(h: &hashi_transfer::safetensors_io::Header, file_len: u64, i: usize) {
    let mut ranges: Vec<[u64; 2]> = vec![];
    for (name, e) in &h.tensors {
        let size = match e.dtype.as_str() {
            "F32" | "I32" | "U32" => 4,
            "F16" | "BF16" | "I16" | "U16" => 2,
            "F64" | "I64" | "U64" => 8,
            _ => 1,
        };
        let elements: u64 = e.shape.iter().map(|&d| d as u64).product();
        assert_eq!(
            e.data_offsets[1] - e.data_offsets[0],
            elements * size,
            "input {i}: {name} accepted with {e:?}"
        );
        assert!(h.data_start + e.data_offsets[1] <= file_len, "input {i}: {name} ends past the file");
        ranges.push(e.data_offsets);
    }
    ranges.sort_unstable();
    assert!(ranges.windows(2).all(|w| w[0][1] <= w[1][0]), "input {i}: overlapping tensors accepted");
}

#[test]
fn mutated_safetensors_files_are_refused_or_consistent() {
    let src = reference_dir().join("gqa");
    let data = std::fs::read(src.join("model.safetensors")).expect("model");
    let hot = 8 + u64::from_le_bytes(data[..8].try_into().expect("8 bytes")) as usize;
    let dir = scratch_dir("fuzz-safetensors");
    std::fs::copy(src.join("config.json"), dir.join("config.json")).expect("config");
    let path = dir.join("model.safetensors");
    let mut rng = Rng(15);
    let (tries, mut refused, mut accepted, mut loaded) = (1500, 0, 0, 0);
    for i in 0..tries {
        let m = mutate(&mut rng, &data, hot);
        std::fs::write(&path, &m).expect("write");
        match no_panic("Header::read", i, || hashi_transfer::safetensors_io::Header::read(&path)) {
            Ok(h) => {
                check_header(&h, m.len() as u64, i);
                accepted += 1;
            }
            Err(e) => {
                assert!(e.to_string().contains("model.safetensors"), "input {i}: {e}");
                refused += 1;
            }
        }
        // The model loader (the safetensors crate, then hashi's shape and finiteness checks).
        let load = no_panic("Checkpoint::open", i, || {
            hashi_model::Checkpoint::open(&dir).and_then(|c| hashi_model::ParamStore::from_checkpoint(&c))
        });
        match load {
            Ok(_) => loaded += 1,
            Err(e) => assert!(e.to_string().contains(&*dir.to_string_lossy()), "input {i}: {e}"),
        }
    }
    println!(
        "safetensors: {tries} mutated files; header reader refused {refused}, accepted {accepted} (each \
         consistent); the checkpoint loader loaded {loaded}"
    );
    assert!(refused > tries / 2, "most mutations of a header break it");
}

/// A dataset of 40 documents of 1–60 tokens, as `hashi data prepare` writes them.
fn dataset(prefix: &Path) {
    let mut w = hashi_data::IndexedWriter::create(prefix, hashi_data::TokenDtype::U16).expect("create");
    let mut rng = Rng(7);
    for _ in 0..40 {
        let doc: Vec<u32> = (0..1 + rng.below(60)).map(|_| rng.below(30000) as u32).collect();
        w.add(&doc).expect("add");
    }
    w.finish().expect("finish");
}

#[test]
fn mutated_megatron_indexes_are_refused_or_consistent() {
    let dir = scratch_dir("fuzz-idx");
    let prefix = dir.join("docs");
    dataset(&prefix);
    let idx = prefix.with_extension("idx");
    let data = std::fs::read(&idx).expect("idx");
    let bin_len = std::fs::metadata(prefix.with_extension("bin")).expect("bin").len();
    let mut rng = Rng(19);
    let (tries, mut refused, mut accepted) = (3000, 0, 0);
    for i in 0..tries {
        let m = mutate(&mut rng, &data, data.len());
        std::fs::write(&idx, &m).expect("write");
        match no_panic("IndexedDataset::open", i, || hashi_data::IndexedDataset::open(&prefix)) {
            Ok(d) => {
                let mut tokens = 0u64;
                for s in 0..d.len() {
                    let seq =
                        no_panic("IndexedDataset::get", i, || d.get(s)).expect("an accepted sequence reads");
                    assert_eq!(seq.len(), d.seq_len(s), "input {i}: sequence {s}");
                    tokens += seq.len() as u64;
                }
                assert_eq!(
                    tokens * 2,
                    bin_len,
                    "input {i}: accepted an index that does not describe the .bin"
                );
                accepted += 1;
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains("docs.idx") || msg.contains("docs.bin"), "input {i}: {msg}");
                refused += 1;
            }
        }
    }
    println!(
        "megatron .idx: {tries} mutated indexes; refused {refused}, accepted {accepted} (each consistent)"
    );
    assert!(refused > tries / 2, "most mutations of an index break it");
}

/// Mutations of `text` (a valid file) for `tries` rounds; `check(i, bytes)` judges each.
fn each_mutation(seed: u64, text: &[u8], tries: usize, mut check: impl FnMut(usize, &[u8])) {
    let mut rng = Rng(seed);
    for i in 0..tries {
        let m = mutate(&mut rng, text, text.len());
        check(i, &m);
    }
}

#[test]
fn mutated_configs_are_refused_naming_the_file_or_valid() {
    let dir = scratch_dir("fuzz-config");
    let path = dir.join("config.json");
    let text = std::fs::read(reference_dir().join("gqa/config.json")).expect("config");
    let (mut refused, mut accepted) = (0, 0);
    each_mutation(23, &text, 3000, |i, m| {
        std::fs::write(&path, m).expect("write");
        let r = no_panic("config", i, || {
            hashi_model::LlamaConfig::from_file(&path).and_then(|c| c.to_config(&path))
        });
        match r {
            Ok(c) => {
                assert!(c.vocab_size > 0 && c.hidden_size > 0 && c.num_layers > 0, "input {i}: {c:?}");
                assert!(hashi_model::param_count(&c).is_some(), "input {i}: sizes overflow yet accepted");
                accepted += 1;
            }
            Err(e) => {
                assert!(e.to_string().contains("config.json"), "input {i}: {e}");
                refused += 1;
            }
        }
    });
    println!("config.json: 3000 mutated files; refused {refused}, accepted {accepted} (each a valid config)");
    assert!(refused > 1000);
}

/// An accepted tokenizer.json encodes the same with hashi's fast path as with the `tokenizers` library.
#[test]
fn mutated_tokenizers_are_refused_naming_the_file_or_agree_with_the_library() {
    let dir = scratch_dir("fuzz-tokenizer");
    let path = dir.join("tokenizer.json");
    let text = std::fs::read(repo_root().join("examples/mini/base/model/tokenizer.json")).expect("tokenizer");
    // Mutations anywhere in a 300 kB file mostly hit the vocabulary; half of them go to the first 2 kB (the
    // normaliser, pre-tokenizer, post-processor and added tokens).
    let hot = 2048;
    let samples = ["東京都に住んでいる。", "the cat sat  on the mat\n", "<s> a</s>b 123"];
    let (mut rng, tries) = (Rng(29), 400);
    let (mut refused, mut accepted) = (0, 0);
    for i in 0..tries {
        let m = mutate(&mut rng, &text, if i % 2 == 0 { hot } else { text.len() });
        std::fs::write(&path, &m).expect("write");
        match no_panic("Tokenizer::from_file", i, || hashi_tokenizer::Tokenizer::from_file(&path)) {
            Ok(t) => {
                for s in samples {
                    let (fast, lib) =
                        no_panic("encode", i, || (t.encode(s, true), t.encode_with_library(s, true)));
                    match (fast, lib) {
                        (Ok(a), Ok(b)) => assert_eq!(a, b, "input {i}: {s:?}: fast path and library differ"),
                        (Err(e), _) | (_, Err(e)) => assert!(e.to_string().contains("tokenizer.json"), "{e}"),
                    }
                }
                accepted += 1;
            }
            Err(e) => {
                assert!(e.to_string().contains("tokenizer.json"), "input {i}: {e}");
                refused += 1;
            }
        }
    }
    println!(
        "tokenizer.json: {tries} mutated files; refused {refused}, accepted {accepted} (each encoding as the library does)"
    );
    assert!(refused > 0 && accepted > 0);
}

#[test]
fn mutated_jsonl_corpora_are_refused_naming_file_and_line_or_read() {
    let dir = scratch_dir("fuzz-jsonl");
    let path = dir.join("corpus.jsonl");
    let all =
        std::fs::read_to_string(repo_root().join("examples/demo/corpus/ja_books.jsonl")).expect("corpus");
    let text: String = all.lines().take(20).map(|l| format!("{l}\n")).collect();
    let spec: hashi_tokenizer::input::InputSpec = format!("ja={}", path.display()).parse().expect("spec");
    let (mut refused, mut accepted) = (0, 0);
    each_mutation(31, text.as_bytes(), 2000, |i, m| {
        std::fs::write(&path, m).expect("write");
        match no_panic("read_inputs", i, || hashi_tokenizer::input::read_inputs(std::slice::from_ref(&spec)))
        {
            Ok(_) => accepted += 1,
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains("corpus.jsonl"), "input {i}: {msg}");
                refused += 1;
            }
        }
    });
    println!("JSONL corpus: 2000 mutated files; refused {refused}, accepted {accepted}");
    assert!(refused > 0);
}

/// Curricula (Lua return values read into the plan type): a mutated script is refused with its file, or read
/// into a plan that validates.
#[test]
fn mutated_curriculum_scripts_are_refused_naming_the_file_or_valid() {
    let dir = scratch_dir("fuzz-lua");
    let path = dir.join("curriculum.lua");
    let text =
        std::fs::read(repo_root().join("tests/fixtures/refusals/fx/curriculum.lua")).expect("curriculum");
    let opts = hashi_script::ScriptOptions::default();
    let (mut refused, mut accepted) = (0, 0);
    each_mutation(37, &text, 1500, |i, m| {
        std::fs::write(&path, m).expect("write");
        let r = no_panic("curriculum", i, || {
            hashi_script::Script::load(&path, &opts)
                .map_err(|e| e.to_string())
                .and_then(|s| s.exports::<hashi_data::PlanDecl>().map_err(|e| e.to_string()))
                .and_then(|p| p.validate().map(|_| p).map_err(|e| format!("{}: {e}", path.display())))
        });
        match r {
            Ok(_) => accepted += 1,
            Err(e) => {
                assert!(e.contains("curriculum.lua"), "input {i}: {e}");
                refused += 1;
            }
        }
    });
    println!("curriculum Lua: 1500 mutated scripts; refused {refused}, accepted {accepted}");
    assert!(refused > 0);
}

/// Evaluation data (`hashi eval` on a mutated `validation.jsonl` of JNLI, the mini base model): every input ends
/// with a score or an error naming the file, never a panic.
#[test]
fn mutated_eval_data_is_refused_naming_the_file_or_scored() {
    let data = scratch_dir("fuzz-eval").join("eval");
    let task = data.join("jnli");
    std::fs::create_dir_all(&task).expect("dir");
    let src = repo_root().join("examples/mini/eval/jnli");
    std::fs::copy(src.join("train.jsonl"), task.join("train.jsonl")).expect("train");
    let text: String = std::fs::read_to_string(src.join("validation.jsonl"))
        .expect("validation")
        .lines()
        .take(3)
        .map(|l| format!("{l}\n"))
        .collect();
    let model = repo_root().join("examples/mini/base/model").display().to_string();
    let (d, out) = (data.display().to_string(), data.join("out.json").display().to_string());
    let (mut refused, mut scored) = (0, 0);
    each_mutation(41, text.as_bytes(), 120, |i, m| {
        std::fs::write(task.join("validation.jsonl"), m).expect("write");
        let o = hashi(&[
            "-q",
            "eval",
            "--model",
            &model,
            "--data",
            &d,
            "--tasks",
            "jnli-1.3-0.2",
            "--shots",
            "1",
            "--limit",
            "3",
            "--out",
            &out,
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked"), "input {i}: {err}");
        match o.status.code() {
            Some(0) => scored += 1,
            Some(1) => {
                assert!(err.contains("validation.jsonl"), "input {i}: {err}");
                refused += 1;
            }
            c => panic!("input {i}: exit {c:?}: {err}"),
        }
    });
    println!("eval data: 120 mutated validation.jsonl files; refused {refused}, scored {scored}");
    assert!(refused > 0);
}
