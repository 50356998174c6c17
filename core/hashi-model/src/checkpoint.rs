//! Reading HF checkpoint directories: `config.json` plus single or sharded safetensors.
//!
//! Shards are memory-mapped; each tensor is converted to f32 on load. Pickle checkpoints (`.bin`, `.pt`,
//! `.pth`) are refused: unpickling executes code. Every error names the file it comes from.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::safetensors::{Load, MmapedSafetensors};
use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use crate::config::{Config, LlamaConfig};
use crate::error::{ModelError, Result};

/// Name of the single-file weights.
pub const SINGLE_FILE: &str = "model.safetensors";
/// Name of the shard index.
pub const INDEX_FILE: &str = "model.safetensors.index.json";
const PICKLE_EXTENSIONS: [&str; 4] = ["bin", "pt", "pth", "ckpt"];

/// The layout of `model.safetensors.index.json`.
#[derive(Debug, Deserialize, serde::Serialize)]
pub struct ShardIndex {
    /// Free-form metadata (`total_size` in bytes).
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Tensor name → shard file name.
    pub weight_map: BTreeMap<String, String>,
}

struct Shard {
    path: PathBuf,
    tensors: MmapedSafetensors,
}

/// An opened HF model directory: parsed config and memory-mapped weights.
pub struct Checkpoint {
    dir: PathBuf,
    hf_config: LlamaConfig,
    config: Config,
    shards: Vec<Shard>,
    routing: HashMap<String, usize>,
}

impl Checkpoint {
    /// Opens `dir` (or refuses a pickle file passed directly).
    pub fn open(dir: &Path) -> Result<Self> {
        if dir.is_file() {
            if is_pickle(dir) {
                return Err(ModelError::PickleRefused { path: dir.to_path_buf() });
            }
            return Err(ModelError::Input(format!(
                "{}: expected a model directory (config.json + safetensors), got a file",
                dir.display()
            )));
        }
        let config_path = dir.join("config.json");
        if !config_path.exists() {
            return Err(ModelError::config(&config_path, "file not found"));
        }
        let hf_config = LlamaConfig::from_file(&config_path)?;
        let config = hf_config.to_config(&config_path)?;
        let files = weight_files(dir)?;
        let mut shards = Vec::with_capacity(files.len());
        let mut routing = HashMap::new();
        for (i, path) in files.into_iter().enumerate() {
            let tensors = map_safetensors(&path)?;
            for (name, _) in tensors.tensors() {
                routing.insert(name, i);
            }
            shards.push(Shard { path, tensors });
        }
        Ok(Self { dir: dir.to_path_buf(), hf_config, config, shards, routing })
    }

    /// The model directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The runtime config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The config as read from `config.json` (unknown keys included).
    pub fn hf_config(&self) -> &LlamaConfig {
        &self.hf_config
    }

    /// Names of all tensors in the checkpoint, in natural order (`layers.2` before `layers.10`).
    pub fn tensor_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.routing.keys().cloned().collect();
        names.sort_by_cached_key(|n| natural_key(n));
        names
    }

    /// Whether the checkpoint holds `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.routing.contains_key(name)
    }

    /// Shape and stored dtype of `name`.
    pub fn info(&self, name: &str) -> Result<(Vec<usize>, String)> {
        let (_, view) = self.view(name)?;
        Ok((view.shape().to_vec(), format!("{:?}", view.dtype())))
    }

    /// Loads `name` as f32 on the CPU, checking its shape against `expected`.
    pub fn load_f32(&self, name: &str, expected: &[usize]) -> Result<Tensor> {
        let (shard, view) = self.view(name)?;
        if view.shape() != expected {
            return Err(ModelError::Shape {
                path: shard.path.clone(),
                name: name.into(),
                expected: expected.to_vec(),
                got: view.shape().to_vec(),
            });
        }
        use safetensors::Dtype as St;
        if !matches!(view.dtype(), St::F32 | St::F16 | St::BF16) {
            return Err(ModelError::Dtype {
                path: shard.path.clone(),
                name: name.into(),
                dtype: format!("{:?}", view.dtype()),
            });
        }
        let t = view.load(&Device::Cpu).map_err(|e| ModelError::Safetensors {
            path: shard.path.clone(),
            message: format!("tensor {name}: {e}"),
        })?;
        let t = t.to_dtype(DType::F32)?;
        let values = t.flatten_all()?.to_vec1::<f32>()?;
        let nan = values.iter().filter(|x| x.is_nan()).count();
        let inf = values.iter().filter(|x| x.is_infinite()).count();
        if nan + inf > 0 {
            return Err(ModelError::Safetensors {
                path: shard.path.clone(),
                message: format!(
                    "tensor {name} holds {nan} NaN and {inf} infinite values of {}: the weights are not finite",
                    values.len()
                ),
            });
        }
        Ok(t)
    }

    fn view(&self, name: &str) -> Result<(&Shard, safetensors::tensor::TensorView<'_>)> {
        let &i = self
            .routing
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor { dir: self.dir.clone(), name: name.into() })?;
        let shard = &self.shards[i];
        let view = shard
            .tensors
            .get(name)
            .map_err(|e| ModelError::Safetensors { path: shard.path.clone(), message: e.to_string() })?;
        Ok((shard, view))
    }
}

