//! hashi's GPU backend plugin: Llama training steps and log-probabilities on CUDA through libtorch (the `tch`
//! crate), bf16 compute with f32 master weights and an f32 AdamW whose state is interchangeable with the CPU
//! backend's. See README.md in this folder for the build and the measurements.

mod adamw;
mod config;
mod model;

use std::path::Path;

use hashi_plugin_api::{Batch, BackendPlugin, StepStats, declare_plugin};
use serde::Deserialize;
use tch::{Device, Kind, Tensor};

use crate::adamw::{AdamW, OptConfig};
use crate::model::Model;

/// `backend_options` of an experiment (plus `optimizer`, added by hashi).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default)]
    optimizer: OptConfig,
    /// "cuda" (default), "cuda:N" or "cpu".
    #[serde(default = "cuda")]
    device: String,
    /// Compute precision: "bf16" (default on CUDA) or "f32" (default on the CPU).
    #[serde(default)]
    precision: Option<String>,
}

fn cuda() -> String {
    "cuda".into()
}

/// Loads libtorch's CUDA library so its kernels register (nothing links to it by symbol).
fn load_cuda() -> Result<(), String> {
    static LOADED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    LOADED
        .get_or_init(|| {
            // SAFETY: libtorch_cuda is part of the libtorch this plugin is linked against; loading it only runs
            // its static initialisers (kernel registration). It stays loaded for the process.
            let lib = unsafe {
                libloading::os::unix::Library::open(
                    Some("libtorch_cuda.so"),
                    libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL,
                )
            }
            .map_err(|e| format!("cannot load libtorch_cuda.so (put PyTorch 2.11's torch/lib on LD_LIBRARY_PATH): {e}"))?;
            std::mem::forget(lib);
            Ok(())
        })
        .clone()
}

/// The backend.
pub struct TorchBackend {
    model: Model,
    opt: AdamW,
    micro: usize,
}

impl TorchBackend {
    fn ids(&self, batch: Batch<'_>) -> Result<Tensor, String> {
        let vocab = self.model.cfg.vocab_size as u32;
        if let Some(bad) = batch.tokens.iter().find(|&&t| t >= vocab) {
            return Err(format!("token id {bad} is out of range (vocabulary {vocab})"));
        }
        let ids: Vec<i64> = batch.tokens.iter().map(|&t| i64::from(t)).collect();
        Ok(Tensor::from_slice(&ids).view([batch.sequences as i64, batch.seq_len as i64]).to_device(self.model.device))
    }
}

impl BackendPlugin for TorchBackend {
    fn create(model_dir: &str, options: &str) -> Result<Self, String> {
        let opts: Options = serde_json::from_str(if options.trim().is_empty() { "{}" } else { options })
            .map_err(|e| format!("backend_options: {e}"))?;
        let device = match opts.device.as_str() {
            "cpu" => Device::Cpu,
            d if d == "cuda" || d.starts_with("cuda:") => {
                load_cuda()?;
                if !tch::Cuda::is_available() {
                    return Err("CUDA is not available to libtorch (no GPU or driver)".into());
                }
                let n: usize = d.strip_prefix("cuda:").map_or(Ok(0), str::parse).map_err(|e| format!("device {d}: {e}"))?;
                Device::Cuda(n)
            }
            d => return Err(format!("device {d:?}: use \"cuda\", \"cuda:N\" or \"cpu\"")),
        };
        let compute = match (opts.precision.as_deref(), device) {
            (Some("bf16"), _) | (None, Device::Cuda(_)) => Kind::BFloat16,
            (Some("f32"), _) | (None, _) => Kind::Float,
            (Some(p), _) => return Err(format!("precision {p:?}: use \"bf16\" or \"f32\"")),
        };
        let model = Model::load(Path::new(model_dir), device, compute)?;
        let opt = AdamW::new(opts.optimizer, &model.params)?;
        Ok(TorchBackend { model, opt, micro: 0 })
    }

    fn describe(&self) -> String {
        let prec = if self.model.compute == Kind::BFloat16 { "bf16" } else { "f32" };
        format!("libtorch 2.11 on {:?}, {prec} compute, f32 master weights", self.model.device)
    }

    fn accumulate(&mut self, batch: Batch<'_>) -> Result<f64, String> {
        let ids = self.ids(batch)?;
        let t = batch.seq_len as i64;
        let logits = self.model.forward(&ids.narrow(1, 0, t - 1));
        let targets = ids.narrow(1, 1, t - 1).reshape([-1]);
        let v = self.model.cfg.vocab_size as i64;
        let loss = logits.view([-1, v]).cross_entropy_loss::<Tensor>(&targets, None, tch::Reduction::Mean, -100, 0.0);
        let value = loss.double_value(&[]);
        if !value.is_finite() {
            return Err(format!("non-finite values: loss is {value}"));
        }
        loss.backward();
        self.micro += 1;
        Ok(value)
    }

    fn apply(&mut self, lr: f64) -> Result<StepStats, String> {
        if self.micro == 0 {
            return Err("no gradients to apply".into());
        }
        let scale = 1.0 / self.micro as f64;
        self.micro = 0;
        let (grad_norm, clipped) = self.opt.step(&self.model.params, lr, scale)?;
        Ok(StepStats { grad_norm, clipped: u8::from(clipped) })
    }

    fn discard(&mut self) {
        self.opt.zero_grad(&self.model.params);
        self.micro = 0;
    }

    fn logprobs(&mut self, batch: Batch<'_>, out: &mut [f32]) -> Result<(), String> {
        let ids = self.ids(batch)?;
        let t = batch.seq_len as i64;
        let lp = tch::no_grad(|| {
            let logits = self.model.forward(&ids.narrow(1, 0, t - 1));
            logits.log_softmax(-1, Kind::Float).gather(2, &ids.narrow(1, 1, t - 1).unsqueeze(-1), false)
        });
        let flat = lp.flatten(0, -1).to_device(Device::Cpu);
        let lp = Vec::<f32>::try_from(&flat).map_err(|e: tch::TchError| e.to_string())?;
        out.copy_from_slice(&lp);
        Ok(())
    }

    fn save(&self, dir: &str) -> Result<(), String> {
        let dir = Path::new(dir);
        self.model.save(dir)?;
        self.opt.save(&self.model.params, &dir.join("optimizer.safetensors"))
    }

    fn load_state(&mut self, dir: &str) -> Result<(), String> {
        self.opt.load(&self.model.params, &Path::new(dir).join("optimizer.safetensors"))
    }
}

declare_plugin!(
    name: "torch",
    version: env!("CARGO_PKG_VERSION"),
    description: "CUDA backend through libtorch 2.11 (tch): bf16 compute, f32 master weights",
    backend: TorchBackend,
);
