//! The host side of hashi's plugin ABI (`hashi-plugin-api`): finds plugin libraries, loads them with
//! `libloading`, checks the header (magic, ABI version, target) before calling anything else, and wraps a
//! plugin's backend as a [`hashi_core::Backend`] and its exporter as a function. Loaded libraries stay loaded
//! for the life of the process (a backend's code must outlive every handle).
//!
//! In the `hashi` binary every library is first loaded by a child `hashi` (the probe, [`enable_probe`]): a
//! library whose entry point or constructors panic, abort, segfault, hang or exit is refused with a message
//! naming it, and discovery lists it as refused beside the good plugins; and a backend runs in a worker `hashi`
//! ([`remote`]): a crash inside `create` or a step ends the worker, and the call fails with an error naming the
//! plugin. Library users and tests that never call [`enable_probe`] load and call plugins in-process.

#![allow(unsafe_code)] // Loading libraries and calling through the C ABI; each block says why it is sound.

mod backend;
mod error;
pub mod remote;

use std::path::{Path, PathBuf};

use hashi_plugin_api::{
    ABI_MAJOR, ABI_MINOR, BackendVTable, CANARY, ENTRY_SYMBOL, ExportVTable, Header, MAGIC, StrRef,
};

pub use backend::PluginBackend;
pub use error::PluginError;

/// What `hashi plugins list` shows of a plugin.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginInfo {
    /// Name (what experiments and `--backend` use).
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// One line.
    pub description: String,
    /// `major.minor` of the ABI it was built for.
    pub abi: String,
    /// `rustc --version; target` of its build.
    pub canary: String,
    /// Whether it was built by the same compiler as this host (informative: only C types cross).
    pub same_compiler: bool,
    /// "backend", "export".
    pub capabilities: Vec<String>,
    /// Export targets, when it exports.
    pub export_targets: Vec<String>,
    /// The library file.
    pub path: PathBuf,
}

/// A loaded, checked plugin.
#[derive(Debug, Clone)]
pub struct Plugin {
    info: PluginInfo,
    backend: Option<&'static BackendVTable>,
    export: Option<&'static ExportVTable>,
}

type Entry = extern "C" fn() -> *const Header;

/// Reads a string the plugin owns for the life of the library.
fn static_str(s: StrRef) -> Option<String> {
    if s.len == 0 {
        return Some(String::new());
    }
    if s.ptr.is_null() {
        return None;
    }
    // SAFETY: header strings point to `len` bytes of the plugin's static data (the library is never unloaded).
    let bytes = unsafe { std::slice::from_raw_parts(s.ptr, s.len) };
    std::str::from_utf8(bytes).ok().map(str::to_string)
}

fn target_of(canary: &str) -> &str {
    canary.rsplit("; ").next().unwrap_or(canary)
}

/// The environment variable that makes a `hashi` process a plugin probe (see [`probe_child_main`]).
pub const PROBE_ENV: &str = "HASHI_PLUGIN_PROBE";
const PROBE_OK: &str = "hashi-plugin-probe: ok";

