//! Special tokens across a vocabulary change.
//!
//! The source's special tokens are the ones its files name: the ids of `config.json` and
//! `generation_config.json` (`bos_token_id`, `eos_token_id`, `pad_token_id`, `unk_token_id`), the tokens of
//! `tokenizer_config.json` (`bos_token`, `eos_token`, `pad_token`, `unk_token`, `additional_special_tokens`) and
//! the special added tokens its chat template uses (SmolLM2's `<|im_start|>`, `<|im_end|>`; the template is
//! `chat_template` in `tokenizer_config.json` or, as transformers 5 writes it, `chat_template.jinja`). Other added tokens
//! of the source (e.g. code-data markers) are not carried. Every named token must exist in the source tokenizer:
//! [`SourceSpecials::read`] checks that before any matrix is read.
//!
//! Each source special token is, in this order of precedence:
//! - mapped by the user onto a new token (`OLD=NEW`: the new token's rows are copied from the old one, config ids
//!   follow) or dropped (`OLD=`: config ids that named it take the new tokenizer's token of the same role, if any);
//! - kept as the new token with the same content, if the new tokenizer has one;
//! - appended after the new vocabulary as a special added token, its rows copied.
//!
//! The new tokenizer's own special tokens that no source token went to take the rows of the source token with the
//! same content, else the one with the same role (bos, eos, pad, unk, from each side's files), else the mean old
//! row. A new bos or eos marks document boundaries, so where the source's token of that role is a chat-template
//! turn marker (an instruct model's), it takes the row of the source's document separator instead (SmolLM2's
//! `<|endoftext|>`: 0.016 bits per byte less on Japanese at step 0, BENCHMARKS.md). No special token is ever handed
//! to a strategy as text.

use std::path::{Path, PathBuf};

use hashi_model::LlamaConfig;
use hashi_tokenizer::{PieceBytes, Tokenizer};
use rustc_hash::FxHashMap;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Result, TransferError};

/// A role a special token plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Beginning of sequence.
    Bos,
    /// End of sequence (document separator).
    Eos,
    /// Padding.
    Pad,
    /// Unknown token.
    Unk,
    /// Used by the chat template.
    ChatTemplate,
    /// Listed in `additional_special_tokens`.
    Additional,
}

impl Role {
    const NAMED: [(Role, &'static str); 4] =
        [(Role::Bos, "bos"), (Role::Eos, "eos"), (Role::Pad, "pad"), (Role::Unk, "unk")];
}

/// What the user asked for one source special token (`--map-special OLD=NEW`, `OLD=` to drop).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialMapping {
    /// The source token's content.
    pub old: String,
    /// The new token it becomes; `None` drops it.
    pub new: Option<String>,
}

impl std::str::FromStr for SpecialMapping {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (old, new) = s
            .rsplit_once('=')
            .ok_or_else(|| format!("{s:?}: expected OLD=NEW (map onto a new token) or OLD= (drop)"))?;
        if old.is_empty() {
            return Err(format!("{s:?}: the source token is empty"));
        }
        Ok(Self { old: old.into(), new: (!new.is_empty()).then(|| new.into()) })
    }
}

/// One special token of the source model.
#[derive(Debug, Clone, Serialize)]
pub struct SourceSpecial {
    /// Its content.
    pub content: String,
    /// Its id in the source vocabulary.
    pub old_id: u32,
    /// The roles the source's files give it.
    pub roles: Vec<Role>,
}

/// The source model's special tokens, read from its files and checked against its tokenizer.
#[derive(Debug, Clone, Serialize)]
pub struct SourceSpecials {
    /// In old-id order.
    pub tokens: Vec<SourceSpecial>,
    /// The chat template, if any.
    #[serde(skip)]
    pub chat_template: Option<ChatTemplate>,
}

/// A tokenizer's chat template, where the source keeps it.
#[derive(Debug, Clone)]
pub enum ChatTemplate {
    /// `chat_template` of `tokenizer_config.json` (a string, or a list of named templates).
    Inline(Value),
    /// The text of `chat_template.jinja`.
    File(String),
}

