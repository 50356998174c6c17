//! How a `tokenizer.json` spells text in its pieces, read from its pipeline: byte-level (GPT-2's byte-to-unicode
//! map, `tokenizers`' `ByteLevel` pre-tokenizer: a space is `Ġ`, a newline `Ċ`), metaspace (SentencePiece's
//! `▁` for a space, set by a `Replace` normaliser or a `Metaspace` pre-tokenizer, with `<0xHH>` byte fallback), or
//! plain text. Used to spell another vocabulary's piece the way this tokenizer's BPE model sees text.
//!
//! Not covered: WordPiece/Unigram models and `continuing_subword_prefix`; such pieces are spelled as plain text.

use serde_json::Value;

/// The spelling family of a tokenizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spelling {
    /// GPT-2 byte-level: every byte is one visible character.
    ByteLevel,
    /// SentencePiece-style: spaces are this character (`▁`), bytes outside the vocabulary are `<0xHH>`.
    Metaspace(char),
    /// Text as it is.
    Plain,
}

impl Spelling {
    /// The family of a parsed `tokenizer.json`.
    pub(crate) fn of_json(json: &Value) -> Self {
        let pre = json.get("pre_tokenizer").unwrap_or(&Value::Null);
        if has_type(pre, "ByteLevel") || has_type(json.get("decoder").unwrap_or(&Value::Null), "ByteLevel") {
            return Self::ByteLevel;
        }
        if let Some(c) = find_type(pre, "Metaspace")
            .and_then(|m| m.get("replacement"))
            .and_then(Value::as_str)
            .and_then(|s| s.chars().next())
        {
            return Self::Metaspace(c);
        }
        let space_replace = find_map(json.get("normalizer").unwrap_or(&Value::Null), &|v| {
            (v.get("type")?.as_str()? == "Replace" && v.get("pattern")?.get("String")?.as_str()? == " ")
                .then(|| v.get("content")?.as_str()?.chars().next())
                .flatten()
        });
        match space_replace {
            Some(c) => Self::Metaspace(c),
            None => Self::Plain,
        }
    }
}

/// Whether `v` or a component nested in it (a `Sequence`) has `"type": ty`.
fn has_type(v: &Value, ty: &str) -> bool {
    find_type(v, ty).is_some()
}

fn find_type<'a>(v: &'a Value, ty: &str) -> Option<&'a Value> {
    find_map(v, &|c| (c.get("type")?.as_str()? == ty).then_some(c))
}

/// Depth-first search over a component and the components of its `Sequence` lists.
fn find_map<'a, T>(v: &'a Value, f: &dyn Fn(&'a Value) -> Option<T>) -> Option<T> {
    if let Some(found) = f(v) {
        return Some(found);
    }
    ["pretokenizers", "normalizers", "decoders"]
        .iter()
        .filter_map(|k| v.get(k)?.as_array())
        .flatten()
        .find_map(|c| find_map(c, f))
}

/// GPT-2's `bytes_to_unicode`: the printable Latin-1 bytes stand for themselves, the other 68 bytes take the
/// characters from U+0100 on, in byte order.
pub(crate) fn byte_char(b: u8) -> char {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    if printable(b) {
        return char::from(b);
    }
    let n = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + n).unwrap_or(char::REPLACEMENT_CHARACTER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gpt2_byte_map() {
        assert_eq!(byte_char(b' '), 'Ġ');
        assert_eq!(byte_char(b'\n'), 'Ċ');
        assert_eq!(byte_char(b'a'), 'a');
        assert_eq!(byte_char(0), 'Ā');
        assert_eq!(byte_char(0xAD), 'Ń');
        let all: std::collections::HashSet<char> = (0..=255u8).map(byte_char).collect();
        assert_eq!(all.len(), 256, "the map is one to one");
    }

    #[test]
    fn families_are_read_from_the_pipeline() {
        let bl = json!({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split"}, {"type": "ByteLevel", "add_prefix_space": false}]}});
        assert_eq!(Spelling::of_json(&bl), Spelling::ByteLevel);
        let ms = json!({"pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first"}});
        assert_eq!(Spelling::of_json(&ms), Spelling::Metaspace('▁'));
        let llama = json!({"normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}, "pre_tokenizer": null});
        assert_eq!(Spelling::of_json(&llama), Spelling::Metaspace('▁'));
        assert_eq!(Spelling::of_json(&json!({"pre_tokenizer": {"type": "Whitespace"}})), Spelling::Plain);
    }
}
