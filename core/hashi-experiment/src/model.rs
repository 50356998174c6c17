//! The init stage (`hashi model init`, and from-scratch variants of `hashi run`): random weights for a config.

use std::path::Path;

use anyhow::{Context, Result, bail};
use hashi_core::Reporter;
use hashi_model::{Config, Llama, LlamaConfig, SaveOptions};

/// Writes a randomly initialised model (HF directory) for the HF `config` file or the built-in `preset`, seeded
/// by `seed`; returns its number of parameters. A given config.json is kept (unknown keys included); only its
/// dtype follows what was written.
pub fn init_model(
    config: Option<&Path>,
    preset: Option<&str>,
    seed: u64,
    save: SaveOptions,
    out: &Path,
    progress: &dyn Reporter,
) -> Result<usize> {
    let (cfg, mut hf) = match (config, preset) {
        (Some(path), _) => {
            let hf = LlamaConfig::from_file(path)?;
            (hf.to_config(path)?, Some(hf))
        }
        (None, Some(name)) => (
            Config::preset(name)
                .with_context(|| format!("unknown preset {name:?} ({})", Config::PRESETS.join(", ")))?,
            None,
        ),
        (None, None) => bail!("give --config or --preset"),
    };
    let model = Llama::random(cfg.clone(), seed)?;
    let dtype = save.dtype;
    hashi_model::save_pretrained(&cfg, model.params(), out, save, progress)?;
    if let Some(hf) = hf.as_mut() {
        hf.extra.remove("dtype");
        hf.extra.insert("torch_dtype".into(), dtype.torch_name().into());
        // What transformers needs to load it as its family, when the given config leaves it out.
        hf.extra.entry("model_type").or_insert_with(|| cfg.family.model_type().into());
        hf.extra.entry("architectures").or_insert_with(|| serde_json::json!([cfg.family.architecture()]));
        let path = out.join("config.json");
        std::fs::write(&path, serde_json::to_string_pretty(hf)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(model.params().num_params())
}
