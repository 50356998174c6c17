//! Progress reporting from library code to whatever front end drives it.

/// Receives progress from long-running library work.
///
/// Library crates call these methods; front ends decide how to show them. Implementations must be cheap:
/// `advance` may be called once per token or per tensor.
pub trait Reporter: Send + Sync {
    /// A new unit of work starts; `total` is its size in `unit`s when known.
    fn start(&self, task: &str, total: Option<u64>, unit: &str);
    /// `n` more units of the current work are done.
    fn advance(&self, n: u64);
    /// The current unit of work is finished.
    fn finish(&self);
}

/// A reporter that shows nothing (tests, library users who do not care).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReporter;

impl Reporter for NoReporter {
    fn start(&self, _task: &str, _total: Option<u64>, _unit: &str) {}
    fn advance(&self, _n: u64) {}
    fn finish(&self) {}
}
