//! A MeCab-compatible word segmenter over MeCab's compiled dictionaries (`sys.dic`, `unk.dic`, `matrix.bin`,
//! `char.bin`; e.g. the `unidic-lite` package the upstream QA scorer uses through fugashi). It follows MeCab
//! 0.996's lookup (space skipping, double-array prefix search, unknown-word grouping by character category) and
//! its Viterbi search (first best predecessor on ties), so `wakati` gives MeCab's `-Owakati` words.

use std::path::{Path, PathBuf};

/// MeCab's dictionary magic (`DictionaryMagicID`), xor-ed with the file size in the header.
const MAGIC: u32 = 0xef71_8f77;
/// The dictionary format version MeCab 0.996 writes.
const VERSION: u32 = 102;
/// MeCab's default `max-grouping-size`.
const MAX_GROUPING: usize = 24;

/// Why a dictionary could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct MecabError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

fn err(path: &Path, message: impl Into<String>) -> MecabError {
    MecabError { path: path.to_path_buf(), message: message.into() }
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

/// A compiled dictionary: header, double array, tokens.
struct Dic {
    data: Vec<u8>,
    da: usize,
    da_units: usize,
    tokens: usize,
    token_count: usize,
}

/// A token's connection attributes and cost.
#[derive(Clone, Copy)]
struct Token {
    lc: u16,
    rc: u16,
    wcost: i16,
}

impl Dic {
    fn open(path: &Path) -> Result<Dic, MecabError> {
        let data = std::fs::read(path).map_err(|e| err(path, e.to_string()))?;
        if data.len() < 72 {
            return Err(err(path, "too short for a MeCab dictionary header"));
        }
        let h = |i: usize| u32_at(&data, 4 * i);
        if (h(0) ^ MAGIC) as usize != data.len() {
            return Err(err(
                path,
                "not a MeCab dictionary, or truncated (magic does not match the file size)",
            ));
        }
        if h(1) != VERSION {
            return Err(err(path, format!("dictionary version {}, this reader knows {VERSION}", h(1))));
        }
        let (dsize, tsize) = (h(6) as usize, h(7) as usize);
        let da = 72;
        if da + dsize + tsize > data.len() || dsize % 8 != 0 || tsize % 16 != 0 {
            return Err(err(path, "section sizes do not fit the file"));
        }
        Ok(Dic { da, da_units: dsize / 8, tokens: da + dsize, token_count: tsize / 16, data })
    }

    fn base(&self, i: usize) -> i32 {
        if i >= self.da_units { 0 } else { u32_at(&self.data, self.da + 8 * i) as i32 }
    }

    fn check(&self, i: usize) -> u32 {
        if i >= self.da_units { u32::MAX } else { u32_at(&self.data, self.da + 8 * i + 4) }
    }

    /// Darts `commonPrefixSearch` from the root: `(value, key length)` of every prefix that is a key.
    fn prefixes(&self, key: &[u8], out: &mut Vec<(u32, usize)>) {
        out.clear();
        let mut b = self.base(0);
        for (i, &k) in key.iter().enumerate() {
            let p = b as u32 as usize;
            let n = self.base(p);
            if b as u32 == self.check(p) && n < 0 {
                out.push(((-n - 1) as u32, i));
            }
            let p = (b as u32 as usize).wrapping_add(k as usize + 1);
            if b as u32 == self.check(p) {
                b = self.base(p);
            } else {
                return;
            }
        }
        let p = b as u32 as usize;
        let n = self.base(p);
        if b as u32 == self.check(p) && n < 0 {
            out.push(((-n - 1) as u32, key.len()));
        }
    }

    /// Darts `exactMatchSearch`.
    fn exact(&self, key: &[u8]) -> Option<u32> {
        let mut b = self.base(0);
        for &k in key {
            let p = (b as u32 as usize).wrapping_add(k as usize + 1);
            if b as u32 == self.check(p) {
                b = self.base(p);
            } else {
                return None;
            }
        }
        let p = b as u32 as usize;
        let n = self.base(p);
        (b as u32 == self.check(p) && n < 0).then_some((-n - 1) as u32)
    }

    /// The tokens a search value points to (`value >> 8` first, `value & 0xff` of them).
    fn tokens(&self, value: u32) -> impl Iterator<Item = Token> + '_ {
        let (first, n) = ((value >> 8) as usize, (value & 0xff) as usize);
        (first..(first + n).min(self.token_count)).map(move |t| {
            let off = self.tokens + 16 * t;
            Token {
                lc: u16_at(&self.data, off),
                rc: u16_at(&self.data, off + 2),
                wcost: u16_at(&self.data, off + 6) as i16,
            }
        })
    }
}

