//! Loss and learning-rate curves of a run as SVG line charts (from `metrics.jsonl`).

use std::fmt::Write;

/// A line chart of `(x, y)` points with a title and axis labels; phase boundaries as vertical lines.
pub fn line_svg(title: &str, y_label: &str, points: &[(f64, f64)], boundaries: &[f64]) -> String {
    let (w, h, l, r, t, b) = (720.0, 360.0, 70.0, 20.0, 40.0, 40.0);
    let xs = points.iter().map(|p| p.0);
    let ys = points.iter().map(|p| p.1);
    let (x0, x1) = (xs.clone().fold(f64::INFINITY, f64::min), xs.fold(f64::NEG_INFINITY, f64::max));
    let (y0, y1) = (ys.clone().fold(f64::INFINITY, f64::min), ys.fold(f64::NEG_INFINITY, f64::max));
    let (x1, y1) = (if x1 > x0 { x1 } else { x0 + 1.0 }, if y1 > y0 { y1 } else { y0 + 1.0 });
    let px = |x: f64| l + (x - x0) / (x1 - x0) * (w - l - r);
    let py = |y: f64| h - b - (y - y0) / (y1 - y0) * (h - t - b);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(s, r#"<text x="{l}" y="22" font-size="14" font-weight="bold">{title}</text>"#);
    let _ = write!(
        s,
        r##"<rect x="{l}" y="{t}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
        w - l - r,
        h - t - b
    );
    for x in boundaries {
        let _ = write!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{t}" y2="{1:.1}" stroke="#ccc" stroke-dasharray="4 3"/>"##,
            px(*x),
            h - b
        );
    }
    let path: Vec<String> = points.iter().map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y))).collect();
    let _ = write!(
        s,
        r##"<polyline points="{}" fill="none" stroke="#c55a11" stroke-width="1.5"/>"##,
        path.join(" ")
    );
    let _ = write!(
        s,
        r#"<text x="8" y="{:.1}">{y1:.4}</text><text x="8" y="{:.1}">{y0:.4}</text>"#,
        t + 10.0,
        h - b
    );
    let _ = write!(
        s,
        r#"<text x="{l}" y="{:.1}">step {x0:.0}</text><text x="{:.1}" y="{:.1}" text-anchor="end">{x1:.0}</text>"#,
        h - 12.0,
        w - r,
        h - 12.0
    );
    let _ = write!(s, r#"<text x="8" y="{:.1}">{y_label}</text></svg>"#, h / 2.0);
    s.push('\n');
    s
}
