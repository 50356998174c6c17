//! A SentencePiece-style BPE trainer (the semantics of `spm_train --model_type=bpe` with Llama's settings).
//!
//! - Text is read one line = one sentence; spaces become `▁` and every line gets a leading `▁` (dummy prefix).
//! - Lines are cut into words that no piece may cross: a `▁` starts a word (a run of `▁` followed by text keeps
//!   all but the last `▁` as a whitespace-only word), script changes end a word (Hiragana/Katakana/`ー` count as
//!   Han), and each digit stands alone.
//! - The characters covering `character_coverage` of all characters are kept; rarer ones are left to byte
//!   fallback and cut words.
//! - Merges take the most frequent adjacent pair (ties: lowest symbol ids), never longer than
//!   `max_piece_length` characters, until the vocabulary has exactly `vocab_size` entries.
//! - Vocabulary order (Llama's): `<unk>`, `<s>`, `</s>`, user-defined symbols, `<0x00>`…`<0xFF>`, merged pieces in
//!   merge order, then the kept characters by frequency.
//!
//! Not done: SentencePiece's normalisation rules (NFKC); training here is on the identity normalisation that
//! Llama uses. Word counting is parallel (rayon); the merge loop is sequential with lazily updated pair counts.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use hashi_core::Reporter;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::error::{Result, TokenizerError};
use crate::input::LangTexts;
use crate::script::{METASPACE, train_group};

/// Llama's special tokens, ids 0, 1, 2.
pub const SPECIAL_TOKENS: [&str; 3] = ["<unk>", "<s>", "</s>"];

/// How much text of each language goes into training.
#[derive(Debug, Clone, PartialEq)]
pub enum LangSampling {
    /// Everything given.
    All,
    /// The same number of bytes of every language (the smallest language's total).
    EqualBytes,
    /// Bytes in these proportions, as much as the inputs allow.
    Weights(Vec<(String, f64)>),
}

/// Trainer settings; `Default` gives Llama's (32k, byte fallback, digits split, coverage 0.9995, pieces ≤ 16).
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Exact size of the final vocabulary, special and byte tokens included.
    pub vocab_size: usize,
    /// Share of character occurrences the kept characters must cover.
    pub character_coverage: f64,
    /// Longest piece, in characters.
    pub max_piece_length: usize,
    /// Each digit is its own piece.
    pub split_digits: bool,
    /// Symbols that are always one token (ids right after the special tokens).
    pub user_defined_symbols: Vec<String>,
    /// Language mix.
    pub sampling: LangSampling,
    /// Seed of the document sampling.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            vocab_size: 32_000,
            character_coverage: 0.9995,
            max_piece_length: 16,
            split_digits: true,
            user_defined_symbols: vec![],
            sampling: LangSampling::EqualBytes,
            seed: 42,
        }
    }
}

/// What a training run produced.
#[derive(Debug, Clone)]
pub struct TrainedVocab {
    /// Pieces in id order.
    pub pieces: Vec<String>,
    /// Merge rules in rank order.
    pub merges: Vec<(String, String)>,
    /// Number of user-defined symbols (ids 3..3+n).
    pub num_user_defined: usize,
    /// Statistics for the report.
    pub stats: TrainStats,
}

/// Statistics of a training run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TrainStats {
    /// Per language: (tag, documents used, bytes used, bytes available).
    pub languages: Vec<(String, usize, u64, u64)>,
    /// Distinct words counted.
    pub unique_words: usize,
    /// Distinct characters seen.
    pub characters_seen: usize,
    /// Characters kept as pieces.
    pub characters_kept: usize,
    /// Share of character occurrences the kept characters cover.
    pub coverage: f64,
    /// Merge rules learned.
    pub merges: usize,
}

