//! Matching new pieces to old rows by canonical bytes ([`hashi_tokenizer::canonical`]), so that vocabularies of
//! different families (SentencePiece `▁the`, byte-level `Ġthe`) meet on the text they stand for.
//!
//! A new text piece takes the old piece with the same string if that piece also has the same bytes (an `é` of a
//! SentencePiece vocabulary is the letter, the `é` of a byte-level one the byte 0xE9: never the same row), else the
//! old text piece with the same bytes, else the old byte piece when it is a single byte. A new byte-fallback piece
//! `<0xHH>` takes the old byte-fallback piece, or the single-byte piece of a byte-level vocabulary. Added tokens
//! are not text: special ones are left to [`crate::specials`], user-defined ones match old added tokens by
//! content, else old text by bytes. Ties between old ids go to the lowest id.

use hashi_tokenizer::PieceBytes;
use hashi_tokenizer::script::{Category, METASPACE};
use rustc_hash::FxHashMap;
use serde::Serialize;

/// How a new token found (or did not find) its old row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchClass {
    /// The same piece string, standing for the same bytes.
    ExactString,
    /// A differently spelled old piece with the same bytes (`Ġthe` for `▁the`, `ãģ®` for `の`).
    SameBytes,
    /// The same bytes, held by an old piece that is not valid UTF-8 on its own (a byte-level piece with part of
    /// a character, or a single byte ≥ 0x80 for a new `<0xHH>`).
    PartialUtf8,
    /// A special token, placed by [`crate::specials`].
    Special,
    /// No old row: the strategy's recipe (or, for a byte without source, the mean row).
    Unmatched,
}

impl MatchClass {
    /// Every class, in report order.
    pub const ALL: [MatchClass; 5] =
        [Self::ExactString, Self::SameBytes, Self::PartialUtf8, Self::Special, Self::Unmatched];

    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::ExactString => "exact_string",
            Self::SameBytes => "same_bytes",
            Self::PartialUtf8 => "partial_utf8",
            Self::Special => "special",
            Self::Unmatched => "unmatched",
        }
    }
}

/// The old row of one new token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    /// The old id whose rows are copied, if any.
    pub old: Option<u32>,
    /// How it was found.
    pub class: MatchClass,
}

impl Match {
    const NONE: Match = Match { old: None, class: MatchClass::Unmatched };
}

/// The old vocabulary, indexed for lookups (only ids below the model's rows).
pub struct OldIndex<'a> {
    by_string: FxHashMap<&'a str, u32>,
    text_by_bytes: FxHashMap<&'a [u8], u32>,
    fallback_byte: [Option<u32>; 256],
    added: FxHashMap<&'a str, u32>,
    bytes: &'a [PieceBytes],
}

impl<'a> OldIndex<'a> {
    /// Indexes `bytes` / `pieces` (both by id), keeping ids below `rows`.
    pub fn new(bytes: &'a [PieceBytes], pieces: &'a [String], rows: usize) -> Self {
        let mut ix = Self {
            by_string: FxHashMap::default(),
            text_by_bytes: FxHashMap::default(),
            fallback_byte: [None; 256],
            added: FxHashMap::default(),
            bytes,
        };
        // Reverse order, so that the lowest id wins every tie.
        for id in (0..bytes.len().min(rows)).rev() {
            let id32 = id as u32;
            match &bytes[id] {
                PieceBytes::Text(b) => {
                    ix.text_by_bytes.insert(b, id32);
                    ix.by_string.insert(&pieces[id], id32);
                }
                PieceBytes::Byte(b) => {
                    ix.fallback_byte[usize::from(*b)] = Some(id32);
                    ix.by_string.insert(&pieces[id], id32);
                }
                PieceBytes::Added { content, .. } => {
                    ix.added.insert(content, id32);
                }
                PieceBytes::Unused => {}
            }
        }
        ix
    }

    /// The old id of the added token `content`.
    pub fn added(&self, content: &str) -> Option<u32> {
        self.added.get(content).copied()
    }

    /// The old text piece with exactly these bytes.
    pub fn text(&self, bytes: &[u8]) -> Option<u32> {
        self.text_by_bytes.get(bytes).copied()
    }

    fn class_of_source(&self, old: u32) -> MatchClass {
        if self.bytes[old as usize].is_partial_utf8() {
            MatchClass::PartialUtf8
        } else {
            MatchClass::SameBytes
        }
    }

