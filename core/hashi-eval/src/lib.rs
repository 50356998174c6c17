//! Evaluation for hashi, faithful to the upstream harnesses. So far: [`PyRandom`] (CPython's `random.Random`,
//! exactly, for the upstream document shuffle and few-shot picks) and the prompt construction of the Japanese tasks ([`Task`]), and the classification
//! [`metrics`]. Scoring, the remaining tasks, metrics and `hashi eval` are the evaluation issue's
//! remaining work.

mod bpb;
mod generate;
pub mod metrics;
mod pyrandom;
pub mod qa;
mod score;
mod tasks;

pub use bpb::{BPB_WINDOW, Bpb, bits_per_byte, documents_within};
pub use generate::{Generation, fit_by_separator, fit_mgsm_context, greedy_until, mgsm_answer};
pub use pyrandom::PyRandom;
pub use score::{Scored, encode_pair, score_choices, score_choices_with};
pub use tasks::{Dataset, Request, Task};
