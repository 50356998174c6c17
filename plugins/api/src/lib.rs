//! The C ABI between hashi and its plugins.
//!
//! A plugin is a `cdylib` that exports one symbol, [`ENTRY_SYMBOL`]: an `extern "C" fn() -> *const Header`.
//! The host reads the [`Header`] — magic, ABI version, plugin version, a rustc/target canary — and checks it
//! before it calls anything else. The header points to vtables of `extern "C"` functions, one per capability:
//! [`BackendVTable`] (train steps and log-probabilities over token buffers, save/load state) and
//! [`ExportVTable`] (turn an experiment into a cluster engine's files). Only pointers with lengths, UTF-8/JSON
//! strings, token buffers and plain numbers cross the boundary; errors come back as a [`status`] code with a
//! message written into a [`Sink`]; every entry catches panics.
//!
//! Plugin authors write safe Rust: implement [`BackendPlugin`] and/or [`ExportPlugin`] and call
//! [`declare_plugin!`], which owns all the unsafe code.
//!
//! # Versioning
//! - [`ABI_MAJOR`] changes when anything existing changes: a field's type, order or meaning, a function's
//!   signature, a status code's meaning. The host refuses a plugin of another major version.
//! - [`ABI_MINOR`] grows when something is *appended*: a new field at the end of [`Header`] or of a vtable,
//!   a new status code, a new option key. Every struct carries its own size, so a host reads only the fields a
//!   plugin has, and treats the missing ones as "not supported"; a plugin of a newer minor works with an older
//!   host, which ignores what it does not know.
//! - The canary (`rustc --version; target`) is compared too: another target is refused (the library could not
//!   run anyway); another compiler is accepted, since only C types cross, and shown by `hashi plugins list`.

#![allow(unsafe_code)] // This crate is the one place where the plugin boundary is crossed; see `rt`.

use std::ffi::c_void;

#[doc(hidden)]
pub mod rt;

/// First bytes of every [`Header`].
pub const MAGIC: [u8; 8] = *b"HASHIPLG";
/// Incompatible changes bump this.
pub const ABI_MAJOR: u16 = 1;
/// Appended fields and codes bump this.
pub const ABI_MINOR: u16 = 0;
/// The exported entry point (`extern "C" fn() -> *const Header`).
pub const ENTRY_SYMBOL: &str = "hashi_plugin_entry";
/// `rustc --version; target` of the build that compiled this crate (and the plugin with it).
pub const CANARY: &str = env!("HASHI_PLUGIN_CANARY");

/// Return codes of vtable functions.
pub mod status {
    /// Success.
    pub const OK: i32 = 0;
    /// The plugin reported an error; the message is in the error sink.
    pub const ERROR: i32 = 1;
    /// The plugin panicked; the panic message is in the error sink. The handle must not be used again.
    pub const PANIC: i32 = 2;
    /// The host passed something malformed (null pointer, invalid UTF-8, wrong lengths).
    pub const INVALID: i32 = 3;
}

/// A borrowed UTF-8 string or byte buffer: pointer and length.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct StrRef {
    /// Start of the bytes (may be dangling when `len` is 0).
    pub ptr: *const u8,
    /// Number of bytes.
    pub len: usize,
}

impl StrRef {
    /// Borrows a `'static` string (usable in statics).
    pub const fn from_static(s: &'static str) -> Self {
        Self { ptr: s.as_ptr(), len: s.len() }
    }

    /// Borrows a string for the duration of a call.
    pub fn new(s: &str) -> Self {
        Self { ptr: s.as_ptr(), len: s.len() }
    }
}

/// Where a callee writes a string for the caller (an error message, a JSON result): the caller owns the memory,
/// so no allocation crosses the boundary. `write` may be called several times; the pieces concatenate.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Sink {
    /// Caller's context, passed back to `write`.
    pub ctx: *mut c_void,
    /// Appends `len` bytes at `ptr` (UTF-8) to the caller's buffer.
    pub write: extern "C" fn(ctx: *mut c_void, ptr: *const u8, len: usize),
}

