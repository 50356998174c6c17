//! The mixer: a deterministic stream of batches that follows a [`ResolvedPlan`] exactly.
//!
//! Within a phase, every sequence slot goes to the language furthest behind its planned count (smooth weighted
//! round robin), so after every sequence each language is within one sequence of its share, and the phase ends
//! with exactly the planned counts. A language's sequential sources are read one after the other for their
//! planned counts; blended sources interleave by the same rule. Each source is a stream of its documents
//! (shuffled per epoch with the plan's seed; each ends with EOS) cut Megatron-style into sequences of
//! `seq_len + 1` tokens with a stride of `seq_len` (inputs and shifted labels); a stream that runs out starts
//! its next epoch. The whole state is a small serialisable [`Cursor`]: restoring it anywhere continues the very
//! same stream, with nothing skipped or repeated.

use std::collections::BTreeMap;
use std::path::Path;

use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::error::{DataError, Result};
use crate::indexed::IndexedDataset;
use crate::plan::{Order, ResolvedPlan};

pub use hashi_core::artifacts::{Cursor, StreamPos};

/// One batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Phase index.
    pub phase: usize,
    /// Whether this batch ends its phase (a data switch: checkpoint here).
    pub ends_phase: bool,
    /// `batch_size` sequences of `seq_len + 1` tokens.
    pub sequences: Vec<Vec<u32>>,
    /// Language of each sequence.
    pub langs: Vec<String>,
    /// Source of each sequence.
    pub sources: Vec<String>,
}

/// Reads a [`ResolvedPlan`] from prepared shards.
pub struct Mixer {
    plan: ResolvedPlan,
    data: BTreeMap<String, IndexedDataset>,
    orders: BTreeMap<String, (u64, Vec<u32>)>,
    cursor: Cursor,
    /// Every token id read must be below this (the tokenizer's size from `manifest.json`, when it says).
    vocab_size: Option<u64>,
}

/// Index of the entry furthest behind `totals[i] * (done + 1) / n` (ties: first).
fn most_behind(totals: &[u64], taken: &[u64], done: u64, n: u64) -> usize {
    let mut best = (i128::MIN, 0usize);
    for (i, (&t, &c)) in totals.iter().zip(taken).enumerate() {
        if c >= t {
            continue;
        }
        let deficit = i128::from(t) * i128::from(done + 1) - i128::from(c) * i128::from(n);
        if deficit > best.0 {
            best = (deficit, i);
        }
    }
    best.1
}

impl Mixer {
    /// Opens the shards of every source in `plan` from `dir`, at the start of the plan.
    pub fn new(plan: ResolvedPlan, dir: &Path) -> Result<Self> {
        let mut data = BTreeMap::new();
        for p in &plan.phases {
            for l in &p.langs {
                for s in &l.sources {
                    if !data.contains_key(&s.name) {
                        data.insert(s.name.clone(), IndexedDataset::open(&dir.join(&s.name))?);
                    }
                }
            }
        }
        // The vocabulary the shards were prepared with: ids at or above it are damage, named with the shard.
        let vocab_size = crate::prepare::Manifest::load(dir).ok().and_then(|m| m.vocab_size);
        let mut m = Self { plan, data, orders: BTreeMap::new(), cursor: Cursor::default(), vocab_size };
        m.enter_phase(0);
        Ok(m)
    }

    /// The current position.
    pub fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    /// Continues from a saved position.
    pub fn restore(&mut self, cursor: Cursor) -> Result<()> {
        if cursor.phase > self.plan.phases.len() {
            return Err(DataError::Input(format!("cursor phase {} is beyond the plan", cursor.phase)));
        }
        self.cursor = cursor;
        Ok(())
    }

    fn enter_phase(&mut self, phase: usize) {
        self.cursor.phase = phase;
        self.cursor.slot = 0;
        match self.plan.phases.get(phase) {
            Some(p) => {
                self.cursor.lang_taken = vec![0; p.langs.len()];
                self.cursor.source_taken = p.langs.iter().map(|l| vec![0; l.sources.len()]).collect();
            }
            None => {
                self.cursor.lang_taken.clear();
                self.cursor.source_taken.clear();
            }
        }
    }

