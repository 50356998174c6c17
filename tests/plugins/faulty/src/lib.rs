//! A valid plugin that fails on demand, for the host's tests. Options: `{"fail": CALL}` makes CALL return an
//! error, `{"panic": CALL}` makes it panic, `{"crash": CALL, "how": HOW}` ends the process inside CALL (HOW:
//! `segv` a null write, `stack` endless recursion, `abort`, `exit0` a clean `exit(0)`) (CALL: create,
//! accumulate, apply, logprobs, save). Export targets `fail` and `panic` do the same for exports.
#![allow(unsafe_code)] // The deliberate segmentation fault.

use hashi_plugin_api::{BackendPlugin, Batch, ExportPlugin, StepStats, declare_plugin};

/// The failing backend.
pub struct Faulty {
    fail: String,
    panic: String,
    crash: String,
    how: String,
}

#[inline(never)]
fn recurse(n: u64, buf: [u8; 4096]) -> u64 {
    let b = std::hint::black_box(buf);
    if n == u64::MAX { u64::from(b[0]) } else { recurse(n + 1, b) + u64::from(b[1]) }
}

/// Ends the process the way `how` says.
fn crash(how: &str) {
    match how {
        // SAFETY: none — a deliberate write through a null pointer, to test the host's isolation.
        "segv" => unsafe { std::ptr::write_volatile(std::ptr::null_mut::<u8>(), 1) },
        "stack" => {
            std::hint::black_box(recurse(0, [1; 4096]));
        }
        "exit0" => std::process::exit(0),
        _ => std::process::abort(),
    }
}

fn field(options: &str, key: &str) -> String {
    // `{"fail": "apply"}` without a JSON parser: find the key, take the next quoted string.
    options
        .split(&format!("\"{key}\""))
        .nth(1)
        .and_then(|rest| rest.split('"').nth(1))
        .unwrap_or_default()
        .to_string()
}

impl Faulty {
    fn act(&self, call: &str) -> Result<(), String> {
        if self.crash == call {
            crash(&self.how);
        }
        if self.panic == call {
            panic!("deliberate panic in {call}");
        }
        if self.fail == call { Err(format!("deliberate error in {call}")) } else { Ok(()) }
    }
}

impl BackendPlugin for Faulty {
    fn create(_model_dir: &str, options: &str) -> Result<Self, String> {
        let f = Faulty {
            fail: field(options, "fail"),
            panic: field(options, "panic"),
            crash: field(options, "crash"),
            how: field(options, "how"),
        };
        f.act("create")?;
        Ok(f)
    }

    fn describe(&self) -> String {
        "faulty test backend".into()
    }

    fn accumulate(&mut self, batch: Batch<'_>) -> Result<f64, String> {
        self.act("accumulate")?;
        Ok(batch.tokens.len() as f64)
    }

    fn apply(&mut self, _lr: f64) -> Result<StepStats, String> {
        self.act("apply")?;
        Ok(StepStats::default())
    }

    fn discard(&mut self) {}

    fn logprobs(&mut self, _batch: Batch<'_>, out: &mut [f32]) -> Result<(), String> {
        self.act("logprobs")?;
        out.fill(-1.0);
        Ok(())
    }

    fn save(&self, _dir: &str) -> Result<(), String> {
        self.act("save")
    }

    fn load_state(&mut self, _dir: &str) -> Result<(), String> {
        self.act("load_state")
    }
}

/// The failing exporter.
pub struct FaultyExport;

impl ExportPlugin for FaultyExport {
    const TARGETS: &'static str = "fail,panic";

    fn export(target: &str, _request: &str, _out_dir: &str) -> Result<String, String> {
        match target {
            "panic" => panic!("deliberate panic in export"),
            _ => Err("deliberate error in export".into()),
        }
    }
}

declare_plugin!(
    name: "faulty",
    version: "0.0.1",
    description: "fails on demand (host tests)",
    backend: Faulty,
    export: FaultyExport,
);