/// Statistics of one optimizer step.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepStats {
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// 1 when the gradients were scaled down by clipping, else 0.
    pub clipped: u8,
}

/// What a plugin is and what it can do. Returned by the entry symbol; lives as long as the library.
#[repr(C)]
#[derive(Debug)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`ABI_MAJOR`] the plugin was built with.
    pub abi_major: u16,
    /// [`ABI_MINOR`] the plugin was built with.
    pub abi_minor: u16,
    /// `size_of::<Header>()` in the plugin's ABI version.
    pub size: u32,
    /// [`CANARY`] of the plugin's build.
    pub canary: StrRef,
    /// Plugin name (the `backend = "..."` of experiments).
    pub name: StrRef,
    /// Plugin version (semver).
    pub version: StrRef,
    /// One line for `hashi plugins list`.
    pub description: StrRef,
    /// Training/scoring backend, or null.
    pub backend: *const BackendVTable,
    /// Exporter, or null.
    pub export: *const ExportVTable,
}

// SAFETY: a header and its vtables are immutable statics pointing to static data.
unsafe impl Sync for Header {}
// SAFETY: as above.
unsafe impl Sync for ExportVTable {}

/// An opaque backend instance.
pub type Handle = *mut c_void;

/// A training and scoring backend. Token buffers hold `sequences × seq_len` ids, row-major; every sequence is
/// its inputs followed by one more token (position `t` predicts token `t + 1`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct BackendVTable {
    /// `size_of::<BackendVTable>()` in the plugin's ABI version.
    pub size: u32,
    /// Builds a backend from an HF model directory and JSON options (`{"optimizer": {...}, ...}`); writes the
    /// handle into `out`.
    pub create: Option<extern "C" fn(model_dir: StrRef, options: StrRef, out: *mut Handle, err: Sink) -> i32>,
    /// Frees a handle (never fails; a panic inside is caught and printed).
    pub destroy: Option<extern "C" fn(handle: Handle)>,
    /// Writes a one-line description (device, precision) into `out`.
    pub describe: Option<extern "C" fn(handle: Handle, out: Sink) -> i32>,
    /// Forward and backward over a micro-batch; gradients accumulate. Writes the mean loss into `loss`.
    pub accumulate: Option<
        extern "C" fn(
            handle: Handle,
            tokens: *const u32,
            sequences: usize,
            seq_len: usize,
            loss: *mut f64,
            err: Sink,
        ) -> i32,
    >,
    /// One optimizer step at `lr` with the accumulated gradients (averaged over micro-batches).
    pub apply: Option<extern "C" fn(handle: Handle, lr: f64, stats: *mut StepStats, err: Sink) -> i32>,
    /// Drops accumulated gradients.
    pub discard: Option<extern "C" fn(handle: Handle)>,
    /// Log-probability of every next token: writes `sequences × (seq_len − 1)` values into `out`.
    pub logprobs: Option<
        extern "C" fn(
            handle: Handle,
            tokens: *const u32,
            sequences: usize,
            seq_len: usize,
            out: *mut f32,
            err: Sink,
        ) -> i32,
    >,
    /// Writes the weights (HF layout) and the optimizer state into the directory `dir`.
    pub save: Option<extern "C" fn(handle: Handle, dir: StrRef, err: Sink) -> i32>,
    /// Reads the optimizer state written by `save` from `dir`.
    pub load_state: Option<extern "C" fn(handle: Handle, dir: StrRef, err: Sink) -> i32>,
}

/// An exporter: writes a cluster engine's files for an experiment.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ExportVTable {
    /// `size_of::<ExportVTable>()` in the plugin's ABI version.
    pub size: u32,
    /// Comma-separated target names (`--backend` of `hashi export`).
    pub targets: StrRef,
    /// Exports `request` (JSON) for `target` into the directory `out_dir`; writes a JSON summary into `result`.
    pub export: Option<
        extern "C" fn(target: StrRef, request: StrRef, out_dir: StrRef, result: Sink, err: Sink) -> i32,
    >,
}

