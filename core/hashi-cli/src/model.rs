//! `hashi model ...`: create, inspect and run checkpoints.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use clap::{Args, Subcommand};
use hashi_core::Reporter;
use hashi_model::{Llama, LlamaConfig, ModelSummary, SaveDtype, SaveOptions, causal_lm_loss};

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Write a randomly initialised model (HF directory) from a config.json or a preset.
    Init(InitArgs),
    /// Print parameters, dtypes, shapes and vocabulary size of a model directory.
    Info(InfoArgs),
    /// Run the model over token ids and write the logits [batch, seq, vocab] (f32) as safetensors.
    Logits(LogitsArgs),
    /// Import a llama.cpp GGUF file (Llama/Mistral/SmolLM, Qwen2) as an HF directory: dequantized weights,
    /// config, tokenizer and chat template.
    Import(ImportArgs),
}

#[derive(Args)]
pub struct ImportArgs {
    /// The .gguf file.
    file: PathBuf,
    /// Output directory (HF layout).
    #[arg(long)]
    out: PathBuf,
    /// Storage dtype of the dequantized weights: f32 or bf16.
    #[arg(long, default_value = "f32")]
    dtype: hashi_import::OutDtype,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct InitArgs {
    /// An HF config.json of a Llama, Mistral or Qwen2 model (unknown keys are kept).
    #[arg(long, conflicts_with = "preset", required_unless_present = "preset")]
    config: Option<PathBuf>,
    /// A built-in size instead: tiny-test, bench-a, bench-b, llama2-7b, llama2-13b, smollm2-135m.
    #[arg(long)]
    preset: Option<String>,
    /// Seed of the initialisation (same seed, same weights).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Storage dtype: f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    dtype: SaveDtype,
    /// Largest safetensors shard in bytes; bigger models are sharded with an index.
    #[arg(long, default_value_t = 5_000_000_000)]
    max_shard_bytes: u64,
    /// Write into --out even if it is a folder that is not empty (its files are overwritten).
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct InfoArgs {
    /// The model directory.
    dir: PathBuf,
    /// Machine-readable JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct LogitsArgs {
    /// The model directory.
    #[arg(long)]
    model: PathBuf,
    /// Comma-separated token ids of one sequence; repeat for a batch (all of equal length).
    #[arg(long, required = true, value_parser = parse_ids)]
    ids: Vec<Vec<u32>>,
    /// Output safetensors file (tensor `logits`).
    #[arg(long)]
    out: PathBuf,
}

fn parse_ids(s: &str) -> std::result::Result<Vec<u32>, String> {
    s.split(',').map(|t| t.trim().parse::<u32>().map_err(|e| format!("{t:?}: {e}"))).collect()
}

pub fn run(cmd: ModelCommand, progress: &dyn Reporter) -> Result<()> {
    match cmd {
        ModelCommand::Init(a) => init(a, progress),
        ModelCommand::Info(a) => info(a),
        ModelCommand::Logits(a) => logits(a),
        ModelCommand::Import(a) => import(a, progress),
    }
}

fn init(a: InitArgs, progress: &dyn Reporter) -> Result<()> {
    hashi_core::check_out_dir(&a.out, a.force).map_err(anyhow::Error::msg)?;
    let opts = SaveOptions { dtype: a.dtype, max_shard_bytes: a.max_shard_bytes };
    let params = hashi_experiment::init_model(
        a.config.as_deref(),
        a.preset.as_deref(),
        a.seed,
        opts,
        &a.out,
        progress,
    )?;
    outln!("wrote {} ({params} parameters, seed {})", a.out.display(), a.seed)?;
    Ok(())
}

fn info(a: InfoArgs) -> Result<()> {
    let m = ModelSummary::of(&a.dir)?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&m)?)?;
        return Ok(());
    }
    outln!("model        {} ({})", a.dir.display(), m.model_type)?;
    outln!("parameters   {} ({:.2} M)", m.parameters, m.parameters as f64 / 1e6)?;
    outln!("dtypes       {}", m.dtypes.iter().cloned().collect::<Vec<_>>().join(", "))?;
    outln!("vocab        {}", m.vocab_size)?;
    outln!(
        "shape        hidden {}, mlp {}, layers {}, heads {} (kv {}), head_dim {}",
        m.hidden_size,
        m.intermediate_size,
        m.num_layers,
        m.num_heads,
        m.num_kv_heads,
        m.head_dim
    )?;
    outln!("rope_theta   {}   tied embeddings: {}", m.rope_theta, m.tie_word_embeddings)?;
    if let Some(scaling) = &m.rope_scaling {
        outln!("rope         {scaling}")?;
    }
    if let Some(w) = m.sliding_window {
        outln!("window       {w} positions (layers {}..{})", m.max_window_layers, m.num_layers)?;
    }
    outln!()?;
    let width = m.tensors.iter().map(|t| t.name.len()).max().unwrap_or(0);
    for t in &m.tensors {
        outln!("{:width$}  {:>5}  {:?}", t.name, t.dtype, t.shape)?;
    }
    Ok(())
}

