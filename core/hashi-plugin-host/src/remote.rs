//! Backend plugins out of process: in the `hashi` binary a backend plugin runs in a child `hashi` (the worker,
//! [`worker_child_main`]) that loads the library and serves the [`Backend`] calls over its stdin and stdout, one
//! JSON line per request and reply. A panic, abort, segmentation fault, stack overflow or `exit()` inside the
//! plugin ends the worker, not hashi: the call in flight fails with an error naming the plugin, the call and how
//! the worker ended, and the trainer stops at its last good checkpoint.
//!
//! The worker's stdout carries the replies, each on a line behind [`MARK`]; anything else the plugin prints there
//! is passed on to hashi's stderr. The cost per call is one JSON round trip of the token buffer (see
//! BENCHMARKS.md, out-of-process backends).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

use hashi_core::{Backend, BackendError, StepStats};
use serde::{Deserialize, Serialize};

use crate::{Plugin, PluginError};

/// The environment variable that makes a `hashi` process a backend worker for the library it names.
pub const WORKER_ENV: &str = "HASHI_PLUGIN_WORKER";
/// What precedes a reply on the worker's stdout.
const MARK: &str = "\u{1e}hashi-worker:";

#[derive(Debug, Serialize, Deserialize)]
enum Request {
    Create { model_dir: PathBuf, options: String },
    Accumulate(Vec<Vec<u32>>),
    Apply(f64),
    Discard,
    Logprobs(Vec<Vec<u32>>),
    Save(PathBuf),
    LoadOptimizer(PathBuf),
}

#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    Ok(serde_json::Value),
    /// `kind` keeps the trainer's distinction between a non-finite loss and other failures.
    Err {
        kind: String,
        message: String,
    },
}

fn reply_of<T: Serialize>(r: hashi_core::BackendResult<T>) -> Reply {
    match r {
        Ok(v) => Reply::Ok(serde_json::to_value(v).unwrap_or(serde_json::Value::Null)),
        Err(e) => {
            let (kind, message) = match e {
                BackendError::NonFinite(m) => ("non_finite", m),
                BackendError::State(m) => ("state", m),
                BackendError::Failed(m) => ("backend", m),
            };
            Reply::Err { kind: kind.into(), message }
        }
    }
}

/// In a worker process (the [`WORKER_ENV`] variable set): loads the library, serves requests until stdin
/// closes, and returns the exit code; `None` in any other process.
pub fn worker_child_main() -> Option<i32> {
    let path = std::env::var_os(WORKER_ENV)?;
    let plugin = match Plugin::load_here(Path::new(&path)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return Some(3);
        }
    };
    let mut backend: Option<crate::PluginBackend> = None;
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let reply = match serde_json::from_str::<Request>(&line) {
            Err(e) => {
                Reply::Err { kind: "backend".into(), message: format!("bad request to the worker: {e}") }
            }
            Ok(Request::Create { model_dir, options }) if backend.is_none() => {
                match plugin.backend(&model_dir, &options) {
                    Ok(b) => {
                        let name = b.name();
                        backend = Some(b);
                        Reply::Ok(serde_json::json!(name))
                    }
                    Err(e) => Reply::Err { kind: "backend".into(), message: e.to_string() },
                }
            }
            Ok(req) => match backend.as_mut() {
                None => Reply::Err { kind: "state".into(), message: "no backend created".into() },
                Some(b) => serve(b, req),
            },
        };
        let text = serde_json::to_string(&reply).unwrap_or_default();
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{MARK}{text}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    Some(0)
}

/// One call on the worker's backend.
fn serve(b: &mut crate::PluginBackend, req: Request) -> Reply {
    match req {
        Request::Accumulate(s) => reply_of(b.accumulate(&s)),
        Request::Apply(lr) => reply_of(b.apply(lr).map(|s| serde_json::json!([s.grad_norm, s.clipped]))),
        Request::Discard => {
            b.discard();
            Reply::Ok(serde_json::Value::Null)
        }
        Request::Logprobs(s) => reply_of(b.logprobs(&s)),
        Request::Save(dir) => reply_of(b.save(&dir)),
        Request::LoadOptimizer(dir) => reply_of(b.load_optimizer(&dir)),
        Request::Create { .. } => {
            Reply::Err { kind: "state".into(), message: "the worker's backend exists already".into() }
        }
    }
}

struct Io {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// Why the worker can no longer be used.
    dead: Option<String>,
}

/// A plugin backend running in a worker process (see the module docs).
pub struct RemoteBackend {
    plugin: String,
    name: String,
    io: Mutex<Io>,
}

fn ended(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return match sig {
                11 => "killed by a segmentation fault (SIGSEGV)".into(),
                6 => "killed by an abort (SIGABRT: a stack overflow or abort())".into(),
                7 => "killed by a bus error (SIGBUS)".into(),
                9 => "killed (SIGKILL)".into(),
                s => format!("killed by signal {s}"),
            };
        }
    }
    match status.code() {
        Some(0) => "it exited with code 0 in the middle of the call (the plugin called exit())".into(),
        Some(101) => "it panicked (exit code 101)".into(),
        Some(c) => format!("it exited with code {c}"),
        None => "it ended".into(),
    }
}

