//! `data prepare`: tokenize declared corpora into one Megatron indexed dataset per corpus, with a manifest.
//!
//! Files are read line by line and tokenized in chunks of documents in parallel (rayon), so memory is bounded
//! by the chunk, not the corpus. Each document becomes one sequence: its tokens (no BOS) followed by EOS (the
//! tokenizer's `eos_token`, see [`Tokenizer::eos_token`]).
//! `.jsonl`/`.json` files hold one JSON object per line (text in `field`); other files one document per line.
//! Bad records (invalid UTF-8, bad JSON, a missing or non-string field) and files without any document stop
//! the run with `file:line` — or, with `skip_bad`, are counted per reason and listed in `NAME.rejects.jsonl`.
//! Empty texts are skipped and counted. A corpus whose inputs and tokenizer are unchanged since the manifest
//! was written is not redone.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use hashi_core::Reporter;
use hashi_tokenizer::Tokenizer;
use hashi_tokenizer::input::{Record, is_jsonl, parse_record};
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::indexed::{IndexedWriter, TokenDtype};

/// Manifest format version.
pub const MANIFEST_VERSION: u32 = 1;
const CHUNK_DOCS: usize = 2048;

/// A corpus as declared in Lua.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorpusDecl {
    /// Name (also the shard's file name).
    pub name: String,
    /// Language tag.
    pub lang: String,
    /// Quality tier (`high`, `medium`, `low`, ...).
    #[serde(default)]
    pub tier: Option<String>,
    /// Files or globs, relative to the declaration file.
    pub paths: Vec<String>,
    /// JSON field holding the text.
    #[serde(default = "default_field")]
    pub field: String,
}

fn default_field() -> String {
    "text".into()
}

/// An input file and its fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputFile {
    /// Path as resolved.
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
    /// FNV-1a 64 of the content, hex.
    pub hash: String,
}

/// One prepared corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// The declaration.
    pub corpus: CorpusDecl,
    /// Shard prefix (relative to the output directory).
    pub prefix: String,
    /// Documents (sequences) written.
    pub documents: u64,
    /// Tokens written, EOS included.
    pub tokens: u64,
    /// UTF-8 bytes of the documents' text.
    pub text_bytes: u64,
    /// Token storage type.
    pub dtype: TokenDtype,
    /// Input files.
    pub inputs: Vec<InputFile>,
    /// Rejected records per reason.
    pub rejected: BTreeMap<String, u64>,
}

/// `manifest.json` of a prepared directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub format_version: u32,
    /// The tokenizer used.
    pub tokenizer: PathBuf,
    /// FNV-1a 64 of its tokenizer.json, hex.
    pub tokenizer_hash: String,
    /// EOS id appended to every document.
    pub eos_id: u32,
    /// Entries of the tokenizer (every token id in the shards is below this); absent in older manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab_size: Option<u64>,
    /// Prepared corpora.
    pub corpora: Vec<ManifestEntry>,
}