/// Trains a vocabulary from language-tagged documents.
pub fn train(inputs: &[LangTexts], cfg: &TrainConfig, reporter: &dyn Reporter) -> Result<TrainedVocab> {
    let reserved = SPECIAL_TOKENS.len() + cfg.user_defined_symbols.len() + 256;
    if cfg.vocab_size <= reserved {
        return Err(TokenizerError::Train(format!(
            "vocab size {} is below the {} required symbols (3 special, {} user-defined, 256 byte tokens) plus characters",
            cfg.vocab_size,
            reserved,
            cfg.user_defined_symbols.len()
        )));
    }
    if !(0.0 < cfg.character_coverage && cfg.character_coverage <= 1.0) {
        return Err(TokenizerError::Train(format!(
            "character coverage {} is not in (0, 1]",
            cfg.character_coverage
        )));
    }
    let mut seen_symbols = std::collections::HashSet::new();
    for u in &cfg.user_defined_symbols {
        if u.is_empty() {
            return Err(TokenizerError::Train("a user-defined symbol is empty".into()));
        }
        if SPECIAL_TOKENS.contains(&u.as_str()) {
            return Err(TokenizerError::Train(format!(
                "user-defined symbol {u:?} is a special token already"
            )));
        }
        if !seen_symbols.insert(u.as_str()) {
            return Err(TokenizerError::Train(format!("user-defined symbol {u:?} is given twice")));
        }
    }
    let (docs, mut stats) = sample(inputs, cfg)?;
    reporter.start("counting words", Some(docs.len() as u64), "docs");
    // User-defined symbols are cut out of the text first (as SentencePiece does, and as the tokenizer's added
    // tokens are at encoding time): BPE never sees them, so no merge can learn one a second time.
    let words = count_words(&docs, cfg.split_digits, &cfg.user_defined_symbols, reporter);
    reporter.finish();
    stats.unique_words = words.len();

    let (chars, coverage, seen) = kept_characters(&words, cfg.character_coverage);
    stats.characters_seen = seen;
    stats.characters_kept = chars.len();
    stats.coverage = coverage;
    let target_merged = cfg.vocab_size.checked_sub(reserved + chars.len()).ok_or_else(|| {
        TokenizerError::Train(format!(
            "vocab size {} is below the {} required symbols ({} special and byte tokens, {} characters at coverage {})",
            cfg.vocab_size,
            reserved + chars.len(),
            reserved,
            chars.len(),
            cfg.character_coverage
        ))
    })?;

    let mut bpe = Bpe::new(&words, &chars, cfg.max_piece_length);
    drop(words);
    reporter.start("merging", Some(target_merged as u64), "pieces");
    let mut merged_pieces = Vec::with_capacity(target_merged);
    let mut merges = Vec::with_capacity(target_merged);
    while merged_pieces.len() < target_merged {
        let Some((a, b, c, is_new)) = bpe.merge_best() else {
            return Err(TokenizerError::Train(format!(
                "the corpus is too small for vocab size {}: only {} pieces could be merged (need {target_merged})",
                cfg.vocab_size,
                merged_pieces.len()
            )));
        };
        merges.push((bpe.symbols[a as usize].clone(), bpe.symbols[b as usize].clone()));
        if is_new {
            merged_pieces.push(bpe.symbols[c as usize].clone());
            reporter.advance(1);
        }
    }
    reporter.finish();
    stats.merges = merges.len();

    let mut pieces: Vec<String> = SPECIAL_TOKENS.iter().map(|s| s.to_string()).collect();
    pieces.extend(cfg.user_defined_symbols.iter().cloned());
    pieces.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
    pieces.extend(merged_pieces);
    pieces.extend(chars.iter().map(|c| c.to_string()));
    debug_assert_eq!(pieces.len(), cfg.vocab_size);
    Ok(TrainedVocab { pieces, merges, num_user_defined: cfg.user_defined_symbols.len(), stats })
}

/// The documents used for training, per the language sampling.
fn sample<'a>(inputs: &'a [LangTexts], cfg: &TrainConfig) -> Result<(Vec<&'a str>, TrainStats)> {
    let targets: Vec<u64> = match &cfg.sampling {
        LangSampling::All => inputs.iter().map(|l| l.bytes).collect(),
        LangSampling::EqualBytes => {
            let min = inputs.iter().map(|l| l.bytes).min().unwrap_or(0);
            vec![min; inputs.len()]
        }
        LangSampling::Weights(w) => {
            for (tag, _) in w {
                if !inputs.iter().any(|l| &l.lang == tag) {
                    return Err(TokenizerError::Input(format!(
                        "sampling weight for {tag}, which has no input"
                    )));
                }
            }
            let weight = |lang: &str| w.iter().find(|(t, _)| t == lang).map_or(0.0, |(_, x)| *x);
            let total = inputs
                .iter()
                .filter(|l| weight(&l.lang) > 0.0)
                .map(|l| l.bytes as f64 / weight(&l.lang))
                .fold(f64::INFINITY, f64::min);
            inputs.iter().map(|l| (weight(&l.lang) * total) as u64).collect()
        }
    };
    let mut docs = Vec::new();
    let mut stats = TrainStats::default();
    for (lang, &target) in inputs.iter().zip(&targets) {
        let mut order: Vec<usize> = (0..lang.docs.len()).collect();
        if target < lang.bytes {
            order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(cfg.seed));
        }
        let (mut used, mut n) = (0u64, 0usize);
        for i in order {
            if used >= target {
                break;
            }
            docs.push(lang.docs[i].as_str());
            used += lang.docs[i].len() as u64;
            n += 1;
        }
        stats.languages.push((lang.lang.clone(), n, used, lang.bytes));
    }
    Ok((docs, stats))
}

