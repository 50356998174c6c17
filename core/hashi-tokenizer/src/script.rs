//! Character classes: the script groups that bound BPE pieces during training (SentencePiece's
//! `split_by_unicode_script`, where Hiragana, Katakana and `ー` count as Han), and the categories of the
//! vocabulary analysis, with their Unicode ranges. A piece is classified by the bytes it decodes to
//! ([`Category::of_bytes`]), whatever its tokenizer's spelling (`▁`, GPT-2's byte map, `<0xHH>`).

use unicode_script::{Script, UnicodeScript};

/// The metaspace, SentencePiece's visible space.
pub const METASPACE: char = '▁';

/// Script group of a character for training: pieces never cross a change of group.
/// `None` = joins any group (the metaspace, combining marks).
pub fn train_group(c: char) -> Option<Script> {
    if c == METASPACE {
        return None;
    }
    match c.script() {
        Script::Hiragana | Script::Katakana => Some(Script::Han),
        _ if c == 'ー' => Some(Script::Han),
        Script::Inherited => None,
        s => Some(s),
    }
}

/// Categories of the vocabulary analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Latin letters: U+0041–005A, U+0061–007A, U+00C0–024F (except × ÷), U+1E00–1EFF, U+FF21–FF3A, U+FF41–FF5A.
    Latin,
    /// CJK ideographs: U+3400–4DBF, U+4E00–9FFF, U+F900–FAFF, U+20000–323AF, and 々 〆 〇 (U+3005–3007).
    Cjk,
    /// Hiragana: U+3040–309F.
    Hiragana,
    /// Katakana: U+30A0–30FF (with ー), U+31F0–31FF, U+FF66–FF9F (half-width).
    Katakana,
    /// Decimal digits: U+0030–0039, U+FF10–FF19.
    Digit,
    /// Punctuation, symbols and spaces: ASCII punctuation, U+00A0–00BF, U+2000–2BFF, U+3000–3004, U+3008–303F,
    /// U+FE30–FE4F, U+FF01–FF0F, U+FF1A–FF20, U+FF3B–FF40, U+FF5B–FF65, emoji U+1F000–1FAFF, and runs of spaces.
    Symbol,
    /// Pieces of exactly one byte, whatever their spelling: the byte-fallback tokens `<0x00>`…`<0xFF>`, a
    /// byte-level vocabulary's 256-symbol alphabet, single ASCII characters.
    Byte,
    /// Pieces of more than one byte that are not whole UTF-8 characters: part of a character, or characters and
    /// a part (a byte-level piece like `ãģ`, the first two bytes of `の`).
    Partial,
    /// Special tokens (`<unk>`, `<s>`, `</s>`, user-defined symbols).
    Special,
    /// Anything else (other scripts, mixed pieces that fit no single class).
    Other,
}

impl Category {
    /// Every category, in report order.
    pub const ALL: [Category; 10] = [
        Self::Latin,
        Self::Cjk,
        Self::Hiragana,
        Self::Katakana,
        Self::Digit,
        Self::Symbol,
        Self::Byte,
        Self::Partial,
        Self::Special,
        Self::Other,
    ];

    /// Whether this is one of the Japanese scripts.
    pub fn is_japanese(self) -> bool {
        matches!(self, Self::Cjk | Self::Hiragana | Self::Katakana)
    }

    /// Category of one character.
    pub fn of_char(c: char) -> Self {
        let u = c as u32;
        match u {
            0x41..=0x5A | 0x61..=0x7A | 0xFF21..=0xFF3A | 0xFF41..=0xFF5A | 0x1E00..=0x1EFF => Self::Latin,
            0xC0..=0x24F if u != 0xD7 && u != 0xF7 => Self::Latin,
            0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x323AF | 0x3005..=0x3007 => {
                Self::Cjk
            }
            0x3040..=0x309F => Self::Hiragana,
            0x30A0..=0x30FF | 0x31F0..=0x31FF | 0xFF66..=0xFF9F => Self::Katakana,
            0x30..=0x39 | 0xFF10..=0xFF19 => Self::Digit,
            0x20..=0x2F | 0x3A..=0x40 | 0x5B..=0x60 | 0x7B..=0x7E | 0xA0..=0xBF | 0xD7 | 0xF7 => Self::Symbol,
            0x2000..=0x2BFF | 0x3000..=0x3004 | 0x3008..=0x303F | 0xFE30..=0xFE4F | 0xFF01..=0xFF0F => {
                Self::Symbol
            }
            0xFF1A..=0xFF20 | 0xFF3B..=0xFF40 | 0xFF5B..=0xFF65 | 0x1F000..=0x1FAFF => Self::Symbol,
            _ => Self::Other,
        }
    }

