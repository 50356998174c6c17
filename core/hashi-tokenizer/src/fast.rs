//! A fast encoder for the Llama-style tokenizers that hashi writes ([`crate::hf::LlamaStyle`]).
//!
//! It reproduces the `tokenizers` pipeline for exactly that configuration — added tokens split out first
//! (leftmost, then longest), each remaining segment normalised on its own (`Prepend("▁")` if non-empty, spaces to
//! `▁`), user-defined symbols cut out of the normalised segment (the `Split` pre-tokenizer hashi writes for them,
//! each chunk looked up whole first: `ignore_merges`), BPE over each chunk with the merges applied lowest rank
//! first (leftmost on ties) and unknown characters as byte tokens, `<s>` prepended by the template — without the
//! alignment bookkeeping of `NormalizedString` and `Encoding`, which costs most of the library's encode time. Any
//! other tokenizer.json is left to the `tokenizers` crate: another pre-tokenizer (byte-level, metaspace, other
//! split regexes), no byte fallback, dropout, truncation or padding, added tokens that strip or match whole
//! words, other normalisers or post-processors. Equality of ids with the library is tested on real corpora.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;
use serde_json::Value;

use crate::script::METASPACE;

/// The encoder's tables.
pub(crate) struct FastBpe {
    ascii: [u32; 128],
    chars: FxHashMap<char, u32>,
    bytes: [u32; 256],
    merges: FxHashMap<(u32, u32), (u32, u32)>,
    added: Vec<(String, u32)>,
    /// User-defined symbols cut out of normalised text, and the whole-chunk lookup that comes with them.
    symbols: Vec<(String, u32)>,
    whole: Option<FxHashMap<String, u32>>,
    prepend: bool,
    bos: Option<u32>,
}

const NONE: u32 = u32::MAX;

#[derive(PartialEq, Eq)]
struct Merge {
    pos: usize,
    rank: u32,
    new_id: u32,
}

impl Ord for Merge {
    fn cmp(&self, other: &Self) -> Ordering {
        // A min-heap on (rank, pos), as in `tokenizers`.
        other.rank.cmp(&self.rank).then_with(|| other.pos.cmp(&self.pos))
    }
}

impl PartialOrd for Merge {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Clone, Copy)]
struct Symbol {
    id: u32,
    prev: isize,
    next: isize,
    alive: bool,
}

