//! Overlap search over the old vocabulary: the old pieces whose character bigrams overlap most with a new
//! piece's (Dice coefficient), for similarity-weighted initialisation in the spirit of FOCUS without external
//! embeddings. Single-character pieces compare by their one character.

use rustc_hash::FxHashMap;

/// Inverted index from character bigrams to old ids.
pub struct SimilarityIndex {
    grams: FxHashMap<(char, char), Vec<u32>>,
    sizes: Vec<u32>,
}

fn bigrams(piece: &str) -> Vec<(char, char)> {
    let chars: Vec<char> = piece.chars().collect();
    let mut g: Vec<(char, char)> = match chars.len() {
        0 => vec![],
        1 => vec![(chars[0], '\0')],
        _ => chars.windows(2).map(|w| (w[0], w[1])).collect(),
    };
    g.sort_unstable();
    g.dedup();
    g
}

impl SimilarityIndex {
    /// Indexes `pieces` (id order); `None` entries (special or byte tokens) are left out.
    pub fn new(pieces: &[Option<String>]) -> Self {
        let mut grams: FxHashMap<(char, char), Vec<u32>> = FxHashMap::default();
        let mut sizes = vec![0; pieces.len()];
        for (id, p) in pieces.iter().enumerate() {
            let Some(p) = p else { continue };
            let g = bigrams(p);
            sizes[id] = g.len() as u32;
            for b in g {
                grams.entry(b).or_default().push(id as u32);
            }
        }
        Self { grams, sizes }
    }

    /// The `k` old ids most similar to `piece`, with their Dice scores, best first (ties: lower id).
    pub fn similar(&self, piece: &str, k: usize) -> Vec<(u32, f64)> {
        let g = bigrams(piece);
        let mut overlap: FxHashMap<u32, u32> = FxHashMap::default();
        for b in &g {
            for &id in self.grams.get(b).map(Vec::as_slice).unwrap_or(&[]) {
                *overlap.entry(id).or_insert(0) += 1;
            }
        }
        let mut scored: Vec<(u32, f64)> = overlap
            .into_iter()
            .map(|(id, o)| (id, 2.0 * f64::from(o) / f64::from(self.sizes[id as usize] + g.len() as u32)))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(k);
        scored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_overlapping_pieces() {
        let pieces: Vec<Option<String>> = ["▁tok", "yo", "▁Tokyo", "▁cat", "ky"]
            .iter()
            .map(|s| Some(s.to_string()))
            .chain([None])
            .collect();
        let idx = SimilarityIndex::new(&pieces);
        let best = idx.similar("▁Tokyo", 3);
        assert_eq!(best[0], (2, 1.0));
        assert!(best.iter().any(|&(id, _)| id == 1 || id == 4));
        assert!(idx.similar("東京", 3).is_empty());
    }
}