static PROBE_EXE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Makes every later [`Plugin::load`] first load the library in a child process running `exe` (the `hashi`
/// binary, which calls [`probe_child_main`] first thing): a library that crashes, aborts, hangs or exits while
/// loading is refused, naming it, instead of taking this process down. Without this call (library users,
/// tests), libraries are loaded in-process only.
pub fn enable_probe(exe: PathBuf) {
    let _ = PROBE_EXE.set(exe);
}

/// In a probe child (the [`PROBE_ENV`] variable set): loads the library it names, prints the all-clear and
/// returns the exit code; `None` in any other process.
pub fn probe_child_main() -> Option<i32> {
    let path = std::env::var_os(PROBE_ENV)?;
    Some(match Plugin::load_here(Path::new(&path)) {
        Ok(_) => {
            println!("{PROBE_OK}");
            0
        }
        // A clean refusal: the parent's own load gives the same message.
        Err(_) => 3,
    })
}

/// Loads `path` in a child process first: `Ok` when the child loaded it or refused it cleanly.
fn probe(exe: &Path, path: &Path) -> Result<(), PluginError> {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let handshake = |message: String| PluginError::Refused { path: path.to_path_buf(), message };
    let mut child = Command::new(exe)
        .env(PROBE_ENV, path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| handshake(format!("cannot start the probe process {}: {e}", exe.display())))?;
    let t0 = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if t0.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(handshake(
                    "loading it did not finish within 30 s (probed in a child process)".into(),
                ));
            }
            Err(e) => return Err(handshake(format!("probe process: {e}"))),
        }
    };
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        use std::io::Read;
        let _ = o.read_to_string(&mut out);
    }
    match status.code() {
        Some(0) if out.lines().any(|l| l == PROBE_OK) => Ok(()),
        Some(3) => Ok(()),
        Some(c) => Err(handshake(format!(
            "loading it ended the process with exit code {c}{} (probed in a child process; not loaded)",
            if c == 101 { ", a panic" } else { "" }
        ))),
        None => {
            #[cfg(unix)]
            let how = {
                use std::os::unix::process::ExitStatusExt;
                match status.signal() {
                    Some(11) => "a segmentation fault (SIGSEGV)".to_string(),
                    Some(6) => "an abort (SIGABRT)".to_string(),
                    Some(7) => "a bus error (SIGBUS)".to_string(),
                    Some(sig) => format!("signal {sig}"),
                    None => "an unknown cause".to_string(),
                }
            };
            #[cfg(not(unix))]
            let how = "an unknown cause".to_string();
            Err(handshake(format!(
                "loading it crashed the process with {how} (probed in a child process; not loaded)"
            )))
        }
    }
}

impl Plugin {
    /// Loads the library at `path` and checks its header; when [`enable_probe`] was called, a child process
    /// loads it first, so that a library that crashes at load is refused.
    pub fn load(path: &Path) -> Result<Plugin, PluginError> {
        if let Some(exe) = PROBE_EXE.get() {
            probe(exe, path)?;
        }
        Self::load_here(path)
    }

