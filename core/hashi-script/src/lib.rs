//! The Lua 5.4 host of hashi (mlua, vendored).
//!
//! Lua decides policy, Rust executes: curricula return plans, schedules return learning rates, init strategies
//! return recipes. Scripts run sandboxed ([`Script`]: no io/os/debug/package, no bytecode, memory and instruction
//! limits, `require` confined to the script's folder and `scripts/lib`); what they return is decoded with serde
//! into the caller's strict types; errors read `path:line: message`. [`HotScript`] follows edits on disk.
//! The API scripts see is documented in `scripts/README.md` (LuaLS annotations in `scripts/types/`).

mod error;
mod host;
mod limits;
mod reload;

pub use error::{Result, ScriptError};
pub use host::{MAX_DEPTH, MAX_ENTRIES, Script, ScriptOptions, erased::Arg};
pub use limits::charge;
pub use mlua;
pub use reload::{HotScript, Loader, Reload};

#[cfg(test)]
mod tests;
