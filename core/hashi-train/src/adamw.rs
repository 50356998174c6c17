//! AdamW of our own (candle's has neither parameter groups nor saveable state), with PyTorch's arithmetic
//! (`torch.optim.AdamW`, decoupled weight decay, bias correction) so that trajectories match:
//!
//! `p ← p·(1 − lr·wd)`, `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
//! `p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)`.
//!
//! Groups: weight decay applies to matrices (dim ≥ 2) only, never to norms and biases (nanoGPT's rule).
//! Global-norm clipping (PyTorch's `clip_grad_norm_`: coefficient `max/(norm + 1e-6)`, at most 1) comes first.
//! Parameters can be frozen by name prefix, and rows of matrices by range (e.g. train only the new rows of a
//! transferred embedding), for the whole run or its first N steps, or per curriculum phase ([`Trainable`], which
//! replaces those settings while it is set). Frozen entries keep their value and moments (their gradients still
//! count in the clipping norm unless the whole parameter is frozen). The moments can restart (a phase that sets
//! `reset_moments`): zeros, and bias correction counted from that step. Moments are saved and loaded as
//! safetensors.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, Device, InplaceOp2, Layout, Storage, Tensor};
use hashi_model::ParamStore;
use rayon::prelude::*;

pub use hashi_core::{AdamWConfig, StepStats, Trainable};

use crate::error::{Result, TrainError};

#[derive(Debug, Clone)]
struct Moments {
    m: Vec<f32>,
    v: Vec<f32>,
    decay: bool,
}

/// The optimizer and its state.
#[derive(Debug, Clone)]
pub struct AdamW {
    cfg: AdamWConfig,
    /// Steps taken.
    step: u64,
    /// The step count when the moments last restarted (bias correction counts from there).
    moments_from: u64,
    /// What trains in the current phase, when it sets its own recipe.
    phase: Option<Trainable>,
    state: BTreeMap<String, Moments>,
}

