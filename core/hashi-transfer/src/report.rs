//! What a transfer did: `transfer_report.json`, and the counts the CLI prints.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hashi_tokenizer::PieceBytes;
use hashi_tokenizer::script::Category;
use serde::{Deserialize, Serialize};

use crate::matching::{self, Match, MatchClass};
use crate::specials::SpecialOutcome;

/// Match classes of one script category.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CategoryCount {
    /// Category name.
    pub category: String,
    /// New tokens that copy an old row.
    pub matched: usize,
    /// New tokens initialised by a recipe.
    pub unmatched: usize,
    /// Count per match class, by [`MatchClass::name`].
    pub by_class: BTreeMap<String, usize>,
}

/// Mean row norms of one matrix.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Norms {
    /// Tensor name.
    pub tensor: String,
    /// Old rows.
    pub old: f64,
    /// Copied rows.
    pub matched: f64,
    /// Initialised rows.
    pub initialised: f64,
}

/// What a transfer did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransferReport {
    /// Strategy name.
    pub strategy: String,
    /// Source model.
    pub source: PathBuf,
    /// Output directory.
    pub out: PathBuf,
    /// Rows before.
    pub old_vocab_size: usize,
    /// Rows after (the new tokenizer's vocabulary and the appended special tokens).
    pub new_vocab_size: usize,
    /// New tokens that copy an old row.
    pub matched: usize,
    /// Count per match class.
    pub by_class: BTreeMap<String, usize>,
    /// Per script category of the new tokens' bytes.
    pub by_category: Vec<CategoryCount>,
    /// What happened to each special token.
    pub special_tokens: Vec<SpecialOutcome>,
    /// Row norms per vocabulary matrix.
    pub norms: Vec<Norms>,
    /// (new id, old id) of every copied row.
    pub matches: Vec<(u32, u32)>,
}

/// The report's file name, in the transferred model's folder.
pub const REPORT_FILE: &str = "transfer_report.json";

impl TransferReport {
    /// Reads `DIR/transfer_report.json`; the error names the file.
    pub fn read(dir: &std::path::Path) -> std::result::Result<Self, String> {
        let path = dir.join(REPORT_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: not a transfer report: {e}", path.display()))
    }

    /// The new ids whose rows were copied from the source model, as sorted, disjoint row ranges `[start, end)`.
    pub fn matched_rows(&self) -> Vec<[usize; 2]> {
        let mut ids: Vec<usize> = self.matches.iter().map(|&(new, _)| new as usize).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut ranges: Vec<[usize; 2]> = vec![];
        for id in ids {
            match ranges.last_mut() {
                Some(r) if r[1] == id => r[1] += 1,
                _ => ranges.push([id, id + 1]),
            }
        }
        ranges
    }
}

/// Counts of `matches` per class, and per class within each category of `new_bytes` (appended ids: special).
pub(crate) fn counts(
    matches: &[Match],
    new_bytes: &[PieceBytes],
) -> (BTreeMap<String, usize>, Vec<CategoryCount>) {
    let mut by_class: BTreeMap<String, usize> =
        MatchClass::ALL.iter().map(|c| (c.name().to_string(), 0)).collect();
    let mut by_cat: BTreeMap<Category, CategoryCount> = BTreeMap::new();
    for (i, m) in matches.iter().enumerate() {
        let cat = new_bytes.get(i).map_or(Category::Special, matching::category);
        let c = by_cat.entry(cat).or_insert_with(|| CategoryCount {
            category: cat.name().to_string(),
            matched: 0,
            unmatched: 0,
            by_class: MatchClass::ALL.iter().map(|c| (c.name().to_string(), 0)).collect(),
        });
        if m.old.is_some() {
            c.matched += 1
        } else {
            c.unmatched += 1
        }
        *c.by_class.entry(m.class.name().to_string()).or_default() += 1;
        *by_class.entry(m.class.name().to_string()).or_default() += 1;
    }
    (by_class, by_cat.into_values().collect())
}
