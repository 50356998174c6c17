//! Canonical bytes of vocabulary pieces: what a piece stands for once its tokenizer family's spelling is undone,
//! so that pieces of two tokenizers compare by the text they produce, not by how each family writes it.
//!
//! - byte-level BPE (GPT-2, Llama 3, Qwen, SmolLM): every byte is written as one character of GPT-2's
//!   `bytes_to_unicode` table (`Ġ` = space, `Ċ` = newline, a Japanese character as two or three "mojibake"
//!   symbols); undoing it gives raw bytes, which may hold only part of a UTF-8 character;
//! - SentencePiece style (Metaspace or the `Replace(" ", "▁")` normaliser, Llama 2 and hashi's own): the
//!   replacement character (`▁`) is a space, and with `byte_fallback` a `<0xHH>` piece is the byte `0xHH`;
//! - any other spelling: the piece's own UTF-8.
//!
//! The family is read from the `tokenizer.json` components (decoder first, then pre-tokenizer, then normaliser,
//! and the model's `byte_fallback` flag), never guessed from how pieces look. Added tokens (special or not) are
//! kept apart from text: they are compared by content, with other added tokens only.
//! Not handled: WordPiece's `##` continuation prefix and BPE end-of-word suffixes (such pieces keep their
//! spelling).

use serde_json::Value;

/// How a tokenizer spells the bytes of its pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    /// GPT-2's byte-level alphabet (a `ByteLevel` decoder, pre-tokenizer or normaliser).
    ByteLevel,
    /// Spaces written as `replacement` (SentencePiece's `▁`); `byte_fallback` makes `<0xHH>` pieces bytes.
    Metaspace {
        /// The character that stands for a space.
        replacement: char,
        /// Whether the model has `byte_fallback` on.
        byte_fallback: bool,
    },
    /// Pieces are their own text; `byte_fallback` makes `<0xHH>` pieces bytes.
    Plain {
        /// Whether the model has `byte_fallback` on.
        byte_fallback: bool,
    },
}

/// What one vocabulary id stands for, in canonical form (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PieceBytes {
    /// A text piece: its bytes with the family's spelling undone. May be a partial UTF-8 character
    /// ([`PieceBytes::is_partial_utf8`]) in a byte-level vocabulary.
    Text(Vec<u8>),
    /// A byte-fallback piece `<0xHH>`: the one byte it encodes.
    Byte(u8),
    /// An added token (a special token such as `<s>` or `<|im_start|>`, or a user-defined symbol), by content.
    Added {
        /// The token's content as written in `added_tokens`.
        content: String,
        /// Whether it is a special token (skipped when decoding with `skip_special_tokens`).
        special: bool,
    },
    /// No piece has this id.
    Unused,
}

impl PieceBytes {
    /// The bytes this piece produces when decoded: the text bytes, or the single fallback byte; `None` for added
    /// tokens and unused ids.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Text(b) => Some(b),
            Self::Byte(b) => Some(std::slice::from_ref(b)),
            Self::Added { .. } | Self::Unused => None,
        }
    }

    /// Whether this is a text piece whose bytes are not valid UTF-8 on their own (a byte-level piece holding part
    /// of a character, such as 2 of the 3 bytes of a kana).
    pub fn is_partial_utf8(&self) -> bool {
        matches!(self, Self::Text(b) if std::str::from_utf8(b).is_err())
    }

    /// A readable form for reports: the text (invalid bytes as `\xHH`), `<0xHH>` for a fallback byte, the content
    /// of an added token, empty for an unused id.
    pub fn display(&self) -> String {
        match self {
            Self::Text(b) => b.utf8_chunks().fold(String::new(), |mut s, chunk| {
                s.push_str(chunk.valid());
                for byte in chunk.invalid() {
                    s.push_str(&format!("\\x{byte:02X}"));
                }
                s
            }),
            Self::Byte(b) => format!("<0x{b:02X}>"),
            Self::Added { content, .. } => content.clone(),
            Self::Unused => String::new(),
        }
    }
}

