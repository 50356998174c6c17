//! Writing a model as an HF directory that `transformers` loads: `config.json` plus `model.safetensors`, or
//! shards `model-0000i-of-0000n.safetensors` with `model.safetensors.index.json` above a size threshold.
//!
//! Each file is written to a temporary name and renamed into place; the index is written last, so a crash
//! never leaves a directory that looks complete but is not.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Tensor};
use hashi_core::Reporter;

use crate::checkpoint::{INDEX_FILE, SINGLE_FILE, ShardIndex};
use crate::config::Config;
use crate::error::{ModelError, Result};
use crate::params::{ParamStore, param_shapes};

/// Storage dtype of saved weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaveDtype {
    /// 32-bit float.
    #[default]
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    Bf16,
}

impl SaveDtype {
    fn candle(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::F16 => DType::F16,
            Self::Bf16 => DType::BF16,
        }
    }

    /// The name transformers uses in `config.json` (`torch_dtype`).
    pub fn torch_name(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::F16 => "float16",
            Self::Bf16 => "bfloat16",
        }
    }
}

impl std::str::FromStr for SaveDtype {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "f32" | "float32" => Ok(Self::F32),
            "f16" | "float16" => Ok(Self::F16),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            other => Err(format!("unknown dtype {other:?} (expected f32, f16 or bf16)")),
        }
    }
}

/// How to save.
#[derive(Debug, Clone, Copy)]
pub struct SaveOptions {
    /// Storage dtype.
    pub dtype: SaveDtype,
    /// Largest shard in bytes; a model above it is split (transformers' default is 5 GB).
    pub max_shard_bytes: u64,
}

impl Default for SaveOptions {
    fn default() -> Self {
        Self { dtype: SaveDtype::F32, max_shard_bytes: 5_000_000_000 }
    }
}

/// Saves `params` under `config` into `dir` (created if needed).
pub fn save_pretrained(
    config: &Config,
    params: &ParamStore,
    dir: &Path,
    opts: SaveOptions,
    reporter: &dyn Reporter,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let dtype = opts.dtype.candle();
    let mut shards: Vec<Vec<(String, u64)>> = vec![vec![]];
    let mut shard_bytes = 0u64;
    let mut total = 0u64;
    for (name, shape) in param_shapes(config) {
        let bytes = shape.iter().product::<usize>() as u64 * dtype.size_in_bytes() as u64;
        let current = shards.last_mut().expect("at least one shard");
        if !current.is_empty() && shard_bytes + bytes > opts.max_shard_bytes {
            shards.push(vec![]);
            shard_bytes = 0;
        }
        shards.last_mut().expect("at least one shard").push((name, bytes));
        shard_bytes += bytes;
        total += bytes;
    }
    reporter.start("saving weights", Some(total), "B");
    let n = shards.len();
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    let mut weight_map = BTreeMap::new();
    for (i, shard) in shards.iter().enumerate() {
        let file = if n == 1 {
            SINGLE_FILE.to_string()
        } else {
            format!("model-{:05}-of-{n:05}.safetensors", i + 1)
        };
        let tensors = shard
            .iter()
            .map(|(name, _)| Ok((name.clone(), params.get(name)?.as_tensor().to_dtype(dtype)?)))
            .collect::<Result<Vec<(String, Tensor)>>>()?;
        let path = dir.join(&file);
        write_atomic(&path, |tmp| {
            safetensors::serialize_to_file(
                tensors.iter().map(|(k, v)| (k.as_str(), v)),
                Some(metadata.clone()),
                tmp,
            )
            .map_err(|e| std::io::Error::other(e.to_string()))
        })?;
        for (name, bytes) in shard {
            weight_map.insert(name.clone(), file.clone());
            reporter.advance(*bytes);
        }
    }
    let hf = config.to_hf(opts.dtype.torch_name());
    write_json(&dir.join("config.json"), &hf)?;
    let index_path = dir.join(INDEX_FILE);
    if n > 1 {
        let mut meta = serde_json::Map::new();
        meta.insert("total_size".into(), total.into());
        write_json(&index_path, &ShardIndex { metadata: meta, weight_map })?;
    } else if index_path.exists() {
        std::fs::remove_file(&index_path).map_err(|e| ModelError::io(&index_path, e))?;
    }
    reporter.finish();
    Ok(())
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| ModelError::Input(e.to_string()))?;
    hashi_core::write_atomic(path, format!("{text}\n").as_bytes()).map_err(|e| ModelError::io(path, e))
}

/// Writes through `f` into `path.tmp`, then renames over `path`.
fn write_atomic(path: &Path, f: impl FnOnce(&Path) -> std::io::Result<()>) -> Result<()> {
    let tmp = hashi_core::tmp_path(path);
    f(&tmp).map_err(|e| ModelError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| ModelError::io(path, e))
}
