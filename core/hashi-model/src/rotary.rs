//! Rotary position embedding (RoPE) frequencies and their scaled variants, ported from transformers'
//! `modeling_rope_utils.py` (v5.23): `default`, `linear` (`_compute_linear_scaling_rope_parameters`),
//! `dynamic` (`_compute_dynamic_ntk_parameters` with `dynamic_rope_update`), `llama3`
//! (`_compute_llama3_parameters`, Llama 3.1 frequency bands) and `yarn` (`_compute_yarn_parameters`, with its
//! attention factor applied to cos/sin). The parameters come from either layout of `config.json`: v4's
//! top-level `rope_theta` + `rope_scaling`, or v5's `rope_parameters` (keys `rope_type` or the old `type`).
//!
//! The tables are built here in f64 and handed to the model as f32 `cos`/`sin` of shape `[seq, head_dim]`
//! (`emb = cat(freqs, freqs)`, as HF does), which feed the project's own differentiable rope op.
//!
//! Not supported (refused with the key named): `longrope`, `proportional`, `partial_rotary_factor` other
//! than 1, per-layer-type nested `rope_parameters`. `dynamic` is stateless here: the frequencies of a call depend
//! only on its last position (`max(position) + 1`, floored at `max_position_embeddings`), which is what
//! transformers computes for a fresh model, for a training forward and for a generation whose prompt fits in
//! `max_position_embeddings`; transformers' module additionally keeps the longest length seen so far between
//! calls (a cache we do not imitate).

use candle_core::{Device, Tensor};
use serde_json::{Map, Value};

use crate::error::Result;

/// How rotary position embeddings are scaled (`rope_type` and its parameters).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeScaling {
    /// Plain RoPE (`rope_type: "default"`).
    None,
    /// `inv_freq / factor` (`rope_type: "linear"`, position interpolation).
    Linear {
        /// The divisor (> 0).
        factor: f64,
    },
    /// Dynamic NTK: past `max_position_embeddings` the base grows with the sequence length `L`:
    /// `base · (factor · L / max_position_embeddings − (factor − 1))^(dim / (dim − 2))`.
    Dynamic {
        /// The scaling factor (> 0).
        factor: f64,
    },
    /// Llama 3.1: low frequencies divided by `factor`, high ones kept, a smooth ramp between the two bands.
    Llama3 {
        /// Divisor of the low frequencies (> 0; 8 in Llama 3.1).
        factor: f64,
        /// Wavelengths above `original_max_position_embeddings / low_freq_factor` are divided (1 in Llama 3.1).
        low_freq_factor: f64,
        /// Wavelengths below `original_max_position_embeddings / high_freq_factor` are kept (4 in Llama 3.1).
        high_freq_factor: f64,
        /// Context length of pretraining (8192 in Llama 3.1).
        original_max_position_embeddings: usize,
    },
    /// YaRN (Peng et al. 2023, arXiv:2309.00071): NTK-by-parts interpolation plus an attention factor on cos/sin.
    Yarn {
        /// Ratio of the extended to the original context (> 0).
        factor: f64,
        /// Context length of pretraining.
        original_max_position_embeddings: usize,
        /// Multiplier of cos/sin; when absent, derived from `factor` (and `mscale`/`mscale_all_dim`).
        attention_factor: Option<f64>,
        /// Rotations bounding extrapolation (32 when absent or 0).
        beta_fast: Option<f64>,
        /// Rotations bounding interpolation (1 when absent or 0).
        beta_slow: Option<f64>,
        /// Numerator scale of the derived attention factor (DeepSeek style).
        mscale: Option<f64>,
        /// Denominator scale of the derived attention factor.
        mscale_all_dim: Option<f64>,
        /// Whether the correction range is rounded outwards to whole dimensions (true when absent).
        truncate: Option<bool>,
    },
}

/// The RoPE types we build, for messages.
const SUPPORTED: &str = "\"default\", \"linear\", \"dynamic\", \"llama3\", \"yarn\"";

/// Default RoPE base of transformers (`RotaryEmbeddingConfigMixin.default_theta`).
pub(crate) const DEFAULT_THETA: f64 = 10_000.0;

/// What [`RopeScaling::from_hf`] reads from `config.json`.
pub(crate) struct RopeKeys<'a> {
    /// Top-level `rope_theta` (v4 layout).
    pub rope_theta: Option<f64>,
    /// Top-level `rope_scaling` (v4 layout).
    pub rope_scaling: Option<&'a Value>,
    /// `rope_parameters` (v5 layout).
    pub rope_parameters: Option<&'a Value>,
    /// A top-level `original_max_position_embeddings`, which transformers prefers over the one in the dict.
    pub original_max_position_embeddings: Option<&'a Value>,
    /// `max_position_embeddings`, the default of `original_max_position_embeddings`.
    pub max_position_embeddings: usize,
}