    /// The match of one new token (`piece` as the new tokenizer writes it); special added tokens are left
    /// unmatched here.
    pub fn find(&self, new: &PieceBytes, piece: &str) -> Match {
        let found = |old: u32, class| Match { old: Some(old), class };
        match new {
            PieceBytes::Text(bytes) => {
                if let Some(&old) = self.by_string.get(piece)
                    && self.bytes[old as usize].bytes() == Some(bytes)
                {
                    return found(old, MatchClass::ExactString);
                }
                if let Some(old) = self.text(bytes) {
                    return found(old, self.class_of_source(old));
                }
                match bytes.as_slice() {
                    [b] => self.fallback_byte[usize::from(*b)].map_or(Match::NONE, |old| {
                        let class =
                            if b.is_ascii() { MatchClass::SameBytes } else { MatchClass::PartialUtf8 };
                        found(old, class)
                    }),
                    _ => Match::NONE,
                }
            }
            PieceBytes::Byte(b) => match (self.fallback_byte[usize::from(*b)], self.text(&[*b])) {
                (Some(old), _) if self.by_string.get(piece) == Some(&old) => {
                    found(old, MatchClass::ExactString)
                }
                (Some(old), _) | (None, Some(old)) => {
                    let class = if b.is_ascii() { MatchClass::SameBytes } else { MatchClass::PartialUtf8 };
                    found(old, class)
                }
                (None, None) => Match::NONE,
            },
            PieceBytes::Added { content, special: false } => match self.added(content) {
                Some(old) => found(old, MatchClass::ExactString),
                None => {
                    self.text(content.as_bytes()).map_or(Match::NONE, |old| found(old, MatchClass::SameBytes))
                }
            },
            PieceBytes::Added { special: true, .. } | PieceBytes::Unused => Match::NONE,
        }
    }
}

/// A token's text in the common spelling strategies see: spaces as `▁`, bytes that are not UTF-8 as `\xHH`,
/// a byte-fallback piece as `<0xHH>`, an added token by content.
pub fn spelled(bytes: &PieceBytes) -> String {
    match bytes {
        PieceBytes::Text(_) => bytes.display().replace(' ', &METASPACE.to_string()),
        other => other.display(),
    }
}

/// Script category of a token from its canonical bytes (not from its family's spelling):
/// [`Category::of_bytes`], special and unused ids as [`Category::Special`].
pub fn category(bytes: &PieceBytes) -> Category {
    match bytes {
        PieceBytes::Byte(_) => Category::Byte,
        PieceBytes::Added { special: true, .. } | PieceBytes::Unused => Category::Special,
        PieceBytes::Text(b) => Category::of_bytes(b),
        PieceBytes::Added { content, .. } => Category::of_bytes(content.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use hashi_tokenizer::Spelling;

    use super::*;

    fn vocab(spelling: Spelling, pieces: &[&str]) -> (Vec<PieceBytes>, Vec<String>) {
        let pieces: Vec<String> = pieces.iter().map(|p| p.to_string()).collect();
        (pieces.iter().map(|p| spelling.piece_bytes(p)).collect(), pieces)
    }

    #[test]
    fn byte_level_meets_sentencepiece_on_bytes() {
        let sp = Spelling::Metaspace { replacement: '▁', byte_fallback: true };
        let (old_b, old_p) = vocab(Spelling::ByteLevel, &["é", "Ġthe", "ãģ", "ãģ®", "A", "Ã©"]);
        let old = OldIndex::new(&old_b, &old_p, old_b.len());
        let find = |p: &str| old.find(&sp.piece_bytes(p), p);
        assert_eq!(find("▁the"), Match { old: Some(1), class: MatchClass::SameBytes });
        assert_eq!(find("の"), Match { old: Some(3), class: MatchClass::SameBytes });
        // The letter é (C3 A9) is the byte-level `Ã©`, never the byte piece `é` (0xE9).
        assert_eq!(find("é"), Match { old: Some(5), class: MatchClass::SameBytes });
        assert_eq!(find("<0xE9>"), Match { old: Some(0), class: MatchClass::PartialUtf8 });
        assert_eq!(find("<0x41>"), Match { old: Some(4), class: MatchClass::SameBytes });
        assert_eq!(find("<0x42>"), Match::NONE);
        assert_eq!(find("A"), Match { old: Some(4), class: MatchClass::ExactString });
    }

    #[test]
    fn sentencepiece_bytes_feed_byte_level_pieces() {
        let sp = Spelling::Metaspace { replacement: '▁', byte_fallback: true };
        let (old_b, old_p) = vocab(sp, &["<0xE3>", "▁the", "の", "<0x41>", "A"]);
        let old = OldIndex::new(&old_b, &old_p, old_b.len());
        let find = |p: &str| old.find(&Spelling::ByteLevel.piece_bytes(p), p);
        assert_eq!(find("Ġthe"), Match { old: Some(1), class: MatchClass::SameBytes });
        assert_eq!(find("ãģ®"), Match { old: Some(2), class: MatchClass::SameBytes });
        assert_eq!(find("ã"), Match { old: Some(0), class: MatchClass::PartialUtf8 });
        // A text piece wins over the byte piece with the same byte; rows past the model are never used.
        assert_eq!(find("A"), Match { old: Some(4), class: MatchClass::ExactString });
        let short = OldIndex::new(&old_b, &old_p, 4);
        assert_eq!(short.find(&Spelling::ByteLevel.piece_bytes("A"), "A").old, Some(3));
        assert_eq!(find("ãģ"), Match::NONE);
    }

    #[test]
    fn categories_follow_bytes() {
        assert_eq!(category(&Spelling::ByteLevel.piece_bytes("Ġthe")), Category::Latin);
        assert_eq!(category(&Spelling::ByteLevel.piece_bytes("ãģ®")), Category::Hiragana);
        assert_eq!(category(&Spelling::ByteLevel.piece_bytes("ãģ")), Category::Partial);
        assert_eq!(category(&Spelling::ByteLevel.piece_bytes("é")), Category::Byte);
        assert_eq!(spelled(&Spelling::ByteLevel.piece_bytes("Ġthe")), "▁the");
    }
}
