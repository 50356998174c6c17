//! An opened GGUF file: candle-core's reader (`candle_core::quantized::gguf_file`) plus typed access to the
//! metadata with errors that name the file and the key, and the check that every tensor lies inside the file.
//!
//! The format is llama.cpp's (<https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>); the reader is candle's,
//! not ours. Tensor shapes are given in PyTorch order (candle reverses ggml's `ne`).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candle_core::quantized::GgmlDType;
use candle_core::quantized::gguf_file::{Content, TensorInfo, Value};

use crate::error::{ImportError, Result, candle_message};

/// A GGUF file with its header read.
pub struct Gguf {
    path: PathBuf,
    content: Content,
    reader: BufReader<File>,
}

/// ggml type names by type code (`enum ggml_type` in ggml.h), for messages about types candle's reader refuses.
const GGML_TYPE_NAMES: [(u32, &str); 24] = [
    (4, "Q4_2 (removed)"),
    (5, "Q4_3 (removed)"),
    (16, "IQ2_XXS"),
    (17, "IQ2_XS"),
    (18, "IQ3_XXS"),
    (19, "IQ1_S"),
    (20, "IQ4_NL"),
    (21, "IQ3_S"),
    (22, "IQ2_S"),
    (23, "IQ4_XS"),
    (24, "I8"),
    (25, "I16"),
    (26, "I32"),
    (27, "I64"),
    (28, "F64"),
    (29, "IQ1_M"),
    (31, "Q4_0_4_4 (removed)"),
    (32, "Q4_0_4_8 (removed)"),
    (33, "Q4_0_8_8 (removed)"),
    (34, "TQ1_0"),
    (35, "TQ2_0"),
    (36, "IQ4_NL_4_4 (removed)"),
    (37, "IQ4_NL_4_8 (removed)"),
    (39, "MXFP4"),
];