impl AdamW {
    /// A fresh optimizer for `params` (logs the group sizes).
    pub fn new(cfg: AdamWConfig, params: &ParamStore) -> Self {
        let mut state = BTreeMap::new();
        let (mut decay, mut no_decay, mut frozen) = (0usize, 0usize, 0usize);
        for (name, var) in params.iter() {
            let n = var.elem_count();
            if cfg.freeze.iter().any(|p| name.starts_with(p.as_str())) {
                frozen += n;
            }
            let d = var.rank() >= 2;
            if d {
                decay += n
            } else {
                no_decay += n
            }
            state.insert(name.to_string(), Moments { m: vec![0.0; n], v: vec![0.0; n], decay: d });
        }
        tracing::info!(decay, no_decay, frozen, "AdamW parameter groups (elements)");
        Self { cfg, step: 0, moments_from: 0, phase: None, state }
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The settings.
    pub fn config(&self) -> &AdamWConfig {
        &self.cfg
    }

    /// From the next step on, updates what `trainable` allows (`None`: the settings' `freeze`, `freeze_rows`,
    /// `freeze_steps` again).
    pub fn set_trainable(&mut self, trainable: Option<Trainable>) {
        self.phase = trainable;
    }

    /// Moments to zero; bias correction counts steps from here (a fresh `torch.optim.AdamW`).
    pub fn reset_moments(&mut self) {
        for m in self.state.values_mut() {
            m.m.fill(0.0);
            m.v.fill(0.0);
        }
        self.moments_from = self.step;
    }

    /// Whether parameter `name` is left out of the next update.
    fn frozen(&self, name: &str, freezing: bool) -> bool {
        match &self.phase {
            Some(t) => !t.trains(name),
            None => freezing && self.cfg.freeze.iter().any(|p| name.starts_with(p.as_str())),
        }
    }

    /// Row ranges of `name` left out of the next update.
    fn frozen_rows(&self, name: &str, freezing: bool) -> Vec<[usize; 2]> {
        let rows = match &self.phase {
            Some(t) => t.frozen_rows.get(name),
            None if freezing => self.cfg.freeze_rows.get(name),
            None => None,
        };
        rows.cloned().unwrap_or_default()
    }

    /// One update of `params` from `grads` at learning rate `lr`; `grad_scale` multiplies every gradient first
    /// (1/accumulation steps). In place: the gradients are read where backprop left them and each parameter is
    /// rewritten in its own storage, so the step holds no copy of the model or of its gradients.
    pub fn step(
        &mut self,
        params: &ParamStore,
        grads: &GradStore,
        lr: f64,
        grad_scale: f64,
    ) -> Result<StepStats> {
        let freezing = self.cfg.freeze_steps == 0 || self.step < self.cfg.freeze_steps;
        // (name, parameter, gradient): a parameter without a gradient steps with a zero one (decay, moments).
        let mut todo: Vec<(&str, &candle_core::Var, Tensor)> = Vec::with_capacity(self.state.len());
        for (name, var) in params.iter() {
            if !self.state.contains_key(name) || self.frozen(name, freezing) {
                continue;
            }
            let g = match grads.get(var.as_tensor()) {
                Some(g) => g.contiguous()?,
                None => var.as_tensor().zeros_like()?,
            };
            todo.push((name, var, g));
        }
        // Per-tensor sums in parallel, added in a fixed order: rayon's own float `sum` depends on how the work
        // was split, and resume must be bitwise exact.
        let sums = todo
            .par_iter()
            .map(|(_, _, g)| {
                with_f32(g, |g| {
                    g.iter().map(|&x| f64::from(x) * f64::from(x) * grad_scale * grad_scale).sum::<f64>()
                })
            })
            .collect::<Result<Vec<f64>>>()?;
        let norm: f64 = sums.iter().sum::<f64>().sqrt();
        if !norm.is_finite() {
            return Err(TrainError::NonFinite(format!("gradient norm is {norm}")));
        }
        let coef = if self.cfg.clip > 0.0 { (self.cfg.clip / (norm + 1e-6)).min(1.0) } else { 1.0 };
        self.step += 1;
        let t = (self.step - self.moments_from) as f64;
        let (b1, b2, eps, wd) = (self.cfg.beta1, self.cfg.beta2, self.cfg.eps, self.cfg.weight_decay);
        let bc1 = 1.0 - b1.powf(t);
        let bc2_sqrt = (1.0 - b2.powf(t)).sqrt();
        for (name, var, g) in todo {
            let frozen_rows = self.frozen_rows(name, freezing);
            let cols = var.dims().last().copied().unwrap_or(1).max(1);
            let mom = self
                .state
                .get_mut(name)
                .ok_or_else(|| TrainError::State(format!("no moments for {name}")))?;
            let update = Update {
                name,
                moments: std::sync::Mutex::new((&mut mom.m, &mut mom.v)),
                spans: trained_spans(var.elem_count(), cols, &frozen_rows),
                scale: (grad_scale * coef) as f32,
                decay: if mom.decay { (1.0 - lr * wd) as f32 } else { 1.0 },
                step_size: (lr / bc1) as f32,
                b1: b1 as f32,
                b2: b2 as f32,
                bc2: bc2_sqrt as f32,
                eps: eps as f32,
            };
            var.as_tensor().inplace_op2(&g, &update)?;
        }
        Ok(StepStats { grad_norm: norm, clipped: coef < 1.0 })
    }

    /// Saves the moments (`m.NAME`, `v.NAME`) and the step count.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut tensors = std::collections::HashMap::new();
        for (name, mo) in &self.state {
            tensors.insert(format!("m.{name}"), Tensor::from_slice(&mo.m, mo.m.len(), &Device::Cpu)?);
            tensors.insert(format!("v.{name}"), Tensor::from_slice(&mo.v, mo.v.len(), &Device::Cpu)?);
        }
        tensors.insert("step".into(), Tensor::from_slice(&[self.step as i64], 1, &Device::Cpu)?);
        if self.moments_from > 0 {
            let from = [self.moments_from as i64];
            tensors.insert("moments_from".into(), Tensor::from_slice(&from, 1, &Device::Cpu)?);
        }
        candle_core::safetensors::save(&tensors, path)
            .map_err(|e| TrainError::State(format!("{}: {e}", path.display())))
    }