/// Sort key that compares runs of digits as numbers.
fn natural_key(name: &str) -> Vec<(String, u64)> {
    let mut key = Vec::new();
    let mut text = String::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            let mut n = u64::from(c as u8 - b'0');
            while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                n = n.saturating_mul(10).saturating_add(u64::from(d));
                chars.next();
            }
            key.push((std::mem::take(&mut text), n));
        } else {
            text.push(c);
        }
    }
    key.push((text, 0));
    key
}

fn is_pickle(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| PICKLE_EXTENSIONS.contains(&e))
}

/// The safetensors files of `dir`, in shard order.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index_path = dir.join(INDEX_FILE);
    if index_path.exists() {
        let text = std::fs::read_to_string(&index_path).map_err(|e| ModelError::io(&index_path, e))?;
        let index: ShardIndex = serde_json::from_str(&text)
            .map_err(|e| ModelError::Safetensors { path: index_path.clone(), message: e.to_string() })?;
        let mut files: Vec<&String> = index.weight_map.values().collect();
        files.sort();
        files.dedup();
        let mut paths = Vec::with_capacity(files.len());
        for f in files {
            let p = dir.join(f);
            if !p.is_file() {
                return Err(ModelError::MissingShard { index: index_path, shard: f.clone() });
            }
            paths.push(p);
        }
        return Ok(paths);
    }
    let single = dir.join(SINGLE_FILE);
    if single.is_file() {
        return Ok(vec![single]);
    }
    let entries = std::fs::read_dir(dir).map_err(|e| ModelError::io(dir, e))?;
    for entry in entries.flatten() {
        let p = entry.path();
        if is_pickle(&p) {
            return Err(ModelError::PickleRefused { path: p });
        }
    }
    Err(ModelError::NoWeights { dir: dir.to_path_buf() })
}

#[allow(unsafe_code)]
fn map_safetensors(path: &Path) -> Result<MmapedSafetensors> {
    // SAFETY: the file is mapped read-only; like every mmap-based reader (candle, safetensors, transformers)
    // we rely on nobody truncating the checkpoint while it is open.
    unsafe { MmapedSafetensors::new(path) }
        .map_err(|e| ModelError::Safetensors { path: path.to_path_buf(), message: root_message(&e) })
}

/// The innermost message of a candle error, without the path candle adds (we add our own).
fn root_message(e: &candle_core::Error) -> String {
    match e {
        candle_core::Error::WithPath { inner, .. } => root_message(inner),
        candle_core::Error::WithBacktrace { inner, .. } => root_message(inner),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::natural_key;

    #[test]
    fn natural_order_puts_layer_2_before_layer_10() {
        let mut v = vec!["model.layers.10.w", "model.layers.2.w", "lm_head.weight", "model.layers.2.a"];
        v.sort_by_key(|n| natural_key(n));
        assert_eq!(v, ["lm_head.weight", "model.layers.2.a", "model.layers.2.w", "model.layers.10.w"]);
    }
}
