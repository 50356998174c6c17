//! `hashi tokenizer ...`: train, analyse, import, encode, decode.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use hashi_core::Reporter;
use hashi_experiment::tokenizer::{analyze_tokenizer, parse_sampling, train_tokenizer};
use hashi_tokenizer::Tokenizer;
use hashi_tokenizer::input::InputSpec;
use hashi_tokenizer::sentencepiece::SpModel;
use hashi_tokenizer::train::TrainConfig;
use serde_json::json;

#[derive(Subcommand)]
pub enum TokenizerCommand {
    /// Train a SentencePiece-style BPE tokenizer on language-tagged text (HF tokenizer.json + configs).
    Train(TrainArgs),
    /// Vocabulary by script and length per token on text, side by side with a reference tokenizer.
    Analyze(AnalyzeArgs),
    /// Convert a SentencePiece BPE tokenizer.model (e.g. Llama 2's) into an HF tokenizer with the same ids.
    ImportSentencepiece(ImportArgs),
    /// Vocabulary expansion: a base tokenizer with another's missing non-ASCII pieces appended (base ids kept,
    /// ASCII text cut as the base cuts it); `hashi transfer` onto it keeps every row of the model.
    Expand(ExpandArgs),
    /// Print the token ids of a text (argument or stdin).
    Encode(EncodeArgs),
    /// Print the text of comma-separated token ids.
    Decode(DecodeArgs),
}