    /// Loads the library at `path` in this process and checks its header.
    fn load_here(path: &Path) -> Result<Plugin, PluginError> {
        let refused = |message: String| PluginError::Refused { path: path.to_path_buf(), message };
        // SAFETY: loading runs the library's initialisers; a hashi plugin has none beyond Rust's own. This is the
        // trust a user gives a plugin by naming or installing it.
        let lib = unsafe { libloading::Library::new(path) }
            .map_err(|e| PluginError::Load { path: path.to_path_buf(), message: e.to_string() })?;
        let lib: &'static libloading::Library = Box::leak(Box::new(lib));
        let symbol = format!("{ENTRY_SYMBOL}\0");
        // SAFETY: the symbol's type is fixed by the ABI (`extern "C" fn() -> *const Header`).
        let entry: Entry = match unsafe { lib.get::<Entry>(symbol.as_bytes()) } {
            Ok(f) => *f,
            Err(_) => return Err(PluginError::NoEntry { path: path.to_path_buf() }),
        };
        let header = entry();
        if header.is_null() {
            return Err(refused("the entry point returned no header".into()));
        }
        // SAFETY: non-null; the fields up to `size` are the ABI's stable prefix, read before anything else.
        let h: &'static Header = unsafe { &*header };
        if h.magic != MAGIC {
            return Err(refused("bad magic: not a hashi plugin header".into()));
        }
        if h.abi_major != ABI_MAJOR {
            return Err(refused(format!(
                "built for plugin ABI {}.{}, this hashi speaks {ABI_MAJOR}.{ABI_MINOR}: rebuild the plugin against \
                 hashi-plugin-api {ABI_MAJOR}.x",
                h.abi_major, h.abi_minor
            )));
        }
        if (h.size as usize) < std::mem::size_of::<Header>() {
            return Err(refused(format!(
                "header of {} bytes, ABI {ABI_MAJOR}.0 has {}",
                h.size,
                size_of::<Header>()
            )));
        }
        let canary = static_str(h.canary).ok_or_else(|| refused("unreadable canary".into()))?;
        if target_of(&canary) != target_of(CANARY) {
            return Err(refused(format!(
                "built for target {}, this hashi runs on {}",
                target_of(&canary),
                target_of(CANARY)
            )));
        }
        let field =
            |s: StrRef, what: &str| static_str(s).ok_or_else(|| refused(format!("unreadable {what}")));
        let name = field(h.name, "name")?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(refused(format!("invalid plugin name {name:?} (letters, digits, - and _)")));
        }
        // SAFETY: non-null vtable pointers point to the plugin's statics.
        let backend = unsafe { h.backend.as_ref() };
        // SAFETY: as above.
        let export = unsafe { h.export.as_ref() };
        if backend.is_none() && export.is_none() {
            return Err(refused("the plugin offers no capability".into()));
        }
        if let Some(vt) = backend {
            check_backend(vt).map_err(refused)?;
        }
        let mut export_targets = vec![];
        if let Some(vt) = export {
            if (vt.size as usize) < size_of::<ExportVTable>() || vt.export.is_none() {
                return Err(refused("incomplete export vtable".into()));
            }
            let targets = field(vt.targets, "export targets")?;
            export_targets =
                targets.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
        }
        let capabilities = [("backend", backend.is_some()), ("export", export.is_some())]
            .iter()
            .filter(|(_, on)| *on)
            .map(|(c, _)| c.to_string())
            .collect();
        let info = PluginInfo {
            name,
            version: field(h.version, "version")?,
            description: field(h.description, "description")?,
            abi: format!("{}.{}", h.abi_major, h.abi_minor),
            same_compiler: canary == CANARY,
            canary,
            capabilities,
            export_targets,
            path: path.to_path_buf(),
        };
        if !info.same_compiler {
            tracing::debug!(plugin = %info.name, canary = %info.canary, "built by another compiler");
        }
        Ok(Plugin { info, backend, export })
    }

    /// Name, version, capabilities.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// A backend instance for the HF model in `model_dir` with JSON `options`.
    pub fn backend(&self, model_dir: &Path, options: &str) -> Result<PluginBackend, PluginError> {
        let vt = self.backend.ok_or_else(|| PluginError::Capability {
            plugin: self.info.name.clone(),
            what: "a backend".into(),
        })?;
        PluginBackend::create(self.info.name.clone(), vt, model_dir, options)
    }

    /// The plugin's backend on `model_dir`, in a worker process when [`enable_probe`] was called (the `hashi`
    /// binary), else in this process.
    pub fn isolated_backend(
        &self,
        model_dir: &Path,
        options: &str,
    ) -> Result<Box<dyn hashi_core::Backend>, PluginError> {
        if self.backend.is_none() {
            return Err(PluginError::Capability { plugin: self.info.name.clone(), what: "a backend".into() });
        }
        match PROBE_EXE.get() {
            Some(exe) => Ok(Box::new(remote::RemoteBackend::spawn(exe, self, model_dir, options)?)),
            None => Ok(Box::new(self.backend(model_dir, options)?)),
        }
    }

    /// Runs the exporter for `target`; returns its JSON summary.
    pub fn export(&self, target: &str, request: &str, out_dir: &Path) -> Result<String, PluginError> {
        let vt = self.export.ok_or_else(|| PluginError::Capability {
            plugin: self.info.name.clone(),
            what: "an exporter".into(),
        })?;
        backend::call_export(&self.info.name, vt, target, request, out_dir)
    }
}