impl RopeScaling {
    /// Parses and validates RoPE settings the way transformers' `convert_rope_params_to_dict` and
    /// `standardize_rope_params` resolve them: a non-empty `rope_scaling` wins over `rope_parameters`, a
    /// `rope_theta` inside the dict wins over the top-level one (default 10000), a missing `rope_type` is
    /// `"default"`, and `original_max_position_embeddings` defaults to `max_position_embeddings`.
    ///
    /// Returns `(rope_theta, scaling)`, or a message naming the offending key.
    pub(crate) fn from_hf(keys: &RopeKeys<'_>) -> std::result::Result<(f64, Self), String> {
        let scaling = keys.rope_scaling.filter(|v| !is_empty(v)).map(|v| ("rope_scaling", v));
        let found =
            scaling.or_else(|| keys.rope_parameters.filter(|v| !is_empty(v)).map(|v| ("rope_parameters", v)));
        let Some((name, value)) = found else {
            return Ok((theta("rope_theta", keys.rope_theta)?, Self::None));
        };
        let Value::Object(p) = value else {
            return Err(format!("{name} must be an object, got {value}"));
        };
        if let Some((k, _)) = p.iter().find(|(_, v)| v.is_object()) {
            return Err(format!(
                "{name}.{k}: RoPE parameters nested per layer type are not supported (one dict for all layers)"
            ));
        }
        let key = |k: &str| format!("{name}.{k}");
        let in_dict = match p.get("rope_theta") {
            None | Some(Value::Null) => None,
            Some(v) => {
                Some(v.as_f64().ok_or_else(|| format!("{} must be a number, got {v}", key("rope_theta")))?)
            }
        };
        let rope_theta = match in_dict {
            Some(t) => theta(&key("rope_theta"), Some(t))?,
            None => theta("rope_theta", keys.rope_theta)?,
        };
        if let Some(v) = p.get("partial_rotary_factor")
            && v.as_f64() != Some(1.0)
        {
            return Err(format!(
                "{} = {v} is not supported (only 1.0: RoPE over the whole head)",
                key("partial_rotary_factor")
            ));
        }
        let kind = match p.get("rope_type").or_else(|| p.get("type")) {
            None | Some(Value::Null) => "default",
            Some(Value::String(s)) => s.as_str(),
            Some(v) => return Err(format!("{} must be a string, got {v}", key("rope_type"))),
        };
        let factor = || positive(&key("factor"), p.get("factor"), kind);
        let original = || -> std::result::Result<usize, String> {
            let (k, v) = match keys.original_max_position_embeddings {
                Some(v) => ("original_max_position_embeddings".to_string(), v),
                None => match p.get("original_max_position_embeddings") {
                    Some(v) => (key("original_max_position_embeddings"), v),
                    None => return nonzero_len("max_position_embeddings", keys.max_position_embeddings),
                },
            };
            let n = v.as_u64().ok_or_else(|| format!("{k} must be a positive integer, got {v}"))?;
            nonzero_len(&k, n as usize)
        };
        let scaling = match kind {
            "default" => Self::None,
            "linear" => Self::Linear { factor: factor()? },
            "dynamic" => Self::Dynamic { factor: factor()? },
            "llama3" => {
                let low_freq_factor = positive(&key("low_freq_factor"), p.get("low_freq_factor"), kind)?;
                let high_freq_factor = positive(&key("high_freq_factor"), p.get("high_freq_factor"), kind)?;
                if high_freq_factor <= low_freq_factor {
                    return Err(format!(
                        "{} ({high_freq_factor}) must be greater than {} ({low_freq_factor})",
                        key("high_freq_factor"),
                        key("low_freq_factor")
                    ));
                }
                Self::Llama3 {
                    factor: factor()?,
                    low_freq_factor,
                    high_freq_factor,
                    original_max_position_embeddings: original()?,
                }
            }
            "yarn" => {
                let opt = |k: &str| optional_number(&key(k), p.get(k));
                let attention_factor = opt("attention_factor")?;
                if let Some(a) = attention_factor
                    && a <= 0.0
                {
                    return Err(format!("{} must be positive, got {a}", key("attention_factor")));
                }
                let truncate = match p.get("truncate") {
                    None | Some(Value::Null) => None,
                    Some(Value::Bool(b)) => Some(*b),
                    Some(v) => return Err(format!("{} must be true or false, got {v}", key("truncate"))),
                };
                Self::Yarn {
                    factor: factor()?,
                    original_max_position_embeddings: original()?,
                    attention_factor,
                    beta_fast: opt("beta_fast")?,
                    beta_slow: opt("beta_slow")?,
                    mscale: opt("mscale")?,
                    mscale_all_dim: opt("mscale_all_dim")?,
                    truncate,
                }
            }
            other => {
                return Err(format!(
                    "{} {other:?} is not supported (supported: {SUPPORTED})",
                    key("rope_type")
                ));
            }
        };
        Ok((rope_theta, scaling))
    }

