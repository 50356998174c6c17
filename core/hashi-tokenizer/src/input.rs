//! Language-tagged text inputs: `LANG=PATH` or `LANG:FIELD=PATH`, where PATH may be a glob.
//!
//! `.jsonl`/`.json` files hold one JSON object per line and the text is read from FIELD (default `text`);
//! any other file is plain text with one document per line (SentencePiece's input format; blank lines skipped). Errors name the file and line: invalid UTF-8, bad JSON,
//! a missing or non-string field, a pattern that matches nothing, an input without any text.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::error::{Result, TokenizerError};

/// One `LANG[:FIELD]=PATTERN` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    /// Language tag (`ja`, `en`, ...).
    pub lang: String,
    /// JSON field holding the text.
    pub field: String,
    /// Path or glob pattern.
    pub pattern: String,
}

impl std::str::FromStr for InputSpec {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (tag, pattern) =
            s.split_once('=').ok_or_else(|| format!("{s:?}: expected LANG=PATH or LANG:FIELD=PATH"))?;
        let (lang, field) = tag.split_once(':').unwrap_or((tag, "text"));
        let ok =
            |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok(lang) || !ok(field) || pattern.is_empty() {
            return Err(format!("{s:?}: expected LANG=PATH or LANG:FIELD=PATH (tags are [A-Za-z0-9_-]+)"));
        }
        Ok(Self { lang: lang.into(), field: field.into(), pattern: pattern.into() })
    }
}

/// The documents of one language.
#[derive(Debug, Clone, Default)]
pub struct LangTexts {
    /// Language tag.
    pub lang: String,
    /// Documents in file order.
    pub docs: Vec<String>,
    /// Total UTF-8 bytes of `docs`.
    pub bytes: u64,
    /// Files read.
    pub files: Vec<PathBuf>,
}

impl InputSpec {
    /// The files the pattern matches, sorted.
    pub fn files(&self) -> Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = if self.pattern.contains(['*', '?', '[']) {
            glob::glob(&self.pattern)
                .map_err(|e| TokenizerError::Input(format!("{}: bad glob pattern: {e}", self.pattern)))?
                .filter_map(std::result::Result::ok)
                .filter(|p| p.is_file())
                .collect()
        } else {
            let p = PathBuf::from(&self.pattern);
            if p.is_dir() {
                return Err(TokenizerError::Input(format!(
                    "{}: is a directory, not a file (language {}); give a file or a glob such as {}/*.jsonl",
                    self.pattern,
                    self.lang,
                    self.pattern.trim_end_matches('/')
                )));
            }
            if !p.is_file() {
                return Err(TokenizerError::Input(format!(
                    "{}: no such file (language {})",
                    self.pattern, self.lang
                )));
            }
            vec![p]
        };
        files.sort();
        if files.is_empty() {
            return Err(TokenizerError::Input(format!(
                "{}: the pattern for language {} matches no file",
                self.pattern, self.lang
            )));
        }
        Ok(files)
    }
}

/// Reads every input, grouped by language in the order languages first appear.
pub fn read_inputs(specs: &[InputSpec]) -> Result<Vec<LangTexts>> {
    if specs.is_empty() {
        return Err(TokenizerError::Input("no input given (use LANG=PATH)".into()));
    }
    let mut out: Vec<LangTexts> = Vec::new();
    for spec in specs {
        let idx = match out.iter().position(|l| l.lang == spec.lang) {
            Some(i) => i,
            None => {
                out.push(LangTexts { lang: spec.lang.clone(), ..Default::default() });
                out.len() - 1
            }
        };
        for file in spec.files()? {
            read_file(&file, &spec.field, &mut out[idx].docs)?;
            out[idx].files.push(file);
        }
    }
    for l in &mut out {
        l.bytes = l.docs.iter().map(|d| d.len() as u64).sum();
        if l.bytes == 0 {
            let files: Vec<String> = l.files.iter().map(|f| f.display().to_string()).collect();
            return Err(TokenizerError::Input(format!(
                "language {}: no text in {} (empty corpus)",
                l.lang,
                files.join(", ")
            )));
        }
    }
    Ok(out)
}

