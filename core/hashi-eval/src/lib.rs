//! Evaluation for hashi. So far: [`PyRandom`], CPython's `random.Random` reproduced exactly, which the upstream
//! harnesses use to shuffle documents and pick few-shot examples (task templates, scoring and metrics are the
//! evaluation issue's remaining work).

mod pyrandom;

pub use pyrandom::PyRandom;
