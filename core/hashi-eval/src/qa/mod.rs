//! Extractive-QA scoring of the upstream Japanese harness (`lm_eval/jasquad/evaluate.py`): exact match after
//! [`normalize_answer`], and token F1 over MeCab words (UniDic) of the normalised strings without punctuation
//! tokens, each the maximum over the gold answers.

mod emoji_table;
pub mod mecab;
pub(crate) mod normalize;

use std::collections::HashMap;

pub use mecab::Mecab;
pub use normalize::normalize_answer;

/// Punctuation tokens dropped before F1 (upstream `remove_punc`: these characters and `string.punctuation`).
const PUNCT: &str = "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏.!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

fn is_punct_token(t: &str) -> bool {
    let mut it = t.chars();
    matches!((it.next(), it.next()), (Some(c), None) if PUNCT.contains(c))
}

/// The words F1 counts: MeCab words of the normalised string, punctuation removed.
pub fn f1_tokens(mecab: &Mecab, s: &str) -> Vec<String> {
    mecab.wakati(&normalize_answer(s)).into_iter().filter(|t| !is_punct_token(t)).collect()
}

/// F1 of two word lists (upstream's `Counter` intersection).
fn token_f1(p: &[String], g: &[String]) -> f64 {
    let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
    for t in p {
        counts.entry(t).or_default().0 += 1;
    }
    for t in g {
        counts.entry(t).or_default().1 += 1;
    }
    let same: usize = counts.values().map(|&(a, b)| a.min(b)).sum();
    if same == 0 {
        return 0.0;
    }
    let precision = same as f64 / p.len() as f64;
    let recall = same as f64 / g.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// EM (0 or 1) and F1 of a prediction: the best over the gold answers (the prediction is normalised and
/// segmented once).
pub fn score(mecab: &Mecab, prediction: &str, golds: &[String]) -> (f64, f64) {
    let norm = normalize_answer(prediction);
    let em = golds.iter().any(|g| normalize_answer(g) == norm);
    let p = f1_tokens(mecab, prediction);
    let f = golds.iter().map(|g| token_f1(&p, &f1_tokens(mecab, g))).fold(0.0, f64::max);
    (if em { 1.0 } else { 0.0 }, f)
}