/// Word counts over all lines, in parallel.
fn count_words(
    docs: &[&str],
    split_digits: bool,
    user_symbols: &[String],
    reporter: &dyn Reporter,
) -> FxHashMap<String, u64> {
    docs.par_iter()
        .fold(
            || (FxHashMap::<String, u64>::default(), String::new()),
            |(mut map, mut buf), doc| {
                for line in doc.split('\n') {
                    let line = line.strip_suffix('\r').unwrap_or(line);
                    if line.is_empty() {
                        continue;
                    }
                    for (k, segment) in cut_user_symbols(line, user_symbols).into_iter().enumerate() {
                        if segment.is_empty() {
                            continue;
                        }
                        buf.clear();
                        if k == 0 {
                            buf.push(METASPACE);
                        }
                        buf.extend(segment.chars().map(|c| if c == ' ' { METASPACE } else { c }));
                        for_each_word(&buf, split_digits, |w| match map.get_mut(w) {
                            Some(n) => *n += 1,
                            None => {
                                map.insert(w.to_owned(), 1);
                            }
                        });
                    }
                }
                reporter.advance(1);
                (map, buf)
            },
        )
        .map(|(map, _)| map)
        .reduce(FxHashMap::default, |a, b| {
            let (mut big, small) = if a.len() >= b.len() { (a, b) } else { (b, a) };
            for (k, v) in small {
                *big.entry(k).or_insert(0) += v;
            }
            big
        })
}

/// The parts of `line` between occurrences of the user-defined symbols (leftmost, longest first), the first
/// part first; the symbols themselves are dropped.
fn cut_user_symbols<'a>(line: &'a str, symbols: &[String]) -> Vec<&'a str> {
    if symbols.is_empty() {
        return vec![line];
    }
    let mut parts = vec![];
    let (mut start, mut i) = (0, 0);
    while i < line.len() {
        let rest = &line[i..];
        match symbols.iter().filter(|s| rest.starts_with(s.as_str())).map(String::len).max() {
            Some(n) => {
                parts.push(&line[start..i]);
                i += n;
                start = i;
            }
            None => i += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    parts.push(&line[start..]);
    parts
}

/// Calls `f` with each word of a normalised line (see the module docs for the cutting rules).
fn for_each_word(line: &str, split_digits: bool, mut f: impl FnMut(&str)) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let end_of = |i: usize| chars.get(i).map_or(line.len(), |&(b, _)| b);
    let mut start = 0; // char index where the current word starts
    let mut group = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        if c == METASPACE {
            let mut j = i;
            while j < chars.len() && chars[j].1 == METASPACE {
                j += 1;
            }
            if start < i {
                f(&line[end_of(start)..end_of(i)]);
            }
            if j == chars.len() {
                f(&line[end_of(i)..line.len()]);
                return;
            }
            if j - i >= 2 {
                f(&line[end_of(i)..end_of(j - 1)]);
            }
            start = j - 1;
            group = None;
            i = j;
            continue;
        }
        if split_digits && c.is_ascii_digit() {
            if start < i {
                f(&line[end_of(start)..end_of(i)]);
            }
            f(&line[end_of(i)..end_of(i + 1)]);
            start = i + 1;
            group = None;
            i += 1;
            continue;
        }
        if let Some(g) = train_group(c) {
            match group {
                Some(prev) if prev != g => {
                    f(&line[end_of(start)..end_of(i)]);
                    start = i;
                }
                _ => {}
            }
            group = Some(g);
        }
        i += 1;
    }
    if start < chars.len() {
        f(&line[end_of(start)..line.len()]);
    }
}

/// The characters covering `coverage` of all occurrences, most frequent first; the coverage reached; and the
/// number of distinct characters.
fn kept_characters(words: &FxHashMap<String, u64>, coverage: f64) -> (Vec<char>, f64, usize) {
    let mut counts: FxHashMap<char, u64> = FxHashMap::default();
    for (w, &n) in words {
        for c in w.chars() {
            *counts.entry(c).or_insert(0) += n;
        }
    }
    let total: u64 = counts.values().sum();
    let mut sorted: Vec<(char, u64)> = counts.into_iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let seen = sorted.len();
    let mut kept = Vec::new();
    let mut acc = 0u64;
    for (c, n) in sorted {
        if acc as f64 >= coverage * total as f64 {
            break;
        }
        kept.push(c);
        acc += n;
    }
    (kept, acc as f64 / total.max(1) as f64, seen)
}