/// The file transformers 5 writes the chat template to.
pub const CHAT_TEMPLATE_FILE: &str = "chat_template.jinja";

/// What happened to one special token.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SpecialOutcome {
    /// The token's content.
    pub content: String,
    /// Its id in the source (`None`: a new token that no source token went to).
    pub old_id: Option<u32>,
    /// The source's roles for it.
    pub roles: Vec<Role>,
    /// `kept` (same content in the new vocabulary), `appended`, `mapped`, `dropped`, or for the new tokenizer's
    /// own special tokens `same_content`, `same_role`, `document_separator` (a bos or eos given the row of the
    /// source's document separator, not of a chat-template turn marker), `mean_row`.
    pub action: String,
    /// Its id in the new vocabulary.
    pub new_id: Option<u32>,
    /// The old id whose rows it has.
    pub rows_from: Option<u32>,
}

/// Where the special tokens go in the new vocabulary.
#[derive(Debug, Clone)]
pub struct SpecialPlan {
    /// Contents appended after the new tokenizer's vocabulary, in id order.
    pub appended: Vec<String>,
    /// `(new id, old id)` rows to copy; `None`: the mean old row.
    pub rows: Vec<(u32, Option<u32>)>,
    /// Old id → new id of every source special token (`None`: dropped, nothing of that role in the new one).
    pub remap: FxHashMap<u32, Option<u32>>,
    /// One line per token.
    pub outcomes: Vec<SpecialOutcome>,
    /// The source's chat template, if every token it uses is carried under its own content.
    pub chat_template: Option<ChatTemplate>,
}

/// `tokenizer_config.json` (and the tokenizer's directory) next to a `tokenizer.json` path or directory.
pub fn tokenizer_dir(path: &Path) -> PathBuf {
    if path.is_dir() { path.to_path_buf() } else { path.parent().unwrap_or(Path::new(".")).to_path_buf() }
}

pub(crate) fn read_json(path: &Path) -> Result<Option<Value>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| TransferError::io(path, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| TransferError::Checkpoint { path: path.into(), message: e.to_string() })
}

/// A token named in `tokenizer_config.json`: a string or `{"content": ...}`.
fn token_name(v: &Value) -> Option<&str> {
    v.as_str().or_else(|| v.get("content").and_then(Value::as_str))
}

/// Id of `content` in `tok` (`bytes` its canonical pieces): an added token by content, else a piece string.
fn find_id(tok: &Tokenizer, bytes: &[PieceBytes], content: &str) -> Option<u32> {
    bytes
        .iter()
        .position(|b| matches!(b, PieceBytes::Added { content: c, .. } if c == content))
        .map(|i| i as u32)
        .or_else(|| tok.token_to_id(content))
}

/// Content of id `id` in `tok`.
fn content_of(tok: &Tokenizer, bytes: &[PieceBytes], id: u32) -> Option<String> {
    match bytes.get(id as usize)? {
        PieceBytes::Added { content, .. } => Some(content.clone()),
        PieceBytes::Unused => None,
        _ => tok.id_to_token(id),
    }
}

/// The role tokens a tokenizer's `tokenizer_config.json` names, as ids of `tok`.
fn tokenizer_roles(config: Option<&Value>, tok: &Tokenizer, bytes: &[PieceBytes]) -> Vec<(Role, u32)> {
    let Some(config) = config else { return vec![] };
    Role::NAMED
        .iter()
        .filter_map(|(role, name)| {
            let content = token_name(config.get(format!("{name}_token"))?)?;
            Some((*role, find_id(tok, bytes, content)?))
        })
        .collect()
}

