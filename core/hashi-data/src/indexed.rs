//! Megatron-LM indexed datasets: `PREFIX.bin` (tokens) and `PREFIX.idx` (index), as `megatron-core`'s
//! `IndexedDataset` reads them — so a cluster engine trains on our shards as they are.
//!
//! `.idx` (little-endian): `MMIDIDX\0\0`, version `u64 = 1`, dtype code `u8` (uint16 = 8 when the vocabulary has
//! fewer than 65,500 entries, else int32 = 4, Megatron's own rule), sequence count `u64`, document count `u64`,
//! sequence lengths `i32[n]`, sequence byte offsets into `.bin` `i64[n]`, document boundaries `i64[d]` (starting
//! with 0, one more than the documents). One sequence per document here, EOS included.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

const MAGIC: &[u8; 9] = b"MMIDIDX\x00\x00";

/// Token storage type of a `.bin` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenDtype {
    /// Vocabularies below 65,500 entries.
    U16,
    /// Larger vocabularies.
    I32,
}

impl TokenDtype {
    /// Megatron's choice for a vocabulary of `vocab_size`.
    pub fn for_vocab(vocab_size: usize) -> Self {
        if vocab_size < 65_500 { Self::U16 } else { Self::I32 }
    }

    fn code(self) -> u8 {
        match self {
            Self::U16 => 8,
            Self::I32 => 4,
        }
    }

    fn size(self) -> usize {
        match self {
            Self::U16 => 2,
            Self::I32 => 4,
        }
    }
}

/// Writes one indexed dataset, document by document.
pub struct IndexedWriter {
    bin: BufWriter<File>,
    prefix: PathBuf,
    dtype: TokenDtype,
    lengths: Vec<i32>,
    tokens: u64,
}

impl IndexedWriter {
    /// Starts `PREFIX.bin` (written under a temporary name until [`IndexedWriter::finish`]).
    pub fn create(prefix: &Path, dtype: TokenDtype) -> Result<Self> {
        let path = hashi_core::tmp_path(&prefix.with_extension("bin"));
        let file = File::create(&path).map_err(|e| DataError::io(&path, e))?;
        Ok(Self {
            bin: BufWriter::with_capacity(4 << 20, file),
            prefix: prefix.into(),
            dtype,
            lengths: vec![],
            tokens: 0,
        })
    }

    /// Appends one document.
    pub fn add(&mut self, ids: &[u32]) -> Result<()> {
        let path = self.prefix.with_extension("bin");
        let mut buf = Vec::with_capacity(ids.len() * self.dtype.size());
        for &id in ids {
            match self.dtype {
                TokenDtype::U16 => buf.extend_from_slice(
                    &u16::try_from(id)
                        .map_err(|_| DataError::Format {
                            path: path.clone(),
                            message: format!("token id {id} does not fit uint16"),
                        })?
                        .to_le_bytes(),
                ),
                TokenDtype::I32 => buf.extend_from_slice(&(id as i32).to_le_bytes()),
            }
        }
        self.bin.write_all(&buf).map_err(|e| DataError::io(&path, e))?;
        self.lengths.push(
            i32::try_from(ids.len()).map_err(|_| DataError::Format {
                path,
                message: "a document longer than 2^31 tokens".into(),
            })?,
        );
        self.tokens += ids.len() as u64;
        Ok(())
    }

    /// Documents written so far.
    pub fn documents(&self) -> usize {
        self.lengths.len()
    }