/// One line of a corpus file, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A document's text.
    Doc(String),
    /// A blank line or an empty text (skipped).
    Empty,
    /// An unusable line: a short reason (`invalid_utf8`, `bad_json`, `missing_field`) and a message.
    Bad(&'static str, String),
}

/// `raw` without a leading UTF-8 byte-order mark (EF BB BF): for the first line of a file, where Windows
/// tools put one; it is not part of the first document's text.
pub fn strip_bom(raw: &[u8]) -> &[u8] {
    raw.strip_prefix(b"\xef\xbb\xbf").unwrap_or(raw)
}

/// Whether `path` is read as JSON lines (`.jsonl`, `.json`) rather than plain text.
pub fn is_jsonl(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("jsonl" | "json"))
}

/// Parses one raw line (with or without its line ending): a JSON object's `field`, or the plain text.
pub fn parse_record(raw: &[u8], jsonl: bool, field: &str) -> Record {
    let Ok(text) = std::str::from_utf8(raw) else {
        return Record::Bad("invalid_utf8", "invalid UTF-8".into());
    };
    let text = text.strip_suffix('\n').unwrap_or(text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.trim().is_empty() {
        return Record::Empty;
    }
    if !jsonl {
        return Record::Doc(text.to_string());
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Err(e) => Record::Bad("bad_json", format!("bad JSON: {e}")),
        Ok(v) => match v.get(field) {
            Some(serde_json::Value::String(s)) if s.is_empty() => Record::Empty,
            Some(serde_json::Value::String(s)) => Record::Doc(s.clone()),
            Some(_) => Record::Bad("missing_field", format!("field {field:?} is not a string")),
            None => Record::Bad("missing_field", format!("no field {field:?}")),
        },
    }
}

/// Appends the documents of one file; the first bad line is an error naming the file and line.
pub fn read_file(path: &Path, field: &str, docs: &mut Vec<String>) -> Result<()> {
    let jsonl = is_jsonl(path);
    let file = std::fs::File::open(path).map_err(|e| TokenizerError::io(path, e))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let (mut buf, mut line) = (Vec::new(), 0);
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(|e| TokenizerError::io(path, e))? == 0 {
            return Ok(());
        }
        line += 1;
        let raw = if line == 1 { strip_bom(&buf) } else { &buf[..] };
        match parse_record(raw, jsonl, field) {
            Record::Doc(d) => docs.push(d),
            Record::Empty => {}
            Record::Bad(_, message) => {
                return Err(TokenizerError::Record { path: path.into(), line, message });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        let s: InputSpec = "ja=data/*.jsonl".parse().expect("valid");
        assert_eq!((s.lang.as_str(), s.field.as_str(), s.pattern.as_str()), ("ja", "text", "data/*.jsonl"));
        let s: InputSpec = "en:sentence=x.jsonl".parse().expect("valid");
        assert_eq!(s.field, "sentence");
        assert!("nolang".parse::<InputSpec>().is_err());
        assert!("=x".parse::<InputSpec>().is_err());
        assert!("j a=x".parse::<InputSpec>().is_err());
    }

    #[test]
    fn reports_file_and_line() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("c.jsonl");
        std::fs::write(&p, b"{\"text\": \"ok\"}\n{\"text\": \"\xff\"}\n").expect("write");
        let e = read_file(&p, "text", &mut vec![]).expect_err("bad utf-8");
        assert!(e.to_string().ends_with("c.jsonl:2: invalid UTF-8"), "{e}");
        std::fs::write(&p, "{\"text\": \"ok\"}\n\n{\"body\": 1}\n").expect("write");
        let e = read_file(&p, "text", &mut vec![]).expect_err("missing field");
        assert!(e.to_string().ends_with("c.jsonl:3: no field \"text\""), "{e}");
        let t = dir.path().join("p.txt");
        std::fs::write(&t, b"line one\nline \xfe two").expect("write");
        let e = read_file(&t, "text", &mut vec![]).expect_err("bad utf-8");
        assert!(e.to_string().ends_with("p.txt:2: invalid UTF-8"), "{e}");
    }
}
