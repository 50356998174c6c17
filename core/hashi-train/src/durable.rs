//! Durable file operations for checkpoints: fsync of files and folders (a power loss, not only a kill, leaves
//! the previous checkpoint valid), copies that land whole or not at all, and deletion of a checkpoint folder
//! that withdraws its `DONE` marker before any of its files goes.
//!
//! The order follows torchtitan / nanotron checkpointing (write, sync, mark, rename, sync the parent); it does
//! not protect against a disk that lies about its caches.

use std::path::{Path, PathBuf};

/// `fsync` of a folder, so that the names created, renamed or removed in it are on disk.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// `fsync` of every file directly in `dir` (checkpoints are flat, except `scripts/`, also synced), then of
/// `dir` itself.
pub(crate) fn sync_tree(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let ty = e.file_type()?;
        if ty.is_dir() {
            sync_tree(&e.path())?;
        } else if ty.is_file() {
            std::fs::File::open(e.path())?.sync_all()?;
        }
    }
    sync_dir(dir)
}

/// Copies `from` to `to` through `to.tmp` + fsync + rename: `to` is the old file or the whole new one.
pub(crate) fn copy_atomic(from: &Path, to: &Path) -> std::io::Result<()> {
    let tmp = hashi_core::tmp_path(to);
    std::fs::copy(from, &tmp)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, to)
}

/// Removes a checkpoint folder so that no kill can leave it with `DONE` but without its files: `DONE` goes
/// first (synced), then the folder is renamed out of the `step_*` namespace, then deleted.
pub(crate) fn remove_checkpoint(dir: &Path) -> std::io::Result<()> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    let done = dir.join("DONE");
    if done.exists() {
        std::fs::remove_file(&done)?;
        sync_dir(dir)?;
    }
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let doomed = parent.join(format!(".{name}.deleting"));
    if doomed.exists() {
        std::fs::remove_dir_all(&doomed)?;
    }
    std::fs::rename(dir, &doomed)?;
    sync_dir(parent)?;
    std::fs::remove_dir_all(&doomed)
}

/// Leftovers of interrupted checkpoint writes and deletions (`.step_*.tmp`, `.step_*.deleting`) in `ckpt`.
pub(crate) fn leftovers(ckpt: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(ckpt) else { return vec![] };
    rd.filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(".step_") && (n.ends_with(".tmp") || n.ends_with(".deleting")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_withdraws_done_and_leaves_no_step_folder() {
        let t = tempfile::tempdir().expect("tmp");
        let d = t.path().join("step_00000005");
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join("model.safetensors"), b"x").expect("write");
        std::fs::write(d.join("DONE"), b"").expect("write");
        remove_checkpoint(&d).expect("remove");
        assert!(!d.exists());
        assert!(leftovers(t.path()).is_empty());
        assert_eq!(std::fs::read_dir(t.path()).expect("ls").count(), 0);
    }

    #[test]
    fn atomic_copy_replaces_whole() {
        let t = tempfile::tempdir().expect("tmp");
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        std::fs::write(&a, b"new").expect("write");
        std::fs::write(&b, b"old").expect("write");
        copy_atomic(&a, &b).expect("copy");
        assert_eq!(std::fs::read(&b).expect("read"), b"new");
        assert!(!hashi_core::tmp_path(&b).exists());
    }
}