impl Manifest {
    /// Reads `dir/manifest.json` and checks it against the shards it lists: the format version, unique corpus
    /// names, each prefix naming the corpus's own `.bin`/`.idx` pair, and each entry's documents, tokens and
    /// dtype equal to what the `.idx` holds (which [`crate::IndexedDataset::open`] checks against the `.bin`).
    /// A manifest that disagrees with its shards is refused, naming manifest.json and the corpus; a corpus whose
    /// `.idx` is not in `dir` (a manifest shipped without its shards, for an export) is not checked.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("manifest.json");
        if dir.is_file() {
            return Err(DataError::Input(format!(
                "{}: is a file; give the folder that `hashi data prepare` wrote",
                dir.display()
            )));
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| DataError::Io { path: path.clone(), source: e })?;
        let m: Manifest = serde_json::from_str(&text).map_err(|e| DataError::Format {
            path: path.clone(),
            message: format!("not a manifest written by `hashi data prepare`: {e}"),
        })?;
        let bad = |m: String| DataError::Format { path: path.clone(), message: m };
        if m.format_version != MANIFEST_VERSION {
            return Err(bad(format!(
                "format_version {} (this hashi reads {MANIFEST_VERSION}); prepare the shards again",
                m.format_version
            )));
        }
        let mut names = std::collections::HashSet::new();
        for e in &m.corpora {
            let name = &e.corpus.name;
            if !names.insert(name.as_str()) {
                return Err(bad(format!("corpus {name} is listed twice")));
            }
            if e.prefix != *name {
                return Err(bad(format!(
                    "corpus {name}: prefix {:?} is not the corpus's shard (its files are {name}.bin and {name}.idx)",
                    e.prefix
                )));
            }
            if !dir.join(format!("{}.idx", e.prefix)).exists() {
                // A manifest without its shards (copied for an export to a cluster that holds them): nothing to
                // check against here; reading the shards later fails naming the missing file.
                continue;
            }
            let ds = crate::IndexedDataset::open(&dir.join(&e.prefix))
                .map_err(|err| bad(format!("corpus {name}: {err}")))?;
            let disagree = |what: &str, manifest: String, shard: String| {
                bad(format!(
                    "corpus {name}: the manifest says {what} {manifest}, but {} holds {shard}",
                    dir.join(format!("{}.idx", e.prefix)).display()
                ))
            };
            if ds.dtype() != e.dtype {
                return Err(disagree("dtype", format!("{:?}", e.dtype), format!("{:?}", ds.dtype())));
            }
            if ds.len() as u64 != e.documents {
                return Err(disagree("documents", e.documents.to_string(), ds.len().to_string()));
            }
            if ds.tokens() != e.tokens {
                return Err(disagree("tokens", e.tokens.to_string(), ds.tokens().to_string()));
            }
        }
        if let Some(v) = m.vocab_size
            && u64::from(m.eos_id) >= v
        {
            return Err(bad(format!("eos_id {} is outside the vocabulary of {v}", m.eos_id)));
        }
        Ok(m)
    }
}

/// Options of [`prepare`].
#[derive(Debug, Clone, Default)]
pub struct PrepareOptions {
    /// Skip bad records instead of failing.
    pub skip_bad: bool,
    /// Redo every corpus even if up to date.
    pub force: bool,
}

fn fnv1a_file(path: &Path) -> Result<(u64, String)> {
    let mut f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut h = hashi_core::Fnv1a::default();
    let mut buf = vec![0u8; 1 << 20];
    let mut n_total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            break;
        }
        n_total += n as u64;
        h.update(&buf[..n]);
    }
    Ok((n_total, format!("{:016x}", h.finish())))
}