#[derive(Args)]
pub struct TrainArgs {
    /// Input as LANG=PATH or LANG:FIELD=PATH (globs allowed; .jsonl/.json read FIELD, default `text`; other
    /// files are plain text). Repeat for more files and languages.
    #[arg(long = "input", required_unless_present = "corpora")]
    inputs: Vec<InputSpec>,
    /// A corpus declaration file (Lua, as for `hashi data prepare`) instead of, or besides, --input.
    #[arg(long)]
    corpora: Option<PathBuf>,
    /// Exact vocabulary size (special and byte tokens included).
    #[arg(long, default_value_t = 32_000)]
    vocab_size: usize,
    /// Language mix: `equal` (same bytes per language), `all`, or weights like `ja=0.6,en=0.4`.
    #[arg(long, default_value = "equal")]
    sampling: String,
    /// Share of character occurrences covered by the kept characters (the rest falls back to bytes).
    #[arg(long, default_value_t = 0.9995)]
    character_coverage: f64,
    /// Longest piece in characters.
    #[arg(long, default_value_t = 16)]
    max_piece_length: usize,
    /// Let digits merge (by default each digit is its own piece).
    #[arg(long)]
    no_split_digits: bool,
    /// A symbol that is always one token (repeat for more).
    #[arg(long = "user-defined-symbol")]
    user_defined_symbols: Vec<String>,
    /// Seed of the document sampling.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// `model_max_length` written to tokenizer_config.json.
    #[arg(long, default_value_t = 4096)]
    model_max_length: usize,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Write into --out even if it is a folder that is not empty (its files are overwritten).
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct AnalyzeArgs {
    /// The tokenizer (tokenizer.json or its directory).
    #[arg(long)]
    tokenizer: PathBuf,
    /// A reference tokenizer to compare with.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Held-out text as LANG=PATH or LANG:FIELD=PATH (repeat).
    #[arg(long = "text")]
    texts: Vec<InputSpec>,
    /// JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Also write the JSON to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The SentencePiece model file.
    model: PathBuf,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// `model_max_length` written to tokenizer_config.json.
    #[arg(long, default_value_t = 4096)]
    model_max_length: usize,
    /// Write into --out even if it is a folder that is not empty (its files are overwritten).
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct ExpandArgs {
    /// The base tokenizer (tokenizer.json or its folder, usually the model's): every id is kept.
    #[arg(long)]
    base: PathBuf,
    /// The tokenizer whose missing pieces are appended (e.g. a bilingual tokenizer from `tokenizer train`).
    #[arg(long)]
    add: PathBuf,
    /// Output folder: tokenizer.json, and the base's tokenizer_config.json, special_tokens_map.json and chat
    /// template.
    #[arg(long)]
    out: PathBuf,
    /// Write into --out even if it is a folder that is not empty (its files are overwritten).
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct EncodeArgs {
    /// The tokenizer (tokenizer.json or its directory).
    #[arg(long)]
    tokenizer: PathBuf,
    /// Text to encode; read from stdin when absent.
    #[arg(long)]
    text: Option<String>,
    /// Do not add special tokens (`<s>`).
    #[arg(long)]
    no_special: bool,
    /// Print JSON (ids and pieces).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct DecodeArgs {
    /// The tokenizer (tokenizer.json or its directory).
    #[arg(long)]
    tokenizer: PathBuf,
    /// Comma-separated ids.
    #[arg(long, allow_hyphen_values = true)]
    ids: String,
    /// Keep special tokens in the text.
    #[arg(long)]
    keep_special: bool,
}

pub fn run(cmd: TokenizerCommand, progress: &dyn Reporter) -> Result<()> {
    match cmd {
        TokenizerCommand::Train(a) => train_cmd(a, progress),
        TokenizerCommand::Analyze(a) => analyze_cmd(a),
        TokenizerCommand::ImportSentencepiece(a) => import_cmd(a),
        TokenizerCommand::Expand(a) => expand_cmd(a),
        TokenizerCommand::Encode(a) => encode_cmd(a),
        TokenizerCommand::Decode(a) => decode_cmd(a),
    }
}

fn train_cmd(a: TrainArgs, progress: &dyn Reporter) -> Result<()> {
    hashi_core::check_out_dir(&a.out, a.force).map_err(anyhow::Error::msg)?;
    let cfg = TrainConfig {
        vocab_size: a.vocab_size,
        character_coverage: a.character_coverage,
        max_piece_length: a.max_piece_length,
        split_digits: !a.no_split_digits,
        user_defined_symbols: a.user_defined_symbols,
        sampling: parse_sampling(&a.sampling)?,
        seed: a.seed,
    };
    let mut specs = a.inputs.clone();
    if let Some(file) = &a.corpora {
        specs.extend(hashi_experiment::plan::corpus_inputs(file)?);
    }
    let summary = train_tokenizer(&specs, &cfg, a.model_max_length, &a.out, progress)?;
    outln!("{}", serde_json::to_string(&summary)?)?;
    Ok(())
}

fn analyze_cmd(a: AnalyzeArgs) -> Result<()> {
    let out = analyze_tokenizer(&a.tokenizer, a.reference.as_deref(), &a.texts)?;
    if let Some(p) = &a.out {
        out.write(p)?;
    }
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
        return Ok(());
    }
    outln!("{}", hashi_experiment::tokenizer::analysis_table(&out))?;
    Ok(())
}

fn import_cmd(a: ImportArgs) -> Result<()> {
    hashi_core::check_out_dir(&a.out, a.force).map_err(anyhow::Error::msg)?;
    let model = SpModel::from_file(&a.model)?;
    let style = model.to_llama_style(&a.model)?;
    style.save(&a.out, a.model_max_length)?;
    outln!("{}", json!({"out": a.out, "vocab_size": style.pieces.len(), "merges": style.merges.len()}))?;
    Ok(())
}

fn expand_cmd(a: ExpandArgs) -> Result<()> {
    hashi_core::check_out_dir(&a.out, a.force).map_err(anyhow::Error::msg)?;
    let report = hashi_experiment::tokenizer::expand_tokenizer(&a.base, &a.add, &a.out)?;
    outln!("{}", serde_json::to_string_pretty(&report)?)?;
    Ok(())
}

fn encode_cmd(a: EncodeArgs) -> Result<()> {
    let tok = Tokenizer::from_file(&a.tokenizer)?;
    let text = match a.text {
        Some(t) => t,
        None => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).context("reading stdin (not UTF-8?)")?;
            s
        }
    };
    let ids = tok.encode(&text, !a.no_special)?;
    if a.json {
        let pieces = tok.pieces();
        let names: Vec<String> = ids
            .iter()
            .map(|&i| pieces.get(i as usize).cloned().flatten().map(|p| p.0).unwrap_or_default())
            .collect();
        outln!("{}", json!({"ids": ids, "pieces": names}))?;
    } else {
        outln!("{}", ids.iter().map(u32::to_string).collect::<Vec<_>>().join(","))?;
    }
    Ok(())
}

fn decode_cmd(a: DecodeArgs) -> Result<()> {
    let tok = Tokenizer::from_file(&a.tokenizer)?;
    let ids: Vec<u32> = if a.ids.trim().is_empty() {
        vec![]
    } else {
        a.ids
            .split(',')
            .map(|t| t.trim().parse::<u32>().with_context(|| format!("bad id {t:?}")))
            .collect::<Result<_>>()?
    };
    if let Some(&id) = ids.iter().find(|&&id| id as usize >= tok.vocab_size()) {
        bail!("--ids: id {id} is not in {} (a vocabulary of {})", tok.path().display(), tok.vocab_size());
    }
    out!("{}", tok.decode(&ids, !a.keep_special)?)?;
    Ok(())
}
