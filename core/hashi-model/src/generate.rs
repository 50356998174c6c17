//! Autoregressive generation with a KV cache: greedy (argmax, first index on ties like `torch.argmax`) or
//! sampled (temperature, top-k, top-p, seeded). The prompt is processed in one forward pass, then one token per
//! step; generation stops at an end-of-sequence id (which is kept in the output, as in `transformers`), after
//! `max_new_tokens`, or at the model's `max_position_embeddings` (except with `dynamic` RoPE, which exists to go
//! past it; see `Config::generation_limit`).

use candle_core::{Device, Tensor};
use hashi_core::Reporter;
use rand::SeedableRng;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;

use crate::error::{ModelError, Result};
use crate::llama::Llama;

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    /// The most likely token.
    Greedy,
    /// A draw from the (filtered, tempered) distribution.
    Sample {
        /// Logits are divided by this (> 0).
        temperature: f64,
        /// Keep only the k most likely tokens (0 = all).
        top_k: usize,
        /// Keep the smallest set of tokens whose probability reaches p (1.0 = all).
        top_p: f64,
        /// Seed of the sampler's random stream.
        seed: u64,
    },
}

/// Options of [`generate`].
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Most tokens to add.
    pub max_new_tokens: usize,
    /// Token choice.
    pub sampling: Sampling,
    /// Ids that end generation (the model's `eos_token_id` by default).
    pub stop_ids: Vec<u32>,
}

/// Continues `prompt` and returns only the new tokens.
pub fn generate(
    model: &Llama,
    prompt: &[u32],
    opts: &GenerateOptions,
    reporter: &dyn Reporter,
) -> Result<Vec<u32>> {
    if prompt.is_empty() {
        return Err(ModelError::Input("cannot generate from an empty prompt".into()));
    }
    if let Sampling::Sample { temperature, top_p, .. } = opts.sampling
        && (temperature <= 0.0 || !(0.0..=1.0).contains(&top_p) || top_p == 0.0)
    {
        return Err(ModelError::Input(format!(
            "sampling needs temperature > 0 and 0 < top_p <= 1 (got {temperature}, {top_p})"
        )));
    }
    let budget = match model.config().generation_limit() {
        Some(limit) => limit.saturating_sub(prompt.len()).min(opts.max_new_tokens),
        None => opts.max_new_tokens,
    };
    let mut rng = match opts.sampling {
        Sampling::Sample { seed, .. } => rand::rngs::StdRng::seed_from_u64(seed),
        Sampling::Greedy => rand::rngs::StdRng::seed_from_u64(0),
    };
    reporter.start("generating", Some(budget as u64), "tok");
    let mut cache = model.new_cache();
    let mut input = prompt.to_vec();
    let mut out = Vec::with_capacity(budget);
    for _ in 0..budget {
        let ids = Tensor::from_vec(input.clone(), (1, input.len()), &Device::Cpu)?;
        let logits: Vec<f32> = model.forward_cached(&ids, &mut cache)?.squeeze(0)?.to_vec1()?;
        let next = match opts.sampling {
            Sampling::Greedy => argmax(&logits),
            Sampling::Sample { temperature, top_k, top_p, .. } => {
                sample(&logits, temperature, top_k, top_p, &mut rng)?
            }
        };
        out.push(next);
        reporter.advance(1);
        if opts.stop_ids.contains(&next) {
            break;
        }
        input = vec![next];
    }
    reporter.finish();
    Ok(out)
}

/// Index of the largest value; the first one on ties.
fn argmax(xs: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best as u32
}

fn sample(
    logits: &[f32],
    temperature: f64,
    top_k: usize,
    top_p: f64,
    rng: &mut rand::rngs::StdRng,
) -> Result<u32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut probs: Vec<(usize, f64)> =
        logits.iter().enumerate().map(|(i, &l)| (i, ((f64::from(l - max)) / temperature).exp())).collect();
    probs.sort_by(|a, b| b.1.total_cmp(&a.1));
    if top_k > 0 {
        probs.truncate(top_k);
    }
    let total: f64 = probs.iter().map(|p| p.1).sum();
    let mut kept = 0;
    let mut acc = 0.0;
    for (_, p) in &probs {
        kept += 1;
        acc += p / total;
        if acc >= top_p {
            break;
        }
    }
    probs.truncate(kept);
    let dist = WeightedIndex::new(probs.iter().map(|p| p.1))
        .map_err(|e| ModelError::Input(format!("cannot sample from the logits: {e}")))?;
    Ok(probs[dist.sample(rng)].0 as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_is_deterministic_in_its_seed_and_greedy_ignores_it() -> Result<()> {
        let model = Llama::random(crate::Config::tiny_test(), 5)?;
        let run = |sampling| {
            let opts = GenerateOptions { max_new_tokens: 12, sampling, stop_ids: vec![] };
            generate(&model, &[1, 7, 9], &opts, &hashi_core::NoReporter)
        };
        let sample = |seed| Sampling::Sample { temperature: 1.5, top_k: 0, top_p: 1.0, seed };
        let (a, b, c) = (run(sample(1))?, run(sample(1))?, run(sample(2))?);
        assert_eq!(a.len(), 12);
        assert_eq!(a, b, "same seed, same tokens");
        assert_ne!(a, c, "another seed, other tokens");
        assert_eq!(run(Sampling::Greedy)?, run(Sampling::Greedy)?);
        let bad = GenerateOptions { max_new_tokens: 1, sampling: sample(0), stop_ids: vec![] };
        let bad = GenerateOptions {
            sampling: Sampling::Sample { temperature: 0.0, top_k: 0, top_p: 1.0, seed: 0 },
            ..bad
        };
        assert!(generate(&model, &[1], &bad, &hashi_core::NoReporter).is_err());
        Ok(())
    }

    #[test]
    fn argmax_takes_first_of_ties() {
        assert_eq!(argmax(&[0.0, 3.0, 3.0, 1.0]), 1);
    }

    #[test]
    fn top_k_one_is_greedy_and_top_p_keeps_the_head() {
        let logits = [0.1f32, 2.0, 1.9, -5.0];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..20 {
            assert_eq!(sample(&logits, 1.0, 1, 1.0, &mut rng).expect("sample"), 1);
            let t = sample(&logits, 1.0, 0, 0.4, &mut rng).expect("sample");
            assert_eq!(t, 1, "p(1) = 0.486 alone reaches 0.4");
        }
        let draws: Vec<u32> =
            (0..200).map(|_| sample(&logits, 1.0, 0, 0.9, &mut rng).expect("sample")).collect();
        assert!(draws.contains(&1) && draws.contains(&2) && !draws.contains(&3));
    }
}