    /// Loads moments saved by [`AdamW::save`] (same parameters).
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let t = candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(|e| TrainError::State(format!("{}: {e}", path.display())))?;
        for (name, mo) in self.state.iter_mut() {
            let get = |k: String| -> Result<Vec<f32>> {
                t.get(&k)
                    .ok_or_else(|| TrainError::State(format!("{}: no {k}", path.display())))?
                    .to_vec1::<f32>()
                    .map_err(Into::into)
            };
            mo.m = get(format!("m.{name}"))?;
            mo.v = get(format!("v.{name}"))?;
        }
        let step = t.get("step").ok_or_else(|| TrainError::State(format!("{}: no step", path.display())))?;
        self.step = step.to_vec1::<i64>()?[0] as u64;
        self.moments_from = match t.get("moments_from") {
            Some(f) => f.to_vec1::<i64>()?[0] as u64,
            None => 0,
        };
        if self.moments_from > self.step {
            return Err(TrainError::State(format!(
                "{}: moments_from {} is after step {}",
                path.display(),
                self.moments_from,
                self.step
            )));
        }
        Ok(())
    }
}

/// `f` over the f32 elements of a contiguous CPU tensor, read in place.
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let (Storage::Cpu(cpu), Some((a, b))) = (&*storage, layout.contiguous_offsets()) else {
        return Err(TrainError::State("AdamW: gradients must be contiguous CPU tensors".into()));
    };
    Ok(f(&cpu.as_slice::<f32>()?[a..b]))
}

/// The element ranges `[start, end)` of a `[n / cols, cols]` parameter outside its frozen row ranges.
fn trained_spans(n: usize, cols: usize, frozen_rows: &[[usize; 2]]) -> Vec<(usize, usize)> {
    let mut frozen: Vec<(usize, usize)> = frozen_rows
        .iter()
        .map(|&[a, b]| ((a * cols).min(n), (b * cols).min(n)))
        .filter(|(a, b)| a < b)
        .collect();
    frozen.sort_unstable();
    let (mut spans, mut at) = (vec![], 0);
    for (a, b) in frozen {
        if a > at {
            spans.push((at, a));
        }
        at = at.max(b);
    }
    if at < n {
        spans.push((at, n));
    }
    spans
}

/// The AdamW update of one parameter, in its storage (PyTorch's arithmetic, see the module docs); only the
/// elements in `spans` change, parameter and moments alike.
struct Update<'a> {
    name: &'a str,
    moments: std::sync::Mutex<(&'a mut Vec<f32>, &'a mut Vec<f32>)>,
    spans: Vec<(usize, usize)>,
    scale: f32,
    decay: f32,
    step_size: f32,
    b1: f32,
    b2: f32,
    bc2: f32,
    eps: f32,
}