/// A micro-batch of token sequences, borrowed from the host.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// `sequences × seq_len` ids, row-major.
    pub tokens: &'a [u32],
    /// Number of sequences.
    pub sequences: usize,
    /// Tokens per sequence (inputs + 1).
    pub seq_len: usize,
}

impl<'a> Batch<'a> {
    /// The sequences as rows.
    pub fn rows(&self) -> impl Iterator<Item = &'a [u32]> + 'a {
        self.tokens.chunks(self.seq_len.max(1))
    }
}

/// A backend, as a plugin author writes it. All methods are safe; [`declare_plugin!`] adapts them to the ABI.
pub trait BackendPlugin: Sized + 'static {
    /// Builds the backend from an HF model directory and the experiment's options (JSON object text).
    fn create(model_dir: &str, options: &str) -> Result<Self, String>;
    /// One line: device and precision.
    fn describe(&self) -> String;
    /// Forward and backward; returns the mean loss of the micro-batch.
    fn accumulate(&mut self, batch: Batch<'_>) -> Result<f64, String>;
    /// Optimizer step with the accumulated gradients.
    fn apply(&mut self, lr: f64) -> Result<StepStats, String>;
    /// Drops accumulated gradients.
    fn discard(&mut self);
    /// Log-probability of every next token into `out` (`sequences × (seq_len − 1)`).
    fn logprobs(&mut self, batch: Batch<'_>, out: &mut [f32]) -> Result<(), String>;
    /// Writes weights (HF layout) and optimizer state into `dir`.
    fn save(&self, dir: &str) -> Result<(), String>;
    /// Reads the optimizer state from `dir`.
    fn load_state(&mut self, dir: &str) -> Result<(), String>;
}

/// An exporter, as a plugin author writes it.
pub trait ExportPlugin: 'static {
    /// Comma-separated target names, e.g. `"megatron,neuron"`.
    const TARGETS: &'static str;
    /// Writes the files for `target` into `out_dir`; returns a JSON summary.
    fn export(target: &str, request: &str, out_dir: &str) -> Result<String, String>;
}

/// Declares a plugin: `declare_plugin!(name: "example", version: env!("CARGO_PKG_VERSION"), description: "...",
/// backend: MyBackend, export: MyExporter)` — `backend` and `export` are each optional (at least one).
#[macro_export]
macro_rules! declare_plugin {
    (name: $name:expr, version: $version:expr, description: $desc:expr
        $(, backend: $backend:ty)? $(, export: $export:ty)? $(,)?) => {
        /// The plugin's entry point (see `hashi-plugin-api`).
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn hashi_plugin_entry() -> *const $crate::Header {
            static HEADER: $crate::Header = $crate::Header {
                magic: $crate::MAGIC,
                abi_major: $crate::ABI_MAJOR,
                abi_minor: $crate::ABI_MINOR,
                size: ::core::mem::size_of::<$crate::Header>() as u32,
                canary: $crate::StrRef::from_static($crate::CANARY),
                name: $crate::StrRef::from_static($name),
                version: $crate::StrRef::from_static($version),
                description: $crate::StrRef::from_static($desc),
                backend: $crate::__backend_vtable!($($backend)?),
                export: $crate::__export_vtable!($($export)?),
            };
            &HEADER
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __backend_vtable {
    () => {
        ::core::ptr::null()
    };
    ($t:ty) => {{
        static VTABLE: $crate::BackendVTable = $crate::rt::BackendShim::<$t>::VTABLE;
        &VTABLE as *const $crate::BackendVTable
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_vtable {
    () => {
        ::core::ptr::null()
    };
    ($t:ty) => {{
        static VTABLE: $crate::ExportVTable = $crate::rt::ExportShim::<$t>::VTABLE;
        &VTABLE as *const $crate::ExportVTable
    }};
}