impl FastBpe {
    /// Tables for `json` if it is a tokenizer this encoder reproduces exactly, else `None`.
    pub(crate) fn from_json(json: &Value) -> Option<Self> {
        let model = json.get("model")?;
        let flag = |k: &str| model.get(k).and_then(Value::as_bool);
        if model.get("type")?.as_str()? != "BPE"
            || flag("byte_fallback") != Some(true)
            || flag("fuse_unk") != Some(true)
            || !model.get("dropout").is_none_or(Value::is_null)
            || !model.get("continuing_subword_prefix").is_none_or(Value::is_null)
            || !model.get("end_of_word_suffix").is_none_or(Value::is_null)
            || !json.get("truncation").is_none_or(Value::is_null)
            || !json.get("padding").is_none_or(Value::is_null)
        {
            return None;
        }
        let prepend = match json.get("normalizer")?.get("normalizers")?.as_array()?.as_slice() {
            [p, r] if *p == serde_json::json!({"type": "Prepend", "prepend": "▁"}) && is_space_replace(r) => {
                true
            }
            [r] if is_space_replace(r) => false,
            _ => return None,
        };
        let vocab: FxHashMap<&str, u32> = model
            .get("vocab")?
            .as_object()?
            .iter()
            .map(|(k, v)| Some((k.as_str(), u32::try_from(v.as_u64()?).ok()?)))
            .collect::<Option<_>>()?;
        vocab.get(model.get("unk_token")?.as_str()?)?;
        // With all 256 byte tokens present, no character is ever unknown.
        let mut bytes = [0u32; 256];
        for (b, slot) in bytes.iter_mut().enumerate() {
            *slot = *vocab.get(format!("<0x{b:02X}>").as_str())?;
        }
        let mut ascii = [NONE; 128];
        let mut chars = FxHashMap::default();
        for (piece, &id) in &vocab {
            let mut it = piece.chars();
            if let (Some(c), None) = (it.next(), it.next()) {
                if c.is_ascii() {
                    ascii[c as usize] = id;
                }
                chars.insert(c, id);
            }
        }
        // No pre-tokenizer, or the user-defined symbols' split (with `ignore_merges`) that hf.rs writes.
        let symbols: Vec<(String, u32)> = match json.get("pre_tokenizer") {
            None | Some(Value::Null) if flag("ignore_merges") != Some(true) => vec![],
            Some(p) if flag("ignore_merges") == Some(true) => {
                let pattern = p.get("pattern")?.get("Regex")?.as_str()?;
                let symbols = crate::hf::split_symbols(pattern)?;
                if *p != crate::hf::symbols_split(&symbols.iter().map(String::as_str).collect::<Vec<_>>()) {
                    return None;
                }
                symbols
                    .into_iter()
                    .map(|s| vocab.get(s.as_str()).map(|&id| (s, id)))
                    .collect::<Option<_>>()?
            }
            _ => return None,
        };
        let whole = (!symbols.is_empty())
            .then(|| vocab.iter().map(|(k, &v)| (k.to_string(), v)).collect::<FxHashMap<String, u32>>());
        let mut merges = FxHashMap::default();
        for (rank, m) in model.get("merges")?.as_array()?.iter().enumerate() {
            let (a, b) = match m {
                Value::Array(pair) => {
                    (pair.first()?.as_str()?.to_string(), pair.get(1)?.as_str()?.to_string())
                }
                Value::String(s) => {
                    let (a, b) = s.split_once(' ')?;
                    (a.to_string(), b.to_string())
                }
                _ => return None,
            };
            let new_id = *vocab.get(format!("{a}{b}").as_str())?;
            merges.entry((*vocab.get(a.as_str())?, *vocab.get(b.as_str())?)).or_insert((rank as u32, new_id));
        }
        let mut added = Vec::new();
        for t in json.get("added_tokens")?.as_array()? {
            let f = |k: &str| t.get(k).and_then(Value::as_bool);
            if f("single_word") != Some(false)
                || f("lstrip") != Some(false)
                || f("rstrip") != Some(false)
                || f("normalized") != Some(false)
            {
                return None;
            }
            added
                .push((t.get("content")?.as_str()?.to_string(), u32::try_from(t.get("id")?.as_u64()?).ok()?));
        }
        let bos = match json.get("post_processor") {
            None | Some(Value::Null) => None,
            Some(p) => {
                let single = p.get("single")?.as_array()?;
                match single.as_slice() {
                    [s, a] if a.get("Sequence").is_some() => {
                        let name = s.get("SpecialToken")?.get("id")?.as_str()?;
                        let ids = p.get("special_tokens")?.get(name)?.get("ids")?.as_array()?;
                        match ids.as_slice() {
                            [id] => Some(u32::try_from(id.as_u64()?).ok()?),
                            _ => return None,
                        }
                    }
                    [a] if a.get("Sequence").is_some() => None,
                    _ => return None,
                }
            }
        };
        Some(Self { ascii, chars, bytes, merges, added, symbols, whole, prepend, bos })
    }