fn resolve(decl: &CorpusDecl, base: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in &decl.paths {
        let full = base.join(p);
        let pattern = full.to_string_lossy().into_owned();
        if pattern.contains(['*', '?', '[']) {
            let found: Vec<PathBuf> = glob::glob(&pattern)
                .map_err(|e| DataError::Input(format!("corpus {}: bad glob {p:?}: {e}", decl.name)))?
                .filter_map(std::result::Result::ok)
                .filter(|f| f.is_file())
                .collect();
            if found.is_empty() {
                return Err(DataError::Input(format!("corpus {}: {pattern} matches no file", decl.name)));
            }
            files.extend(found);
        } else if full.is_file() {
            files.push(full);
        } else if full.is_dir() {
            return Err(DataError::Input(format!(
                "corpus {}: {} is a directory, not a file (list its files, or a glob such as {}/*.jsonl)",
                decl.name,
                full.display(),
                p.trim_end_matches('/')
            )));
        } else {
            return Err(DataError::Input(format!("corpus {}: {} does not exist", decl.name, full.display())));
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// Checks corpus declarations: at least one; names `[A-Za-z0-9_-]+` (they become file names) and unique;
/// a language tag of the same characters; at least one path; a JSON field name.
pub fn check_decls(decls: &[CorpusDecl]) -> Result<()> {
    if decls.is_empty() {
        return Err(DataError::Input("no corpus declared".into()));
    }
    let tag_ok =
        |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let mut names = std::collections::HashSet::new();
    for d in decls {
        if !tag_ok(&d.name) {
            return Err(DataError::Input(format!(
                "corpus name {:?}: use [A-Za-z0-9_-]+ (the name becomes the shard's file name)",
                d.name
            )));
        }
        if !names.insert(&d.name) {
            return Err(DataError::Input(format!("corpus {} is declared twice", d.name)));
        }
        if !tag_ok(&d.lang) {
            return Err(DataError::Input(format!(
                "corpus {}: lang {:?}: use [A-Za-z0-9_-]+",
                d.name, d.lang
            )));
        }
        if d.paths.is_empty() {
            return Err(DataError::Input(format!("corpus {}: paths is empty", d.name)));
        }
        if d.field.is_empty() {
            return Err(DataError::Input(format!("corpus {}: field is empty", d.name)));
        }
    }
    Ok(())
}

/// Prepares every declared corpus into `out` (relative paths of `decls` resolve against `base`).
///
/// `out` must be missing, empty, or a folder this function wrote before (with its `manifest.json`): there,
/// corpora whose inputs and tokenizer are unchanged are kept and changed ones replaced. Any other non-empty
/// folder is refused unless `opts.force`.
pub fn prepare(
    decls: &[CorpusDecl],
    base: &Path,
    tokenizer_path: &Path,
    out: &Path,
    opts: &PrepareOptions,
    reporter: &dyn Reporter,
) -> Result<Manifest> {
    check_decls(decls)?;
    if out.exists() && !out.is_dir() {
        return Err(DataError::Input(format!("--out {}: exists and is not a directory", out.display())));
    }
    let manifest_path = out.join("manifest.json");
    if out.is_dir() {
        let nonempty = std::fs::read_dir(out).map_err(|e| DataError::io(out, e))?.next().is_some();
        if nonempty && !manifest_path.is_file() && !opts.force {
            return Err(DataError::Input(format!(
                "--out {}: already exists, is not empty and holds no manifest.json of earlier shards; its files \
                 would be overwritten (pass --force to write into it, or choose another folder)",
                out.display()
            )));
        }
        if manifest_path.is_file() {
            tracing::warn!(
                "{}: already holds prepared shards; corpora whose inputs and tokenizer are unchanged are kept, \
                 the others replaced{}",
                out.display(),
                if opts.force { " (--force: every corpus is redone)" } else { "" }
            );
        }
    }
    let tok = Tokenizer::from_file(tokenizer_path)?;
    let tok_json =
        if tokenizer_path.is_dir() { tokenizer_path.join("tokenizer.json") } else { tokenizer_path.into() };
    let (_, tokenizer_hash) = fnv1a_file(&tok_json)?;
    let (_, eos_id) = tok.eos_token()?.ok_or_else(|| {
        DataError::Input(format!(
            "{}: no end-of-sequence token to end documents with (no eos_token in tokenizer_config.json, no </s>)",
            tok_json.display()
        ))
    })?;
    let dtype = TokenDtype::for_vocab(tok.vocab_size());
    std::fs::create_dir_all(out).map_err(|e| DataError::io(out, e))?;
    let previous: Option<Manifest> = std::fs::read_to_string(&manifest_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .filter(|m: &Manifest| {
            m.format_version == MANIFEST_VERSION && m.tokenizer_hash == tokenizer_hash && m.eos_id == eos_id
        });
    let mut entries = Vec::new();
    for decl in decls {
        let files = resolve(decl, base)?;
        let inputs = files
            .iter()
            .map(|f| fnv1a_file(f).map(|(bytes, hash)| InputFile { path: f.clone(), bytes, hash }))
            .collect::<Result<Vec<_>>>()?;
        let prefix = out.join(&decl.name);
        let reusable = previous
            .as_ref()
            .and_then(|m| m.corpora.iter().find(|e| &e.corpus == decl && e.inputs == inputs));
        if let Some(e) = reusable.filter(|_| !opts.force)
            && prefix.with_extension("bin").is_file()
            && prefix.with_extension("idx").is_file()
        {
            tracing::info!(corpus = %decl.name, "up to date, skipped");
            entries.push(e.clone());
            continue;
        }
        entries.push(prepare_one(decl, &inputs, &tok, eos_id, dtype, &prefix, opts, reporter)?);
    }
    let manifest = Manifest {
        format_version: MANIFEST_VERSION,
        tokenizer: tok_json,
        tokenizer_hash,
        eos_id,
        vocab_size: Some(tok.vocab_size() as u64),
        corpora: entries,
    };
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| DataError::Input(e.to_string()))?;
    hashi_core::write_atomic(&manifest_path, (text + "\n").as_bytes())
        .map_err(|e| DataError::io(&manifest_path, e))?;
    Ok(manifest)
}

#[allow(clippy::too_many_arguments)]
fn prepare_one(
    decl: &CorpusDecl,
    inputs: &[InputFile],
    tok: &Tokenizer,
    eos_id: u32,
    dtype: TokenDtype,
    prefix: &Path,
    opts: &PrepareOptions,
    reporter: &dyn Reporter,
) -> Result<ManifestEntry> {
    let total: u64 = inputs.iter().map(|i| i.bytes).sum();
    reporter.start(&decl.name, Some(total), "B");
    let mut writer = IndexedWriter::create(prefix, dtype)?;
    let rejects_path = prefix.with_extension("rejects.jsonl");
    let mut rejects: Option<std::io::BufWriter<std::fs::File>> = None;
    let mut rejected: BTreeMap<String, u64> = BTreeMap::new();
    let mut text_bytes = 0u64;
    let flush = |chunk: &mut Vec<String>, writer: &mut IndexedWriter, text_bytes: &mut u64| -> Result<()> {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let encoded = tok.encode_batch(&refs, false)?;
        for (doc, mut ids) in chunk.iter().zip(encoded) {
            ids.push(eos_id);
            writer.add(&ids)?;
            *text_bytes += doc.len() as u64;
        }
        chunk.clear();
        Ok(())
    };
    for input in inputs {
        let path = &input.path;
        let jsonl = is_jsonl(path);
        let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let (mut buf, mut line, mut docs_in_file) = (Vec::new(), 0usize, 0usize);
        let mut chunk: Vec<String> = Vec::with_capacity(CHUNK_DOCS);
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf).map_err(|e| DataError::io(path, e))?;
            if n == 0 {
                break;
            }
            line += 1;
            reporter.advance(n as u64);
            // A UTF-8 byte-order mark starts some files (Windows editors); it is not text.
            let raw = if line == 1 { hashi_tokenizer::input::strip_bom(&buf) } else { &buf[..] };
            match parse_record(raw, jsonl, &decl.field) {
                Record::Doc(d) => {
                    chunk.push(d);
                    docs_in_file += 1;
                    if chunk.len() == CHUNK_DOCS {
                        flush(&mut chunk, &mut writer, &mut text_bytes)?;
                    }
                }
                Record::Empty => *rejected.entry("empty_text".into()).or_insert(0) += 1,
                Record::Bad(reason, message) => {
                    if !opts.skip_bad {
                        let _ = std::fs::remove_file(prefix.with_extension("bin.tmp"));
                        return Err(DataError::Record { path: path.clone(), line, reason: message });
                    }
                    *rejected.entry(reason.into()).or_insert(0) += 1;
                    if rejects.is_none() {
                        let f = std::fs::File::create(&rejects_path)
                            .map_err(|e| DataError::io(&rejects_path, e))?;
                        rejects = Some(std::io::BufWriter::new(f));
                    }
                    if let Some(w) = rejects.as_mut() {
                        let rec = serde_json::json!({"file": path, "line": line, "reason": reason, "message": message});
                        writeln!(w, "{rec}").map_err(|e| DataError::io(&rejects_path, e))?;
                    }
                }
            }
        }
        flush(&mut chunk, &mut writer, &mut text_bytes)?;
        if docs_in_file == 0 {
            if !opts.skip_bad {
                let _ = std::fs::remove_file(prefix.with_extension("bin.tmp"));
                return Err(DataError::Record {
                    path: path.clone(),
                    line: line.max(1),
                    reason: "no documents in this file".into(),
                });
            }
            *rejected.entry("empty_file".into()).or_insert(0) += 1;
        }
    }
    if let Some(mut w) = rejects {
        w.flush().map_err(|e| DataError::io(&rejects_path, e))?;
    }
    reporter.finish();
    let (documents, tokens) = (writer.documents() as u64, writer.tokens());
    if documents == 0 {
        return Err(DataError::Input(format!("corpus {}: no documents at all", decl.name)));
    }
    writer.finish()?;
    Ok(ManifestEntry {
        corpus: decl.clone(),
        prefix: decl.name.clone(),
        documents,
        tokens,
        text_bytes,
        dtype,
        inputs: inputs.to_vec(),
        rejected,
    })
}
