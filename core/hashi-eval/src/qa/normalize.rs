//! The answer normalisation of the upstream Japanese QA scorer (`lm_eval/jasquad/evaluate.py`,
//! `normalize_answer`): emoji removal, then `neologdn.normalize` (0.5.6, default arguments), then whitespace
//! collapsing as Python's `" ".join(text.split())`.

use super::emoji_table::SINGLE_EMOJI;

/// `emoji.is_emoji(c)` for one code point (emoji 2.16.0 data).
fn is_single_emoji(c: char) -> bool {
    let c = c as u32;
    SINGLE_EMOJI
        .binary_search_by(|&(a, b)| {
            if b < c {
                std::cmp::Ordering::Less
            } else if a > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// The code point ranges the upstream regex removes after `is_emoji`.
fn in_emoji_ranges(c: char) -> bool {
    matches!(c as u32, 0x1F600..=0x1F64F | 0x1F300..=0x1F5FF | 0x1F680..=0x1F6FF | 0x1F1E0..=0x1F1FF | 0x2702..=0x27B0)
}

/// Upstream `remove_emoji`.
pub fn remove_emoji(s: &str) -> String {
    s.chars().filter(|&c| !is_single_emoji(c) && !in_emoji_ranges(c)).collect()
}

/// Python's `str.isspace` (what `str.split()` splits on).
pub fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `" ".join(text.split())`.
pub fn white_space_fix(s: &str) -> String {
    s.split(is_python_space).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

const ASCII_PAIRS: &str = "ａaｂbｃcｄdｅeｆfｇgｈhｉiｊjｋkｌlｍmｎnｏoｐpｑqｒrｓsｔtｕuｖvｗwｘxｙyｚz\
ＡAＢBＣCＤDＥEＦFＧGＨHＩIＪJＫKＬLＭMＮNＯOＰPＱQＲRＳSＴTＵUＶVＷWＸXＹYＺZ\
！!”\"＃#＄$％%＆&’'（(）)＊*＋+，,−-．.／/：:；;＜<＝=＞>？?＠@［[¥\\］]＾^＿_‘`｛{｜|｝}\
０0１1２2３3４4５5６6７7８8９9";
const KANA_PAIRS: &str = "ｱアｲイｳウｴエｵオｶカｷキｸクｹケｺコｻサｼシｽスｾセｿソﾀタﾁチﾂツﾃテﾄトﾅナﾆニﾇヌﾈネﾉノ\
ﾊハﾋヒﾌフﾍヘﾎホﾏマﾐミﾑムﾒメﾓモﾔヤﾕユﾖヨﾗラﾘリﾙルﾚレﾛロﾜワｦヲﾝンｧァｨィｩゥｪェｫォｯッｬャｭュｮョ\
｡。､、･・゛ﾞ゜ﾟ｢「｣」ｰー";
const KANA_TEN: &str =
    "カガキギクグケゲコゴサザシジスズセゼソゾタダチヂツヅテデトドハバヒビフブヘベホボウヴうゔ";
const KANA_MARU: &str = "ハパヒピフプヘペホポはぱひぴふぷへぺほぽ";
const HYPHENS: &str = "˗֊‐‑‒–⁃⁻₋−";
const CHOONPUS: &str = "﹣－ｰ—―─━ー";
const TILDES: &str = "~∼∾〜〰～";

fn pair_lookup(table: &str, c: char) -> Option<char> {
    let mut it = table.chars();
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        if a == c {
            return Some(b);
        }
    }
    None
}

/// neologdn's "blocks": CJK ideographs, kana, CJK symbols, half/full-width forms.
fn in_blocks(c: char) -> bool {
    matches!(c as u32, 19968..=40959 | 12352..=12447 | 12448..=12543 | 12289..=12351 | 65280..=65519)
}

/// `neologdn.normalize(text)` with its defaults (repeat 0, remove_space, tilde "remove").
pub fn neologdn(text: &str) -> String {
    let mut buf: Vec<char> = Vec::with_capacity(text.len());
    let mut prev = '\0';
    let mut latin_space = false;
    for c in text.chars() {
        let mut c = c;
        if c == ' ' || c == '\u{3000}' {
            c = ' ';
            if buf.is_empty() || prev == ' ' || in_blocks(prev) {
                continue;
            } else if prev != '*' && prev.is_ascii() {
                latin_space = true;
                buf.push(c);
            }
            // Otherwise the space is dropped (remove_space), but still becomes `prev`.
        } else if HYPHENS.contains(c) {
            if prev == '-' {
                continue;
            }
            c = '-';
            buf.push(c);
            latin_space = false;
        } else if CHOONPUS.contains(c) {
            if prev == 'ー' {
                continue;
            }
            c = 'ー';
            buf.push(c);
            latin_space = false;
        } else if TILDES.contains(c) {
            continue;
        } else {
            if let Some(m) = pair_lookup(ASCII_PAIRS, c).or_else(|| pair_lookup(KANA_PAIRS, c)) {
                c = m;
            }
            if c == 'ﾞ' && !buf.is_empty() && pair_lookup(KANA_TEN, prev).is_some() {
                buf.pop();
                c = pair_lookup(KANA_TEN, prev).unwrap_or(c);
            } else if c == 'ﾟ' && !buf.is_empty() && pair_lookup(KANA_MARU, prev).is_some() {
                buf.pop();
                c = pair_lookup(KANA_MARU, prev).unwrap_or(c);
            }
            if latin_space && !buf.is_empty() && in_blocks(c) {
                buf.pop();
            }
            latin_space = false;
            buf.push(c);
        }
        prev = c;
    }
    if buf.last() == Some(&' ') {
        buf.pop();
    }
    buf.into_iter().collect()
}

/// Upstream `normalize_answer`.
pub fn normalize_answer(s: &str) -> String {
    white_space_fix(&neologdn(&remove_emoji(s)))
}