/// Merge state: words as symbol sequences, pair counts, where each pair occurs, a lazy max-heap.
struct Bpe {
    symbols: Vec<String>,
    char_len: Vec<usize>,
    ids: FxHashMap<String, u32>,
    words: Vec<Vec<u32>>,
    counts: Vec<i64>,
    pair_counts: FxHashMap<(u32, u32), i64>,
    pair_words: FxHashMap<(u32, u32), Vec<u32>>,
    heap: BinaryHeap<(i64, Reverse<(u32, u32)>)>,
    max_len: usize,
    stamp: Vec<u32>,
    merges_done: u32,
}

impl Bpe {
    fn new(words: &FxHashMap<String, u64>, chars: &[char], max_len: usize) -> Self {
        let symbols: Vec<String> = chars.iter().map(|c| c.to_string()).collect();
        let ids: FxHashMap<String, u32> =
            symbols.iter().enumerate().map(|(i, s)| (s.clone(), i as u32)).collect();
        let char_id: FxHashMap<char, u32> = chars.iter().enumerate().map(|(i, &c)| (c, i as u32)).collect();
        let mut seqs = Vec::new();
        let mut counts = Vec::new();
        for (w, &n) in words {
            // Rare characters are not symbols: they cut the word.
            let mut seq = Vec::new();
            for c in w.chars() {
                match char_id.get(&c) {
                    Some(&id) => seq.push(id),
                    None => {
                        if seq.len() >= 2 {
                            seqs.push(std::mem::take(&mut seq));
                            counts.push(n as i64);
                        }
                        seq.clear();
                    }
                }
            }
            if seq.len() >= 2 {
                seqs.push(seq);
                counts.push(n as i64);
            }
        }
        let mut pair_counts: FxHashMap<(u32, u32), i64> = FxHashMap::default();
        let mut pair_words: FxHashMap<(u32, u32), Vec<u32>> = FxHashMap::default();
        for (wi, (seq, &n)) in seqs.iter().zip(&counts).enumerate() {
            for p in seq.windows(2) {
                let pair = (p[0], p[1]);
                *pair_counts.entry(pair).or_insert(0) += n;
                let list = pair_words.entry(pair).or_default();
                if list.last() != Some(&(wi as u32)) {
                    list.push(wi as u32);
                }
            }
        }
        let char_len = vec![1; symbols.len()];
        let heap = pair_counts.iter().filter(|_| max_len >= 2).map(|(&p, &n)| (n, Reverse(p))).collect();
        let stamp = vec![u32::MAX; seqs.len()];
        Self {
            symbols,
            char_len,
            ids,
            words: seqs,
            counts,
            pair_counts,
            pair_words,
            heap,
            max_len,
            stamp,
            merges_done: 0,
        }
    }

