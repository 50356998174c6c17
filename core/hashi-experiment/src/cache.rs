//! The stage cache of a run: a key from the hashes of a stage's settings and inputs, and a marker file
//! (`RUN/stages/ID.json`) that says which key finished and records the stage's settings.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use hashi_core::Fnv1a;
use serde::{Deserialize, Serialize};

/// Builds a stage key: the stage's kind, its settings, the keys of the stages it reads, and the content of its
/// input files (FNV-1a over names and bytes, in order).
pub struct Key(Fnv1a);

impl Key {
    /// A key of the stage kind `kind`.
    pub fn new(kind: &str) -> Self {
        let mut h = Fnv1a::default();
        h.update(kind.as_bytes());
        Self(h)
    }

    fn field(&mut self, tag: &str, bytes: &[u8]) {
        self.0.update(tag.as_bytes());
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    /// A setting (anything serialisable, as JSON).
    pub fn value(mut self, name: &str, v: &impl Serialize) -> Result<Self> {
        self.field(name, serde_json::to_string(v)?.as_bytes());
        Ok(self)
    }

    /// The key of an upstream stage.
    pub fn upstream(mut self, key: &str) -> Self {
        self.field("upstream", key.as_bytes());
        self
    }

    /// The content of a file, or of every file under a directory (sorted by relative name).
    pub fn content(mut self, path: &Path) -> Result<Self> {
        let mut files = vec![];
        collect_files(path, path, &mut files)?;
        for (rel, full) in files {
            let bytes = std::fs::read(&full).with_context(|| format!("hashing {}", full.display()))?;
            self.field(&rel, &bytes);
        }
        Ok(self)
    }

    /// The key, as 16 hex digits.
    pub fn finish(self) -> String {
        format!("{:016x}", self.0.finish())
    }
}

fn collect_files(root: &Path, p: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    let meta = std::fs::metadata(p).with_context(|| format!("{}: input not found", p.display()))?;
    if meta.is_file() {
        let rel = p.strip_prefix(root).unwrap_or(p).to_string_lossy().into_owned();
        out.push((rel, p.to_path_buf()));
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(p)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for e in entries {
        collect_files(root, &e, out)?;
    }
    Ok(())
}

/// What `stages/ID.json` records.
#[derive(Debug, Serialize, Deserialize)]
pub struct Marker {
    /// The key of the stage's last start.
    pub key: String,
    /// Whether that start finished.
    pub finished: bool,
    /// The stage's settings (a record for people; the key decides).
    pub settings: serde_json::Value,
    /// Wall time of the last execution (0 while unfinished).
    pub seconds: f64,
}

impl Marker {
    /// Reads a marker (`None` when missing or unreadable: the stage runs).
    pub fn read(path: &Path) -> Option<Self> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    }

    /// Writes the marker atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        hashi_core::write_atomic(path, (serde_json::to_string_pretty(self)? + "\n").as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// How a stage should proceed given its marker.
#[derive(Debug, PartialEq, Eq)]
pub enum StageAction {
    /// Finished with the same key: reuse its outputs.
    Reuse,
    /// Started with the same key and not finished: continue (stages that can resume).
    Resume,
    /// Never run, changed inputs, or unfinished without resume: start afresh.
    Start,
}

/// How the stage with marker file `marker` proceeds for `key`.
pub fn action(marker: &Path, key: &str, resumable: bool) -> StageAction {
    match Marker::read(marker) {
        Some(m) if m.key == key && m.finished => StageAction::Reuse,
        Some(m) if m.key == key && resumable => StageAction::Resume,
        _ => StageAction::Start,
    }
}

/// Times a stage body and writes its marker: unfinished before, finished after.
pub fn execute(
    marker: &Path,
    key: &str,
    settings: serde_json::Value,
    body: impl FnOnce() -> Result<()>,
) -> Result<f64> {
    let mut m = Marker { key: key.into(), finished: false, settings, seconds: 0.0 };
    m.write(marker)?;
    let t = Instant::now();
    body()?;
    m.finished = true;
    m.seconds = t.elapsed().as_secs_f64();
    m.write(marker)?;
    Ok(m.seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_settings_upstream_and_content() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let f = dir.path().join("a.txt");
        std::fs::write(&f, "one")?;
        let k =
            |v: u32| -> Result<String> { Ok(Key::new("t").value("v", &v)?.content(dir.path())?.finish()) };
        let first = k(1)?;
        assert_eq!(first, k(1)?);
        assert_ne!(first, k(2)?);
        std::fs::write(&f, "two")?;
        assert_ne!(first, k(1)?);
        assert_ne!(Key::new("t").upstream("a").finish(), Key::new("t").upstream("b").finish());
        Ok(())
    }

    #[test]
    fn markers_decide_reuse() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let m = dir.path().join("stages/s.json");
        assert_eq!(action(&m, "k", true), StageAction::Start);
        let failed = execute(&m, "k", serde_json::Value::Null, || anyhow::bail!("boom"));
        assert!(failed.is_err());
        assert_eq!(action(&m, "k", true), StageAction::Resume);
        assert_eq!(action(&m, "k", false), StageAction::Start);
        execute(&m, "k", serde_json::Value::Null, || Ok(()))?;
        assert_eq!(action(&m, "k", false), StageAction::Reuse);
        assert_eq!(action(&m, "other", true), StageAction::Start);
        Ok(())
    }
}