impl InplaceOp2 for Update<'_> {
    fn name(&self) -> &'static str {
        "hashi-adamw"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let err = |m: &str| candle_core::Error::Msg(format!("AdamW, {}: {m}", self.name));
        let (CpuStorage::F32(p), Some((p0, p1)), Some((g0, g1))) =
            (s1, l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            return Err(err("parameter and gradient must be contiguous f32"));
        };
        let (p, g) = (&mut p[p0..p1], &s2.as_slice::<f32>()?[g0..g1]);
        let mut moments = self.moments.lock().map_err(|_| err("moments poisoned"))?;
        let (m, v) = &mut *moments;
        if p.len() != g.len() || p.len() != m.len() || p.len() != v.len() {
            return Err(err("parameter, gradient and moments differ in size"));
        }
        let Self { scale, decay, step_size, b1, b2, bc2, eps, .. } = *self;
        for &(a, b) in &self.spans {
            p[a..b]
                .par_iter_mut()
                .zip(m[a..b].par_iter_mut().zip(v[a..b].par_iter_mut()))
                .zip(g[a..b].par_iter())
                .for_each(|((p, (m, v)), &g)| {
                    let g = g * scale;
                    *p *= decay;
                    *m += (1.0 - b1) * (g - *m);
                    *v = *v * b2 + (1.0 - b2) * g * g;
                    *p -= step_size * *m / (v.sqrt() / bc2 + eps);
                });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_parameters_and_rows_stay_put_for_the_first_steps() {
        let w = Tensor::arange(0f32, 12.0, &Device::Cpu).expect("w").reshape((4, 3)).expect("reshape");
        let b = Tensor::ones(4, candle_core::DType::F32, &Device::Cpu).expect("b");
        let params = ParamStore::from_tensors([("w".to_string(), w), ("b".to_string(), b)]).expect("params");
        let cfg = AdamWConfig {
            freeze: vec!["b".into()],
            freeze_rows: BTreeMap::from([("w".to_string(), vec![[0, 2]])]),
            freeze_steps: 2,
            ..Default::default()
        };
        let mut opt = AdamW::new(cfg, &params);
        let snapshot =
            |n: &str| params.get(n).expect("p").flatten_all().expect("f").to_vec1::<f32>().expect("v");
        let (w0, b0) = (snapshot("w"), snapshot("b"));
        let step = |opt: &mut AdamW| {
            let loss = (params.get("w").expect("w").sqr().expect("sq").sum_all().expect("s")
                + params.get("b").expect("b").sqr().expect("sq").sum_all().expect("s"))
            .expect("loss");
            opt.step(&params, &loss.backward().expect("grads"), 0.1, 1.0).expect("step");
        };
        step(&mut opt);
        step(&mut opt);
        let (w2, b2) = (snapshot("w"), snapshot("b"));
        assert_eq!(b2, b0, "a frozen parameter does not move");
        assert_eq!(w2[..6], w0[..6], "frozen rows do not move");
        assert!(w2[6..].iter().zip(&w0[6..]).all(|(a, b)| a != b), "the other rows train");
        step(&mut opt);
        let (w3, b3) = (snapshot("w"), snapshot("b"));
        assert_ne!(b3, b2, "unfrozen after freeze_steps");
        assert_ne!(w3[..6], w2[..6]);
    }

    #[test]
    fn restarted_moments_step_like_a_fresh_optimizer_and_a_phase_trains_only_what_it_names() {
        let make = || {
            let w = Tensor::arange(0f32, 12.0, &Device::Cpu).expect("w").reshape((4, 3)).expect("reshape");
            let b = Tensor::ones(4, candle_core::DType::F32, &Device::Cpu).expect("b");
            ParamStore::from_tensors([("w".to_string(), w), ("b".to_string(), b)]).expect("params")
        };
        let grads = |params: &ParamStore| {
            let (w, b) = (params.get("w").expect("w"), params.get("b").expect("b"));
            let loss =
                (w.sqr().expect("sq").sum_all().expect("sum") + b.sum_all().expect("sum")).expect("add");
            loss.backward().expect("grads")
        };
        let values = |params: &ParamStore| {
            ["w", "b"]
                .map(|n| params.get(n).expect("p").flatten_all().expect("f").to_vec1::<f32>().expect("v"))
        };
        // Three steps, a restart, one step == that state stepped once by a fresh optimizer.
        let (a, b) = (make(), make());
        let mut opt = AdamW::new(AdamWConfig::default(), &a);
        for _ in 0..3 {
            opt.step(&a, &grads(&a), 0.1, 1.0).expect("step");
        }
        for n in ["w", "b"] {
            b.get(n).expect("p").set(&a.get(n).expect("p").as_tensor().copy().expect("copy")).expect("set");
        }
        opt.reset_moments();
        opt.step(&a, &grads(&a), 0.1, 1.0).expect("step");
        AdamW::new(AdamWConfig::default(), &b).step(&b, &grads(&b), 0.1, 1.0).expect("step");
        assert_eq!(values(&a), values(&b), "a restarted optimizer steps exactly like a fresh one");
        // A phase that trains only `w` rows 2..4: `b` and rows 0..2 stay; `None` returns to the settings.
        let before = values(&a);
        opt.set_trainable(Some(Trainable {
            only: Some(vec!["w".into()]),
            frozen_rows: BTreeMap::from([("w".to_string(), vec![[0, 2]])]),
        }));
        opt.step(&a, &grads(&a), 0.1, 1.0).expect("step");
        let after = values(&a);
        assert_eq!(after[1], before[1], "b is not in the phase's params");
        assert_eq!(after[0][..6], before[0][..6], "frozen rows stay");
        assert!(after[0][6..].iter().zip(&before[0][6..]).all(|(x, y)| x != y), "new rows move");
        opt.set_trainable(None);
        opt.step(&a, &grads(&a), 0.1, 1.0).expect("step");
        assert_ne!(values(&a)[1], after[1], "back to the settings: b trains again");
    }
}