impl RemoteBackend {
    /// Starts a worker (`exe` is the `hashi` binary) for `plugin` and creates its backend on `model_dir`.
    pub fn spawn(exe: &Path, plugin: &Plugin, model_dir: &Path, options: &str) -> Result<Self, PluginError> {
        let name = plugin.info().name.clone();
        let fail = |message: String| PluginError::Call { plugin: name.clone(), call: "create", message };
        let mut child = Command::new(exe)
            .env(WORKER_ENV, &plugin.info().path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("cannot start the worker process {}: {e}", exe.display())))?;
        // The worker's stderr, passed on line by line under the plugin's name: the runtime's last words when the
        // plugin crashes it ("panicked at", "has overflowed its stack") are hashi's report of the plugin, not of
        // itself, and are worded as such.
        if let Some(err) = child.stderr.take() {
            let who = name.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    let line = line
                        .replace("panicked at", "panic at")
                        .replace("has overflowed its stack", "ran out of stack");
                    eprintln!("plugin {who} (worker process): {line}");
                }
            });
        }
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(fail("the worker process has no pipes".into()));
        };
        let io = Io { child, stdin: Some(stdin), stdout: BufReader::new(stdout), dead: None };
        let mut this = Self { plugin: name.clone(), name: String::new(), io: Mutex::new(io) };
        let created = this
            .call("create", &Request::Create { model_dir: model_dir.to_path_buf(), options: options.into() })
            .map_err(|e| fail(e.to_string()))?;
        this.name = created.as_str().unwrap_or(&name).to_string();
        Ok(this)
    }

    fn call(&self, call: &'static str, request: &Request) -> hashi_core::BackendResult<serde_json::Value> {
        let mut io = self.io.lock().unwrap_or_else(|e| e.into_inner());
        let err = |m: String| {
            BackendError::Failed(
                PluginError::Call { plugin: self.plugin.clone(), call, message: m }.to_string(),
            )
        };
        if let Some(why) = &io.dead {
            return Err(err(format!("its worker process is gone ({why})")));
        }
        let text = serde_json::to_string(request).map_err(|e| err(e.to_string()))?;
        let sent = match io.stdin.as_mut() {
            Some(w) => writeln!(w, "{text}").and_then(|()| w.flush()),
            None => Err(std::io::Error::other("closed")),
        };
        let mut line = String::new();
        loop {
            line.clear();
            let read = if sent.is_ok() { io.stdout.read_line(&mut line) } else { Ok(0) };
            match read {
                Ok(0) | Err(_) => {
                    // The worker ended during the call.
                    let how = match io.child.wait() {
                        Ok(status) => ended(status),
                        Err(e) => format!("its status is unknown ({e})"),
                    };
                    let why = format!("the plugin's worker process ended during the call: {how}");
                    io.dead = Some(how);
                    return Err(err(why));
                }
                Ok(_) => {
                    let Some(at) = line.find(MARK) else {
                        eprint!("{line}"); // the plugin's own output on stdout
                        continue;
                    };
                    if at > 0 {
                        eprintln!("{}", &line[..at]);
                    }
                    let reply: Reply = serde_json::from_str(line[at + MARK.len()..].trim_end())
                        .map_err(|e| err(format!("unreadable reply from the worker: {e}")))?;
                    return match reply {
                        Reply::Ok(v) => Ok(v),
                        Reply::Err { kind, message } => Err(match kind.as_str() {
                            "non_finite" => BackendError::NonFinite(message),
                            "state" => BackendError::State(message),
                            _ => BackendError::Failed(message),
                        }),
                    };
                }
            }
        }
    }

    fn parse<T: for<'de> Deserialize<'de>>(
        &self,
        call: &'static str,
        v: serde_json::Value,
    ) -> hashi_core::BackendResult<T> {
        serde_json::from_value(v).map_err(|e| {
            BackendError::Failed(
                PluginError::Call {
                    plugin: self.plugin.clone(),
                    call,
                    message: format!("unreadable reply: {e}"),
                }
                .to_string(),
            )
        })
    }
}

impl Drop for RemoteBackend {
    fn drop(&mut self) {
        let io = self.io.get_mut().unwrap_or_else(|e| e.into_inner());
        // Closing stdin ends the worker's loop: it destroys the backend and exits.
        drop(io.stdin.take());
        let _ = io.child.wait();
    }
}

impl Backend for RemoteBackend {
    fn name(&self) -> String {
        format!("{} (out of process)", self.name)
    }

    fn accumulate(&mut self, sequences: &[Vec<u32>]) -> hashi_core::BackendResult<f64> {
        let v = self.call("accumulate", &Request::Accumulate(sequences.to_vec()))?;
        self.parse("accumulate", v)
    }

    fn apply(&mut self, lr: f64) -> hashi_core::BackendResult<StepStats> {
        let v = self.call("apply", &Request::Apply(lr))?;
        let (grad_norm, clipped): (f64, bool) = self.parse("apply", v)?;
        Ok(StepStats { grad_norm, clipped })
    }

    fn discard(&mut self) {
        if let Err(e) = self.call("discard", &Request::Discard) {
            tracing::warn!("{e}");
        }
    }

    fn logprobs(&mut self, sequences: &[Vec<u32>]) -> hashi_core::BackendResult<Vec<Vec<f32>>> {
        let v = self.call("logprobs", &Request::Logprobs(sequences.to_vec()))?;
        self.parse("logprobs", v)
    }

    fn save(&self, dir: &Path) -> hashi_core::BackendResult<()> {
        self.call("save", &Request::Save(dir.to_path_buf())).map(|_| ())
    }

    fn load_optimizer(&mut self, dir: &Path) -> hashi_core::BackendResult<()> {
        self.call("load_optimizer", &Request::LoadOptimizer(dir.to_path_buf())).map(|_| ())
    }
}