    /// The v4 `rope_scaling` dict transformers reads back to this scaling (`None` for plain RoPE).
    pub fn to_hf_json(self) -> Option<Value> {
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        match self {
            Self::None => return None,
            Self::Linear { factor } => {
                put("rope_type", "linear".into());
                put("factor", factor.into());
            }
            Self::Dynamic { factor } => {
                put("rope_type", "dynamic".into());
                put("factor", factor.into());
            }
            Self::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings } => {
                put("rope_type", "llama3".into());
                put("factor", factor.into());
                put("low_freq_factor", low_freq_factor.into());
                put("high_freq_factor", high_freq_factor.into());
                put("original_max_position_embeddings", original_max_position_embeddings.into());
            }
            Self::Yarn {
                factor,
                original_max_position_embeddings,
                attention_factor,
                beta_fast,
                beta_slow,
                mscale,
                mscale_all_dim,
                truncate,
            } => {
                put("rope_type", "yarn".into());
                put("factor", factor.into());
                put("original_max_position_embeddings", original_max_position_embeddings.into());
                for (k, v) in [
                    ("attention_factor", attention_factor),
                    ("beta_fast", beta_fast),
                    ("beta_slow", beta_slow),
                    ("mscale", mscale),
                    ("mscale_all_dim", mscale_all_dim),
                ] {
                    if let Some(v) = v {
                        put(k, v.into());
                    }
                }
                if let Some(t) = truncate {
                    put("truncate", t.into());
                }
            }
        }
        Some(Value::Object(m))
    }

    /// The multiplier of cos and sin: YaRN's attention factor (`get_mscale` of `_compute_yarn_parameters`:
    /// `0.1 · m · ln(factor) + 1` for `factor > 1`), 1 for every other type.
    pub fn attention_factor(self) -> f64 {
        let Self::Yarn { factor, attention_factor, mscale, mscale_all_dim, .. } = self else { return 1.0 };
        let get_mscale = |scale: f64, m: f64| if scale <= 1.0 { 1.0 } else { 0.1 * m * scale.ln() + 1.0 };
        match (attention_factor, mscale, mscale_all_dim) {
            (Some(a), _, _) => a,
            // Python's `if mscale and mscale_all_dim`: both present and non-zero.
            (None, Some(m), Some(d)) if m != 0.0 && d != 0.0 => get_mscale(factor, m) / get_mscale(factor, d),
            _ => get_mscale(factor, 1.0),
        }
    }

    /// Inverse frequencies `[head_dim / 2]` for a call whose last position is `seq_len − 1`.
    ///
    /// `seq_len` matters only for `dynamic` (`_compute_dynamic_ntk_parameters`, called by `dynamic_rope_update`
    /// when the length exceeds `max_position_embeddings`; shorter calls use the unscaled frequencies).
    pub fn inv_freq(
        self,
        theta: f64,
        head_dim: usize,
        max_position_embeddings: usize,
        seq_len: usize,
    ) -> Vec<f64> {
        let dim = head_dim as f64;
        let plain = |base: f64| -> Vec<f64> {
            (0..head_dim / 2).map(|i| 1.0 / base.powf((2 * i) as f64 / dim)).collect()
        };
        match self {
            Self::None => plain(theta),
            Self::Linear { factor } => plain(theta).into_iter().map(|f| f / factor).collect(),
            Self::Dynamic { factor } => {
                if seq_len <= max_position_embeddings {
                    return plain(theta);
                }
                let ratio = factor * seq_len as f64 / max_position_embeddings as f64 - (factor - 1.0);
                plain(theta * ratio.powf(dim / (dim - 2.0)))
            }
            Self::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings } => {
                let old = original_max_position_embeddings as f64;
                let (low_wavelen, high_wavelen) = (old / low_freq_factor, old / high_freq_factor);
                plain(theta)
                    .into_iter()
                    .map(|f| {
                        let wavelen = 2.0 * std::f64::consts::PI / f;
                        if wavelen < high_wavelen {
                            f
                        } else if wavelen > low_wavelen {
                            f / factor
                        } else {
                            let smooth =
                                (old / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                            (1.0 - smooth) * f / factor + smooth * f
                        }
                    })
                    .collect()
            }
            Self::Yarn {
                factor, original_max_position_embeddings, beta_fast, beta_slow, truncate, ..
            } => {
                // `or 32` / `or 1` in transformers: a 0 means the default too.
                let beta_fast = beta_fast.filter(|&b| b != 0.0).unwrap_or(32.0);
                let beta_slow = beta_slow.filter(|&b| b != 0.0).unwrap_or(1.0);
                let max_pos = original_max_position_embeddings as f64;
                let correction_dim = |rotations: f64| {
                    dim * (max_pos / (rotations * 2.0 * std::f64::consts::PI)).ln() / (2.0 * theta.ln())
                };
                let (mut low, mut high) = (correction_dim(beta_fast), correction_dim(beta_slow));
                if truncate.unwrap_or(true) {
                    (low, high) = (low.floor(), high.ceil());
                }
                let (low, mut high) = (low.max(0.0), high.min(dim - 1.0));
                if low == high {
                    high += 0.001; // transformers' guard against a zero-width ramp
                }
                (0..head_dim / 2)
                    .map(|i| {
                        let pos_freq = theta.powf((2 * i) as f64 / dim);
                        let (extrapolation, interpolation) = (1.0 / pos_freq, 1.0 / (factor * pos_freq));
                        let ramp = ((i as f64 - low) / (high - low)).clamp(0.0, 1.0);
                        let extrapolation_factor = 1.0 - ramp;
                        interpolation * (1.0 - extrapolation_factor) + extrapolation * extrapolation_factor
                    })
                    .collect()
            }
        }
    }

    /// Whether the frequencies depend on the sequence length (and so positions past `max_position_embeddings`
    /// are what the type is for).
    pub fn is_dynamic(self) -> bool {
        matches!(self, Self::Dynamic { .. })
    }
}

