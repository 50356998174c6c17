//! Progress bars on stderr (indicatif), behind the library crates' `Reporter` trait.

use std::sync::Mutex;

use hashi_core::Reporter;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Draws one bar at a time on stderr; hidden with `--quiet` or when stderr is not a terminal.
pub struct Progress {
    quiet: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Self { quiet, bar: Mutex::new(None) }
    }

    /// Whether output on stderr is limited to errors.
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<ProgressBar>> {
        self.bar.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Reporter for Progress {
    fn start(&self, task: &str, total: Option<u64>, unit: &str) {
        let bar = match total {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        if self.quiet {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        let template = match (total, unit) {
            (Some(_), "B") => "{msg:>16} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
            (Some(_), _) => "{msg:>16} [{bar:30}] {pos}/{len} {prefix} ({per_sec}, eta {eta})",
            (None, _) => "{msg:>16} {spinner} {pos} {prefix} ({per_sec})",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(task.to_string());
        bar.set_prefix(unit.to_string());
        if let Some(old) = self.slot().replace(bar) {
            old.finish_and_clear();
        }
    }

    fn advance(&self, n: u64) {
        if let Some(bar) = self.slot().as_ref() {
            bar.inc(n);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.slot().take() {
            bar.finish_and_clear();
        }
    }
}
