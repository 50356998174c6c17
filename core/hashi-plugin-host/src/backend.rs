//! Calls through a plugin's vtables: [`PluginBackend`] (a [`hashi_core::Backend`]) and exports.

use std::ffi::c_void;
use std::path::Path;

use hashi_core::{Backend, BackendError};
use hashi_plugin_api::{BackendVTable, ExportVTable, Handle, Sink, StepStats, StrRef, status};

use crate::PluginError;

/// Appends the plugin's bytes to the `Vec<u8>` behind `ctx`.
extern "C" fn append(ctx: *mut c_void, ptr: *const u8, len: usize) {
    if ctx.is_null() || ptr.is_null() || len == 0 {
        return;
    }
    // SAFETY: `ctx` is the `&mut Vec<u8>` of `sink` below, alive for the call; `ptr` points to `len` bytes.
    let (buf, bytes) = unsafe { (&mut *(ctx as *mut Vec<u8>), std::slice::from_raw_parts(ptr, len)) };
    buf.extend_from_slice(bytes);
}

fn sink(buf: &mut Vec<u8>) -> Sink {
    Sink { ctx: buf as *mut Vec<u8> as *mut c_void, write: append }
}

fn path_str<'a>(p: &'a Path, plugin: &str) -> Result<&'a str, PluginError> {
    p.to_str().ok_or_else(|| PluginError::Call {
        plugin: plugin.to_string(),
        call: "path",
        message: format!("{} is not UTF-8", p.display()),
    })
}

/// A status code and message as a result.
fn outcome(plugin: &str, call: &'static str, code: i32, err: Vec<u8>) -> Result<(), PluginError> {
    let message = String::from_utf8_lossy(&err).into_owned();
    match code {
        status::OK => Ok(()),
        status::PANIC => Err(PluginError::Panicked { plugin: plugin.into(), call, message }),
        status::INVALID => Err(PluginError::Call {
            plugin: plugin.into(),
            call,
            message: format!("invalid arguments: {message}"),
        }),
        _ => Err(PluginError::Call {
            plugin: plugin.into(),
            call,
            message: if message.is_empty() { format!("failed with code {code}") } else { message },
        }),
    }
}

/// A backend instance living in a plugin.
#[derive(Debug)]
pub struct PluginBackend {
    plugin: String,
    vt: &'static BackendVTable,
    handle: Handle,
    description: String,
    /// Set after a panic: the instance's state is unknown, so it is not called again.
    poisoned: Option<String>,
}

macro_rules! entry {
    ($vt:expr, $name:ident) => {
        $vt.$name.expect(concat!("checked at load: ", stringify!($name)))
    };
}

impl PluginBackend {
    pub(crate) fn create(
        plugin: String,
        vt: &'static BackendVTable,
        model_dir: &Path,
        options: &str,
    ) -> Result<Self, PluginError> {
        let mut handle: Handle = std::ptr::null_mut();
        let mut err = vec![];
        let dir = path_str(model_dir, &plugin)?;
        let code = entry!(vt, create)(StrRef::new(dir), StrRef::new(options), &mut handle, sink(&mut err));
        outcome(&plugin, "create", code, err)?;
        if handle.is_null() {
            return Err(PluginError::Call { plugin, call: "create", message: "returned no handle".into() });
        }
        let mut this = Self { plugin, vt, handle, description: String::new(), poisoned: None };
        let mut out = vec![];
        let code = entry!(vt, describe)(handle, sink(&mut out));
        this.check("describe", code, out.clone())?;
        this.description = String::from_utf8_lossy(&out).into_owned();
        Ok(this)
    }

    /// The plugin's own description (device, precision).
    pub fn description(&self) -> &str {
        &self.description
    }

    fn usable(&self) -> Result<(), PluginError> {
        match &self.poisoned {
            None => Ok(()),
            Some(m) => Err(PluginError::Call {
                plugin: self.plugin.clone(),
                call: "backend",
                message: format!("unusable after an earlier panic ({m})"),
            }),
        }
    }

    fn check(&mut self, call: &'static str, code: i32, err: Vec<u8>) -> Result<(), PluginError> {
        let r = outcome(&self.plugin, call, code, err);
        if let Err(PluginError::Panicked { message, .. }) = &r {
            self.poisoned = Some(format!("{call}: {message}"));
        }
        r
    }

