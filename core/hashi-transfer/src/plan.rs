//! The cheap half of a transfer, done before any matrix is read: the source's config and shard headers, both
//! tokenizers, the special tokens, the match of every new token and the recipes of the others. Everything a
//! transfer can refuse is refused here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hashi_core::Reporter;
use hashi_model::LlamaConfig;
use hashi_tokenizer::{PieceBytes, Tokenizer};
use serde_json::Value;

use crate::TransferOptions;
use crate::error::{Result, TransferError};
use crate::matching::{self, Match, MatchClass, OldIndex};
use crate::recipe::{EmbeddingInit, InitContext, NewToken, Recipe};
use crate::safetensors_io::Header;
use crate::space::EmbeddingSpace;
use crate::specials::{SourceSpecials, SpecialPlan, read_json, tokenizer_dir};

/// Source checkpoint: config and shard headers.
pub(crate) struct SourceModel {
    pub(crate) config: LlamaConfig,
    pub(crate) shards: Vec<Header>,
    pub(crate) index: Option<Value>,
}

fn open_source(dir: &Path) -> Result<SourceModel> {
    let ckpt = hashi_model::Checkpoint::open(dir)?; // validates config, shapes exist, refuses pickles
    let index_path = dir.join(hashi_model::INDEX_FILE);
    let (files, index) = if index_path.is_file() {
        let text = std::fs::read_to_string(&index_path).map_err(|e| TransferError::io(&index_path, e))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| TransferError::Checkpoint { path: index_path.clone(), message: e.to_string() })?;
        let idx: hashi_model::ShardIndex = serde_json::from_value(v.clone())
            .map_err(|e| TransferError::Checkpoint { path: index_path.clone(), message: e.to_string() })?;
        let mut files: Vec<String> = idx.weight_map.values().cloned().collect();
        files.sort();
        files.dedup();
        (files, Some(v))
    } else {
        (vec![hashi_model::SINGLE_FILE.to_string()], None)
    };
    let shards = files.iter().map(|f| Header::read(&dir.join(f))).collect::<Result<Vec<_>>>()?;
    Ok(SourceModel { config: ckpt.hf_config().clone(), shards, index })
}

/// The source side, read and checked without its weights: config, old tokenizer and special tokens.
pub struct SourceCheck {
    /// `config.json`.
    pub config: LlamaConfig,
    /// The old tokenizer.
    pub tokenizer: Tokenizer,
    /// Its canonical pieces.
    pub bytes: Vec<PieceBytes>,
    /// The model's special tokens.
    pub specials: SourceSpecials,
}

/// Reads and checks what a transfer needs of the source model in `src`, without touching its weights: its config,
/// its tokenizer (or `opts.old_tokenizer`), its special tokens and the `opts.special_tokens` mappings' names.
pub fn check_source(src: &Path, opts: &TransferOptions) -> Result<SourceCheck> {
    let config_path = src.join("config.json");
    if !config_path.is_file() {
        return Err(TransferError::Checkpoint { path: config_path, message: "file not found".into() });
    }
    let config = LlamaConfig::from_file(&config_path)?;
    let old_tok_path = opts.old_tokenizer.clone().unwrap_or_else(|| src.join("tokenizer.json"));
    let tokenizer = Tokenizer::from_file(&old_tok_path)?;
    let bytes = tokenizer.piece_bytes();
    if bytes.len() != config.vocab_size {
        tracing::warn!(
            tokenizer = bytes.len(),
            model = config.vocab_size,
            "old tokenizer and model vocab sizes differ"
        );
    }
    let specials = SourceSpecials::read(src, &config, &tokenizer, &bytes)?;
    specials.check_mappings(&opts.special_tokens)?;
    Ok(SourceCheck { config, tokenizer, bytes, specials })
}

/// Everything decided about a transfer before its matrices are read.
pub struct TransferPlan {
    pub(crate) src: PathBuf,
    pub(crate) new_tokenizer: PathBuf,
    pub(crate) source: SourceModel,
    pub(crate) old_tok: Tokenizer,
    pub(crate) old_bytes: Vec<PieceBytes>,
    pub(crate) new_bytes: Vec<PieceBytes>,
    /// The match of every new id, appended special tokens included.
    pub(crate) matches: Vec<Match>,
    pub(crate) specials: SpecialPlan,
    pub(crate) new_config: Option<Value>,
}

fn piece_list(tok: &Tokenizer) -> Vec<String> {
    tok.pieces().into_iter().map(|p| p.map(|(s, _)| s).unwrap_or_default()).collect()
}