    /// Tokens written so far.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// Writes `.idx`, then renames both files into place.
    pub fn finish(self) -> Result<(PathBuf, PathBuf)> {
        let (bin_path, idx_path) = (self.prefix.with_extension("bin"), self.prefix.with_extension("idx"));
        let bin = self.bin.into_inner().map_err(|e| DataError::io(&bin_path, e.into_error()))?;
        bin.sync_all().map_err(|e| DataError::io(&bin_path, e))?;
        let n = self.lengths.len();
        let mut idx = Vec::with_capacity(34 + n * 20 + 8);
        idx.extend_from_slice(MAGIC);
        idx.extend_from_slice(&1u64.to_le_bytes());
        idx.push(self.dtype.code());
        idx.extend_from_slice(&(n as u64).to_le_bytes());
        idx.extend_from_slice(&(n as u64 + 1).to_le_bytes());
        for l in &self.lengths {
            idx.extend_from_slice(&l.to_le_bytes());
        }
        let mut ptr = 0i64;
        for l in &self.lengths {
            idx.extend_from_slice(&ptr.to_le_bytes());
            ptr += i64::from(*l) * self.dtype.size() as i64;
        }
        for d in 0..=n as i64 {
            idx.extend_from_slice(&d.to_le_bytes());
        }
        let tmp_idx = hashi_core::tmp_path(&idx_path);
        std::fs::write(&tmp_idx, &idx).map_err(|e| DataError::io(&tmp_idx, e))?;
        std::fs::rename(hashi_core::tmp_path(&bin_path), &bin_path)
            .map_err(|e| DataError::io(&bin_path, e))?;
        std::fs::rename(&tmp_idx, &idx_path).map_err(|e| DataError::io(&idx_path, e))?;
        Ok((bin_path, idx_path))
    }
}

/// A read-only indexed dataset (index in memory, tokens read on demand).
pub struct IndexedDataset {
    bin: File,
    bin_path: PathBuf,
    dtype: TokenDtype,
    lengths: Vec<i32>,
    pointers: Vec<i64>,
}

impl IndexedDataset {
    /// Opens `PREFIX.idx` / `PREFIX.bin`, validating the whole index against the `.bin` before anything is read:
    /// the header (magic, version, dtype), the counts against the file size, every length (not negative), every
    /// pointer (not negative, aligned, the sequences back to back from 0), the document index (0 first, not
    /// decreasing, the sequence count last) and the `.bin` size (exactly the tokens the index describes).
    /// Errors name the file and the first entry at fault.
    pub fn open(prefix: &Path) -> Result<Self> {
        let idx_path = prefix.with_extension("idx");
        let bad = |m: String| DataError::Format { path: idx_path.clone(), message: m };
        if idx_path.is_dir() {
            return Err(bad("is a directory, not an index file".into()));
        }
        let mut buf = Vec::new();
        File::open(&idx_path)
            .and_then(|mut f| f.read_to_end(&mut buf))
            .map_err(|e| DataError::io(&idx_path, e))?;
        if buf.len() < 34 || &buf[..9] != MAGIC {
            return Err(bad("not a Megatron indexed dataset (no MMIDIDX header)".into()));
        }
        let u64_at = |o: usize| u64::from_le_bytes(buf[o..o + 8].try_into().unwrap_or([0; 8]));
        if u64_at(9) != 1 {
            return Err(bad(format!("index version {} (expected 1)", u64_at(9))));
        }
        let dtype = match buf[17] {
            8 => TokenDtype::U16,
            4 => TokenDtype::I32,
            c => return Err(bad(format!("token dtype code {c} is not supported (8 = uint16, 4 = int32)"))),
        };
        let (n, docs) = (u64_at(18), u64_at(26));
        // 34 + 12 n + 8 d bytes, computed without overflow for any header.
        let need = n
            .checked_mul(12)
            .and_then(|x| docs.checked_mul(8).and_then(|y| x.checked_add(y)))
            .and_then(|x| x.checked_add(34));
        match need {
            Some(need) if need == buf.len() as u64 => {}
            Some(need) if need > buf.len() as u64 => {
                return Err(bad(format!(
                    "truncated index: the header declares {n} sequences and {docs} document boundaries \
                     ({need} bytes), the file has {} bytes",
                    buf.len()
                )));
            }
            Some(need) => {
                return Err(bad(format!(
                    "{} bytes after the index of {n} sequences and {docs} document boundaries ({need} bytes)",
                    buf.len() as u64 - need
                )));
            }
            None => {
                return Err(bad(format!(
                    "the header declares {n} sequences and {docs} documents: impossible sizes"
                )));
            }
        }
        let (n, docs) = (n as usize, docs as usize);
        let lengths: Vec<i32> = buf[34..34 + n * 4]
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let pointers: Vec<i64> = buf[34 + n * 4..34 + n * 12]
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            .collect();
        let doc_idx: Vec<i64> = buf[34 + n * 12..]
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            .collect();
        let sz = dtype.size() as i64;
        let mut expected = 0i64;
        for (i, (&l, &p)) in lengths.iter().zip(&pointers).enumerate() {
            if l < 0 {
                return Err(bad(format!("sequence {i} has a negative length {l}")));
            }
            if p != expected {
                return Err(bad(format!(
                    "the pointer of sequence {i} is {p}, expected byte offset {expected} into the .bin (the \
                     sequences lie back to back)"
                )));
            }
            expected += i64::from(l) * sz;
        }
        if docs == 0 || doc_idx[0] != 0 {
            return Err(bad("the document index must start with 0".into()));
        }
        if let Some(w) = doc_idx.windows(2).position(|w| w[1] < w[0]) {
            return Err(bad(format!("the document index decreases at entry {}", w + 1)));
        }
        if doc_idx[docs - 1] != n as i64 {
            return Err(bad(format!(
                "the document index ends at {}, not at the sequence count {n}",
                doc_idx[docs - 1]
            )));
        }
        let bin_path = prefix.with_extension("bin");
        let bin = File::open(&bin_path).map_err(|e| DataError::io(&bin_path, e))?;
        let bin_len = bin.metadata().map_err(|e| DataError::io(&bin_path, e))?.len();
        if bin_len != expected as u64 {
            return Err(DataError::Format {
                path: bin_path,
                message: format!(
                    "{bin_len} bytes, but its index {} describes {expected} ({n} sequences of {:?} tokens)",
                    idx_path.display(),
                    dtype
                ),
            });
        }
        Ok(Self { bin, bin_path, dtype, lengths, pointers })
    }