fn logits(a: LogitsArgs) -> Result<()> {
    let len = a.ids[0].len();
    if a.ids.iter().any(|s| s.len() != len) {
        bail!("all --ids sequences must have the same length");
    }
    let model = Llama::load(&a.model)?.detached()?;
    let flat: Vec<u32> = a.ids.concat();
    let ids = Tensor::from_vec(flat, (a.ids.len(), len), &Device::Cpu)?;
    let logits = model.forward(&ids)?;
    let loss = match len {
        0 | 1 => None,
        _ => Some(causal_lm_loss(&logits, &ids.to_dtype(DType::I64)?)?.to_scalar::<f32>()?),
    };
    logits
        .to_dtype(DType::F32)?
        .save_safetensors("logits", &a.out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    let out = serde_json::json!({"out": a.out, "shape": logits.dims(), "loss": loss});
    outln!("{out}")?;
    Ok(())
}

fn import(a: ImportArgs, progress: &dyn Reporter) -> Result<()> {
    let t0 = std::time::Instant::now();
    let s = hashi_import::import_gguf(&a.file, &a.out, a.dtype, progress)?;
    // transformers reads the directory whatever it holds; say so when hashi's own model cannot run it.
    let cfg_path = a.out.join("config.json");
    if let Err(e) = LlamaConfig::from_file(&cfg_path).and_then(|c| c.to_config(&cfg_path)) {
        tracing::warn!("imported, but hashi's model cannot run it: {e}");
    }
    let seconds = t0.elapsed().as_secs_f64();
    if a.json {
        let out = serde_json::json!({
            "file": a.file,
            "out": a.out,
            "architecture": s.architecture,
            "model_type": s.model_type,
            "tensors": s.tensors,
            "parameters": s.parameters,
            "ggml_types": s.ggml_types.iter().map(|(t, n)| (t.clone(), serde_json::Value::from(*n))).collect::<serde_json::Map<_, _>>(),
            "tokenizer_model": s.tokenizer_model,
            "vocab_size": s.vocab_size,
            "tie_word_embeddings": s.tied_embeddings,
            "dtype": a.dtype.torch_name(),
            "seconds": seconds,
            "peak_rss_mib": hashi_core::peak_rss_mib(),
        });
        outln!("{out}")?;
        return Ok(());
    }
    let types: Vec<String> = s.ggml_types.iter().map(|(t, n)| format!("{t} ×{n}")).collect();
    outln!(
        "imported {} → {} ({} {}, {} tensors [{}], {:.1} M parameters, {} tokenizer with {} pieces, {}) in {seconds:.1} s",
        a.file.display(),
        a.out.display(),
        s.architecture,
        s.model_type,
        s.tensors,
        types.join(", "),
        s.parameters as f64 / 1e6,
        s.tokenizer_model,
        s.vocab_size,
        a.dtype.torch_name(),
    )?;
    Ok(())
}