impl Gguf {
    /// Opens `path` and reads its header (metadata and tensor infos), checking that every tensor's data lies
    /// inside the file. Errors name the file; a truncated file or one that is not GGUF is
    /// [`ImportError::NotGguf`].
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| ImportError::io(path, e))?;
        let file_len = file.metadata().map_err(|e| ImportError::io(path, e))?.len();
        let mut reader = BufReader::new(file);
        let content = Content::read(&mut reader)
            .map_err(|e| ImportError::NotGguf { path: path.into(), message: explain(&candle_message(&e)) })?;
        let gguf = Self { path: path.into(), content, reader };
        for (name, info) in &gguf.content.tensor_infos {
            let bytes = gguf.data_bytes(info);
            let start = gguf.content.tensor_data_offset.saturating_add(info.offset);
            if bytes.is_none_or(|b| start.saturating_add(b) > file_len) {
                return Err(ImportError::NotGguf {
                    path: path.into(),
                    message: format!(
                        "tensor {name} ({:?}, {:?}) ends past the end of the file ({file_len} bytes): truncated",
                        info.ggml_dtype,
                        info.shape.dims()
                    ),
                });
            }
        }
        Ok(gguf)
    }

    /// Bytes of a tensor's data, `None` when its element count is not a whole number of blocks.
    fn data_bytes(&self, info: &TensorInfo) -> Option<u64> {
        let elems = info.shape.elem_count();
        let block = info.ggml_dtype.block_size();
        elems.is_multiple_of(block).then(|| (elems / block * info.ggml_dtype.type_size()) as u64)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tensor names in file order (by data offset).
    pub fn tensor_names(&self) -> Vec<String> {
        let mut names: Vec<(&String, u64)> =
            self.content.tensor_infos.iter().map(|(n, i)| (n, i.offset)).collect();
        names.sort_by_key(|&(n, off)| (off, n.clone()));
        names.into_iter().map(|(n, _)| n.clone()).collect()
    }

    /// Shape (PyTorch order) and ggml type of a tensor.
    pub fn tensor_info(&self, name: &str) -> Option<(&[usize], GgmlDType)> {
        self.content.tensor_infos.get(name).map(|i| (i.shape.dims(), i.ggml_dtype))
    }

    /// Reads one tensor and dequantizes it to f32 on the CPU (candle's `QTensor::dequantize`).
    pub fn dequantize(&mut self, name: &str) -> Result<candle_core::Tensor> {
        let err = |e: candle_core::Error| ImportError::Tensor {
            path: self.path.clone(),
            tensor: name.into(),
            message: candle_message(&e),
        };
        let q = self.content.tensor(&mut self.reader, name, &candle_core::Device::Cpu).map_err(err)?;
        q.dequantize(&candle_core::Device::Cpu).map_err(err)
    }

    /// The raw value of a metadata key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    fn bad(&self, key: &str, message: impl Into<String>) -> ImportError {
        ImportError::Metadata { path: self.path.clone(), key: key.into(), message: message.into() }
    }

    /// A required string.
    pub fn str(&self, key: &str) -> Result<&str> {
        match self.get(key) {
            Some(Value::String(s)) => Ok(s),
            Some(v) => Err(self.bad(key, format!("expected a string, found {:?}", v.value_type()))),
            None => Err(self.bad(key, "missing")),
        }
    }

    /// An optional string.
    pub fn opt_str(&self, key: &str) -> Result<Option<&str>> {
        self.get(key).map(|_| self.str(key)).transpose()
    }

    /// An optional non-negative integer of any integer type.
    pub fn opt_uint(&self, key: &str) -> Result<Option<u64>> {
        let Some(v) = self.get(key) else { return Ok(None) };
        let n = match *v {
            Value::U8(x) => Some(u64::from(x)),
            Value::U16(x) => Some(u64::from(x)),
            Value::U32(x) => Some(u64::from(x)),
            Value::U64(x) => Some(x),
            Value::I8(x) => u64::try_from(x).ok(),
            Value::I16(x) => u64::try_from(x).ok(),
            Value::I32(x) => u64::try_from(x).ok(),
            Value::I64(x) => u64::try_from(x).ok(),
            _ => return Err(self.bad(key, format!("expected an integer, found {:?}", v.value_type()))),
        };
        n.map(Some).ok_or_else(|| self.bad(key, "negative value"))
    }

    /// A required non-negative integer that fits `usize`.
    pub fn usize(&self, key: &str) -> Result<usize> {
        let n = self.opt_uint(key)?.ok_or_else(|| self.bad(key, "missing"))?;
        usize::try_from(n).map_err(|_| self.bad(key, format!("{n} is too large")))
    }

    /// An optional float of any float type.
    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::F32(x)) => Ok(Some(f64::from(*x))),
            Some(Value::F64(x)) => Ok(Some(*x)),
            Some(v) => Err(self.bad(key, format!("expected a float, found {:?}", v.value_type()))),
        }
    }

    /// An optional boolean.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.bad(key, format!("expected a boolean, found {:?}", v.value_type()))),
        }
    }

    /// An optional array, each element converted by `f` (which names what it expected).
    pub fn opt_array<T>(
        &self,
        key: &str,
        what: &str,
        f: impl Fn(&Value) -> Option<T>,
    ) -> Result<Option<Vec<T>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    f(v).ok_or_else(|| {
                        self.bad(key, format!("element {i} is {:?}, expected {what}", v.value_type()))
                    })
                })
                .collect::<Result<Vec<T>>>()
                .map(Some),
            Some(v) => Err(self.bad(key, format!("expected an array, found {:?}", v.value_type()))),
        }
    }

    /// An optional array of strings.
    pub fn opt_strings(&self, key: &str) -> Result<Option<Vec<String>>> {
        self.opt_array(key, "a string", |v| match v {
            Value::String(s) => Some(s.clone()),
            _ => None,
        })
    }
}

/// candle's header errors, with the ggml type named where candle only gives its code.
fn explain(message: &str) -> String {
    let code = message.strip_prefix("unknown dtype for tensor ").and_then(|c| c.trim().parse::<u32>().ok());
    match code {
        Some(code) => {
            let name = GGML_TYPE_NAMES.iter().find(|(c, _)| *c == code).map_or("unknown", |(_, n)| n);
            format!(
                "a tensor has ggml type {name} (code {code}), which hashi does not dequantize (supported: {})",
                crate::tensors::SUPPORTED_NAMES
            )
        }
        None => message.to_string(),
    }
}
