//! hashi's data: declared corpora, their preparation into Megatron-LM indexed datasets (`.bin`/`.idx`, read
//! as they are by `megatron-core`), curriculum plans resolved against them, and the mixer that turns a plan
//! into a deterministic, resumable stream of batches.

mod error;
pub mod indexed;
pub mod mixer;
pub mod plan;
pub mod prepare;

pub use error::{DataError, Result};
pub use indexed::{IndexedDataset, IndexedWriter, TokenDtype};
pub use mixer::{Batch, Cursor, Mixer};
pub use plan::{PlanDecl, ResolvedPlan, resolve};
pub use prepare::{CorpusDecl, Manifest, ManifestEntry, PrepareOptions, check_decls, prepare};
