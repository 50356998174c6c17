//! AdamW on the device, with the arithmetic and the state file of hashi's CPU optimizer (`hashi-train`): decay
//! on matrices only, global-norm clipping, frozen prefixes and row ranges (for the first `freeze_steps` steps or
//! the whole run), moments saved as `m.NAME` / `v.NAME` (flat f32, HF names) and `step` — so a run can move
//! between the CPU and GPU backends.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Deserialize;
use tch::{Device, Kind, Tensor};

use crate::model::{Param, split};

/// The optimizer settings, hashi's own type.
pub use hashi_core::AdamWConfig as OptConfig;

/// The optimizer.
pub struct AdamW {
    cfg: OptConfig,
    step: u64,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Per parameter: frozen by prefix (while freezing).
    frozen: Vec<bool>,
    /// Per parameter: frozen row ranges in the (possibly fused) tensor.
    rows: Vec<Vec<(i64, i64)>>,
}

impl AdamW {
    pub fn new(cfg: OptConfig, params: &[Param]) -> Result<AdamW, String> {
        let mut frozen = vec![];
        let mut rows = vec![];
        let mut known = std::collections::HashSet::new();
        for p in params {
            let hits = p.parts.iter().filter(|(n, _)| cfg.freeze.iter().any(|f| n.starts_with(f.as_str()))).count();
            if hits != 0 && hits != p.parts.len() {
                return Err(format!(
                    "freeze: {} are one fused tensor in the torch backend; freeze all of them or none",
                    p.parts.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
            frozen.push(hits != 0);
            let mut r = vec![];
            let mut offset = 0;
            for (name, n) in &p.parts {
                known.insert(name.clone());
                for [s, e] in cfg.freeze_rows.get(name).into_iter().flatten() {
                    if s >= e || *e as i64 > *n {
                        return Err(format!("freeze_rows: {name} [{s}, {e}) is not within its {n} rows"));
                    }
                    r.push((offset + *s as i64, (e - s) as i64));
                }
                offset += n;
            }
            rows.push(r);
        }
        if let Some(bad) = cfg.freeze_rows.keys().find(|k| !known.contains(*k)) {
            return Err(format!("freeze_rows: no parameter {bad}"));
        }
        let zeros = |p: &Param| tch::no_grad(|| p.w.zeros_like());
        Ok(AdamW {
            m: params.iter().map(zeros).collect(),
            v: params.iter().map(zeros).collect(),
            cfg,
            step: 0,
            frozen,
            rows,
        })
    }

    /// One update from the gradients in `params` (multiplied by `grad_scale` first); zeroes the gradients.
    /// Returns the global gradient norm and whether it was clipped.
    pub fn step(&mut self, params: &[Param], lr: f64, grad_scale: f64) -> Result<(f64, bool), String> {
        let freezing = self.cfg.freeze_steps == 0 || self.step < self.cfg.freeze_steps;
        let active: Vec<usize> = (0..params.len()).filter(|&i| !(freezing && self.frozen[i])).collect();
        let result = tch::no_grad(|| {
            let grads: Vec<Tensor> = active
                .iter()
                .map(|&i| {
                    let g = params[i].w.grad();
                    if g.defined() { g } else { params[i].w.zeros_like() }
                })
                .collect();
            let sq: Vec<Tensor> = grads.iter().map(|g| g.square().sum(Kind::Double)).collect();
            let norm = Tensor::stack(&sq, 0).sum(Kind::Double).sqrt().double_value(&[]) * grad_scale;
            if !norm.is_finite() {
                return Err(format!("non-finite values: gradient norm is {norm}"));
            }
            let coef = if self.cfg.clip > 0.0 { (self.cfg.clip / (norm + 1e-6)).min(1.0) } else { 1.0 };
            self.step += 1;
            let t = self.step as f64;
            let (b1, b2, eps, wd) = (self.cfg.beta1, self.cfg.beta2, self.cfg.eps, self.cfg.weight_decay);
            let bc2_sqrt = (1.0 - b2.powf(t)).sqrt();
            let step_size = lr / (1.0 - b1.powf(t));
            let scale = grad_scale * coef;
            for (k, &i) in active.iter().enumerate() {
                let mut g = grads[k].shallow_clone();
                let mut p = params[i].w.shallow_clone();
                let keep: Vec<(i64, i64, Tensor, Tensor, Tensor)> = if freezing {
                    self.rows[i]
                        .iter()
                        .map(|&(s, n)| (s, n, p.narrow(0, s, n).copy(), self.m[i].narrow(0, s, n).copy(), self.v[i].narrow(0, s, n).copy()))
                        .collect()
                } else {
                    vec![]
                };
                let _ = g.g_mul_scalar_(scale);
                if params[i].decay {
                    let _ = p.g_mul_scalar_(1.0 - lr * wd);
                }
                let _ = self.m[i].lerp_(&g, 1.0 - b1);
                let _ = self.v[i].g_mul_scalar_(b2).g_add_(&(g.square().g_mul_scalar_(1.0 - b2)));
                let denom = self.v[i].sqrt().g_div_scalar_(bc2_sqrt).g_add_scalar_(eps);
                let _ = p.g_sub_(&((&self.m[i] / denom).g_mul_scalar_(step_size)));
                for (s, n, pw, m, v) in keep {
                    p.narrow(0, s, n).copy_(&pw);
                    self.m[i].narrow(0, s, n).copy_(&m);
                    self.v[i].narrow(0, s, n).copy_(&v);
                }
            }
            Ok((norm, coef < 1.0))
        });
        self.zero_grad(params);
        result
    }

    /// Drops accumulated gradients.
    pub fn zero_grad(&self, params: &[Param]) {
        for p in params {
            let mut w = p.w.shallow_clone();
            w.zero_grad();
        }
    }

    /// Writes the state in hashi's CPU layout.
    pub fn save(&self, params: &[Param], path: &Path) -> Result<(), String> {
        let mut out: Vec<(String, Tensor)> = vec![];
        for (i, p) in params.iter().enumerate() {
            for (prefix, t) in [("m", &self.m[i]), ("v", &self.v[i])] {
                for (name, part) in split(p, t) {
                    out.push((format!("{prefix}.{name}"), part.flatten(0, -1)));
                }
            }
        }
        out.push(("step".into(), Tensor::from_slice(&[self.step as i64])));
        Tensor::write_safetensors(&out, path).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Reads a state written by [`AdamW::save`] or by hashi's CPU optimizer.
    pub fn load(&mut self, params: &[Param], path: &Path) -> Result<(), String> {
        let all: HashMap<String, Tensor> = Tensor::read_safetensors(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .into_iter()
            .collect();
        let get = |k: &str| all.get(k).ok_or_else(|| format!("{}: no {k}", path.display()));
        for (i, p) in params.iter().enumerate() {
            let shape = p.w.size();
            for (prefix, dst) in [("m", &mut self.m[i]), ("v", &mut self.v[i])] {
                let parts: Vec<Tensor> = p
                    .parts
                    .iter()
                    .map(|(name, rows)| {
                        let mut s = shape.clone();
                        s[0] = *rows;
                        get(&format!("{prefix}.{name}")).map(|t| t.to_kind(Kind::Float).reshape(&s))
                    })
                    .collect::<Result<_, _>>()?;
                let joined = Tensor::cat(&parts, 0);
                if joined.size() != shape {
                    return Err(format!("{}: {prefix}.{} has the wrong size", path.display(), p.name));
                }
                tch::no_grad(|| dst.copy_(&joined.to_device(p.w.device())));
            }
        }
        self.step = get("step")?.to_device(Device::Cpu).int64_value(&[0]) as u64;
        Ok(())
    }
}
