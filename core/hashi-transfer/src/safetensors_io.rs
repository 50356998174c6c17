//! Streaming safetensors I/O: read a file's header without mapping its data, and write a file whose tensors
//! come either from memory or as byte ranges copied from source files. Memory stays bounded by the tensors
//! built in memory, whatever the checkpoint's size.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TransferError};

/// One tensor's entry in a safetensors header.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// `F32`, `BF16`, ...
    pub dtype: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Byte range inside the data section.
    pub data_offsets: [u64; 2],
}

/// A parsed header: tensors by name, and where the data section starts.
#[derive(Debug, Clone)]
pub struct Header {
    /// The file.
    pub path: PathBuf,
    /// Tensors.
    pub tensors: BTreeMap<String, Entry>,
    /// `__metadata__`.
    pub metadata: Option<BTreeMap<String, String>>,
    /// Offset of the data section in the file.
    pub data_start: u64,
}

impl Header {
    /// Reads the header of `path`, checking that every range lies inside the file and holds exactly its shape's
    /// elements of its dtype, and that no two ranges overlap.
    pub fn read(path: &Path) -> Result<Self> {
        let bad = |m: String| TransferError::Checkpoint { path: path.into(), message: m };
        let mut f = File::open(path).map_err(|e| TransferError::io(path, e))?;
        let file_len = f.metadata().map_err(|e| TransferError::io(path, e))?.len();
        let mut len = [0u8; 8];
        f.read_exact(&mut len).map_err(|_| bad("truncated safetensors header".into()))?;
        let n = u64::from_le_bytes(len);
        if n > 100 << 20 || 8 + n > file_len {
            return Err(bad(format!("header length {n} does not fit the file ({file_len} bytes)")));
        }
        let mut buf = vec![0u8; n as usize];
        f.read_exact(&mut buf).map_err(|_| bad("truncated safetensors header".into()))?;
        let mut raw: BTreeMap<String, serde_json::Value> =
            serde_json::from_slice(&buf).map_err(|e| bad(format!("bad safetensors header: {e}")))?;
        let metadata = match raw.remove("__metadata__") {
            Some(v) => Some(serde_json::from_value(v).map_err(|e| bad(format!("bad __metadata__: {e}")))?),
            None => None,
        };
        let mut tensors = BTreeMap::new();
        for (name, v) in raw {
            let e: Entry = serde_json::from_value(v).map_err(|e| bad(format!("tensor {name}: {e}")))?;
            let [start, end] = e.data_offsets;
            if start > end || (8 + n).checked_add(end).is_none_or(|last| last > file_len) {
                return Err(bad(format!(
                    "tensor {name}: data range {:?} is outside the file",
                    e.data_offsets
                )));
            }
            let elements = e.shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
            let bytes = dtype_size(&e.dtype).and_then(|size| elements?.checked_mul(size));
            if bytes != Some(end - start) {
                return Err(bad(format!(
                    "tensor {name}: {} of shape {:?} does not fill its {} bytes",
                    e.dtype,
                    e.shape,
                    end - start
                )));
            }
            tensors.insert(name, e);
        }
        let mut ranges: Vec<(u64, u64, &str)> =
            tensors.iter().map(|(k, e)| (e.data_offsets[0], e.data_offsets[1], k.as_str())).collect();
        ranges.sort_unstable();
        if let Some(w) = ranges.windows(2).find(|w| w[1].0 < w[0].1) {
            return Err(bad(format!("tensors {} and {} overlap", w[0].2, w[1].2)));
        }
        Ok(Self { path: path.into(), tensors, metadata, data_start: 8 + n })
    }
}

/// Bytes per element of a safetensors dtype name (`None` for names safetensors does not define).
fn dtype_size(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" => 1,
        "U16" | "I16" | "F16" | "BF16" => 2,
        "U32" | "I32" | "F32" => 4,
        "U64" | "I64" | "F64" => 8,
        _ => return None,
    })
}

/// Where a tensor of an output file comes from.
pub enum Source<'a> {
    /// Bytes in memory (already in `dtype`).
    Memory {
        /// Storage dtype name.
        dtype: String,
        /// Shape.
        shape: Vec<usize>,
        /// Raw little-endian data.
        bytes: &'a [u8],
    },
    /// Zeros of `dtype` (for generated benchmark checkpoints), streamed.
    Zeros {
        /// Storage dtype name.
        dtype: String,
        /// Shape.
        shape: Vec<usize>,
        /// Bytes per element.
        elem_bytes: usize,
    },
    /// A tensor of a source file, copied byte for byte.
    Copy {
        /// The source file's header.
        header: &'a Header,
        /// The tensor's name there.
        name: &'a str,
    },
}