/// `cos`/`sin` tables for a range of positions, as transformers' `*RotaryEmbedding.forward` builds them.
pub(crate) struct RopeTables {
    /// `cos(position · inv_freq) · attention_factor`, `[len, head_dim]` f32.
    pub cos: Tensor,
    /// `sin(position · inv_freq) · attention_factor`, `[len, head_dim]` f32.
    pub sin: Tensor,
}

/// Everything needed to build [`RopeTables`] for any call.
#[derive(Debug, Clone)]
pub(crate) struct Rotary {
    theta: f64,
    head_dim: usize,
    max_position_embeddings: usize,
    scaling: RopeScaling,
    /// The frequencies of every call of a non-dynamic type (f32, as transformers' buffer).
    inv_freq: Vec<f32>,
    attention_factor: f32,
}

impl Rotary {
    /// The rotary embedding of a config: base `theta`, `head_dim`, and its scaling.
    pub fn new(theta: f64, head_dim: usize, max_position_embeddings: usize, scaling: RopeScaling) -> Self {
        let inv_freq = scaling
            .inv_freq(theta, head_dim, max_position_embeddings, 0)
            .into_iter()
            .map(|f| f as f32)
            .collect();
        let attention_factor = scaling.attention_factor() as f32;
        Self { theta, head_dim, max_position_embeddings, scaling, inv_freq, attention_factor }
    }

    /// Tables for positions `offset..offset + len` (f32 products and cos/sin, like the HF module).
    pub fn tables(&self, offset: usize, len: usize) -> Result<RopeTables> {
        let dynamic;
        let inv_freq: &[f32] = if self.scaling.is_dynamic() {
            let f =
                self.scaling.inv_freq(self.theta, self.head_dim, self.max_position_embeddings, offset + len);
            dynamic = f.into_iter().map(|f| f as f32).collect::<Vec<_>>();
            &dynamic
        } else {
            &self.inv_freq
        };
        let half = inv_freq.len();
        let mut angles = Vec::with_capacity(len * half * 2);
        for p in offset..offset + len {
            let pos = p as f32;
            let row: Vec<f32> = inv_freq.iter().map(|f| pos * f).collect();
            angles.extend_from_slice(&row);
            angles.extend_from_slice(&row);
        }
        let angles = Tensor::from_vec(angles, (len, 2 * half), &Device::Cpu)?;
        let (cos, sin) = (angles.cos()?, angles.sin()?);
        if self.attention_factor == 1.0 {
            return Ok(RopeTables { cos, sin });
        }
        let a = f64::from(self.attention_factor);
        Ok(RopeTables { cos: cos.affine(a, 0.0)?, sin: sin.affine(a, 0.0)? })
    }
}