    /// Applies the best merge: returns (left, right, merged, whether the merged piece is new).
    fn merge_best(&mut self) -> Option<(u32, u32, u32, bool)> {
        let (a, b) = loop {
            let (n, Reverse(pair)) = self.heap.pop()?;
            let current = self.pair_counts.get(&pair).copied().unwrap_or(0);
            if current <= 0 {
                continue;
            }
            if current != n {
                self.heap.push((current, Reverse(pair)));
                continue;
            }
            break pair;
        };
        let piece = format!("{}{}", self.symbols[a as usize], self.symbols[b as usize]);
        let (c, is_new) = match self.ids.get(&piece) {
            Some(&id) => (id, false),
            None => {
                let id = self.symbols.len() as u32;
                self.char_len.push(self.char_len[a as usize] + self.char_len[b as usize]);
                self.symbols.push(piece.clone());
                self.ids.insert(piece, id);
                (id, true)
            }
        };
        let mark = self.merges_done;
        self.merges_done += 1;
        let mut delta: FxHashMap<(u32, u32), i64> = FxHashMap::default();
        let word_ids = self.pair_words.remove(&(a, b)).unwrap_or_default();
        let mut merged = Vec::new();
        for &wi in &word_ids {
            let w = wi as usize;
            if self.stamp[w] == mark {
                continue;
            }
            self.stamp[w] = mark;
            let seq = &self.words[w];
            if !seq.windows(2).any(|p| p[0] == a && p[1] == b) {
                continue;
            }
            let n = self.counts[w];
            merged.clear();
            let mut i = 0;
            while i < seq.len() {
                if i + 1 < seq.len() && seq[i] == a && seq[i + 1] == b {
                    merged.push(c);
                    i += 2;
                } else {
                    merged.push(seq[i]);
                    i += 1;
                }
            }
            for p in seq.windows(2) {
                *delta.entry((p[0], p[1])).or_insert(0) -= n;
            }
            for p in merged.windows(2) {
                let pair = (p[0], p[1]);
                *delta.entry(pair).or_insert(0) += n;
                if pair.0 == c || pair.1 == c {
                    let list = self.pair_words.entry(pair).or_default();
                    if list.last() != Some(&wi) {
                        list.push(wi);
                    }
                }
            }
            self.words[w].clone_from(&merged);
        }
        for (pair, d) in delta {
            if d == 0 {
                continue;
            }
            let count = self.pair_counts.entry(pair).or_insert(0);
            *count += d;
            let count = *count;
            if count <= 0 {
                self.pair_counts.remove(&pair);
            } else if d > 0 && self.char_len[pair.0 as usize] + self.char_len[pair.1 as usize] <= self.max_len
            {
                self.heap.push((count, Reverse(pair)));
            }
        }
        Some((a, b, c, is_new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        let mut out = vec![];
        let norm: String = std::iter::once(METASPACE)
            .chain(line.chars().map(|c| if c == ' ' { METASPACE } else { c }))
            .collect();
        for_each_word(&norm, true, |w| out.push(w.to_string()));
        out
    }

    #[test]
    fn lines_are_cut_like_sentencepiece() {
        assert_eq!(words("Hello world"), ["▁Hello", "▁world"]);
        assert_eq!(words("a   b"), ["▁a", "▁▁", "▁b"]);
        assert_eq!(words("x  "), ["▁x", "▁▁"]);
        assert_eq!(words("東京タワーへ行く。Tokyo"), ["▁東京タワーへ行く", "。", "Tokyo"]);
        assert_eq!(words("in 2024, ok"), ["▁in", "▁", "2", "0", "2", "4", ",", "▁ok"]);
        assert_eq!(words(" lead"), ["▁", "▁lead"]);
    }

    fn texts(lang: &str, docs: &[&str]) -> LangTexts {
        let docs: Vec<String> = docs.iter().map(|d| d.to_string()).collect();
        LangTexts { lang: lang.into(), bytes: docs.iter().map(|d| d.len() as u64).sum(), docs, files: vec![] }
    }

    #[test]
    fn trains_an_exact_vocabulary_with_llama_layout() {
        let en = texts("en", &["the cat sat on the mat\nthe cat ate the rat", "a mat, a cat, a hat"]);
        let ja = texts("ja", &["猫が座った。猫がマットの上に座った。", "ねこ ねこ ねこ"]);
        let cfg = TrainConfig { vocab_size: 300, sampling: LangSampling::All, ..Default::default() };
        let v = train(&[en, ja], &cfg, &hashi_core::NoReporter).expect("trains");
        assert_eq!(v.pieces.len(), 300);
        assert_eq!(&v.pieces[..4], ["<unk>", "<s>", "</s>", "<0x00>"]);
        assert_eq!(v.pieces[258], "<0xFF>");
        assert!(v.pieces.contains(&"▁the".to_string()), "{:?}", &v.pieces[259..]);
        assert!(v.pieces.contains(&"▁cat".to_string()));
        let unique: std::collections::HashSet<&String> = v.pieces.iter().collect();
        assert_eq!(unique.len(), 300, "pieces are unique");
        for p in &v.pieces[259..] {
            let inner_ws = p.chars().skip(1).any(|c| c == METASPACE);
            assert!(!inner_ws || p.chars().all(|c| c == METASPACE), "▁ only leads: {p}");
            assert!(p.chars().count() == 1 || !p.chars().any(|c| c.is_ascii_digit()), "digits alone: {p}");
        }
    }

    #[test]
    fn refuses_impossible_vocab_sizes() {
        let en = texts("en", &["tiny text"]);
        let small = TrainConfig { vocab_size: 200, ..Default::default() };
        let e = train(std::slice::from_ref(&en), &small, &hashi_core::NoReporter).expect_err("below 259");
        assert!(e.to_string().contains("below the 259 required symbols"), "{e}");
        let big = TrainConfig { vocab_size: 5000, ..Default::default() };
        let e = train(&[en], &big, &hashi_core::NoReporter).expect_err("corpus too small");
        assert!(e.to_string().contains("too small"), "{e}");
    }
}
