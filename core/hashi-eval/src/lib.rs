//! Evaluation for hashi, faithful to the upstream harnesses: the tasks and their prompts ([`Task`], byte-identical
//! to Stability-AI's jp-stable harness and EleutherAI's GLUE tasks), the document shuffle and few-shot picks
//! ([`PyRandom`], CPython's `random.Random`), log-likelihood scoring ([`Scorer`]: the built-in model or any
//! backend), greedy generation for QA and MGSM, the upstream [`metrics`], bits per byte on held-out text, and the
//! harness that runs them all ([`evaluate`] → [`EvalResults`], lm-evaluation-harness' layout).

mod bpb;
mod generate;
mod harness;
pub mod llmjp;
mod llmjp_run;
pub mod metrics;
mod protocols;
mod pyrandom;
pub mod qa;
mod results;
mod score;
mod tasks;

pub use bpb::{BPB_WINDOW, Bpb, bits_per_byte, documents_within, held_out};
pub use generate::{Generation, PromptPrefix, greedy_batch, greedy_until, mgsm_answer};
pub use harness::{
    BackendScorer, EvalError, EvalSettings, ModelScorer, PROTOCOLS, ProtocolTasks, Scorer, evaluate,
    is_known_task, is_swallow_column, known_tasks, protocol_shots, with_protocols,
};
pub use protocols::{ProtocolDelta, deltas_table, protocol_deltas};
pub use pyrandom::PyRandom;
pub use results::{EvalConfig, EvalResults, TaskResult};
pub use score::{Question, Scored, encode_pair, score_choices, score_questions, score_questions_with};
pub use tasks::{Dataset, FittedContext, Prompt, Request, Task};
