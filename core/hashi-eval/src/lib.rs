//! Evaluation for hashi, faithful to the upstream harnesses. So far: [`PyRandom`] (CPython's `random.Random`,
//! exactly, for the upstream document shuffle and few-shot picks) and the prompt construction of the first
//! Japanese tasks ([`Task`]). Scoring, the remaining tasks, metrics and `hashi eval` are the evaluation issue's
//! remaining work.

mod pyrandom;
mod tasks;

pub use pyrandom::PyRandom;
pub use tasks::{Dataset, Request, Task};