/// `null` or `{}`: no RoPE settings given (transformers treats both as absent).
fn is_empty(v: &Value) -> bool {
    v.is_null() || v.as_object().is_some_and(Map::is_empty)
}

fn theta(key: &str, value: Option<f64>) -> std::result::Result<f64, String> {
    match value {
        None => Ok(DEFAULT_THETA),
        Some(t) if t.is_finite() && t > 0.0 => Ok(t),
        Some(t) => Err(format!("{key} must be a positive finite number, got {t}")),
    }
}

/// A required, positive, finite number of a RoPE type.
fn positive(key: &str, value: Option<&Value>, kind: &str) -> std::result::Result<f64, String> {
    let v = value.ok_or_else(|| format!("{key} is missing (rope_type {kind:?} needs it)"))?;
    let x = v.as_f64().ok_or_else(|| format!("{key} must be a number, got {v}"))?;
    if !(x.is_finite() && x > 0.0) {
        return Err(format!("{key} must be a positive finite number, got {x}"));
    }
    Ok(x)
}

fn optional_number(key: &str, value: Option<&Value>) -> std::result::Result<Option<f64>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() => Ok(Some(x)),
            _ => Err(format!("{key} must be a finite number, got {v}")),
        },
    }
}

fn nonzero_len(key: &str, n: usize) -> std::result::Result<usize, String> {
    if n == 0 {
        return Err(format!("{key} must be positive"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn scaling_json(kind: &str, extra: Value) -> Value {
        let mut m = extra.as_object().cloned().unwrap_or_default();
        m.insert("rope_type".into(), kind.into());
        Value::Object(m)
    }

    fn parse(scaling: Value) -> std::result::Result<(f64, RopeScaling), String> {
        RopeScaling::from_hf(&RopeKeys {
            rope_theta: None,
            rope_scaling: Some(&scaling),
            rope_parameters: None,
            original_max_position_embeddings: None,
            max_position_embeddings: 64,
        })
    }

    #[test]
    fn each_type_round_trips_through_its_hf_dict() {
        for s in [
            scaling_json("linear", json!({"factor": 2.0})),
            scaling_json("dynamic", json!({"factor": 3.0})),
            scaling_json(
                "llama3",
                json!({"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                       "original_max_position_embeddings": 16}),
            ),
            scaling_json(
                "yarn",
                json!({"factor": 4.0, "original_max_position_embeddings": 16, "beta_fast": 16.0, "truncate": false}),
            ),
        ] {
            let (_, scaling) = parse(s.clone()).expect("valid");
            assert_eq!(scaling.to_hf_json(), Some(s));
        }
    }

    #[test]
    fn defaults_follow_transformers() {
        let (theta, s) = parse(scaling_json("yarn", json!({"factor": 4.0}))).expect("valid");
        assert_eq!(theta, DEFAULT_THETA);
        let RopeScaling::Yarn { original_max_position_embeddings, .. } = s else { panic!("{s:?}") };
        assert_eq!(original_max_position_embeddings, 64, "defaults to max_position_embeddings");
        assert!((s.attention_factor() - (0.1 * 4f64.ln() + 1.0)).abs() < 1e-12);
        let (_, s) = parse(json!({"type": "linear", "factor": 2.0})).expect("old `type` key");
        assert_eq!(s, RopeScaling::Linear { factor: 2.0 });
        let (_, s) = parse(json!({"factor": 2.0})).expect("no rope_type is default");
        assert_eq!(s, RopeScaling::None);
    }

    #[test]
    fn llama3_keeps_high_and_divides_low_frequencies() {
        let s = RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 64,
        };
        let (plain, scaled) = (RopeScaling::None.inv_freq(1e4, 32, 128, 0), s.inv_freq(1e4, 32, 128, 0));
        assert_eq!(scaled[0], plain[0], "the highest frequency is untouched");
        assert!((scaled[15] - plain[15] / 8.0).abs() < 1e-15, "the lowest is divided by factor");
        assert!(scaled.iter().zip(&plain).all(|(s, p)| *s <= *p && *s >= p / 8.0));
    }

    #[test]
    fn dynamic_only_changes_past_max_position_embeddings() {
        let s = RopeScaling::Dynamic { factor: 2.0 };
        assert_eq!(s.inv_freq(1e4, 16, 32, 32), RopeScaling::None.inv_freq(1e4, 16, 32, 32));
        let longer = s.inv_freq(1e4, 16, 32, 64);
        let base = 1e4 * (2.0f64 * 64.0 / 32.0 - 1.0).powf(16.0 / 14.0);
        assert!((longer[1] - 1.0 / base.powf(2.0 / 16.0)).abs() < 1e-15);
    }
}