/// A character's categories (`CharInfo`): a 32-bit field, bits 0–17 type set, 18–25 default type, 26–29
/// length, 30 group, 31 invoke.
#[derive(Clone, Copy, Default)]
struct CharInfo(u32);

impl CharInfo {
    fn types(self) -> u32 {
        self.0 & 0x3ffff
    }
    fn default_type(self) -> usize {
        ((self.0 >> 18) & 0xff) as usize
    }
    fn length(self) -> usize {
        ((self.0 >> 26) & 0xf) as usize
    }
    fn group(self) -> bool {
        (self.0 >> 30) & 1 == 1
    }
    fn invoke(self) -> bool {
        (self.0 >> 31) & 1 == 1
    }
    fn kind_of(self, other: CharInfo) -> bool {
        self.types() & other.types() != 0
    }
}

/// A lattice node.
struct Node {
    start: usize,
    len: usize,
    rc: u16,
    cost: i64,
    prev: usize,
}

/// The segmenter.
pub struct Mecab {
    sys: Dic,
    matrix: Vec<i16>,
    lsize: usize,
    chars: Vec<CharInfo>,
    /// Per character category: the `unk.dic` tokens of unknown words.
    unk_tokens: Vec<Vec<Token>>,
    space: CharInfo,
}

impl Mecab {
    /// Opens a compiled dictionary directory (for unidic-lite: `python -c "import unidic_lite; print(unidic_lite.DICDIR)"`).
    pub fn open(dir: &Path) -> Result<Mecab, MecabError> {
        let sys = Dic::open(&dir.join("sys.dic"))?;
        let unk = Dic::open(&dir.join("unk.dic"))?;
        let mpath = dir.join("matrix.bin");
        let m = std::fs::read(&mpath).map_err(|e| err(&mpath, e.to_string()))?;
        if m.len() < 4 {
            return Err(err(&mpath, "too short"));
        }
        let (lsize, rsize) = (u16_at(&m, 0) as usize, u16_at(&m, 2) as usize);
        if m.len() != 4 + 2 * lsize * rsize {
            return Err(err(
                &mpath,
                format!("{} bytes, a {lsize} × {rsize} matrix needs {}", m.len(), 4 + 2 * lsize * rsize),
            ));
        }
        let matrix = m[4..].chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect();
        let cpath = dir.join("char.bin");
        let c = std::fs::read(&cpath).map_err(|e| err(&cpath, e.to_string()))?;
        let ncat = if c.len() >= 4 { u32_at(&c, 0) as usize } else { 0 };
        let table = 4 + 32 * ncat;
        if ncat == 0 || c.len() != table + 4 * 0xffff {
            return Err(err(&cpath, "not a MeCab char.bin (category count and size do not agree)"));
        }
        let chars: Vec<CharInfo> = (0..0xffff).map(|i| CharInfo(u32_at(&c, table + 4 * i))).collect();
        let mut unk_tokens = vec![];
        for i in 0..ncat {
            let raw = &c[4 + 32 * i..4 + 32 * (i + 1)];
            let name = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(32)];
            let v = unk.exact(name).ok_or_else(|| {
                err(&dir.join("unk.dic"), format!("no entry for category {}", String::from_utf8_lossy(name)))
            })?;
            unk_tokens.push(unk.tokens(v).collect());
        }
        let space = chars[0x20];
        Ok(Mecab { sys, matrix, lsize, chars, unk_tokens, space })
    }

    /// MeCab's `utf8_to_ucs2` + `getCharInfo`: the category of the character at `p` and its byte length.
    /// Characters beyond U+FFFF read as code 0, as in MeCab; at the end of the text MeCab reads the
    /// terminating NUL (code 0, one byte).
    fn char_at(&self, t: &[u8], p: usize) -> (CharInfo, usize) {
        let len = t.len().saturating_sub(p);
        let b = |i: usize| t.get(p + i).copied().unwrap_or(0) as u32;
        let (code, n) = if b(0) < 0x80 {
            (b(0), 1)
        } else if len >= 2 && b(0) & 0xe0 == 0xc0 {
            (((b(0) & 0x1f) << 6) | (b(1) & 0x3f), 2)
        } else if len >= 3 && b(0) & 0xf0 == 0xe0 {
            (((b(0) & 0x0f) << 12) | ((b(1) & 0x3f) << 6) | (b(2) & 0x3f), 3)
        } else if len >= 4 && b(0) & 0xf8 == 0xf0 {
            (0, 4)
        } else if len >= 5 && b(0) & 0xfc == 0xf8 {
            (0, 5)
        } else if len >= 6 && b(0) & 0xfe == 0xfc {
            (0, 6)
        } else {
            (0, 1)
        };
        (self.chars.get(code as usize).copied().unwrap_or(CharInfo(0)), n)
    }

    /// `seekToOtherType`: from `p`, skips characters of `c`'s kind (each becoming the next `c`); returns the
    /// stop position, the info and length of the character there (or of the last one read), and the count.
    fn seek(&self, t: &[u8], mut p: usize, mut c: CharInfo) -> (usize, CharInfo, usize, usize) {
        let (mut fail, mut mblen, mut count) = (CharInfo::default(), 0, 0);
        while p != t.len() {
            let (info, n) = self.char_at(t, p);
            fail = info;
            mblen = n;
            if !c.kind_of(info) {
                break;
            }
            p += n;
            count += 1;
            c = info;
        }
        (p, fail, mblen, count)
    }

    /// Candidate words starting at `pos` (after skipping spaces), in MeCab's creation order.
    fn lookup(
        &self,
        t: &[u8],
        pos: usize,
        found: &mut Vec<(u32, usize)>,
        out: &mut Vec<(usize, usize, Token)>,
    ) {
        out.clear();
        let end = t.len();
        let (begin2, cinfo, mblen, _) = self.seek(t, pos, self.space);
        if begin2 == end {
            return;
        }
        self.sys.prefixes(&t[begin2..], found);
        for &(value, len) in found.iter() {
            out.extend(self.sys.tokens(value).map(|tok| (begin2, len, tok)));
        }
        if !out.is_empty() && !cinfo.invoke() {
            return;
        }
        let unk = &self.unk_tokens[cinfo.default_type().min(self.unk_tokens.len() - 1)];
        let add = |out: &mut Vec<(usize, usize, Token)>, stop: usize| {
            out.extend(unk.iter().map(|&tok| (begin2, stop - begin2, tok)));
        };
        let mut begin3 = begin2 + mblen;
        let mut group_end = None;
        if cinfo.group() {
            let (stop, _, _, count) = self.seek(t, begin3, cinfo);
            if count <= MAX_GROUPING {
                add(out, stop);
            }
            group_end = Some(stop);
        }
        for _ in 1..=cinfo.length() {
            if begin3 > end {
                break;
            }
            if Some(begin3) == group_end {
                continue;
            }
            add(out, begin3);
            let (info, n) = self.char_at(t, begin3);
            if !cinfo.kind_of(info) {
                break;
            }
            begin3 += n;
        }
        if out.is_empty() {
            add(out, begin3.min(end));
        }
    }

    /// Connection cost of `left` followed by `right` (including `right`'s word cost).
    fn cost(&self, left_rc: u16, right_lc: u16, right_wcost: i16) -> i64 {
        i64::from(self.matrix[left_rc as usize + self.lsize * right_lc as usize]) + i64::from(right_wcost)
    }

    /// The words of `text`, as `mecab -Owakati` writes them.
    pub fn wakati(&self, text: &str) -> Vec<String> {
        let t = text.as_bytes();
        let n = t.len();
        if n == 0 {
            return vec![];
        }
        // Node 0 is BOS. `ends[p]` lists nodes ending at byte p, newest last (MeCab prepends: newest first).
        let mut nodes = vec![Node { start: 0, len: 0, rc: 0, cost: 0, prev: 0 }];
        let mut ends: Vec<Vec<usize>> = vec![vec![]; n + 1];
        ends[0].push(0);
        let (mut found, mut cands) = (vec![], vec![]);
        for pos in 0..n {
            if ends[pos].is_empty() {
                continue;
            }
            self.lookup(t, pos, &mut found, &mut cands);
            // MeCab walks the candidates newest first.
            for &(start, len, tok) in cands.iter().rev() {
                let mut best: Option<(i64, usize)> = None;
                for &l in ends[pos].iter().rev() {
                    let c = nodes[l].cost + self.cost(nodes[l].rc, tok.lc, tok.wcost);
                    if best.is_none_or(|(b, _)| c < b) {
                        best = Some((c, l));
                    }
                }
                let Some((cost, prev)) = best else { continue };
                let id = nodes.len();
                nodes.push(Node { start, len, rc: tok.rc, cost, prev });
                ends[start + len].push(id);
            }
        }
        let Some(last) = (0..=n).rev().find(|&p| !ends[p].is_empty()) else { return vec![] };
        let mut best: Option<(i64, usize)> = None;
        for &l in ends[last].iter().rev() {
            let c = nodes[l].cost + self.cost(nodes[l].rc, 0, 0);
            if best.is_none_or(|(b, _)| c < b) {
                best = Some((c, l));
            }
        }
        let mut words = vec![];
        let mut cur = best.map_or(0, |(_, l)| l);
        while cur != 0 {
            let node = &nodes[cur];
            words.push(String::from_utf8_lossy(&t[node.start..node.start + node.len]).into_owned());
            cur = node.prev;
        }
        words.reverse();
        words
    }
}
