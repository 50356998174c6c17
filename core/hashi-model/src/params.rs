//! The parameters of a Llama-family model (Llama, Mistral, Qwen2) by HF key name, as trainable candle variables.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

use crate::checkpoint::Checkpoint;
use crate::config::Config;
use crate::error::{ModelError, Result};

/// Number of parameters of `cfg` (the sum over [`param_shapes`]), or `None` when it does not fit in 64 bits.
pub fn param_count(cfg: &Config) -> Option<u64> {
    let [v, h, hd, heads, kv_heads, m, layers] = [
        cfg.vocab_size,
        cfg.hidden_size,
        cfg.head_dim,
        cfg.num_heads,
        cfg.num_kv_heads,
        cfg.intermediate_size,
        cfg.num_layers,
    ]
    .map(|d| d as u128);
    let (q, kv) = (heads.checked_mul(hd)?, kv_heads.checked_mul(hd)?);
    let bias = |on: bool, n: u128| if on { n } else { 0 };
    let per_layer = [
        h.checked_mul(2)?,                                  // the two RMSNorms
        q.checked_add(kv.checked_mul(2)?)?.checked_mul(h)?, // q, k, v
        h.checked_mul(q)?,                                  // o
        bias(cfg.qkv_bias(), q + 2 * kv) + bias(cfg.o_bias(), h),
        m.checked_mul(h)?.checked_mul(3)?, // gate, up, down
        bias(cfg.mlp_bias, 2 * m + h),
    ]
    .into_iter()
    .try_fold(0u128, u128::checked_add)?;
    let embeddings = v.checked_mul(h)?.checked_mul(if cfg.tie_word_embeddings { 1 } else { 2 })?;
    let total = per_layer.checked_mul(layers)?.checked_add(embeddings)?.checked_add(h)?;
    u64::try_from(total).ok()
}

/// Total memory of this machine in bytes (`MemTotal` of `/proc/meminfo`); `None` where it cannot be read.
fn total_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Refuses a model whose f32 parameters alone need more than this machine's memory.
fn check_fits_in_memory(cfg: &Config) -> Result<()> {
    const GIB: f64 = (1u64 << 30) as f64;
    let params = param_count(cfg).ok_or_else(|| {
        ModelError::Input("the model's sizes overflow: its parameter count does not fit in 64 bits".into())
    })?;
    let bytes = params as f64 * 4.0;
    match total_memory() {
        Some(mem) if bytes > mem as f64 => Err(ModelError::Input(format!(
            "{params} parameters need {:.1} GiB in f32, more than this machine's {:.1} GiB of memory",
            bytes / GIB,
            mem as f64 / GIB
        ))),
        _ => Ok(()),
    }
}

/// HF key and shape of every parameter of the family's `*ForCausalLM` with this config, in a stable order.
pub fn param_shapes(cfg: &Config) -> Vec<(String, Vec<usize>)> {
    let (h, hd) = (cfg.hidden_size, cfg.head_dim);
    let (q, kv, m) = (cfg.num_heads * hd, cfg.num_kv_heads * hd, cfg.intermediate_size);
    let mut out = vec![("model.embed_tokens.weight".to_string(), vec![cfg.vocab_size, h])];
    for i in 0..cfg.num_layers {
        let p = format!("model.layers.{i}");
        out.push((format!("{p}.input_layernorm.weight"), vec![h]));
        let (qkv_bias, o_bias) = (cfg.qkv_bias(), cfg.o_bias());
        for (name, rows, cols, bias) in [
            ("q_proj", q, h, qkv_bias),
            ("k_proj", kv, h, qkv_bias),
            ("v_proj", kv, h, qkv_bias),
            ("o_proj", h, q, o_bias),
        ] {
            out.push((format!("{p}.self_attn.{name}.weight"), vec![rows, cols]));
            if bias {
                out.push((format!("{p}.self_attn.{name}.bias"), vec![rows]));
            }
        }
        out.push((format!("{p}.post_attention_layernorm.weight"), vec![h]));
        for (name, rows, cols) in [("gate_proj", m, h), ("up_proj", m, h), ("down_proj", h, m)] {
            out.push((format!("{p}.mlp.{name}.weight"), vec![rows, cols]));
            if cfg.mlp_bias {
                out.push((format!("{p}.mlp.{name}.bias"), vec![rows]));
            }
        }
    }
    out.push(("model.norm.weight".to_string(), vec![h]));
    if !cfg.tie_word_embeddings {
        out.push(("lm_head.weight".to_string(), vec![cfg.vocab_size, h]));
    }
    out
}

/// Model parameters by HF key, as f32 [`Var`]s on the CPU.
#[derive(Debug, Clone)]
pub struct ParamStore {
    vars: BTreeMap<String, Var>,
}