    /// The next batch, or `None` at the end of the plan.
    pub fn next_batch(&mut self) -> Result<Option<Batch>> {
        let b = self.plan.decl.batch_size;
        let Some(phase) = self.plan.phases.get(self.cursor.phase).cloned() else { return Ok(None) };
        let n = phase.batches * b as u64;
        let mut batch = Batch {
            phase: self.cursor.phase,
            ends_phase: false,
            sequences: vec![],
            langs: vec![],
            sources: vec![],
        };
        for _ in 0..b {
            let totals: Vec<u64> = phase.langs.iter().map(|l| l.sequences).collect();
            let li = most_behind(&totals, &self.cursor.lang_taken, self.cursor.slot, n);
            let lang = &phase.langs[li];
            let s_totals: Vec<u64> = lang.sources.iter().map(|s| s.sequences).collect();
            let taken = &self.cursor.source_taken[li];
            let si = match lang.order {
                Order::Sequential => taken.iter().zip(&s_totals).position(|(t, s)| t < s).unwrap_or(0),
                Order::Blend => most_behind(&s_totals, taken, self.cursor.lang_taken[li], lang.sequences),
            };
            let name = lang.sources[si].name.clone();
            batch.sequences.push(self.read_sequence(&name)?);
            batch.langs.push(lang.lang.clone());
            batch.sources.push(name);
            self.cursor.source_taken[li][si] += 1;
            self.cursor.lang_taken[li] += 1;
            self.cursor.slot += 1;
        }
        self.cursor.batches += 1;
        if self.cursor.slot == n {
            batch.ends_phase = true;
            self.enter_phase(self.cursor.phase + 1);
        }
        Ok(Some(batch))
    }