impl SourceSpecials {
    /// Reads the special tokens of the model in `src` (`config` is its `config.json`), checking every named
    /// token against the old tokenizer `old_tok` (with canonical pieces `old_bytes`) and the model's rows.
    pub fn read(
        src: &Path,
        config: &LlamaConfig,
        old_tok: &Tokenizer,
        old_bytes: &[PieceBytes],
    ) -> Result<Self> {
        let mut found: Vec<(u32, Role)> = vec![];
        let rows = config.vocab_size.min(old_bytes.len());
        let check_id = |file: &Path, field: &str, id: u64| -> Result<u32> {
            match u32::try_from(id).ok().filter(|&i| (i as usize) < rows) {
                Some(i) if content_of(old_tok, old_bytes, i).is_some() => Ok(i),
                _ => Err(TransferError::Checkpoint {
                    path: file.into(),
                    message: format!(
                        "{field} = {id} is not a token of the source tokenizer {} ({rows} ids with rows)",
                        old_tok.path().display()
                    ),
                }),
            }
        };
        let config_path = src.join("config.json");
        let generation_path = src.join("generation_config.json");
        let generation = read_json(&generation_path)?;
        let config_ids = serde_json::to_value(config)
            .map_err(|e| TransferError::Checkpoint { path: config_path.clone(), message: e.to_string() })?;
        for (path, json) in [(&config_path, Some(&config_ids)), (&generation_path, generation.as_ref())] {
            let Some(json) = json else { continue };
            for (role, name) in &Role::NAMED {
                let field = format!("{name}_token_id");
                let ids: Vec<&Value> = match json.get(&field) {
                    Some(Value::Array(a)) => a.iter().collect(),
                    Some(Value::Null) | None => vec![],
                    Some(v) => vec![v],
                };
                for v in ids {
                    let id = v.as_u64().ok_or_else(|| TransferError::Checkpoint {
                        path: path.into(),
                        message: format!("{field} = {v} is not a token id"),
                    })?;
                    found.push((check_id(path, &field, id)?, *role));
                }
            }
        }
        let tc_path = tokenizer_dir(old_tok.path()).join("tokenizer_config.json");
        let tc = read_json(&tc_path)?;
        let named = |field: &str, content: &str| -> Result<u32> {
            find_id(old_tok, old_bytes, content).filter(|&i| (i as usize) < rows).ok_or_else(|| {
                TransferError::Checkpoint {
                    path: tc_path.clone(),
                    message: format!("{field} {content:?} is not a token of the source tokenizer with a row"),
                }
            })
        };
        let template_path = tokenizer_dir(old_tok.path()).join(CHAT_TEMPLATE_FILE);
        let mut chat_template = if template_path.is_file() {
            let text =
                std::fs::read_to_string(&template_path).map_err(|e| TransferError::io(&template_path, e))?;
            Some(ChatTemplate::File(text))
        } else {
            None
        };
        if let Some(tc) = &tc {
            for (role, name) in Role::NAMED {
                let field = format!("{name}_token");
                if let Some(content) = tc.get(&field).and_then(token_name) {
                    found.push((named(&field, content)?, role));
                }
            }
            for v in tc.get("additional_special_tokens").and_then(Value::as_array).into_iter().flatten() {
                let content = token_name(v).unwrap_or_default();
                found.push((named("additional_special_tokens", content)?, Role::Additional));
            }
            if let Some(t) = tc.get("chat_template").filter(|t| !t.is_null()) {
                chat_template = Some(ChatTemplate::Inline(t.clone()));
            }
        }
        let template_text = match &chat_template {
            Some(ChatTemplate::Inline(v)) => v.to_string(),
            Some(ChatTemplate::File(text)) => text.clone(),
            None => String::new(),
        };
        for (id, b) in old_bytes.iter().enumerate().take(rows) {
            if let PieceBytes::Added { content, special: true } = b
                && template_text.contains(content.as_str())
            {
                found.push((id as u32, Role::ChatTemplate));
            }
        }
        found.sort();
        found.dedup();
        let mut tokens: Vec<SourceSpecial> = vec![];
        for (id, role) in found {
            match tokens.last_mut() {
                Some(t) if t.old_id == id => t.roles.push(role),
                _ => tokens.push(SourceSpecial {
                    content: content_of(old_tok, old_bytes, id).unwrap_or_default(),
                    old_id: id,
                    roles: vec![role],
                }),
            }
        }
        Ok(Self { tokens, chat_template })
    }

