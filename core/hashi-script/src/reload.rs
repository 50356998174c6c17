//! Hot reload in the manner of wezterm's config: watch the script and every module it required (debounced), and
//! at the host's next safe point load the edit into a *fresh* state, run a self-check, then swap and bump the
//! generation. A broken edit keeps the last good script and reports `path:line: message`.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_mini::{DebounceEventResult, Debouncer, new_debouncer};

use crate::error::{Result, ScriptError};
use crate::host::{Script, ScriptOptions};

/// How a script is (re)built: load + host functions + self-check.
pub type Loader = Box<dyn Fn(&Path, &ScriptOptions) -> Result<Script> + Send>;

/// What a call to [`HotScript::poll`] found.
#[derive(Debug)]
pub enum Reload {
    /// No change on disk.
    Unchanged,
    /// A new version is in force.
    Swapped {
        /// Its generation number.
        generation: u64,
    },
    /// An edit failed to load or to pass the self-check; the last good version stays.
    Rejected(ScriptError),
}

/// A script that follows its file.
pub struct HotScript {
    current: Script,
    generation: u64,
    path: PathBuf,
    opts: ScriptOptions,
    loader: Loader,
    events: Option<(Debouncer<notify::RecommendedWatcher>, Receiver<DebounceEventResult>)>,
}

impl HotScript {
    /// Loads `path` through `loader` (which should run the self-check) and, unless `frozen`, starts watching.
    pub fn new(path: &Path, opts: ScriptOptions, loader: Loader, frozen: bool) -> Result<Self> {
        let current = loader(path, &opts)?;
        let mut me = Self { current, generation: 0, path: path.into(), opts, loader, events: None };
        if !frozen {
            me.watch()?;
        }
        Ok(me)
    }

    /// The version in force.
    pub fn script(&self) -> &Script {
        &self.current
    }

    /// Generation of the version in force (0 = as first loaded).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Call at a safe point (e.g. between training steps): applies a pending edit, if any.
    pub fn poll(&mut self) -> Reload {
        let Some((_, rx)) = &self.events else { return Reload::Unchanged };
        let files = self.current.files();
        let mut changed = false;
        while let Ok(batch) = rx.try_recv() {
            if let Ok(events) = batch {
                changed |= events.iter().any(|e| files.iter().any(|f| same_file(&e.path, f)));
            }
        }
        if !changed {
            return Reload::Unchanged;
        }
        match (self.loader)(&self.path, &self.opts) {
            Ok(script) => {
                self.current = script;
                self.generation += 1;
                if let Err(e) = self.watch() {
                    tracing::warn!("{e}");
                }
                tracing::info!(script = %self.path.display(), generation = self.generation, "script reloaded");
                Reload::Swapped { generation: self.generation }
            }
            Err(e) => {
                tracing::error!("{e} (keeping generation {})", self.generation);
                Reload::Rejected(e)
            }
        }
    }

    fn watch(&mut self) -> Result<()> {
        let (tx, rx) = channel();
        let mut debouncer = new_debouncer(Duration::from_millis(150), tx).map_err(|e| ScriptError::File {
            path: self.path.clone(),
            message: format!("cannot watch: {e}"),
        })?;
        let mut dirs: Vec<PathBuf> =
            self.current.files().iter().map(|f| f.parent().unwrap_or(Path::new(".")).to_path_buf()).collect();
        dirs.sort();
        dirs.dedup();
        for d in dirs {
            let d = if d.as_os_str().is_empty() { PathBuf::from(".") } else { d };
            debouncer
                .watcher()
                .watch(&d, RecursiveMode::NonRecursive)
                .map_err(|e| ScriptError::File { path: d.clone(), message: format!("cannot watch: {e}") })?;
        }
        self.events = Some((debouncer, rx));
        Ok(())
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.file_name() == b.file_name(),
    }
}
