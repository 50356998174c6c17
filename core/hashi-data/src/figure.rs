//! The data plan as a picture, like the method's Figure 1: one stacked bar per phase (width ∝ its tokens),
//! split into its sources (colour by language, shade by order within the language), labelled. Plain SVG.

use std::fmt::Write;

use crate::plan::ResolvedPlan;

const PALETTE: [(&str, [&str; 4]); 2] = [
    ("en", ["#1f4e79", "#2e75b6", "#9dc3e6", "#deebf7"]),
    ("ja", ["#843c0c", "#c55a11", "#f4b183", "#fbe5d6"]),
];
const OTHER: [&str; 4] = ["#385723", "#70ad47", "#a9d18e", "#e2f0d9"];

fn colour(lang: &str, i: usize) -> &'static str {
    let shades = PALETTE.iter().find(|(l, _)| *l == lang).map_or(OTHER, |(_, c)| *c);
    shades[i % shades.len()]
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// An SVG of the plan's phases and their sources.
pub fn plan_svg(plan: &ResolvedPlan) -> String {
    let (w, h, left, top, bar_h) = (960.0, 420.0, 60.0, 50.0, 280.0);
    let total: f64 = plan.phases.iter().map(|p| p.batches as f64).sum();
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(
        svg,
        r#"<text x="{left}" y="24" font-size="15" font-weight="bold">{} — {} tokens in {} phases ({} batches of {}×{})</text>"#,
        escape(&plan.decl.name),
        plan.total_batches() * plan.tokens_per_batch(),
        plan.phases.len(),
        plan.total_batches(),
        plan.decl.batch_size,
        plan.decl.seq_len
    );
    let mut x = left;
    let usable = w - left - 20.0;
    for p in &plan.phases {
        let pw = usable * p.batches as f64 / total.max(1.0);
        let seqs: u64 = p.langs.iter().map(|l| l.sequences).sum();
        let mut y = top;
        for l in &p.langs {
            for (i, s) in l.sources.iter().enumerate() {
                let sh = bar_h * s.sequences as f64 / seqs.max(1) as f64;
                if sh <= 0.0 {
                    continue;
                }
                let _ = write!(
                    svg,
                    r##"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{sh:.1}" fill="{}" stroke="#fff"><title>{} {}: {} sequences</title></rect>"##,
                    (pw - 2.0).max(1.0),
                    colour(&l.lang, i),
                    escape(&p.name),
                    escape(&s.name),
                    s.sequences
                );
                if sh > 13.0 && pw > 50.0 {
                    let fill = if i < 2 { "#fff" } else { "#000" };
                    let _ = write!(
                        svg,
                        r#"<text x="{:.1}" y="{:.1}" fill="{fill}">{}{}</text>"#,
                        x + 4.0,
                        y + 13.0,
                        escape(&s.name),
                        if s.epochs > 1 { format!(" ×{}", s.epochs) } else { String::new() }
                    );
                }
                y += sh;
            }
        }
        let shares: Vec<String> =
            p.langs.iter().map(|l| format!("{} {:.0}%", l.lang, 100.0 * l.share)).collect();
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-weight="bold">{}</text>"#,
            x + 2.0,
            top + bar_h + 16.0,
            escape(&p.name)
        );
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            x + 2.0,
            top + bar_h + 30.0,
            shares.join(" / ")
        );
        x += pw;
    }
    let _ = write!(
        svg,
        r##"<text x="{left}" y="{:.1}" fill="#555">bar width ∝ tokens; segments: sources by share of the phase; ×N = epoch N of a repeated source</text>"##,
        h - 20.0
    );
    svg.push_str("</svg>\n");
    svg
}
