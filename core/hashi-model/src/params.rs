//! The parameters of a Llama-family model (Llama, Mistral, Qwen2) by HF key name, as trainable candle variables.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

use crate::checkpoint::Checkpoint;
use crate::config::Config;
use crate::error::{ModelError, Result};

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
    pub fn random(cfg: &Config, seed: u64) -> Result<Self> {
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
