//! A phase's learning-rate curve in cluster-engine terms: what a schedule's `engine_schedule` hook returns and
//! `hashi export` hands to Megatron-LM / NeMo. [`EngineSchedule::lr`] is Megatron-LM's
//! `OptimizerParamScheduler.get_lr` (megatron-core 0.16) at a step counted from the job's start; the export
//! checks it against the schedule's own `lr` at every step, and the tests check it against megatron-core.

use serde::{Deserialize, Serialize};

/// Decay after the warmup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecayStyle {
    /// Half a cosine from max_lr to min_lr.
    Cosine,
    /// A straight line from max_lr to min_lr.
    Linear,
    /// max_lr throughout.
    Constant,
}

impl DecayStyle {
    /// The name Megatron-LM's `--lr-decay-style` and the schedule scripts use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cosine => "cosine",
            Self::Linear => "linear",
            Self::Constant => "constant",
        }
    }
}

/// One job's learning-rate schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSchedule {
    /// Decay after the warmup.
    pub style: DecayStyle,
    /// Peak learning rate.
    pub max_lr: f64,
    /// Final learning rate.
    pub min_lr: f64,
    /// Learning rate at step 0 of the warmup.
    pub warmup_init: f64,
    /// Warmup steps (`lr = max_lr` at this step).
    pub warmup_steps: u64,
    /// Steps until `min_lr`.
    pub decay_steps: u64,
}

impl EngineSchedule {
    /// Checks the constraints the engines assert.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.max_lr >= self.min_lr && self.min_lr >= 0.0) {
            return Err(format!("needs max_lr ≥ min_lr ≥ 0 (got {} and {})", self.max_lr, self.min_lr));
        }
        if !(0.0..=self.max_lr).contains(&self.warmup_init) {
            return Err(format!("warmup_init {} is not within [0, max_lr]", self.warmup_init));
        }
        if self.warmup_steps >= self.decay_steps {
            return Err(format!(
                "warmup_steps {} must be below decay_steps {}",
                self.warmup_steps, self.decay_steps
            ));
        }
        Ok(())
    }

    /// The learning rate at step `s` of the job (0-based: the LR of the job's first optimizer step is `lr(0)`).
    pub fn lr(&self, s: u64) -> f64 {
        let (w, d) = (self.warmup_steps, self.decay_steps);
        if w > 0 && s <= w {
            return self.warmup_init + (self.max_lr - self.warmup_init) * s as f64 / w as f64;
        }
        if self.style == DecayStyle::Constant {
            return self.max_lr;
        }
        if s > d {
            return self.min_lr;
        }
        let ratio = (s - w) as f64 / (d - w) as f64;
        let coeff = match self.style {
            DecayStyle::Cosine => 0.5 * ((std::f64::consts::PI * ratio).cos() + 1.0),
            DecayStyle::Linear => 1.0 - ratio,
            DecayStyle::Constant => 1.0,
        };
        self.min_lr + coeff * (self.max_lr - self.min_lr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        let s = EngineSchedule {
            style: DecayStyle::Cosine,
            max_lr: 1.0,
            min_lr: 0.1,
            warmup_init: 0.25,
            warmup_steps: 3,
            decay_steps: 13,
        };
        assert_eq!(s.lr(0), 0.25);
        assert_eq!(s.lr(3), 1.0);
        assert!((s.lr(8) - 0.55).abs() < 1e-12, "half-way down the cosine");
        assert_eq!(s.lr(13), 0.1);
        assert_eq!(s.lr(20), 0.1);
        assert!(s.validate().is_ok());
        assert!(EngineSchedule { warmup_steps: 13, ..s }.validate().is_err());
    }
}
