//! Small helpers every crate needs: a stable hash for seeds and fingerprints, and atomic file writes.

use std::io::Write;
use std::path::{Path, PathBuf};

/// 64-bit FNV-1a, streaming: stable across runs, platforms and versions (unlike `std`'s hashers), for
/// per-tensor seeds, script and input fingerprints.
#[derive(Debug, Clone, Copy)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// The hash so far.
    pub fn finish(self) -> u64 {
        self.0
    }
}

/// FNV-1a of `bytes`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a::default();
    h.update(bytes);
    h.finish()
}

/// Writes `bytes` to `path.tmp`, syncs it, and renames it over `path`: readers see the old file or the new one,
/// never a partial one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = tmp_path(path);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// `path` with `.tmp` appended.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    s.into()
}

/// Peak resident memory of this process in MiB (`VmHWM` of `/proc/self/status`); `None` where the system does not
/// say (not Linux).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The CPU as the kernel reports it (`/proc/cpuinfo`): model name, family and model numbers, and the widest x86
/// vector extension, e.g. "AMD EPYC (family 25 model 17, avx512f)"; `None` where `/proc/cpuinfo` does not say.
pub fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let field = |key: &str| {
        info.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let name = field("model name")?;
    let flags = field("flags").unwrap_or_default();
    let mut about: Vec<String> = vec![];
    if let (Some(f), Some(m)) = (field("cpu family"), field("model")) {
        about.push(format!("family {f} model {m}"));
    }
    about.extend(
        ["avx512f", "avx2", "avx"]
            .into_iter()
            .find(|f| flags.split_whitespace().any(|x| x == *f))
            .map(String::from),
    );
    Some(if about.is_empty() { name } else { format!("{name} ({})", about.join(", ")) })
}

/// Refuses to write into `out` when it exists and is not an empty folder, unless `force`: a command that creates
/// an output folder never replaces someone's files without being asked.
///
/// # Errors
/// A message naming `--out` and the folder.
pub fn check_out_dir(out: &Path, force: bool) -> Result<(), String> {
    if out.exists() && !out.is_dir() {
        return Err(format!("--out {}: exists and is not a directory", out.display()));
    }
    if force || !out.is_dir() {
        return Ok(());
    }
    let mut entries =
        std::fs::read_dir(out).map_err(|e| format!("--out {}: cannot list it: {e}", out.display()))?;
    if entries.next().is_some() {
        return Err(format!(
            "--out {}: already exists and is not empty; its files would be overwritten (pass --force to write \
             into it, or choose another folder)",
            out.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_known_values_and_streaming() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        let mut h = Fnv1a::default();
        h.update(b"hel");
        h.update(b"lo");
        assert_eq!(h.finish(), fnv1a(b"hello"));
    }
}
