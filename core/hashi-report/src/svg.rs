//! hashi's one chart writer, plain standalone SVG: line charts with several series, a legend, axis ticks and
//! phase boundaries ([`lines`]), and the data plan as stacked bars ([`plan`]). Text is escaped ([`escape`]).

use std::fmt::Write;

use hashi_core::plan::ResolvedPlan;

/// One line of a chart.
pub struct Series {
    /// Legend text.
    pub name: String,
    /// `(x, y)` points in order; non-finite points are left out.
    pub points: Vec<(f64, f64)>,
    /// Dashed (e.g. a reference level drawn across the chart).
    pub dashed: bool,
}

const COLORS: [&str; 8] =
    ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];

/// Round tick positions covering `[lo, hi]`.
fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let span = (hi - lo).max(1e-12);
    let raw = span / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= n as f64)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = vec![];
    while t <= hi + step * 1e-9 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

fn label(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 || v == v.round() {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// `s` as SVG/HTML text.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A chart of `series` with markers at every point when `markers` is set (few points, e.g. checkpoints) and a
/// dashed vertical line at every x of `boundaries` (data switches).
pub fn lines(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    markers: bool,
    boundaries: &[f64],
) -> String {
    let (w, h, l, r, t, b) = (760.0, 380.0, 64.0, 190.0, 36.0, 46.0);
    let all = series.iter().flat_map(|s| s.points.iter()).filter(|p| p.0.is_finite() && p.1.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) =
        (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in all {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.06).max(1e-9);
    let (y0, y1) = (y0 - pad, y1 + pad);
    let px = |x: f64| l + (x - x0) / (x1 - x0) * (w - l - r);
    let py = |y: f64| h - b - (y - y0) / (y1 - y0) * (h - t - b);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans, Arial, sans-serif" font-size="11">"#
    );
    let _ = write!(s, r##"<rect width="{w}" height="{h}" fill="#fff"/>"##);
    let _ = write!(s, r#"<text x="{l}" y="20" font-size="14" font-weight="bold">{}</text>"#, escape(title));
    for ty in ticks(y0, y1, 5) {
        let y = py(ty);
        let _ = write!(
            s,
            r##"<line x1="{l}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            w - r,
            l - 6.0,
            y + 4.0,
            label(ty)
        );
    }
    for tx in ticks(x0, x1, 6) {
        let x = px(tx);
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{t}" y2="{:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            h - b,
            h - b + 16.0,
            label(tx)
        );
    }
    let _ = write!(
        s,
        r##"<rect x="{l}" y="{t}" width="{:.1}" height="{:.1}" fill="none" stroke="#888"/>"##,
        w - l - r,
        h - t - b
    );
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        l + (w - l - r) / 2.0,
        h - 8.0,
        escape(x_label)
    );
    let _ = write!(
        s,
        r#"<text transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        t + (h - t - b) / 2.0,
        escape(y_label)
    );
    for &x in boundaries.iter().filter(|x| x.is_finite()) {
        let _ = write!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{t}" y2="{1:.1}" stroke="#bbb" stroke-dasharray="4 3"/>"##,
            px(x),
            h - b
        );
    }
    for (i, se) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let pts: Vec<String> = se
            .points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let dash = if se.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = write!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="1.8"{dash}/>"#,
            pts.join(" ")
        );
        if markers && !se.dashed {
            for p in &pts {
                let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(s, r#"<circle cx="{x}" cy="{y}" r="3" fill="{c}"/>"#);
            }
        }
        let ly = t + 14.0 + 18.0 * i as f64;
        let lx = w - r + 12.0;
        let _ = write!(
            s,
            r#"<line x1="{lx}" x2="{:.1}" y1="{ly:.1}" y2="{ly:.1}" stroke="{c}" stroke-width="2.5"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 22.0,
            lx + 28.0,
            ly + 4.0,
            escape(&se.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

const PALETTE: [(&str, [&str; 4]); 2] = [
    ("en", ["#1f4e79", "#2e75b6", "#9dc3e6", "#deebf7"]),
    ("ja", ["#843c0c", "#c55a11", "#f4b183", "#fbe5d6"]),
];
const OTHER: [&str; 4] = ["#385723", "#70ad47", "#a9d18e", "#e2f0d9"];

fn colour(lang: &str, i: usize) -> &'static str {
    let shades = PALETTE.iter().find(|(l, _)| *l == lang).map_or(OTHER, |(_, c)| *c);
    shades[i % shades.len()]
}

/// `text` cut to `chars` characters, with `…` when cut.
fn ellipsis(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_string();
    }
    text.chars().take(chars.saturating_sub(1)).chain(['…']).collect()
}

/// The data plan as a picture, like the method's Figure 1: one stacked bar per phase (width ∝ its tokens),
/// split into its sources (colour by language, shade by order within the language), labelled.
pub fn plan(plan: &ResolvedPlan) -> String {
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
        if let Some(t) = &p.training {
            // The phase's own training recipe, under its data; the full line on hover.
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" font-style="italic"><title>{}</title>{}</text>"#,
                x + 2.0,
                top + bar_h + 44.0,
                escape(&t.summary()),
                escape(&ellipsis(&t.summary(), (pw / 6.0) as usize))
            );
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 10.0, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let t = ticks(1.23, 1.87, 5);
        assert!(t.first().is_some_and(|&v| v >= 1.23) && t.last().is_some_and(|&v| v <= 1.87));
        assert!(t.len() >= 3);
    }

    #[test]
    fn charts_hold_every_series_and_escape_names() {
        let svg = lines(
            "t",
            "x",
            "y",
            &[
                Series { name: "a<b".into(), points: vec![(0.0, 1.0), (1.0, 2.0)], dashed: false },
                Series { name: "ref".into(), points: vec![(0.0, 1.5), (1.0, 1.5)], dashed: true },
            ],
            true,
            &[0.5],
        );
        assert!(svg.contains("a&lt;b") && svg.contains("stroke-dasharray=\"6 4\"") && svg.contains("4 3"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 2);
    }
}