    /// The source row for a new special token with `roles` (in order of preference), and how it was chosen.
    ///
    /// The first source token of a role that its chat template does not use (`same_role`). A new bos or eos
    /// marks a document boundary in pretraining: when every source token of that role is a chat-template turn
    /// marker (SmolLM2-Instruct's bos `<|im_start|>`, eos `<|im_end|>`), the row comes from the source's document
    /// separator instead (`document_separator`): its first special token of role bos, eos or unk that the template
    /// does not use (SmolLM2's `<|endoftext|>`, the separator of its pretraining documents). Without one, the
    /// turn marker itself (`same_role`).
    fn row_for(&self, roles: &[Role]) -> Option<(u32, &'static str)> {
        let in_template = |t: &&SourceSpecial| t.roles.contains(&Role::ChatTemplate);
        let separator = || {
            self.tokens.iter().find(|t| {
                !in_template(t) && t.roles.iter().any(|r| matches!(r, Role::Bos | Role::Eos | Role::Unk))
            })
        };
        roles.iter().find_map(|&role| {
            let mut of_role = self.tokens.iter().filter(|t| t.roles.contains(&role));
            let first = of_role.clone().next()?;
            if let Some(t) = of_role.find(|t| !in_template(t)) {
                return Some((t.old_id, "same_role"));
            }
            match separator() {
                Some(t) if matches!(role, Role::Bos | Role::Eos) => Some((t.old_id, "document_separator")),
                _ => Some((first.old_id, "same_role")),
            }
        })
    }

    /// Checks that every mapping names a source special token.
    pub fn check_mappings(&self, mappings: &[SpecialMapping]) -> Result<()> {
        for m in mappings {
            if !self.tokens.iter().any(|t| t.content == m.old) {
                let known: Vec<&str> = self.tokens.iter().map(|t| t.content.as_str()).collect();
                return Err(TransferError::Tokenizer(format!(
                    "--map-special {:?}: not one of the source model's special tokens {known:?}",
                    m.old
                )));
            }
        }
        Ok(())
    }