impl Spelling {
    /// The spelling of the tokenizer described by `json` (a parsed `tokenizer.json`).
    pub fn of_json(json: &Value) -> Self {
        let byte_fallback = json.pointer("/model/byte_fallback").and_then(Value::as_bool).unwrap_or(false);
        let parts = ["decoder", "pre_tokenizer", "normalizer"].map(|k| components(json.get(k)));
        if parts.iter().flatten().any(|c| type_of(c) == Some("ByteLevel")) {
            return Self::ByteLevel;
        }
        let replacement = parts.iter().flatten().find_map(|c| metaspace_char(c));
        match replacement {
            Some(replacement) => Self::Metaspace { replacement, byte_fallback },
            None => Self::Plain { byte_fallback },
        }
    }

    /// Canonical bytes of the vocabulary piece `piece` (not an added token) under this spelling.
    pub fn piece_bytes(self, piece: &str) -> PieceBytes {
        match self {
            Self::ByteLevel => match piece.chars().map(byte_of_char).collect::<Option<Vec<u8>>>() {
                Some(bytes) => PieceBytes::Text(bytes),
                // Not in the byte alphabet (a hand-added vocabulary entry): its own UTF-8.
                None => PieceBytes::Text(piece.as_bytes().to_vec()),
            },
            Self::Metaspace { replacement, byte_fallback } => match fallback_byte(piece, byte_fallback) {
                Some(b) => PieceBytes::Byte(b),
                None => PieceBytes::Text(piece.replace(replacement, " ").into_bytes()),
            },
            Self::Plain { byte_fallback } => match fallback_byte(piece, byte_fallback) {
                Some(b) => PieceBytes::Byte(b),
                None => PieceBytes::Text(piece.as_bytes().to_vec()),
            },
        }
    }
}

