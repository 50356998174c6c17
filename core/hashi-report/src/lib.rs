//! The report of `hashi run` directories (`hashi report RUN_DIR...`): the method's Table 2 (JA and EN averages, bits per byte), Figure 1 (data plan per
//! phase), Figure 2 (JA score and bits per byte at every checkpoint, all variants on one chart), loss and LR
//! curves, the tokenizer and transfer reports and the paper's orderings checked, as Markdown with SVG figures and
//! as one self-contained HTML page. Several run directories (e.g. one per seed) are averaged per variant.

mod doc;
mod scores;
pub mod svg;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hashi_core::artifacts::{RunIndex, RunVariant, Vocabulary};
use hashi_eval::EvalResults;
use hashi_tokenizer::analyze::TokenizerAnalysis;
use hashi_transfer::TransferReport;

use doc::Block;
use scores::{Scores, Stat};
use svg::Series;

/// One run directory's index and where it lives.
struct Run {
    dir: PathBuf,
    index: RunIndex,
}

impl Run {
    fn open(dir: &Path) -> Result<Self> {
        Ok(Self { dir: dir.to_path_buf(), index: RunIndex::read(dir).map_err(anyhow::Error::msg)? })
    }

    /// Evaluation results at `rel` (relative to the run folder).
    fn eval(&self, rel: &str) -> Result<EvalResults> {
        Ok(EvalResults::read(&self.dir.join(rel))?)
    }

    fn variants(&self) -> &[RunVariant] {
        &self.index.variants
    }
}

/// Checkpoints of one variant in one run: (tokens, scores).
type Curve = Vec<(f64, Scores)>;

