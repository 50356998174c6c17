//! Ownership of a run folder: one process at a time writes a training or run directory.
//!
//! The folder gets a `.hashi.lock` file holding an advisory lock (`flock`, through `File::try_lock`) and the
//! holder's pid and command line. The operating system drops the lock when the holder dies, whatever way it dies,
//! so a lock file left by a crash (kill -9, power loss) is recognised as stale and taken over; a live holder makes
//! a second process fail with a message naming its pid. Within one process the same folder can be locked again
//! (the CLI locks a training folder, then the trainer does): the guards share one lock.
//!
//! Not done: locks over network file systems without `flock` support behave as those systems do.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::error::{Result, TrainError};

/// The lock file's name inside a locked folder.
pub const LOCK_FILE: &str = ".hashi.lock";

#[derive(Debug)]
struct Held {
    _file: File,
    path: PathBuf,
}

impl Drop for Held {
    fn drop(&mut self) {
        // The lock goes with the file handle; the file itself is left (an unlocked lock file is stale).
        tracing::debug!(lock = %self.path.display(), "run folder released");
    }
}

/// A held lock on a folder; released when the last guard of this process for that folder is dropped.
#[derive(Debug, Clone)]
pub struct RunLock {
    _held: Arc<Held>,
    dir: PathBuf,
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Weak<Held>>> {
    static R: OnceLock<Mutex<HashMap<PathBuf, Weak<Held>>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

impl RunLock {
    /// Locks `dir` (created if missing) for this process, or fails naming the process that holds it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::State(format!("{}: {e}", dir.display())))?;
        let key = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        let mut reg = registry().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(held) = reg.get(&key).and_then(Weak::upgrade) {
            return Ok(Self { _held: held, dir: dir.into() });
        }
        let path = dir.join(LOCK_FILE);
        let io = |e: std::io::Error| TrainError::State(format!("{}: {e}", path.display()));
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                return Err(TrainError::Locked(format!(
                    "{} is in use by another hashi process ({}); wait for it to finish or stop it first \
                     (lock file {})",
                    dir.display(),
                    if holder.is_empty() { "pid unknown".into() } else { holder.replace('\n', ", ") },
                    path.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let before = std::fs::read_to_string(&path).unwrap_or_default();
        if !before.trim().is_empty() {
            tracing::info!(
                lock = %path.display(),
                "stale lock of a process that is no longer running ({}) taken over",
                before.trim().replace('\n', ", ")
            );
        }
        let cmd: Vec<String> = std::env::args().collect();
        file.set_len(0).map_err(io)?;
        file.write_all(format!("pid {}\ncommand {}\n", std::process::id(), cmd.join(" ")).as_bytes())
            .map_err(io)?;
        file.sync_all().map_err(io)?;
        let held = Arc::new(Held { _file: file, path });
        reg.insert(key, Arc::downgrade(&held));
        Ok(Self { _held: held, dir: dir.into() })
    }

    /// The locked folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reentrant_in_one_process_and_released_on_drop() {
        let t = tempfile::tempdir().expect("tmp");
        let a = RunLock::acquire(t.path()).expect("first");
        let b = RunLock::acquire(t.path()).expect("same process again");
        drop(a);
        drop(b);
        // Another open file description (as another process would have) can take it now.
        let f = File::open(t.path().join(LOCK_FILE)).expect("open");
        f.try_lock().expect("released");
    }

    #[test]
    fn a_held_lock_refuses_naming_the_holder() {
        let t = tempfile::tempdir().expect("tmp");
        let _held = RunLock::acquire(t.path()).expect("first");
        // Simulate another process: lock through a second file description and leave the registry out.
        let key = std::fs::canonicalize(t.path()).expect("canon");
        registry().lock().expect("registry").remove(&key);
        let e = RunLock::acquire(t.path()).expect_err("held elsewhere").to_string();
        assert!(
            e.contains("in use by another hashi process")
                && e.contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
    }
}