/// The character GPT-2's byte-level alphabet writes for byte `b`: printable Latin-1 bytes (`!`..=`~`, `¡`..=`¬`,
/// `®`..=`ÿ`) are themselves, the other 68 bytes are U+0100 onwards in byte order (space is `Ġ`, newline `Ċ`).
pub fn byte_level_char(b: u8) -> char {
    if is_printable(b) {
        return char::from(b);
    }
    let rank = (0..b).filter(|&x| !is_printable(x)).count() as u32;
    char::from_u32(256 + rank).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// The byte that `c` stands for in GPT-2's byte-level alphabet, `None` if `c` is not in it.
pub fn byte_of_char(c: char) -> Option<u8> {
    let u = c as u32;
    if let Ok(b) = u8::try_from(u)
        && is_printable(b)
    {
        return Some(b);
    }
    let rank = u.checked_sub(256)? as usize;
    (0..=255u8).filter(|&x| !is_printable(x)).nth(rank)
}

fn is_printable(b: u8) -> bool {
    matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// `<0xHH>` as a byte, if byte fallback is on.
fn fallback_byte(piece: &str, byte_fallback: bool) -> Option<u8> {
    if !byte_fallback || !crate::script::is_byte_piece(piece) {
        return None;
    }
    u8::from_str_radix(&piece[3..5], 16).ok()
}

/// A component and, for a `Sequence`, its members (recursively).
fn components(v: Option<&Value>) -> Vec<&Value> {
    let Some(v) = v.filter(|v| !v.is_null()) else { return vec![] };
    let mut out = vec![v];
    for key in ["normalizers", "pretokenizers", "decoders"] {
        if let Some(items) = v.get(key).and_then(Value::as_array) {
            out.extend(items.iter().flat_map(|i| components(Some(i))));
        }
    }
    out
}

fn type_of(v: &Value) -> Option<&str> {
    v.get("type").and_then(Value::as_str)
}

/// The space stand-in of a `Metaspace` component, or of a `Replace` between `" "` and one character.
fn metaspace_char(v: &Value) -> Option<char> {
    let single = |s: &str| {
        let mut it = s.chars();
        it.next().filter(|_| it.next().is_none())
    };
    match type_of(v)? {
        "Metaspace" => Some(v.get("replacement").and_then(Value::as_str).and_then(single).unwrap_or('▁')),
        "Replace" => {
            let pattern = v.pointer("/pattern/String").and_then(Value::as_str)?;
            let content = v.get("content").and_then(Value::as_str)?;
            match (pattern, content) {
                (" ", c) => single(c),
                (p, " ") => single(p),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn byte_level_alphabet_round_trips() {
        let mut seen = std::collections::HashSet::new();
        for b in 0..=255u8 {
            let c = byte_level_char(b);
            assert!(seen.insert(c), "{c} used twice");
            assert_eq!(byte_of_char(c), Some(b));
        }
        assert_eq!(byte_level_char(b' '), 'Ġ');
        assert_eq!(byte_level_char(b'\n'), 'Ċ');
        assert_eq!(byte_level_char(0xAD), 'Ń');
        assert_eq!(byte_of_char('▁'), None);
    }

    #[test]
    fn families_are_read_from_components() {
        let byte_level = json!({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split"}, {"type": "ByteLevel", "add_prefix_space": false}]},
            "decoder": {"type": "ByteLevel"}, "model": {"type": "BPE"}});
        assert_eq!(Spelling::of_json(&byte_level), Spelling::ByteLevel);
        let llama = json!({"normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
            "pre_tokenizer": null, "model": {"type": "BPE", "byte_fallback": true}});
        assert_eq!(Spelling::of_json(&llama), Spelling::Metaspace { replacement: '▁', byte_fallback: true });
        let metaspace = json!({"pre_tokenizer": {"type": "Metaspace", "replacement": "_"}, "model": {}});
        assert_eq!(
            Spelling::of_json(&metaspace),
            Spelling::Metaspace { replacement: '_', byte_fallback: false }
        );
        assert_eq!(Spelling::of_json(&json!({"model": {}})), Spelling::Plain { byte_fallback: false });
    }

    #[test]
    fn pieces_lose_their_spelling() {
        let bl = Spelling::ByteLevel;
        assert_eq!(bl.piece_bytes("Ġthe"), PieceBytes::Text(b" the".to_vec()));
        assert_eq!(bl.piece_bytes("Ċ"), PieceBytes::Text(b"\n".to_vec()));
        // "の" is E3 81 AE: written as ã, ģ, ® in the byte-level alphabet.
        assert_eq!(bl.piece_bytes("ãģ®"), PieceBytes::Text("の".as_bytes().to_vec()));
        let partial = bl.piece_bytes("ãģ");
        assert_eq!(partial, PieceBytes::Text(vec![0xE3, 0x81]));
        assert!(partial.is_partial_utf8());
        assert_eq!(partial.display(), "\\xE3\\x81");
        // A byte-level `é` piece is the single byte 0xE9, not the letter é.
        assert_eq!(bl.piece_bytes("é"), PieceBytes::Text(vec![0xE9]));
        // No byte fallback in byte-level vocabularies: `<0x41>` is literal text there.
        assert_eq!(bl.piece_bytes("<0x41>"), PieceBytes::Text(b"<0x41>".to_vec()));

        let sp = Spelling::Metaspace { replacement: '▁', byte_fallback: true };
        assert_eq!(sp.piece_bytes("▁the"), PieceBytes::Text(b" the".to_vec()));
        assert_eq!(sp.piece_bytes("é"), PieceBytes::Text("é".as_bytes().to_vec()));
        assert_eq!(sp.piece_bytes("<0xE3>"), PieceBytes::Byte(0xE3));
        assert_eq!(sp.piece_bytes("<0xE3>").bytes(), Some(&[0xE3u8][..]));
        assert!(!sp.piece_bytes("の").is_partial_utf8());
        let no_fallback = Spelling::Metaspace { replacement: '▁', byte_fallback: false };
        assert_eq!(no_fallback.piece_bytes("<0xE3>"), PieceBytes::Text(b"<0xE3>".to_vec()));
    }
}