impl ParamStore {
    /// No parameters (the store of an inference-only model).
    pub(crate) fn empty() -> Self {
        Self { vars: BTreeMap::new() }
    }

    /// Loads every parameter the config needs from a checkpoint, checking shapes.
    ///
    /// Tensors in the checkpoint that the model does not use (e.g. a stored `lm_head` of a tied model, or old
    /// `rotary_emb.inv_freq` buffers) are reported with `tracing::warn` and skipped.
    pub fn from_checkpoint(ckpt: &Checkpoint) -> Result<Self> {
        let shapes = param_shapes(ckpt.config());
        let mut vars = BTreeMap::new();
        for (name, shape) in &shapes {
            let t = ckpt.load_f32(name, shape)?;
            vars.insert(name.clone(), Var::from_tensor(&t)?);
        }
        let unused: Vec<String> = ckpt.tensor_names().into_iter().filter(|n| !vars.contains_key(n)).collect();
        if !unused.is_empty() {
            tracing::warn!(dir = %ckpt.dir().display(), ?unused, "checkpoint tensors not used by the model");
        }
        Ok(Self { vars })
    }

    /// Random initialisation as `transformers` does it: linear and embedding weights ~ N(0, initializer_range),
    /// biases zero, RMSNorm weights one. Each tensor draws from its own stream seeded by `seed` and its name,
    /// so the result does not depend on iteration order.
    ///
    /// Errors: parameters whose f32 values need more than this machine's memory (checked before allocating).
    pub fn random(cfg: &Config, seed: u64) -> Result<Self> {
        check_fits_in_memory(cfg)?;
        let normal = Normal::new(0.0f32, cfg.initializer_range as f32)
            .map_err(|e| ModelError::Input(format!("initializer_range {}: {e}", cfg.initializer_range)))?;
        let mut vars = BTreeMap::new();
        for (name, shape) in param_shapes(cfg) {
            let n: usize = shape.iter().product();
            let t = if name.ends_with("norm.weight") {
                Tensor::ones(shape.as_slice(), DType::F32, &Device::Cpu)?
            } else if name.ends_with(".bias") {
                Tensor::zeros(shape.as_slice(), DType::F32, &Device::Cpu)?
            } else {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ hashi_core::fnv1a(name.as_bytes()));
                let data: Vec<f32> = (0..n).map(|_| normal.sample(&mut rng)).collect();
                Tensor::from_vec(data, shape.as_slice(), &Device::Cpu)?
            };
            vars.insert(name, Var::from_tensor(&t)?);
        }
        Ok(Self { vars })
    }

    /// Parameters from named tensors (converted to f32 variables).
    pub fn from_tensors(tensors: impl IntoIterator<Item = (String, Tensor)>) -> Result<Self> {
        let vars = tensors
            .into_iter()
            .map(|(k, t)| Ok((k, Var::from_tensor(&t.to_dtype(DType::F32)?)?)))
            .collect::<Result<BTreeMap<_, _>>>()?;
        Ok(Self { vars })
    }

    /// The parameter `name`.
    pub fn get(&self, name: &str) -> Result<&Var> {
        self.vars
            .get(name)
            .ok_or_else(|| ModelError::Input(format!("the model has no parameter named {name}")))
    }

    /// All parameters, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Var)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Total number of scalar parameters.
    pub fn num_params(&self) -> usize {
        self.vars.values().map(|v| v.elem_count()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Family;

    #[test]
    fn param_count_is_the_sum_of_the_shapes_and_refuses_overflow() {
        for name in Config::PRESETS {
            let base = Config::preset(name).expect("preset");
            for (family, attention_bias, mlp_bias, tied) in [
                (Family::Llama, false, false, true),
                (Family::Llama, true, true, false),
                (Family::Qwen2, false, false, false),
            ] {
                let cfg =
                    Config { family, attention_bias, mlp_bias, tie_word_embeddings: tied, ..base.clone() };
                let sum: usize = param_shapes(&cfg).iter().map(|(_, s)| s.iter().product::<usize>()).sum();
                assert_eq!(param_count(&cfg), Some(sum as u64), "{name} {family:?}");
            }
        }
        let huge = Config {
            vocab_size: 1 << 40,
            hidden_size: 1 << 40,
            ..Config::preset(Config::PRESETS[0]).expect("p")
        };
        assert_eq!(param_count(&huge), None);
        let big = Config { hidden_size: 1 << 20, intermediate_size: 1 << 20, ..huge.clone() };
        let big = Config { vocab_size: 8000, ..big };
        assert!(check_fits_in_memory(&big).is_err_and(|e| e.to_string().contains("GiB")));
    }
}