fn check_backend(vt: &BackendVTable) -> Result<(), String> {
    if (vt.size as usize) < size_of::<BackendVTable>() {
        return Err(format!(
            "backend vtable of {} bytes, ABI {ABI_MAJOR}.0 has {}",
            vt.size,
            size_of::<BackendVTable>()
        ));
    }
    let entries = [
        ("create", vt.create.is_some()),
        ("destroy", vt.destroy.is_some()),
        ("describe", vt.describe.is_some()),
        ("accumulate", vt.accumulate.is_some()),
        ("apply", vt.apply.is_some()),
        ("discard", vt.discard.is_some()),
        ("logprobs", vt.logprobs.is_some()),
        ("save", vt.save.is_some()),
        ("load_state", vt.load_state.is_some()),
    ];
    let missing: Vec<&str> = entries.iter().filter(|(_, ok)| !ok).map(|(n, _)| *n).collect();
    if missing.is_empty() { Ok(()) } else { Err(format!("backend vtable lacks {}", missing.join(", "))) }
}

/// Where plugins are looked for: `$HASHI_PLUGIN_PATH` (a path list), then `plugins/` beside the `hashi`
/// executable, then the executable's own folder (where `cargo build` puts the workspace's plugins).
pub fn default_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("HASHI_PLUGIN_PATH")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    if let Some(exe_dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)) {
        dirs.push(exe_dir.join("plugins"));
        dirs.push(exe_dir);
    }
    dirs
}

/// Files in `dir` named like a plugin library: `libhashi_plugin_*.so` (`.dylib`, or `hashi_plugin_*.dll`).
pub fn library_files(dir: &Path) -> Vec<PathBuf> {
    let (prefix, suffix) = (std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(&format!("{prefix}hashi_plugin_")) && n.ends_with(suffix) && p.is_file()
            })
        })
        .collect();
    files.sort();
    files
}

/// The plugins a command can use: those named explicitly (any failure is an error) and those found in the
/// plugin folders (failures are kept and reported, the others stay usable).
#[derive(Debug, Default)]
pub struct Registry {
    plugins: Vec<Plugin>,
    refused: Vec<PluginError>,
}

impl Registry {
    /// Loads `explicit` libraries, then discovers the rest in `dirs` (first name wins).
    pub fn discover(explicit: &[PathBuf], dirs: &[PathBuf]) -> Result<Registry, PluginError> {
        let mut reg = Registry::default();
        for p in explicit {
            reg.add(Plugin::load(p)?);
        }
        for dir in dirs {
            for p in library_files(dir) {
                if reg.plugins.iter().any(|q| q.info.path == p) {
                    continue;
                }
                match Plugin::load(&p) {
                    Ok(plugin) => reg.add(plugin),
                    Err(e) => reg.refused.push(e),
                }
            }
        }
        Ok(reg)
    }

    fn add(&mut self, plugin: Plugin) {
        if let Some(first) = self.plugins.iter().find(|p| p.info.name == plugin.info.name) {
            tracing::debug!(name = %plugin.info.name, kept = %first.info.path.display(),
                ignored = %plugin.info.path.display(), "duplicate plugin name");
            return;
        }
        self.plugins.push(plugin);
    }

    /// The loaded plugins.
    pub fn plugins(&self) -> &[Plugin] {
        &self.plugins
    }

    /// Libraries that were found but refused.
    pub fn refused(&self) -> &[PluginError] {
        &self.refused
    }

    /// The plugin named `name` offering a backend.
    pub fn backend(&self, name: &str) -> Result<&Plugin, PluginError> {
        self.plugins
            .iter()
            .find(|p| p.info.name == name && p.backend.is_some())
            .ok_or_else(|| self.not_found(format!("backend {name:?}")))
    }

    /// The plugin exporting to `target`.
    pub fn exporter(&self, target: &str) -> Result<&Plugin, PluginError> {
        self.plugins
            .iter()
            .find(|p| p.info.export_targets.iter().any(|t| t == target))
            .ok_or_else(|| self.not_found(format!("export target {target:?}")))
    }

    fn not_found(&self, what: String) -> PluginError {
        let known: Vec<String> = self.plugins.iter().map(|p| p.info.name.clone()).collect();
        let refused: Vec<String> = self.refused.iter().map(|e| e.to_string()).collect();
        PluginError::NotFound { what, known, refused }
    }
}