    /// Places every special token in the new vocabulary `new_tok` (canonical pieces `new_bytes`, with
    /// `tokenizer_config.json` in `new_config`), following `mappings`.
    pub fn plan(
        &self,
        new_tok: &Tokenizer,
        new_bytes: &[PieceBytes],
        new_config: Option<&Value>,
        old_index: &crate::matching::OldIndex<'_>,
        mappings: &[SpecialMapping],
    ) -> Result<SpecialPlan> {
        self.check_mappings(mappings)?;
        let new_roles = tokenizer_roles(new_config, new_tok, new_bytes);
        let role_id =
            |roles: &[Role]| roles.iter().find_map(|r| new_roles.iter().find(|(x, _)| x == r)).map(|x| x.1);
        let mut plan = SpecialPlan {
            appended: vec![],
            rows: vec![],
            remap: FxHashMap::default(),
            outcomes: vec![],
            chat_template: None,
        };
        let mut template_intact = true;
        for t in &self.tokens {
            let mapping = mappings.iter().find(|m| m.old == t.content);
            let (action, new_id) = match mapping {
                Some(SpecialMapping { new: Some(name), .. }) => {
                    let id = find_id(new_tok, new_bytes, name).ok_or_else(|| {
                        TransferError::Tokenizer(format!(
                            "--map-special {:?}={name:?}: {name:?} is not a token of the new tokenizer {}",
                            t.content,
                            new_tok.path().display()
                        ))
                    })?;
                    ("mapped", Some(id))
                }
                Some(SpecialMapping { new: None, .. }) => ("dropped", None),
                None => match find_id(new_tok, new_bytes, &t.content) {
                    Some(id) => ("kept", Some(id)),
                    None => {
                        let id = (new_bytes.len() + plan.appended.len()) as u32;
                        plan.appended.push(t.content.clone());
                        ("appended", Some(id))
                    }
                },
            };
            if t.roles.contains(&Role::ChatTemplate) && !matches!(action, "kept" | "appended") {
                template_intact = false;
            }
            if let Some(id) = new_id {
                plan.rows.push((id, Some(t.old_id)));
            }
            plan.remap.insert(t.old_id, new_id.or_else(|| role_id(&t.roles)));
            plan.outcomes.push(SpecialOutcome {
                content: t.content.clone(),
                old_id: Some(t.old_id),
                roles: t.roles.clone(),
                action: action.to_string(),
                new_id,
                rows_from: new_id.map(|_| t.old_id),
            });
        }
        for (id, b) in new_bytes.iter().enumerate() {
            let id = id as u32;
            let PieceBytes::Added { content, special: true } = b else { continue };
            if plan.rows.iter().any(|(n, _)| *n == id) {
                continue;
            }
            let roles: Vec<Role> = new_roles.iter().filter(|(_, i)| *i == id).map(|(r, _)| *r).collect();
            let (action, from) = match old_index.added(content) {
                Some(old) => ("same_content", Some(old)),
                None => match self.row_for(&roles) {
                    Some((old, action)) => (action, Some(old)),
                    None => ("mean_row", None),
                },
            };
            plan.rows.push((id, from));
            plan.outcomes.push(SpecialOutcome {
                content: content.clone(),
                old_id: None,
                roles,
                action: action.to_string(),
                new_id: Some(id),
                rows_from: from,
            });
        }
        if template_intact {
            plan.chat_template = self.chat_template.clone();
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_parse() {
        let m: SpecialMapping = "<|endoftext|>=</s>".parse().expect("map");
        assert_eq!(m, SpecialMapping { old: "<|endoftext|>".into(), new: Some("</s>".into()) });
        let d: SpecialMapping = "<|im_start|>=".parse().expect("drop");
        assert_eq!(d.new, None);
        assert!("nothing".parse::<SpecialMapping>().is_err());
        assert!("=x".parse::<SpecialMapping>().is_err());
    }

    #[test]
    fn document_markers_take_the_separator_over_chat_turn_markers() {
        let t = |content: &str, old_id, roles: &[Role]| SourceSpecial {
            content: content.into(),
            old_id,
            roles: roles.to_vec(),
        };
        let specials = |tokens| SourceSpecials { tokens, chat_template: None };
        // SmolLM2-Instruct's files: bos and eos are chat turn markers, `<|endoftext|>` is only unk.
        let instruct = specials(vec![
            t("<|endoftext|>", 0, &[Role::Unk]),
            t("<|im_start|>", 1, &[Role::Bos, Role::ChatTemplate]),
            t("<|im_end|>", 2, &[Role::Eos, Role::Pad, Role::ChatTemplate]),
        ]);
        assert_eq!(instruct.row_for(&[Role::Bos]), Some((0, "document_separator")));
        assert_eq!(instruct.row_for(&[Role::Eos]), Some((0, "document_separator")));
        assert_eq!(instruct.row_for(&[Role::Pad]), Some((2, "same_role")));
        assert_eq!(instruct.row_for(&[Role::Unk]), Some((0, "same_role")));
        // A base model's own bos is kept; a chat marker is used when nothing else has the role.
        let base = specials(vec![t("<|endoftext|>", 0, &[Role::Bos, Role::Eos, Role::Unk])]);
        assert_eq!(base.row_for(&[Role::Bos]), Some((0, "same_role")));
        let chat_only = specials(vec![t("<|im_start|>", 1, &[Role::Bos, Role::ChatTemplate])]);
        assert_eq!(chat_only.row_for(&[Role::Bos]), Some((1, "same_role")));
        assert_eq!(chat_only.row_for(&[Role::Pad]), None);
    }
}