    /// Category of a piece from the bytes it decodes to (special tokens aside, which the caller knows):
    /// one byte is [`Self::Byte`]; bytes that are not valid UTF-8 are [`Self::Partial`]; otherwise the class of
    /// its characters after leading spaces (only spaces: [`Self::Symbol`]); a piece mixing Han, Hiragana and
    /// Katakana goes to the class with most characters; a piece mixing classes otherwise is [`Self::Other`].
    pub fn of_bytes(bytes: &[u8]) -> Self {
        if bytes.len() == 1 {
            return Self::Byte;
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Self::Partial;
        };
        let body = text.trim_start_matches(' ');
        if body.is_empty() {
            return Self::Symbol;
        }
        let mut counts = [0usize; Self::ALL.len()];
        for c in body.chars() {
            counts[Self::of_char(c) as usize] += 1;
        }
        let present: Vec<Category> = Self::ALL.into_iter().filter(|c| counts[*c as usize] > 0).collect();
        match present.as_slice() {
            [one] => *one,
            many if many.iter().all(|c| c.is_japanese()) => *many
                .iter()
                .max_by_key(|c| (counts[**c as usize], std::cmp::Reverse(**c)))
                .unwrap_or(&Self::Other),
            _ => Self::Other,
        }
    }

    /// Category of a SentencePiece-style piece (`▁` for a space, `<0xHH>` for a byte): [`Self::of_bytes`] of
    /// its bytes.
    pub fn of_piece(piece: &str) -> Self {
        if is_byte_piece(piece) {
            return Self::Byte;
        }
        Self::of_bytes(piece.replace(METASPACE, " ").as_bytes())
    }

    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Latin => "latin",
            Self::Cjk => "cjk",
            Self::Hiragana => "hiragana",
            Self::Katakana => "katakana",
            Self::Digit => "digit",
            Self::Symbol => "symbol",
            Self::Byte => "byte",
            Self::Partial => "partial",
            Self::Special => "special",
            Self::Other => "other",
        }
    }
}

/// Whether `piece` is a byte-fallback token `<0xHH>`.
pub fn is_byte_piece(piece: &str) -> bool {
    piece.len() == 6
        && piece.starts_with("<0x")
        && piece.ends_with('>')
        && piece[3..5].chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_classified() {
        assert_eq!(Category::of_piece("▁the"), Category::Latin);
        assert_eq!(Category::of_piece("東京"), Category::Cjk);
        assert_eq!(Category::of_piece("▁たべ"), Category::Hiragana);
        assert_eq!(Category::of_piece("食べる"), Category::Hiragana);
        assert_eq!(Category::of_piece("コーヒー"), Category::Katakana);
        assert_eq!(Category::of_piece("42"), Category::Digit);
        assert_eq!(Category::of_piece("7"), Category::Byte, "one byte");
        assert_eq!(Category::of_piece("。」"), Category::Symbol);
        assert_eq!(Category::of_piece("▁▁"), Category::Symbol);
        assert_eq!(Category::of_piece("<0x0A>"), Category::Byte);
        assert_eq!(Category::of_piece("Привет"), Category::Other);
    }

    #[test]
    fn bytes_are_classified() {
        assert_eq!(Category::of_bytes(" the".as_bytes()), Category::Latin);
        assert_eq!(Category::of_bytes("の".as_bytes()), Category::Hiragana);
        assert_eq!(Category::of_bytes(&"の".as_bytes()[..2]), Category::Partial);
        assert_eq!(Category::of_bytes(b"a\xe3"), Category::Partial);
        assert_eq!(Category::of_bytes(&[0xE3]), Category::Byte);
        assert_eq!(Category::of_bytes(b" "), Category::Byte);
        assert_eq!(Category::of_bytes(b"\n\n"), Category::Other);
        assert_eq!(Category::of_bytes(b"  "), Category::Symbol);
        assert_eq!(Category::of_bytes("東京タワー".as_bytes()), Category::Katakana);
    }

    #[test]
    fn kana_join_han_for_training() {
        assert_eq!(train_group('食'), train_group('べ'));
        assert_eq!(train_group('コ'), train_group('ー'));
        assert_ne!(train_group('a'), train_group('食'));
        assert_eq!(train_group('▁'), None);
    }
}