/// Writes a safetensors file with `tensors` (in this order), returning its data size in bytes.
pub fn write(
    path: &Path,
    tensors: &[(String, Source<'_>)],
    metadata: Option<&BTreeMap<String, String>>,
) -> Result<u64> {
    let mut header = serde_json::Map::new();
    if let Some(m) = metadata {
        header.insert(
            "__metadata__".into(),
            serde_json::to_value(m)
                .map_err(|e| TransferError::Io { path: path.into(), source: std::io::Error::other(e) })?,
        );
    }
    let mut offset = 0u64;
    for (name, src) in tensors {
        let (dtype, shape, len) = match src {
            Source::Memory { dtype, shape, bytes } => (dtype.clone(), shape.clone(), bytes.len() as u64),
            Source::Zeros { dtype, shape, elem_bytes } => {
                (dtype.clone(), shape.clone(), (shape.iter().product::<usize>() * elem_bytes) as u64)
            }
            Source::Copy { header, name } => {
                let e = &header.tensors[*name];
                (e.dtype.clone(), e.shape.clone(), e.data_offsets[1] - e.data_offsets[0])
            }
        };
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len]}),
        );
        offset += len;
    }
    let mut text =
        serde_json::to_string(&header).map_err(|e| TransferError::io(path, std::io::Error::other(e)))?;
    while (8 + text.len()) % 8 != 0 {
        text.push(' ');
    }
    let file = File::create(path).map_err(|e| TransferError::io(path, e))?;
    let mut out = BufWriter::with_capacity(8 << 20, file);
    let io = |e| TransferError::io(path, e);
    out.write_all(&(text.len() as u64).to_le_bytes()).map_err(io)?;
    out.write_all(text.as_bytes()).map_err(io)?;
    for (_, src) in tensors {
        match src {
            Source::Memory { bytes, .. } => out.write_all(bytes).map_err(io)?,
            Source::Zeros { shape, elem_bytes, .. } => {
                let zeros = vec![0u8; 1 << 20];
                let mut left = shape.iter().product::<usize>() * elem_bytes;
                while left > 0 {
                    let n = left.min(zeros.len());
                    out.write_all(&zeros[..n]).map_err(io)?;
                    left -= n;
                }
            }
            Source::Copy { header, name } => {
                let e = &header.tensors[*name];
                let mut f = File::open(&header.path).map_err(|e| TransferError::io(&header.path, e))?;
                f.seek(SeekFrom::Start(header.data_start + e.data_offsets[0]))
                    .map_err(|e| TransferError::io(&header.path, e))?;
                let len = e.data_offsets[1] - e.data_offsets[0];
                let copied = std::io::copy(&mut f.take(len), &mut out).map_err(io)?;
                if copied != len {
                    return Err(TransferError::Checkpoint {
                        path: header.path.clone(),
                        message: format!("tensor {name}: file ended after {copied} of {len} bytes"),
                    });
                }
            }
        }
    }
    out.flush().map_err(io)?;
    out.into_inner().map_err(|e| TransferError::io(path, e.into_error()))?.sync_all().map_err(io)?;
    Ok(offset)
}

/// Reads the raw bytes of tensor `name` rows `rows` (each row `row_bytes` long) — used for vocabulary matrices.
pub fn read_tensor(header: &Header, name: &str) -> Result<Vec<u8>> {
    let e = header.tensors.get(name).ok_or_else(|| TransferError::Checkpoint {
        path: header.path.clone(),
        message: format!("tensor {name} is missing"),
    })?;
    let mut f = File::open(&header.path).map_err(|err| TransferError::io(&header.path, err))?;
    f.seek(SeekFrom::Start(header.data_start + e.data_offsets[0]))
        .map_err(|err| TransferError::io(&header.path, err))?;
    let mut buf = vec![0u8; (e.data_offsets[1] - e.data_offsets[0]) as usize];
    f.read_exact(&mut buf).map_err(|err| TransferError::io(&header.path, err))?;
    Ok(buf)
}
