//! The plugin side of the boundary: generic `extern "C"` shims that turn raw arguments into safe Rust calls of
//! [`BackendPlugin`] / [`ExportPlugin`], catch panics and report errors through [`Sink`]s. Used by
//! [`crate::declare_plugin!`]; not called directly.

use std::any::Any;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::{
    BackendPlugin, BackendVTable, Batch, ExportPlugin, ExportVTable, Handle, Sink, StepStats, StrRef, status,
};

/// Why an entry failed.
enum Fail {
    /// The plugin's own error.
    Error(String),
    /// Malformed arguments from the host.
    Invalid(String),
}

impl From<String> for Fail {
    fn from(s: String) -> Self {
        Fail::Error(s)
    }
}

/// Appends `s` to the caller's sink.
pub fn write(sink: Sink, s: &str) {
    (sink.write)(sink.ctx, s.as_ptr(), s.len());
}

/// The message of a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".to_string())
}

/// Runs `f`, turning its error or panic into a status code and a message in `err`.
fn guard(err: Sink, f: impl FnOnce() -> Result<(), Fail>) -> i32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => status::OK,
        Ok(Err(Fail::Error(m))) => {
            write(err, &m);
            status::ERROR
        }
        Ok(Err(Fail::Invalid(m))) => {
            write(err, &m);
            status::INVALID
        }
        Err(p) => {
            write(err, &format!("plugin panicked: {}", panic_message(p.as_ref())));
            status::PANIC
        }
    }
}

/// A string argument.
fn text<'a>(s: StrRef, what: &str) -> Result<&'a str, Fail> {
    if s.len == 0 {
        return Ok("");
    }
    if s.ptr.is_null() {
        return Err(Fail::Invalid(format!("{what}: null pointer")));
    }
    // SAFETY: the host guarantees `ptr` points to `len` readable bytes for the duration of the call.
    let bytes = unsafe { std::slice::from_raw_parts(s.ptr, s.len) };
    std::str::from_utf8(bytes).map_err(|e| Fail::Invalid(format!("{what}: not UTF-8 ({e})")))
}

/// The backend behind a handle.
fn backend<'a, T>(h: Handle) -> Result<&'a mut T, Fail> {
    if h.is_null() {
        return Err(Fail::Invalid("null backend handle".into()));
    }
    // SAFETY: handles are only made by `create` below (a leaked `Box<T>`) and freed by `destroy`; the host uses
    // one handle from one thread at a time.
    Ok(unsafe { &mut *(h as *mut T) })
}

/// A token buffer argument.
fn batch<'a>(tokens: *const u32, sequences: usize, seq_len: usize) -> Result<Batch<'a>, Fail> {
    let n =
        sequences.checked_mul(seq_len).ok_or_else(|| Fail::Invalid("token buffer size overflows".into()))?;
    if n == 0 || seq_len < 2 {
        return Err(Fail::Invalid(format!("empty batch ({sequences} × {seq_len} tokens; need seq_len ≥ 2)")));
    }
    if tokens.is_null() {
        return Err(Fail::Invalid("null token buffer".into()));
    }
    // SAFETY: the host guarantees `sequences × seq_len` readable ids for the duration of the call.
    let tokens = unsafe { std::slice::from_raw_parts(tokens, n) };
    Ok(Batch { tokens, sequences, seq_len })
}

/// Writes through an out-pointer.
fn put<V>(out: *mut V, value: V, what: &str) -> Result<(), Fail> {
    if out.is_null() {
        return Err(Fail::Invalid(format!("null {what} pointer")));
    }
    // SAFETY: non-null, and the host guarantees it points to a writable `V`.
    unsafe { out.write(value) };
    Ok(())
}

/// The vtable of a [`BackendPlugin`].
pub struct BackendShim<T>(PhantomData<T>);