    /// Sum of the sequence lengths (tokens).
    pub fn tokens(&self) -> u64 {
        self.lengths.iter().map(|&l| l as u64).sum()
    }

    /// The `.bin` file.
    pub fn bin_path(&self) -> &Path {
        &self.bin_path
    }

    /// Number of sequences (documents).
    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// Length of sequence `i`.
    pub fn seq_len(&self, i: usize) -> usize {
        self.lengths[i] as usize
    }

    /// Token dtype.
    pub fn dtype(&self) -> TokenDtype {
        self.dtype
    }

    /// Tokens `offset..offset + len` of sequence `i`.
    pub fn read(&self, i: usize, offset: usize, len: usize) -> Result<Vec<u32>> {
        let sz = self.dtype.size();
        let mut buf = vec![0u8; len * sz];
        let at = self.pointers[i] as u64 + (offset * sz) as u64;
        self.bin.read_exact_at(&mut buf, at).map_err(|e| DataError::io(&self.bin_path, e))?;
        Ok(match self.dtype {
            TokenDtype::U16 => {
                buf.chunks_exact(2).map(|b| u32::from(u16::from_le_bytes([b[0], b[1]]))).collect()
            }
            TokenDtype::I32 => {
                buf.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u32).collect()
            }
        })
    }

    /// All tokens of sequence `i`.
    pub fn get(&self, i: usize) -> Result<Vec<u32>> {
        self.read(i, 0, self.seq_len(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_both_dtypes() {
        let dir = tempfile::tempdir().expect("tmp");
        for (dtype, big) in [(TokenDtype::U16, 65_000u32), (TokenDtype::I32, 100_000)] {
            let prefix = dir.path().join(format!("{dtype:?}"));
            let docs = vec![vec![1, 2, 3], vec![], vec![big, 0, 7, 2]];
            let mut w = IndexedWriter::create(&prefix, dtype).expect("create");
            for d in &docs {
                w.add(d).expect("add");
            }
            w.finish().expect("finish");
            let ds = IndexedDataset::open(&prefix).expect("open");
            assert_eq!(ds.len(), 3);
            for (i, d) in docs.iter().enumerate() {
                assert_eq!(&ds.get(i).expect("get"), d);
            }
            assert_eq!(ds.read(2, 1, 2).expect("slice"), vec![0, 7]);
        }
        let e = IndexedWriter::create(&dir.path().join("x"), TokenDtype::U16)
            .expect("c")
            .add(&[70_000])
            .expect_err("too big");
        assert!(e.to_string().contains("does not fit uint16"));
    }
}
