//! `hashi generate`: continue a prompt.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use hashi_core::Reporter;
use hashi_model::{GenerateOptions, Llama, Sampling};
use hashi_tokenizer::Tokenizer;

#[derive(Args)]
pub struct GenerateArgs {
    /// The model directory (its tokenizer.json is used unless --tokenizer is given).
    #[arg(long)]
    model: PathBuf,
    /// A tokenizer.json other than the model's.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// The text to continue.
    #[arg(long)]
    prompt: String,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    /// 0 for greedy decoding; above 0, sample with this temperature.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// Sample only among the k most likely tokens (0: all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Sample only within the top-p probability mass.
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print JSON with prompt and generated ids and the continuation's text instead of the text.
    #[arg(long)]
    json: bool,
}

pub fn run(a: GenerateArgs, progress: &dyn Reporter) -> Result<()> {
    if !(a.temperature.is_finite() && a.temperature >= 0.0) {
        bail!("--temperature {}: must be a finite number >= 0 (0 for greedy decoding)", a.temperature);
    }
    if !(a.top_p.is_finite() && a.top_p > 0.0 && a.top_p <= 1.0) {
        bail!("--top-p {}: must be in (0, 1]", a.top_p);
    }
    let tok_path = a.tokenizer.clone().unwrap_or_else(|| a.model.join("tokenizer.json"));
    let tokenizer = Tokenizer::from_file(&tok_path)?;
    let model = Llama::load(&a.model)?.detached()?;
    let prompt = tokenizer.encode(&a.prompt, true)?;
    let config = model.config();
    if let Some(&id) = prompt.iter().find(|&&id| id as usize >= config.vocab_size) {
        bail!(
            "{}: the prompt's token id {id} is outside the model's vocabulary of {} ({}): the tokenizer does not \
             belong to this model",
            tok_path.display(),
            config.vocab_size,
            a.model.join("config.json").display()
        );
    }
    if let Some(limit) = config.generation_limit()
        && prompt.len() > limit
    {
        bail!(
            "the prompt is {} tokens long, more than the model's {limit} positions (max_position_embeddings in {})",
            prompt.len(),
            a.model.join("config.json").display()
        );
    }
    let sampling = match a.temperature {
        t if t > 0.0 => Sampling::Sample { temperature: t, top_k: a.top_k, top_p: a.top_p, seed: a.seed },
        _ => Sampling::Greedy,
    };
    let opts = GenerateOptions {
        max_new_tokens: a.max_new_tokens,
        sampling,
        stop_ids: model.config().eos_token_ids.clone(),
    };
    let new = hashi_model::generate(&model, &prompt, &opts, progress).context("generation failed")?;
    // As transformers' text-generation: decode(prompt + new) minus decode(prompt), special tokens skipped.
    let text = tokenizer.decode_continuation(&prompt, &new, true)?;
    if a.json {
        outln!("{}", serde_json::json!({"prompt_ids": prompt, "generated_ids": new, "text": text}))?;
    } else {
        outln!("{}{}", a.prompt, text)?;
    }
    Ok(())
}
