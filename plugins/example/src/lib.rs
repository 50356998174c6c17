//! An example backend plugin: hashi's reference CPU backend (candle, f32) behind the plugin ABI.
//!
//! It shows everything a backend author writes: options from JSON, the [`BackendPlugin`] methods, and one
//! [`declare_plugin!`] line. See README.md in this folder.

use std::path::Path;

use hashi_model::Llama;
use hashi_plugin_api::{BackendPlugin, Batch, StepStats, declare_plugin};
use hashi_train::{AdamWConfig, Backend, CpuBackend};
use serde::Deserialize;

/// The options this backend understands (the experiment's `backend_options`, plus `optimizer` from hashi).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default)]
    optimizer: AdamWConfig,
}

/// The backend: the built-in CPU backend, reached through the ABI.
pub struct ExampleBackend {
    inner: CpuBackend,
}

fn rows(batch: Batch<'_>) -> Vec<Vec<u32>> {
    batch.rows().map(<[u32]>::to_vec).collect()
}

impl BackendPlugin for ExampleBackend {
    fn create(model_dir: &str, options: &str) -> Result<Self, String> {
        let opts: Options = if options.trim().is_empty() {
            Options::default()
        } else {
            serde_json::from_str(options).map_err(|e| format!("options: {e}"))?
        };
        let model = Llama::load(Path::new(model_dir)).map_err(|e| e.to_string())?;
        Ok(Self { inner: CpuBackend::new(model, opts.optimizer) })
    }

    fn describe(&self) -> String {
        "example: candle CPU, f32".into()
    }

    fn accumulate(&mut self, batch: Batch<'_>) -> Result<f64, String> {
        self.inner.accumulate(&rows(batch)).map_err(|e| e.to_string())
    }

    fn apply(&mut self, lr: f64) -> Result<StepStats, String> {
        let s = self.inner.apply(lr).map_err(|e| e.to_string())?;
        Ok(StepStats { grad_norm: s.grad_norm, clipped: u8::from(s.clipped) })
    }

    fn discard(&mut self) {
        self.inner.discard();
    }

    fn logprobs(&mut self, batch: Batch<'_>, out: &mut [f32]) -> Result<(), String> {
        let lp = self.inner.logprobs(&rows(batch)).map_err(|e| e.to_string())?;
        for (dst, src) in out.chunks_mut(batch.seq_len - 1).zip(lp) {
            dst.copy_from_slice(&src);
        }
        Ok(())
    }

    fn save(&self, dir: &str) -> Result<(), String> {
        self.inner.save(Path::new(dir)).map_err(|e| e.to_string())
    }

    fn load_state(&mut self, dir: &str) -> Result<(), String> {
        self.inner.load_optimizer(Path::new(dir)).map_err(|e| e.to_string())
    }
}

declare_plugin!(
    name: "example",
    version: env!("CARGO_PKG_VERSION"),
    description: "reference CPU backend through the plugin ABI (a template for plugin authors)",
    backend: ExampleBackend,
);
