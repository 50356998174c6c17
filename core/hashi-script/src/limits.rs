//! What bounds a script's work besides the VM's instruction count: a meter that host functions charge
//! (`hashi.similar` on a 10 MB string costs what its work costs, not ten instructions), a wall-clock deadline per
//! call that the instruction hook checks, and, as the last resort, a watchdog for the time spent where no hook
//! runs (inside a C function such as a backtracking `string.find`): a call still running well past its deadline
//! ends the process with a message naming the script, since C code cannot be interrupted safely.
//!
//! Not done: a step-counting pattern matcher (so that a costly pattern would fail like a loop instead of
//! ending the process).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Instruction-equivalents charged per byte handed to a host function (bigram scans and copies cost about this
/// many VM instructions per byte).
pub(crate) const COST_PER_BYTE: u64 = 8;
/// Instruction-equivalents charged per host-function call.
pub(crate) const COST_PER_CALL: u64 = 100;

/// The budget of the call in progress: instructions (and charged work) used, the limit, and the deadline.
#[derive(Debug)]
pub(crate) struct Meter {
    used: AtomicU64,
    limit: u64,
    wall: Duration,
    /// Milliseconds since [`epoch`] at which the current call must end (0: no call running).
    deadline_ms: AtomicU64,
}

fn epoch() -> Instant {
    static E: OnceLock<Instant> = OnceLock::new();
    *E.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

impl Meter {
    pub(crate) fn new(limit: u64, wall: Duration) -> Self {
        Self { used: AtomicU64::new(0), limit, wall, deadline_ms: AtomicU64::new(0) }
    }

    /// Starts a call: the budget afresh, the deadline from now.
    pub(crate) fn start(&self) {
        self.used.store(0, Ordering::Relaxed);
        self.deadline_ms.store(now_ms() + self.wall.as_millis() as u64, Ordering::Relaxed);
    }

    /// Adds `cost` and fails when the budget or the deadline is passed.
    pub(crate) fn charge(&self, cost: u64) -> mlua::Result<()> {
        let used = self.used.fetch_add(cost, Ordering::Relaxed).saturating_add(cost);
        if used > self.limit {
            return Err(mlua::Error::RuntimeError(format!(
                "instruction limit of {} exceeded (the VM's instructions and the work of host and library \
                 functions count)",
                self.limit
            )));
        }
        let deadline = self.deadline_ms.load(Ordering::Relaxed);
        if deadline != 0 && now_ms() > deadline {
            return Err(mlua::Error::RuntimeError(format!(
                "time limit of {} s per call exceeded",
                self.wall.as_secs_f64()
            )));
        }
        Ok(())
    }

    /// The wall-clock limit per call.
    pub(crate) fn wall(&self) -> Duration {
        self.wall
    }
}

/// Charges `cost` instruction-equivalents to the budget of the script running in `lua` (for host functions
/// that do work in Rust); fails like the instruction limit when the budget or the call's time is spent.
/// A state made without [`crate::Script`] has no meter: nothing is charged.
pub fn charge(lua: &mlua::Lua, cost: u64) -> mlua::Result<()> {
    match lua.app_data_ref::<Arc<Meter>>() {
        Some(m) => m.charge(cost),
        None => Ok(()),
    }
}

struct Running {
    id: u64,
    hard_deadline: Instant,
    path: PathBuf,
    what: String,
    wall: Duration,
}

fn running() -> &'static Mutex<Vec<Running>> {
    static R: OnceLock<Mutex<Vec<Running>>> = OnceLock::new();
    R.get_or_init(|| {
        std::thread::Builder::new()
            .name("hashi-script-watchdog".into())
            .spawn(watchdog)
            .map_err(|e| tracing::warn!("no watchdog for Lua scripts: {e}"))
            .ok();
        Mutex::new(Vec::new())
    })
}

fn watchdog() {
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = Instant::now();
        let over = running().lock().ok().and_then(|r| {
            r.iter().find(|c| now > c.hard_deadline).map(|c| (c.path.clone(), c.what.clone(), c.wall))
        });
        if let Some((path, what, wall)) = over {
            eprintln!(
                "error: {}: {what} ran past its time limit of {} s inside a C function or host callback that the \
                 instruction limit cannot interrupt (a costly string pattern, a __gc finalizer?); stopping hashi",
                path.display(),
                wall.as_secs_f64()
            );
            std::process::exit(1);
        }
    }
}

/// While alive, the watchdog ends the process if the call runs `grace` past the meter's wall limit.
pub(crate) struct Watch {
    id: u64,
}

impl Watch {
    pub(crate) fn new(path: &std::path::Path, what: &str, wall: Duration) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let grace = Duration::from_secs(2).max(wall / 5);
        if let Ok(mut r) = running().lock() {
            r.push(Running {
                id,
                hard_deadline: Instant::now() + wall + grace,
                path: path.into(),
                what: what.into(),
                wall,
            });
        }
        Self { id }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Ok(mut r) = running().lock() {
            r.retain(|c| c.id != self.id);
        }
    }
}