    /// The document order of `name` in `epoch`.
    fn order(&mut self, name: &str, epoch: u64) -> &[u32] {
        let stale = self.orders.get(name).is_none_or(|(e, _)| *e != epoch);
        if stale {
            let n = self.data[name].len() as u32;
            let mut order: Vec<u32> = (0..n).collect();
            let key = hashi_core::fnv1a(name.as_bytes());
            let mut rng = rand::rngs::StdRng::seed_from_u64(
                self.plan.decl.seed ^ key ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            order.shuffle(&mut rng);
            self.orders.insert(name.to_string(), (epoch, order));
        }
        &self.orders[name].1
    }

    /// `seq_len + 1` tokens from `name`'s stream, advancing it by `seq_len`.
    fn read_sequence(&mut self, name: &str) -> Result<Vec<u32>> {
        let stride = self.plan.decl.seq_len as u64;
        let mut q = self.cursor.streams.get(name).cloned().unwrap_or_default();
        let (mut out, mut next, mut skipped) = (Vec::with_capacity(stride as usize + 1), None, 0);
        while out.len() as u64 <= stride {
            if q.doc >= self.data[name].len() as u64 {
                q = StreamPos { epoch: q.epoch + 1, doc: 0, offset: 0 };
                skipped += 1;
                if skipped > 2 {
                    return Err(DataError::Input(format!("source {name} has no tokens")));
                }
                continue;
            }
            let doc = self.order(name, q.epoch)[q.doc as usize] as usize;
            let avail = self.data[name].seq_len(doc) as u64 - q.offset;
            if avail == 0 {
                q = StreamPos { epoch: q.epoch, doc: q.doc + 1, offset: 0 };
                continue;
            }
            skipped = 0;
            let consumed = out.len() as u64;
            let take = avail.min(stride + 1 - consumed);
            if next.is_none() && consumed + take >= stride {
                next = Some(StreamPos { offset: q.offset + (stride - consumed), ..q.clone() });
            }
            let ids = self.data[name].read(doc, q.offset as usize, take as usize)?;
            if let Some(v) = self.vocab_size
                && let Some(id) = ids.iter().find(|&&id| u64::from(id) >= v)
            {
                return Err(DataError::Format {
                    path: self.data[name].bin_path().to_path_buf(),
                    message: format!(
                        "token id {id} in document {doc} of source {name} is outside the vocabulary of {v} \
                         (manifest.json): the shard is damaged or was prepared with another tokenizer"
                    ),
                });
            }
            out.extend(ids);
            q.offset += take;
        }
        self.cursor.streams.insert(name.to_string(), next.unwrap_or(q));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::indexed::{IndexedWriter, TokenDtype};
    use crate::plan::{OnExhausted, PhaseDecl, PlanDecl, SourceList, resolve};
    use crate::prepare::{CorpusDecl, Manifest, ManifestEntry};

    /// Sources whose tokens encode (source, document, position), so any mix-up is visible.
    fn shards(dir: &Path) -> (Manifest, BTreeMap<String, Vec<Vec<u32>>>) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let mut entries = vec![];
        let mut docs_by = BTreeMap::new();
        for (k, (name, lang, docs)) in
            [("ja_a", "ja", 40), ("ja_b", "ja", 25), ("en_a", "en", 60)].into_iter().enumerate()
        {
            let mut w = IndexedWriter::create(&dir.join(name), TokenDtype::I32).expect("create");
            let mut all = vec![];
            for d in 0..docs {
                let len = rng.random_range(1..30);
                let doc: Vec<u32> = (0..len).map(|i| (k as u32 + 1) * 1_000_000 + d * 1000 + i).collect();
                w.add(&doc).expect("add");
                all.push(doc);
            }
            let tokens = w.tokens();
            w.finish().expect("finish");
            docs_by.insert(name.to_string(), all);
            entries.push(ManifestEntry {
                corpus: CorpusDecl {
                    name: name.into(),
                    lang: lang.into(),
                    tier: None,
                    paths: vec![],
                    field: "text".into(),
                },
                prefix: name.into(),
                documents: docs as u64,
                tokens,
                text_bytes: 0,
                dtype: TokenDtype::I32,
                inputs: vec![],
                rejected: BTreeMap::new(),
            });
        }
        let m = Manifest {
            format_version: 1,
            tokenizer: "t".into(),
            tokenizer_hash: "h".into(),
            eos_id: 2,
            vocab_size: None,
            corpora: entries,
        };
        (m, docs_by)
    }

    fn plan(manifest: &Manifest, seed: u64) -> ResolvedPlan {
        let sources = |ja_order: Order| {
            BTreeMap::from([
                (
                    "ja".to_string(),
                    SourceList { order: ja_order, names: vec!["ja_a".into(), "ja_b".into()], weights: None },
                ),
                (
                    "en".to_string(),
                    SourceList { order: Order::Blend, names: vec!["en_a".into()], weights: None },
                ),
            ])
        };
        let decl = PlanDecl {
            name: "test".into(),
            seq_len: 8,
            batch_size: 7,
            total_tokens: Some(4000.0),
            seed,
            on_exhausted: OnExhausted::Repeat,
            phases: vec![
                PhaseDecl {
                    name: "3:1".into(),
                    tokens: 0.5,
                    shares: BTreeMap::from([("en".into(), 0.75), ("ja".into(), 0.25)]),
                    sources: sources(Order::Sequential),
                    training: None,
                },
                PhaseDecl {
                    name: "1:3".into(),
                    tokens: 0.5,
                    shares: BTreeMap::from([("en".into(), 0.25), ("ja".into(), 0.75)]),
                    sources: sources(Order::Blend),
                    training: None,
                },
            ],
        };
        resolve(&decl, manifest).expect("resolves")
    }

    fn drain(m: &mut Mixer) -> Vec<Batch> {
        std::iter::from_fn(|| m.next_batch().expect("batch")).collect()
    }

    #[test]
    fn same_seed_same_stream_and_another_seed_another() {
        let dir = tempfile::tempdir().expect("tmp");
        let (manifest, _) = shards(dir.path());
        let a = drain(&mut Mixer::new(plan(&manifest, 1), dir.path()).expect("mixer"));
        let b = drain(&mut Mixer::new(plan(&manifest, 1), dir.path()).expect("mixer"));
        let c = drain(&mut Mixer::new(plan(&manifest, 2), dir.path()).expect("mixer"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len() as u64, plan(&manifest, 1).total_batches());
    }

    #[test]
    fn restoring_the_cursor_anywhere_continues_the_same_stream() {
        let dir = tempfile::tempdir().expect("tmp");
        let (manifest, _) = shards(dir.path());
        let full = drain(&mut Mixer::new(plan(&manifest, 5), dir.path()).expect("mixer"));
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..12 {
            let k = rng.random_range(0..=full.len());
            let mut m = Mixer::new(plan(&manifest, 5), dir.path()).expect("mixer");
            for _ in 0..k {
                m.next_batch().expect("batch");
            }
            let saved = serde_json::to_string(m.cursor()).expect("serialise");
            let mut resumed = Mixer::new(plan(&manifest, 5), dir.path()).expect("mixer");
            resumed.restore(serde_json::from_str(&saved).expect("deserialise")).expect("restore");
            assert_eq!(drain(&mut resumed), full[k..], "resumed after {k} batches");
        }
    }

    #[test]
    fn every_source_is_read_as_one_stream_without_gaps_or_repeats() {
        let dir = tempfile::tempdir().expect("tmp");
        let (manifest, docs) = shards(dir.path());
        let p = plan(&manifest, 7);
        let batches = drain(&mut Mixer::new(p.clone(), dir.path()).expect("mixer"));
        let mut read: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for b in &batches {
            for (seq, src) in b.sequences.iter().zip(&b.sources) {
                assert_eq!(seq.len(), 9);
                let r = read.entry(src.clone()).or_default();
                if let Some(&last) = r.last() {
                    assert_eq!(last, seq[0], "{src}: consecutive sequences overlap by one token");
                    r.pop();
                }
                r.extend(seq);
            }
        }
        for (name, got) in read {
            // The expected stream: every epoch's shuffled documents, concatenated.
            let mut m = Mixer::new(p.clone(), dir.path()).expect("mixer");
            let mut want: Vec<u32> = vec![];
            let mut epoch = 0;
            while want.len() < got.len() {
                let order = m.order(&name, epoch).to_vec();
                for d in order {
                    want.extend(&docs[&name][d as usize]);
                }
                epoch += 1;
            }
            assert_eq!(got, want[..got.len()], "{name}");
        }
    }

    #[test]
    fn realised_shares_follow_the_plan() {
        let dir = tempfile::tempdir().expect("tmp");
        let (manifest, _) = shards(dir.path());
        let p = plan(&manifest, 1);
        let batches = drain(&mut Mixer::new(p.clone(), dir.path()).expect("mixer"));
        let bsz = p.decl.batch_size as u64;
        for (pi, phase) in p.phases.iter().enumerate() {
            let ours: Vec<&Batch> = batches.iter().filter(|b| b.phase == pi).collect();
            assert_eq!(ours.len() as u64, phase.batches);
            assert!(ours.last().expect("batch").ends_phase);
            for lang in &phase.langs {
                let mut cum = 0u64;
                for (k, b) in ours.iter().enumerate() {
                    cum += b.langs.iter().filter(|l| **l == lang.lang).count() as u64;
                    let target = lang.share * (bsz * (k as u64 + 1)) as f64;
                    assert!(
                        (cum as f64 - target).abs() <= 1.0 + 1e-9,
                        "{} phase {pi} batch {k}: {cum} vs {target}",
                        lang.lang
                    );
                }
                assert_eq!(cum, lang.sequences, "exact count at the end of the phase");
                for s in &lang.sources {
                    let n = ours.iter().flat_map(|b| &b.sources).filter(|x| **x == s.name).count() as u64;
                    assert_eq!(n, s.sequences, "{} in phase {pi}", s.name);
                }
            }
        }
    }
}