impl<T: BackendPlugin> BackendShim<T> {
    /// All entries, for a static.
    pub const VTABLE: BackendVTable = BackendVTable {
        size: std::mem::size_of::<BackendVTable>() as u32,
        create: Some(Self::create),
        destroy: Some(Self::destroy),
        describe: Some(Self::describe),
        accumulate: Some(Self::accumulate),
        apply: Some(Self::apply),
        discard: Some(Self::discard),
        logprobs: Some(Self::logprobs),
        save: Some(Self::save),
        load_state: Some(Self::load_state),
    };

    extern "C" fn create(model_dir: StrRef, options: StrRef, out: *mut Handle, err: Sink) -> i32 {
        guard(err, || {
            let b = T::create(text(model_dir, "model directory")?, text(options, "options")?)?;
            put(out, Box::into_raw(Box::new(b)) as Handle, "handle")
        })
    }

    extern "C" fn destroy(h: Handle) {
        if h.is_null() {
            return;
        }
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: `h` was made by `create` (a leaked `Box<T>`); the host destroys it once.
            drop(unsafe { Box::from_raw(h as *mut T) })
        })) {
            eprintln!("plugin panicked while freeing a backend: {}", panic_message(p.as_ref()));
        }
    }

    extern "C" fn describe(h: Handle, out: Sink) -> i32 {
        guard(out, || {
            let d = backend::<T>(h)?.describe();
            write(out, &d);
            Ok(())
        })
    }

    extern "C" fn accumulate(
        h: Handle,
        tokens: *const u32,
        sequences: usize,
        seq_len: usize,
        loss: *mut f64,
        err: Sink,
    ) -> i32 {
        guard(err, || {
            let v = backend::<T>(h)?.accumulate(batch(tokens, sequences, seq_len)?)?;
            put(loss, v, "loss")
        })
    }

    extern "C" fn apply(h: Handle, lr: f64, stats: *mut StepStats, err: Sink) -> i32 {
        guard(err, || {
            let s = backend::<T>(h)?.apply(lr)?;
            put(stats, s, "stats")
        })
    }

    extern "C" fn discard(h: Handle) {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| {
            if let Ok(b) = backend::<T>(h) {
                b.discard();
            }
        })) {
            eprintln!("plugin panicked while discarding gradients: {}", panic_message(p.as_ref()));
        }
    }

    extern "C" fn logprobs(
        h: Handle,
        tokens: *const u32,
        sequences: usize,
        seq_len: usize,
        out: *mut f32,
        err: Sink,
    ) -> i32 {
        guard(err, || {
            let b = batch(tokens, sequences, seq_len)?;
            if out.is_null() {
                return Err(Fail::Invalid("null output buffer".into()));
            }
            // SAFETY: the host guarantees room for `sequences × (seq_len − 1)` values.
            let out = unsafe { std::slice::from_raw_parts_mut(out, sequences * (seq_len - 1)) };
            backend::<T>(h)?.logprobs(b, out)?;
            Ok(())
        })
    }

    extern "C" fn save(h: Handle, dir: StrRef, err: Sink) -> i32 {
        guard(err, || Ok(backend::<T>(h)?.save(text(dir, "directory")?)?))
    }

    extern "C" fn load_state(h: Handle, dir: StrRef, err: Sink) -> i32 {
        guard(err, || Ok(backend::<T>(h)?.load_state(text(dir, "directory")?)?))
    }
}

/// The vtable of an [`ExportPlugin`].
pub struct ExportShim<T>(PhantomData<T>);

impl<T: ExportPlugin> ExportShim<T> {
    /// All entries, for a static.
    pub const VTABLE: ExportVTable = ExportVTable {
        size: std::mem::size_of::<ExportVTable>() as u32,
        targets: StrRef::from_static(T::TARGETS),
        export: Some(Self::export),
    };

    extern "C" fn export(target: StrRef, request: StrRef, out_dir: StrRef, result: Sink, err: Sink) -> i32 {
        guard(err, || {
            let summary = T::export(
                text(target, "target")?,
                text(request, "request")?,
                text(out_dir, "output directory")?,
            )?;
            write(result, &summary);
            Ok(())
        })
    }
}