    /// Token ids of `text`.
    pub(crate) fn encode(&self, text: &str, add_special_tokens: bool) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special_tokens && let Some(bos) = self.bos {
            out.push(bos);
        }
        let mut rest = text;
        while !rest.is_empty() {
            match self.next_added(rest) {
                Some((start, len, id)) => {
                    self.encode_segment(&rest[..start], &mut out);
                    out.push(id);
                    rest = &rest[start + len..];
                }
                None => {
                    self.encode_segment(rest, &mut out);
                    break;
                }
            }
        }
        out
    }

    /// Leftmost occurrence of an added token (longest on ties): (byte start, byte length, id).
    fn next_added(&self, text: &str) -> Option<(usize, usize, u32)> {
        leftmost(&self.added, text)
    }

    fn char_id(&self, c: char) -> Option<u32> {
        if c.is_ascii() {
            let id = self.ascii[c as usize];
            return (id != NONE).then_some(id);
        }
        self.chars.get(&c).copied()
    }

    fn encode_segment(&self, segment: &str, out: &mut Vec<u32>) {
        if segment.is_empty() {
            return;
        }
        let space = |c: char| if c == ' ' { METASPACE } else { c };
        let normalised: String =
            self.prepend.then_some(METASPACE).into_iter().chain(segment.chars().map(space)).collect();
        let mut rest = normalised.as_str();
        while !rest.is_empty() {
            match leftmost(&self.symbols, rest) {
                Some((start, len, id)) => {
                    self.encode_chunk(&rest[..start], out);
                    out.push(id);
                    rest = &rest[start + len..];
                }
                None => {
                    self.encode_chunk(rest, out);
                    break;
                }
            }
        }
    }

    /// BPE of one normalised chunk (after a whole-chunk lookup when the tokenizer has `ignore_merges`).
    fn encode_chunk(&self, chunk: &str, out: &mut Vec<u32>) {
        if chunk.is_empty() {
            return;
        }
        if let Some(id) = self.whole.as_ref().and_then(|w| w.get(chunk)) {
            out.push(*id);
            return;
        }
        if self.char_id('\n').is_some() {
            return self.bpe(chunk.chars(), out);
        }
        // A newline outside the vocabulary is a byte token that no merge touches: BPE line by line is BPE over
        // the whole text, with a heap the size of a line instead of the document.
        for (i, line) in chunk.split('\n').enumerate() {
            if i > 0 {
                out.push(self.bytes[usize::from(b'\n')]);
            }
            if !line.is_empty() {
                self.bpe(line.chars(), out);
            }
        }
    }

    fn bpe(&self, chars: impl Iterator<Item = char>, out: &mut Vec<u32>) {
        let mut symbols: Vec<Symbol> = Vec::new();
        let mut push = |id: u32| {
            let i = symbols.len() as isize;
            symbols.push(Symbol { id, prev: i - 1, next: i + 1, alive: true });
        };
        let metaspace = self.char_id(METASPACE);
        for c in chars {
            let id = if c == METASPACE { metaspace } else { self.char_id(c) };
            match id {
                Some(id) => push(id),
                None => {
                    let mut buf = [0u8; 4];
                    for &b in c.encode_utf8(&mut buf).as_bytes() {
                        push(self.bytes[b as usize]);
                    }
                }
            }
        }
        if let Some(last) = symbols.last_mut() {
            last.next = -1;
        }
        let mut queue: BinaryHeap<Merge> = symbols
            .windows(2)
            .enumerate()
            .filter_map(|(pos, w)| {
                self.merges.get(&(w[0].id, w[1].id)).map(|&(rank, new_id)| Merge { pos, rank, new_id })
            })
            .collect();
        while let Some(top) = queue.pop() {
            let cur = symbols[top.pos];
            if !cur.alive || cur.next < 0 {
                continue;
            }
            let right = symbols[cur.next as usize];
            if self.merges.get(&(cur.id, right.id)).is_none_or(|&(_, id)| id != top.new_id) {
                continue;
            }
            symbols[top.pos].id = top.new_id;
            symbols[top.pos].next = right.next;
            symbols[cur.next as usize].alive = false;
            if right.next >= 0 {
                symbols[right.next as usize].prev = top.pos as isize;
            }
            let cur = symbols[top.pos];
            if cur.prev >= 0 {
                let prev = symbols[cur.prev as usize];
                if let Some(&(rank, new_id)) = self.merges.get(&(prev.id, cur.id)) {
                    queue.push(Merge { pos: cur.prev as usize, rank, new_id });
                }
            }
            if cur.next >= 0 {
                let next = symbols[cur.next as usize];
                if let Some(&(rank, new_id)) = self.merges.get(&(cur.id, next.id)) {
                    queue.push(Merge { pos: top.pos, rank, new_id });
                }
            }
        }
        out.extend(symbols.iter().filter(|s| s.alive).map(|s| s.id));
    }
}

/// Leftmost occurrence in `text` of one of `tokens` (longest on ties): (byte start, byte length, id).
fn leftmost(tokens: &[(String, u32)], text: &str) -> Option<(usize, usize, u32)> {
    let mut best: Option<(usize, usize, u32)> = None;
    for (tok, id) in tokens {
        if let Some(pos) = text.find(tok.as_str()) {
            let better = match best {
                None => true,
                Some((p, l, _)) => pos < p || (pos == p && tok.len() > l),
            };
            if better {
                best = Some((pos, tok.len(), *id));
            }
        }
    }
    best
}

fn is_space_replace(v: &Value) -> bool {
    *v == serde_json::json!({"type": "Replace", "pattern": {"String": " "}, "content": "▁"})
}
