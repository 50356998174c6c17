//! The report as blocks, written as Markdown (figures as files) and as one self-contained HTML page.

use super::svg::escape;

pub enum Block {
    Heading(u8, String),
    /// Markdown text: paragraphs may use `code` and **bold**.
    Para(String),
    Table {
        head: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    /// An SVG figure, written to `figures/{file}.svg` next to the Markdown and inlined in the HTML.
    Figure {
        file: String,
        svg: String,
        caption: String,
    },
}

/// Markdown; figures are linked as `figures/{file}.{ext}` (`png` where rendered, else `svg`).
pub fn markdown(blocks: &[Block], ext: &str) -> String {
    let mut s = String::new();
    for b in blocks {
        match b {
            Block::Heading(n, t) => s.push_str(&format!("{} {t}\n\n", "#".repeat(*n as usize))),
            Block::Para(t) => s.push_str(&format!("{t}\n\n")),
            Block::Table { head, rows } => {
                let cell = |c: &String| c.replace('|', "\\|");
                s.push_str(&format!("| {} |\n", head.iter().map(cell).collect::<Vec<_>>().join(" | ")));
                let align: Vec<&str> = (0..head.len()).map(|i| if i == 0 { "---" } else { "---:" }).collect();
                s.push_str(&format!("|{}|\n", align.join("|")));
                for r in rows {
                    s.push_str(&format!("| {} |\n", r.iter().map(cell).collect::<Vec<_>>().join(" | ")));
                }
                s.push('\n');
            }
            Block::Figure { file, caption, .. } => {
                s.push_str(&format!("![{caption}](figures/{file}.{ext})\n\n*{caption}*\n\n"));
            }
        }
    }
    s
}

/// `code` and **bold** of a Markdown line as HTML (everything else escaped).
fn inline(t: &str) -> String {
    let mut out = String::new();
    for (i, part) in escape(t).split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("<code>{part}</code>"));
        } else {
            for (j, p) in part.split("**").enumerate() {
                if j % 2 == 1 {
                    out.push_str(&format!("<b>{p}</b>"));
                } else {
                    out.push_str(p);
                }
            }
        }
    }
    out
}

pub fn html(title: &str, blocks: &[Block]) -> String {
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>\
         body{{font-family:DejaVu Sans,Arial,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 8px}}\
         td:not(:first-child){{text-align:right}}th{{background:#f4f4f4}}figure{{margin:1em 0}}\
         figcaption{{font-style:italic;font-size:13px}}code{{background:#f4f4f4;padding:0 3px}}</style></head><body>\n",
        escape(title)
    );
    for b in blocks {
        match b {
            Block::Heading(n, t) => s.push_str(&format!("<h{n}>{}</h{n}>\n", inline(t))),
            Block::Para(t) => {
                let lines: Vec<&str> = t.lines().collect();
                if lines.iter().all(|l| l.starts_with("- ")) {
                    s.push_str("<ul>");
                    for l in lines {
                        s.push_str(&format!("<li>{}</li>", inline(&l[2..])));
                    }
                    s.push_str("</ul>\n");
                } else {
                    s.push_str(&format!("<p>{}</p>\n", inline(t)));
                }
            }
            Block::Table { head, rows } => {
                s.push_str("<table><tr>");
                for h in head {
                    s.push_str(&format!("<th>{}</th>", inline(h)));
                }
                s.push_str("</tr>");
                for r in rows {
                    s.push_str("<tr>");
                    for c in r {
                        s.push_str(&format!("<td>{}</td>", inline(c)));
                    }
                    s.push_str("</tr>");
                }
                s.push_str("</table>\n");
            }
            Block::Figure { svg, caption, .. } => {
                s.push_str(&format!("<figure>{svg}<figcaption>{}</figcaption></figure>\n", inline(caption)));
            }
        }
    }
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_and_html_carry_the_same_content() {
        let blocks = vec![
            Block::Heading(2, "T".into()),
            Block::Para("uses `x<y` and **bold**".into()),
            Block::Table { head: vec!["a".into(), "b".into()], rows: vec![vec!["1|2".into(), "3".into()]] },
            Block::Figure { file: "f".into(), svg: "<svg></svg>".into(), caption: "cap".into() },
        ];
        let md = markdown(&blocks, "svg");
        assert!(md.contains("## T") && md.contains("| 1\\|2 | 3 |") && md.contains("(figures/f.svg)"));
        let h = html("r", &blocks);
        assert!(h.contains("<code>x&lt;y</code>") && h.contains("<b>bold</b>") && h.contains("<svg></svg>"));
        assert!(h.contains("<td>1|2</td>"));
    }
}
