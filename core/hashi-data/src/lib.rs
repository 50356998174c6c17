//! hashi's data: declared corpora, their preparation into Megatron-LM indexed datasets (`.bin`/`.idx`, read
//! as they are by `megatron-core`), and reading them back. Curriculum plans and the mixer come with the rest of
//! the data issue.

mod error;
pub mod indexed;
pub mod prepare;

pub use error::{DataError, Result};
pub use indexed::{IndexedDataset, IndexedWriter, TokenDtype};
pub use prepare::{CorpusDecl, Manifest, ManifestEntry, PrepareOptions, prepare};