    fn tokens(sequences: &[Vec<u32>]) -> Result<(Vec<u32>, usize), BackendError> {
        let t = sequences.first().map_or(0, Vec::len);
        if sequences.is_empty() || t < 2 || sequences.iter().any(|s| s.len() != t) {
            return Err(BackendError::State(
                "a micro-batch needs equal sequences of at least 2 tokens".into(),
            ));
        }
        Ok((sequences.concat(), t))
    }
}

impl Drop for PluginBackend {
    fn drop(&mut self) {
        entry!(self.vt, destroy)(self.handle);
    }
}

fn train_err(e: PluginError) -> BackendError {
    BackendError::Failed(e.to_string())
}

impl Backend for PluginBackend {
    fn name(&self) -> String {
        format!("{} ({})", self.plugin, self.description)
    }

    fn accumulate(&mut self, sequences: &[Vec<u32>]) -> hashi_core::BackendResult<f64> {
        self.usable().map_err(train_err)?;
        let (tokens, t) = Self::tokens(sequences)?;
        let (mut loss, mut err) = (f64::NAN, vec![]);
        let code = entry!(self.vt, accumulate)(
            self.handle,
            tokens.as_ptr(),
            sequences.len(),
            t,
            &mut loss,
            sink(&mut err),
        );
        self.check("accumulate", code, err).map_err(train_err)?;
        if !loss.is_finite() {
            return Err(BackendError::NonFinite(format!("loss is {loss}")));
        }
        Ok(loss)
    }

    fn apply(&mut self, lr: f64) -> hashi_core::BackendResult<hashi_core::StepStats> {
        self.usable().map_err(train_err)?;
        let (mut stats, mut err) = (StepStats::default(), vec![]);
        let code = entry!(self.vt, apply)(self.handle, lr, &mut stats, sink(&mut err));
        self.check("apply", code, err).map_err(train_err)?;
        Ok(hashi_core::StepStats { grad_norm: stats.grad_norm, clipped: stats.clipped != 0 })
    }

    fn discard(&mut self) {
        if self.poisoned.is_none() {
            entry!(self.vt, discard)(self.handle);
        }
    }

    fn logprobs(&mut self, sequences: &[Vec<u32>]) -> hashi_core::BackendResult<Vec<Vec<f32>>> {
        self.usable().map_err(train_err)?;
        let (tokens, t) = Self::tokens(sequences)?;
        let mut out = vec![f32::NAN; sequences.len() * (t - 1)];
        let mut err = vec![];
        let code = entry!(self.vt, logprobs)(
            self.handle,
            tokens.as_ptr(),
            sequences.len(),
            t,
            out.as_mut_ptr(),
            sink(&mut err),
        );
        self.check("logprobs", code, err).map_err(train_err)?;
        Ok(out.chunks(t - 1).map(<[f32]>::to_vec).collect())
    }

    fn save(&self, dir: &Path) -> hashi_core::BackendResult<()> {
        self.usable().map_err(train_err)?;
        let mut err = vec![];
        let code = entry!(self.vt, save)(
            self.handle,
            StrRef::new(path_str(dir, &self.plugin).map_err(train_err)?),
            sink(&mut err),
        );
        outcome(&self.plugin, "save", code, err).map_err(train_err)
    }

    fn load_optimizer(&mut self, dir: &Path) -> hashi_core::BackendResult<()> {
        self.usable().map_err(train_err)?;
        let mut err = vec![];
        let d = path_str(dir, &self.plugin).map_err(train_err)?;
        let code = entry!(self.vt, load_state)(self.handle, StrRef::new(d), sink(&mut err));
        self.check("load_state", code, err).map_err(train_err)
    }
}

/// Calls an exporter.
pub(crate) fn call_export(
    plugin: &str,
    vt: &'static ExportVTable,
    target: &str,
    request: &str,
    out_dir: &Path,
) -> Result<String, PluginError> {
    let (mut result, mut err) = (vec![], vec![]);
    let dir = path_str(out_dir, plugin)?;
    let code = entry!(vt, export)(
        StrRef::new(target),
        StrRef::new(request),
        StrRef::new(dir),
        sink(&mut result),
        sink(&mut err),
    );
    outcome(plugin, "export", code, err)?;
    Ok(String::from_utf8_lossy(&result).into_owned())
}
