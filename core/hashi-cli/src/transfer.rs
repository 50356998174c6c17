//! `hashi transfer`: vocabulary replacement with a Lua embedding-init strategy (`hashi_experiment::transfer`), and
//! its report as tables: match classes by script, what happened to each special token, row norms, step-0 bits per
//! byte on held-out text (also by script).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use hashi_core::Reporter;
use hashi_tokenizer::input::InputSpec;
use hashi_transfer::SpecialMapping;

#[derive(Args)]
pub struct TransferArgs {
    /// The source model (HF directory with its tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// The new tokenizer (tokenizer.json or its directory).
    #[arg(long)]
    tokenizer: PathBuf,
    /// Embedding-init strategy (Lua). Repeat with --dry-run to compare strategies.
    #[arg(long = "init", required = true)]
    inits: Vec<PathBuf>,
    /// Output directory (must not exist).
    #[arg(long)]
    out: PathBuf,
    /// Report only: nothing is kept in --out.
    #[arg(long)]
    dry_run: bool,
    /// The old tokenizer, if not MODEL/tokenizer.json.
    #[arg(long)]
    old_tokenizer: Option<PathBuf>,
    /// A source special token mapped onto a token of the new tokenizer (OLD=NEW), or dropped (OLD=); the
    /// others are carried into the new vocabulary (repeat).
    #[arg(long = "map-special", value_name = "OLD=NEW")]
    map_special: Vec<SpecialMapping>,
    /// Held-out text for step-0 bits-per-byte, as LANG=PATH or LANG:FIELD=PATH (repeat).
    #[arg(long = "eval-text")]
    eval_texts: Vec<InputSpec>,
    /// UTF-8 bytes per language for bits-per-byte (whole documents, the same text for the source and every
    /// strategy).
    #[arg(long, default_value_t = 50_000)]
    eval_bytes: usize,
    /// Folder `require` searches besides the script's own.
    #[arg(long, default_value = "scripts/lib")]
    script_lib: PathBuf,
    /// Seed of recipe noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// JSON instead of tables.
    #[arg(long)]
    json: bool,
}

pub fn run(a: TransferArgs, progress: &dyn Reporter) -> Result<()> {
    let settings = hashi_experiment::TransferSettings {
        model: a.model,
        tokenizer: a.tokenizer,
        inits: a.inits,
        out: a.out,
        dry_run: a.dry_run,
        old_tokenizer: a.old_tokenizer,
        map_special: a.map_special,
        eval_texts: a.eval_texts,
        eval_bytes: a.eval_bytes,
        script_lib: a.script_lib,
        seed: a.seed,
    };
    let c = hashi_experiment::transfer(&settings, progress)?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&c)?)?;
        return Ok(());
    }
    let first = &c.strategies[0].report;
    outln!(
        "vocabulary {} -> {}: {} matched, {} initialised{}",
        first.old_vocab_size,
        first.new_vocab_size,
        first.matched,
        first.new_vocab_size - first.matched,
        if a.dry_run { " (dry run: nothing written)" } else { "" }
    )?;
    let classes = ["exact_string", "same_bytes", "partial_utf8", "special", "unmatched"];
    let row = |m: &std::collections::BTreeMap<String, usize>| -> String {
        classes.iter().map(|k| format!("{:>13}", m.get(*k).copied().unwrap_or(0))).collect()
    };
    outln!("\n{:<10} {}", "category", classes.iter().map(|c| format!("{c:>13}")).collect::<String>())?;
    for cat in &first.by_category {
        outln!("{:<10} {}", cat.category, row(&cat.by_class))?;
    }
    outln!("{:<10} {}", "total", row(&first.by_class))?;
    outln!(
        "\n{:<24} {:>7} {:<22} {:<18} {:>7} {:>9}",
        "special token",
        "old id",
        "roles",
        "action",
        "new id",
        "rows from"
    )?;
    let id = |v: Option<u32>| v.map_or("-".to_string(), |n| n.to_string());
    for t in &first.special_tokens {
        let roles: Vec<String> = t
            .roles
            .iter()
            .map(|r| {
                serde_json::to_value(r).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
            })
            .collect();
        outln!(
            "{:<24} {:>7} {:<22} {:<18} {:>7} {:>9}",
            t.content,
            id(t.old_id),
            roles.join(","),
            t.action,
            id(t.new_id),
            id(t.rows_from)
        )?;
    }
    outln!("\n{:<16} {:<28} {:>8} {:>8} {:>11}", "strategy", "tensor", "old", "matched", "initialised")?;
    for r in &c.strategies {
        for n in &r.report.norms {
            outln!(
                "{:<16} {:<28} {:>8.4} {:>8.4} {:>11.4}",
                r.report.strategy,
                n.tensor,
                n.old,
                n.matched,
                n.initialised
            )?;
        }
    }
    let Some(src) = &c.source_bits_per_byte else { return Ok(()) };
    outln!("\nstep-0 bits per byte (lower is better)")?;
    let mut rows: Vec<(&str, &Vec<hashi_eval::Bpb>)> = vec![("source", src)];
    rows.extend(
        c.strategies.iter().filter_map(|r| Some((r.report.strategy.as_str(), r.bits_per_byte.as_ref()?))),
    );
    outln!("{:<16} {}", "model", src.iter().map(|b| format!("{:>8}", b.lang)).collect::<String>())?;
    for (name, bpb) in &rows {
        outln!("{name:<16} {}", bpb.iter().map(|b| format!("{:>8.4}", b.bits_per_byte)).collect::<String>())?;
    }
    for (k, lang) in src.iter().enumerate() {
        let scripts: Vec<&str> = lang.by_script.iter().map(|s| s.script.as_str()).collect();
        let bytes: Vec<String> = lang.by_script.iter().map(|s| s.bytes.to_string()).collect();
        outln!("\n{} by script (bytes: {})", lang.lang, bytes.join(" / "))?;
        outln!("{:<16} {}", "model", scripts.iter().map(|s| format!("{s:>8}")).collect::<String>())?;
        for (name, bpb) in &rows {
            let row: String = scripts
                .iter()
                .map(|s| {
                    let v = bpb.get(k).and_then(|b| b.by_script.iter().find(|x| x.script == *s));
                    format!("{:>8.4}", v.map_or(f64::NAN, |v| v.bits_per_byte))
                })
                .collect();
            outln!("{name:<16} {row}")?;
        }
    }
    Ok(())
}
