//! The answer post-processing and the two metrics of llm-jp-eval v1.3.0 (`llm_jp_eval/utils.py`,
//! `get_evaluation_result`), as Swallow runs them:
//!
//! - the answer is the generated text before its first blank line (`"\n\n"`), stripped of white space (Python's
//!   `str.strip`), then NFKC-normalised; the gold answer is NFKC-normalised;
//! - `exact_match`: 1 when the two strings are equal (corpus level: `sklearn.metrics.accuracy_score`, the mean);
//! - `char_f1`: fuzzywuzzy 0.18.0's `fuzz.token_sort_ratio(pred, gold) / 100` with python-Levenshtein 0.21.1 as its
//!   matcher: each string loses its code points U+0080–U+00FF (`force_ascii`), every non-word character (Python's
//!   Unicode `\W`) becomes a space, the string is lower-cased and stripped, its white-space separated tokens are
//!   sorted and joined by one space; equal processed strings (both empty included) score 100, one empty string 0,
//!   otherwise `round(100 · (1 − indel / (|a| + |b|)))` in code points, Python's round-half-even (indel distance =
//!   insertions + deletions, from the `rapidfuzz` crate as in python-Levenshtein 0.21.1, which is RapidFuzz).
//!
//! Unicode tables: NFKC from `unicode-normalization` and general categories from `unicode-general-category`
//! (Unicode 16–18; upstream's CPython 3.11 has Unicode 14: the code points assigned since differ).

use unicode_general_category::{GeneralCategory, get_general_category};
use unicode_normalization::UnicodeNormalization;

use crate::qa::normalize::is_python_space;

/// NFKC normalisation (Python's `unicodedata.normalize("NFKC", s)`).
pub fn nfkc(s: &str) -> String {
    s.nfkc().collect()
}

/// Python's `str.strip()`.
fn py_strip(s: &str) -> &str {
    s.trim_matches(is_python_space)
}

/// The answer upstream scores from a generated continuation: `NFKC(raw.split("\n\n")[0].strip())`.
pub fn answer(raw: &str) -> String {
    let first = raw.split("\n\n").next().unwrap_or("");
    nfkc(py_strip(first))
}

/// `exact_match` of one document: 1.0 when the post-processed prediction equals the NFKC gold.
pub fn exact_match(pred: &str, gold: &str) -> f64 {
    f64::from(u8::from(pred == gold))
}

/// Python's Unicode `\w`: letters (L*), numbers (N*) and the underscore.
fn is_word(c: char) -> bool {
    use GeneralCategory as G;
    c == '_'
        || matches!(
            get_general_category(c),
            G::UppercaseLetter
                | G::LowercaseLetter
                | G::TitlecaseLetter
                | G::ModifierLetter
                | G::OtherLetter
                | G::DecimalNumber
                | G::LetterNumber
                | G::OtherNumber
        )
}

/// fuzzywuzzy's `_process_and_sort(s, force_ascii=True, full_process=True)`: the string `char_f1` compares.
pub fn token_sort_key(s: &str) -> String {
    let replaced: String = s
        .chars()
        .filter(|c| !('\u{80}'..='\u{ff}').contains(c))
        .map(|c| if is_word(c) { c } else { ' ' })
        .collect();
    let lowered = replaced.to_lowercase();
    let mut tokens: Vec<&str> = lowered.split(is_python_space).filter(|t| !t.is_empty()).collect();
    tokens.sort_unstable();
    tokens.join(" ")
}

/// `fuzz.ratio` of two processed strings, 0–100.
fn ratio(a: &str, b: &str) -> f64 {
    if a == b {
        return 100.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let lensum = (a.chars().count() + b.chars().count()) as f64;
    let dist = rapidfuzz::distance::indel::distance(a.chars(), b.chars()) as f64;
    // RapidFuzz's `normalized_similarity`: 1 − normalized distance (the same float operations as upstream).
    let similarity = 1.0 - dist / lensum;
    (100.0 * similarity).round_ties_even()
}

/// `char_f1` of one document: `fuzz.token_sort_ratio(pred, gold) / 100`, in [0, 1].
pub fn char_f1(pred: &str, gold: &str) -> f64 {
    ratio(&token_sort_key(pred), &token_sort_key(gold)) / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_end_at_the_first_blank_line_and_are_nfkc() {
        assert_eq!(answer("  ＹＥＳ\n\n### 入力:"), "YES");
        assert_eq!(answer("\u{3000}ｶﾀｶﾅ\n次"), "カタカナ\n次");
        assert_eq!(answer(""), "");
    }

    #[test]
    fn char_f1_sorts_tokens_and_rounds_half_to_even() {
        assert_eq!(char_f1("b a", "a b"), 1.0);
        assert_eq!(char_f1("", ""), 1.0);
        assert_eq!(char_f1("abc", ""), 0.0);
        // "é" (U+00E9) is removed, "°" too: both sides become "abc".
        assert_eq!(char_f1("abcé°", "ABC"), 1.0);
        // 1 − 1/7 → 85.7 → 86; halves go to the even neighbour: 1 − 2/16 → 87.5 → 88, 1 − 6/16 → 62.5 → 62.
        assert_eq!(char_f1("abcd", "abc"), 0.86);
        assert_eq!(char_f1("abcdefgh", "abcdefgx"), 0.88);
        assert_eq!(char_f1("abcdefgh", "abcdexyz"), 0.62);
    }
}