/// Plans the replacement of the vocabulary of the model in `src` by the tokenizer `new_tokenizer`: reads and
/// checks the config, the shard headers, both tokenizers and the special tokens, and matches every new token.
pub fn plan(src: &Path, new_tokenizer: &Path, opts: &TransferOptions) -> Result<TransferPlan> {
    let check = check_source(src, opts)?;
    let source = open_source(src)?;
    let new_tok = Tokenizer::from_file(new_tokenizer)?;
    let new_bytes = new_tok.piece_bytes();
    let new_pieces = piece_list(&new_tok);
    let old_pieces = piece_list(&check.tokenizer);
    let new_config = read_json(&tokenizer_dir(new_tokenizer).join("tokenizer_config.json"))?;
    let rows = source.config.vocab_size;
    let index = OldIndex::new(&check.bytes, &old_pieces, rows);
    let mut matches: Vec<Match> = new_bytes.iter().zip(&new_pieces).map(|(b, p)| index.find(b, p)).collect();
    let specials =
        check.specials.plan(&new_tok, &new_bytes, new_config.as_ref(), &index, &opts.special_tokens)?;
    matches
        .resize(new_bytes.len() + specials.appended.len(), Match { old: None, class: MatchClass::Special });
    for &(id, old) in &specials.rows {
        matches[id as usize] = Match { old, class: MatchClass::Special };
    }
    Ok(TransferPlan {
        src: src.into(),
        new_tokenizer: new_tokenizer.into(),
        source,
        old_tok: check.tokenizer,
        old_bytes: check.bytes,
        new_bytes,
        matches,
        specials,
        new_config,
    })
}

impl TransferPlan {
    /// The old tokenizer.
    pub fn old_tokenizer(&self) -> &Tokenizer {
        &self.old_tok
    }

    /// Canonical bytes of the old pieces, by id.
    pub fn old_piece_bytes(&self) -> &[PieceBytes] {
        &self.old_bytes
    }

    /// Rows of the new matrices (the new vocabulary and the appended special tokens).
    pub fn new_vocab_size(&self) -> usize {
        self.matches.len()
    }

    /// New tokens that copy an old row.
    pub fn matched(&self) -> usize {
        self.matches.iter().filter(|m| m.old.is_some()).count()
    }

    /// The old ids for `bytes`: how the old tokenizer's BPE model cuts them (spelled as that tokenizer spells
    /// text, byte pieces for bytes that are not whole characters; [`hashi_tokenizer::Tokenizer::encode_piece`]).
    fn old_ids(&self, bytes: &[u8]) -> Result<Vec<u32>> {
        let ids = self.old_tok.encode_piece(bytes, false)?;
        Ok(ids.into_iter().filter(|&id| (id as usize) < self.source.config.vocab_size).collect())
    }

    /// One recipe per new token without an old row: the strategy's for text, the mean old row for special tokens
    /// and bytes without a source (never decomposed as text), none for unused ids.
    pub(crate) fn recipes(
        &self,
        init: &dyn EmbeddingInit,
        ctx: &InitContext,
        space: &Arc<EmbeddingSpace>,
        reporter: &dyn Reporter,
    ) -> Result<Vec<Option<Recipe>>> {
        let strategy = init.name();
        let unmatched: Vec<usize> =
            (0..self.matches.len()).filter(|&i| self.matches[i].old.is_none()).collect();
        reporter.start("recipes", Some(unmatched.len() as u64), "tokens");
        let mut recipes: Vec<Option<Recipe>> = vec![None; self.matches.len()];
        let mean_row = Recipe { mean: 1.0, ..Recipe::default() };
        for &i in &unmatched {
            let bytes = self.new_bytes.get(i).unwrap_or(&PieceBytes::Unused);
            let text = match bytes {
                _ if self.matches[i].class == MatchClass::Special => None,
                PieceBytes::Text(b) => Some(b.as_slice()),
                PieceBytes::Added { content, special: false } => Some(content.as_bytes()),
                PieceBytes::Unused => {
                    reporter.advance(1);
                    continue;
                }
                PieceBytes::Byte(_) | PieceBytes::Added { .. } => None,
            };
            recipes[i] = Some(match text {
                Some(text) => {
                    let token = NewToken {
                        id: i as u32,
                        piece: matching::spelled(bytes),
                        text: bytes.display(),
                        category: matching::category(bytes).name().into(),
                        old_ids: self.old_ids(text)?,
                    };
                    let r = init.recipe(&token, ctx, space)?;
                    r.validate(&token, self.source.config.vocab_size, &strategy)?;
                    r
                }
                None => mean_row.clone(),
            });
            reporter.advance(1);
        }
        reporter.finish();
        Ok(recipes)
    }
}