/// Writes `out/report.md`, `out/report.html` and `out/figures/*.svg`.
pub fn write(run_dirs: &[PathBuf], out: &Path) -> Result<()> {
    let runs: Vec<Run> = run_dirs.iter().map(|d| Run::open(d)).collect::<Result<_>>()?;
    if runs.iter().all(|r| r.variants().is_empty()) {
        bail!(
            "no trained variants in {}",
            run_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    // Curves and final scores per variant name, over every run and seed.
    let mut order: Vec<String> = vec![];
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    let mut curves: BTreeMap<String, Vec<Curve>> = BTreeMap::new();
    // Variants of several vocabularies: each row and caption says which, and the checkpoints are placed by the text
    // trained on, since a token is a different amount of text under each vocabulary.
    let mixed = runs.iter().flat_map(Run::variants).map(|v| v.vocabulary).collect::<BTreeSet<_>>().len() > 1;
    let x_of = |c: &hashi_core::artifacts::RunCheckpoint| -> f64 {
        if mixed {
            c.text_bytes_by_lang.as_ref().map_or(0, |m| m.values().sum::<u64>()) as f64 / 1e3
        } else {
            c.tokens as f64
        }
    };
    let x_label = if mixed { "text trained on (KB)" } else { "tokens trained" };
    let mut vocabularies: BTreeMap<String, Vocabulary> = BTreeMap::new();
    // The last checkpoint of each variant (its first run's): what it trained on.
    let mut read: BTreeMap<String, hashi_core::artifacts::RunCheckpoint> = BTreeMap::new();
    let mut base = vec![];
    // Step 0 of each vocabulary with a transfer.
    let mut starts: Vec<(Vocabulary, Scores)> = vec![];
    for (i, r) in runs.iter().enumerate() {
        // The base model and the transfers do not depend on the seed: the first run's stand for all.
        if i == 0 {
            base.push(Scores::from_eval(&r.eval(&r.index.base.eval)?));
            for t in &r.index.transfers {
                starts.push((t.vocabulary, Scores::from_eval(&r.eval(&t.eval)?)));
            }
        }
        for v in r.variants() {
            let name = v.name.clone();
            if !order.contains(&name) {
                order.push(name.clone());
            }
            labels.insert(name.clone(), v.label.clone());
            // One row per name: the same name trained with two vocabularies is two models, not two seeds.
            if let Some(other) = vocabularies.insert(name.clone(), v.vocabulary)
                && other != v.vocabulary
            {
                bail!(
                    "variant {name:?} is trained with the {} in {} and the {} in an earlier run directory: the \
                     report averages variants of one name, so report them separately or rename one",
                    v.vocabulary.describe(),
                    r.dir.display(),
                    other.describe()
                );
            }
            if let Some(last) = v.checkpoints.last() {
                read.entry(name.clone()).or_insert_with(|| last.clone());
            }
            let mut curve = vec![];
            for c in &v.checkpoints {
                curve.push((x_of(c), Scores::from_eval(&r.eval(&c.eval)?)));
            }
            curves.entry(name).or_default().push(curve);
        }
    }
    let finals: BTreeMap<&String, Vec<&Scores>> = curves
        .iter()
        .map(|(n, cs)| (n, cs.iter().filter_map(|c| c.last().map(|p| &p.1)).collect()))
        .collect();
    let row_name = |n: &String| -> String {
        if mixed {
            format!("{n}: {} ({})", labels[n], vocabularies[n].describe())
        } else {
            format!("{n}: {}", labels[n])
        }
    };
    let first = &runs[0];
    let title = format!("hashi report: {}", first.index.name);
    let mut blocks = vec![Block::Heading(1, title.clone())];
    blocks.push(Block::Para(summary(&runs)));

    // Table 2.
    blocks.push(Block::Heading(2, "Table 2: final checkpoints".into()));
    let tasks = scores::task_columns(finals.values().flatten().copied().chain(&base));
    let swallow_tasks: std::collections::BTreeSet<String> =
        finals.values().flatten().copied().chain(&base).flat_map(|s| s.swallow.iter().cloned()).collect();
    let swallow = !swallow_tasks.is_empty();
    let mut head: Vec<String> = ["model", "JA avg", "EN avg"].map(String::from).into();
    if swallow {
        head.push("Swallow avg".into());
    }
    head.extend(["JA bits/byte", "EN bits/byte"].map(String::from));
    // Short names, or the full name where two variants of a dataset would read alike (e.g. MGSM under both
    // protocols).
    let short: Vec<String> = tasks.iter().map(|t| scores::short_name(t)).collect();
    head.extend(tasks.iter().zip(&short).map(|(t, s)| match short.iter().filter(|x| *x == s).count() {
        1 => s.clone(),
        _ => format!("{t} ({})", s.rsplit_once(" (").map_or("", |(_, m)| m.trim_end_matches(')'))),
    }));
    let mut rows = vec![];
    let row = |name: String, s: &[&Scores]| -> Vec<String> {
        let mut r = vec![
            name,
            Stat::of(s.iter().map(|x| x.ja_avg())).show(1),
            Stat::of(s.iter().map(|x| x.en_avg())).show(1),
        ];
        if swallow {
            r.push(Stat::of(s.iter().map(|x| x.swallow_avg())).show(1));
        }
        r.extend([
            Stat::of(s.iter().map(|x| x.bpb.get("ja").copied())).show(3),
            Stat::of(s.iter().map(|x| x.bpb.get("en").copied())).show(3),
        ]);
        r.extend(tasks.iter().map(|t| Stat::of(s.iter().map(|x| x.tasks.get(t).copied())).show(1)));
        r
    };
    let base_name = if vocabularies.values().any(|v| *v == Vocabulary::Original) {
        "English base model (step 0 of the original vocabulary)"
    } else {
        "English base model"
    };
    rows.push(row(base_name.into(), &base.iter().collect::<Vec<_>>()));
    for (v, s) in &starts {
        rows.push(row(format!("transferred, step 0 ({})", v.describe()), &[s]));
    }
    for name in &order {
        rows.push(row(row_name(name), &finals[name]));
    }
    blocks.push(Block::Table { head, rows });
    blocks.push(Block::Para(scores::legend(&tasks, &swallow_tasks)));
    if let Some(note) = scores::bpb_bytes_note(
        base.iter().chain(starts.iter().map(|s| &s.1)).chain(finals.values().flatten().copied()),
    ) {
        blocks.push(Block::Para(note));
    }

    blocks.extend(scores::text_read_blocks(
        &order.iter().map(|n| (row_name(n), vocabularies[n], &read[n])).collect::<Vec<_>>(),
    ));

    // The same datasets under the two protocols.
    let mut models = vec![("English base model".to_string(), base.iter().collect::<Vec<_>>())];
    models.extend(order.iter().map(|n| (row_name(n), finals[n].clone())));
    let rows = scores::protocol_rows(&models);
    if !rows.is_empty() {
        blocks.push(Block::Heading(2, "The same datasets under jp-stable and Swallow's protocol".into()));
        let head = [
            "model",
            "dataset",
            "jp-stable",
            "llm-jp-eval",
            "Δ",
            "chance",
            "majority (jp-stable / llm-jp-eval)",
        ];
        blocks.push(Block::Table { head: head.map(String::from).into(), rows });
        if let Some(d) = finals
            .values()
            .flatten()
            .chain(base.iter().collect::<Vec<_>>().iter())
            .find_map(|s| s.protocol_deltas.first())
        {
            blocks.push(Block::Para(format!(
                "Scores in percent on the same model and checkpoint; the difference is the protocol's alone: {} \
                 (JCommonsenseQA); each protocol picks its documents and shots its own way{}.",
                d.differs,
                if d.same_documents { "" } else { ", and with a document limit the two score different documents" }
            )));
        }
    }

    // The paper's orderings, where the run has the variants they compare.
    let (head, rows) = scores::orderings(&finals, &base);
    if !rows.is_empty() {
        blocks.push(Block::Heading(2, "The paper's orderings at this scale".into()));
        blocks.push(Block::Table { head, rows });
        blocks.push(Block::Para(
        "Each cell: the difference a − b (bits per byte: b − a, so positive means a is better throughout) ± its \
         standard error, and whether it holds. A difference holds when it exceeds twice its standard error: \
         evaluation sampling for task averages, plus the spread over seeds when several seeds ran; bits per byte of \
         one seed has no variance estimate."
                .into(),
        ));
    }

    // Figure 1: the data plans.
    blocks.push(Block::Heading(2, "Figure 1: data plan per phase".into()));
    let mut seen = vec![];
    for r in &runs {
        for v in r.variants() {
            let name = v.name.clone();
            if seen.contains(&name) {
                continue;
            }
            seen.push(name.clone());
            let plan = read_json::<hashi_core::plan::ResolvedPlan>(&r.dir.join(&v.plan))?;
            blocks.push(Block::Figure {
                file: format!("plan-{name}"),
                svg: svg::plan(&plan),
                caption: format!("{name}: {}", labels[&name]),
            });
        }
    }

    // Figure 2: per checkpoint.
    blocks.push(Block::Heading(2, "Figure 2: every checkpoint".into()));
    let curve_of = |f: &dyn Fn(&Scores) -> Option<f64>| -> Vec<Series> {
        order
            .iter()
            .map(|n| Series { name: n.clone(), points: scores::mean_curve(&curves[n], f), dashed: false })
            .collect()
    };
    // The base model as a dashed level, when it is on the scale of the variants (not, e.g., Japanese bits per
    // byte of an English tokenizer, said in the text instead).
    let reference = |series: &mut Vec<Series>, v: Option<f64>, x1: f64| {
        let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
        let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| (a.min(y), b.max(y)));
        if let Some(v) = v.filter(|v| !lo.is_finite() || (*v >= lo - (hi - lo) && *v <= hi + (hi - lo))) {
            series.push(Series {
                name: "English base".into(),
                points: vec![(0.0, v), (x1, v)],
                dashed: true,
            });
        }
    };
    // In-loop bits per byte (experiments with `eval`), every seed's metrics of each variant.
    let mut in_loop: BTreeMap<&String, Vec<Vec<hashi_core::artifacts::Metrics>>> = BTreeMap::new();
    for name in &order {
        for r in &runs {
            for v in r.variants().iter().filter(|v| &v.name == name) {
                let m = read_metrics(&r.dir.join(&v.train).join("metrics.jsonl"))?;
                if m.iter().any(|m| !m.bpb.is_empty()) {
                    in_loop.entry(name).or_default().push(m);
                }
            }
        }
    }
    let x1 = curves.values().flatten().flat_map(|c| c.iter().map(|p| p.0)).fold(0.0, f64::max);
    let mean = |v: Vec<Option<f64>>| Stat::of(v.into_iter()).mean;
    for (file, title, y, f, base_v, lang) in [
        (
            "fig2-ja-score",
            "Japanese average score per checkpoint",
            "JA avg",
            &Scores::ja_avg as &dyn Fn(&Scores) -> Option<f64>,
            mean(base.iter().map(Scores::ja_avg).collect()),
            None,
        ),
        (
            "fig2-ja-bpb",
            "Japanese bits per byte per checkpoint (lower is better)",
            "bits/byte",
            &|s: &Scores| s.bpb.get("ja").copied(),
            mean(base.iter().map(|s| s.bpb.get("ja").copied()).collect()),
            Some("ja"),
        ),
        (
            "fig2-en-score",
            "English average score per checkpoint",
            "EN avg",
            &Scores::en_avg,
            mean(base.iter().map(Scores::en_avg).collect()),
            None,
        ),
        (
            "fig2-en-bpb",
            "English bits per byte per checkpoint (lower is better)",
            "bits/byte",
            &|s: &Scores| s.bpb.get("en").copied(),
            mean(base.iter().map(|s| s.bpb.get("en").copied()).collect()),
            Some("en"),
        ),
    ] {
        let mut series = curve_of(f);
        reference(&mut series, base_v, x1);
        let mut caption = format!(
            "{title}; checkpoints at every data switch (mean over seeds){}; dashed: the English base model",
            if mixed { ", placed by the text trained on (the variants' vocabularies differ)" } else { "" }
        );
        // In-loop points are placed by tokens: drawn only where the checkpoints are too.
        let steps: Vec<Series> = lang
            .filter(|_| !mixed)
            .map(|lang| {
                in_loop
                    .iter()
                    .map(|(n, m)| Series {
                        name: format!("{n} (in the loop)"),
                        points: scores::in_loop_curve(m, lang),
                        dashed: true,
                    })
                    .filter(|s| !s.points.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if !steps.is_empty() {
            caption +=
                "; \"(in the loop)\": measured during training every few steps on the same text (dashed)";
            series.extend(steps);
        }
        blocks.push(Block::Figure {
            file: file.into(),
            svg: svg::lines(title, x_label, y, &series, true, &[]),
            caption,
        });
    }
    if let Some(v) = mean(base.iter().map(|s| s.bpb.get("ja").copied()).collect()) {
        blocks.push(Block::Para(format!(
            "The English base model reads the Japanese held-out text at {v:.3} bits per byte with its own English \
             tokenizer (bits per byte compares across vocabularies); a dashed level is drawn only where it fits the \
             chart's scale."
        )));
    }

    // Loss and LR curves.
    blocks.push(Block::Heading(2, "Training curves".into()));
    let (mut loss, mut lr) = (vec![], vec![]);
    for name in &order {
        let Some((r, v)) =
            runs.iter().find_map(|r| r.variants().iter().find(|v| &v.name == name).map(|v| (r, v)))
        else {
            continue;
        };
        let metrics = r.dir.join(&v.train).join("metrics.jsonl");
        let m = read_metrics(&metrics)?;
        loss.push(Series {
            name: name.clone(),
            points: scores::smooth(
                &m.iter().filter_map(|m| m.loss.map(|l| (m.step as f64, l))).collect::<Vec<_>>(),
                9,
            ),
            dashed: false,
        });
        lr.push(Series {
            name: name.clone(),
            points: m.iter().map(|m| (m.step as f64, m.lr)).collect(),
            dashed: false,
        });
    }
    blocks.push(Block::Figure {
        file: "loss".into(),
        svg: svg::lines("Training loss (moving average of 9 steps)", "step", "loss", &loss, false, &[]),
        caption: if mixed {
            "Training loss per step; losses compare only between variants of one vocabulary (Table 2 says which), \
             since a token is a different amount of text in each; bits per byte compares across them"
                .into()
        } else {
            "Training loss per step; vocabularies are equal across variants, so losses compare".into()
        },
    });
    blocks.push(Block::Figure {
        file: "lr".into(),
        svg: svg::lines("Learning rate", "step", "lr", &lr, false, &[]),
        caption: "Learning rate: a re-warmup at every data switch".into(),
    });

    // Tokenizers and transfers: the trained tokenizer, then each transfer's (the expanded tokenizer's own).
    let analysis = TokenizerAnalysis::read(&first.dir.join(&first.index.tokenizer.analysis))?;
    blocks.extend(scores::tokenizer_blocks("Tokenizer", &analysis));
    for t in &first.index.transfers {
        if t.analysis != first.index.tokenizer.analysis {
            let analysis = TokenizerAnalysis::read(&first.dir.join(&t.analysis))?;
            blocks.extend(scores::tokenizer_blocks(
                &format!("Tokenizer ({})", t.vocabulary.describe()),
                &analysis,
            ));
        }
        let transfer = read_json::<TransferReport>(&first.dir.join(&t.report))?;
        let title = match first.index.transfers.len() {
            1 => "Vocabulary transfer".to_string(),
            _ => format!("Vocabulary transfer ({})", t.vocabulary.describe()),
        };
        blocks.extend(scores::transfer_blocks(&title, &transfer));
    }
    blocks
        .extend(scores::timing_blocks(&runs.iter().map(|r| (r.dir.as_path(), &r.index)).collect::<Vec<_>>()));

    let figures = out.join("figures");
    std::fs::create_dir_all(&figures).with_context(|| format!("creating {}", figures.display()))?;
    let rsvg = which("rsvg-convert");
    for b in &blocks {
        if let Block::Figure { file, svg, .. } = b {
            let path = figures.join(format!("{file}.svg"));
            std::fs::write(&path, svg)?;
            if let Some(tool) = &rsvg {
                png_copy(tool, &path)?;
            }
        }
    }
    if rsvg.is_none() {
        tracing::info!("rsvg-convert not found: figures as SVG only");
    }
    hashi_core::write_atomic(
        &out.join("report.md"),
        doc::markdown(&blocks, if rsvg.is_some() { "png" } else { "svg" }).as_bytes(),
    )?;
    hashi_core::write_atomic(&out.join("report.html"), doc::html(&title, &blocks).as_bytes())?;
    Ok(())
}

/// A path relative to the working directory when it is inside it (reports stay free of machine paths).
pub(crate) fn shown(p: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    p.strip_prefix(&cwd).unwrap_or(p).display().to_string()
}

/// An executable on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())
}

/// A PNG next to an SVG figure, rendered by librsvg's `rsvg-convert` at twice the size.
fn png_copy(tool: &Path, svg: &Path) -> Result<()> {
    let png = svg.with_extension("png");
    let status = std::process::Command::new(tool)
        .args(["--zoom", "2", "--background-color", "white", "-o"])
        .arg(&png)
        .arg(svg)
        .status()
        .with_context(|| format!("running {}", tool.display()))?;
    if !status.success() {
        bail!("{} failed on {}", tool.display(), svg.display());
    }
    Ok(())
}

/// A JSON artifact of type `T`, naming the file when it cannot be read.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| path.display().to_string())
}

fn read_metrics(path: &Path) -> Result<Vec<hashi_core::artifacts::Metrics>> {
    hashi_core::artifacts::Metrics::read_all(path).map_err(anyhow::Error::msg)
}

fn summary(runs: &[Run]) -> String {
    let mut lines = vec![];
    for r in runs {
        let i = &r.index;
        let secs: f64 = i.stage_seconds.values().sum();
        lines.push(format!(
            "- `{}`: run file `{}`{}, seeds {:?}, {} variant training{}; machine: {}; stages took {:.1} min in all",
            shown(&r.dir),
            shown(&i.experiment),
            if i.quick { " (--quick)" } else { "" },
            i.seeds,
            r.variants().len(),
            if r.variants().len() == 1 { "" } else { "s" },
            i.machine,
            secs / 60.0
        ));
    }
    lines.join("\n")
}
