//! A [`Doc`] as an A4 PDF with Japanese text and no embedded font: the text uses the standard
//! Japanese CID font HeiseiKakuGo-W5 (Adobe-Japan1) through the predefined UniJIS-UCS2-HW-H
//! CMap, which every PDF viewer that reads Japanese maps to an installed Gothic font. That
//! keeps the program free of font files and their licences and the PDFs small; a ToUnicode map
//! keeps the text searchable and copyable. Layout is simple on purpose: full-width characters
//! are 1 em, ASCII and half-width kana ½ em (the widths the CMap's half-width CIDs declare).

use std::collections::BTreeSet;

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use crate::doc::{Block, Doc};

const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN_X: f32 = 48.0;
const TOP: f32 = PAGE_H - 56.0;
const BOTTOM: f32 = 60.0;
const BODY: f32 = 9.5;
const SMALL: f32 = 8.5;
const FONT: Name<'static> = Name(b"F1");

fn half_width(c: char) -> bool {
    (' '..='~').contains(&c) || ('\u{FF61}'..='\u{FF9F}').contains(&c)
}

fn width(s: &str, size: f32) -> f32 {
    s.chars()
        .map(|c| if half_width(c) { 0.5 } else { 1.0 })
        .sum::<f32>()
        * size
}

/// Only the Basic Multilingual Plane can be written through a UCS-2 CMap; anything else (rare
/// kanji variants, emoji) prints as the geta mark, as Japanese printing does for missing type.
fn printable(c: char) -> char {
    match c {
        '\t' => ' ',
        // Not in Adobe-Japan1: the nearest full-width form.
        '›' => '＞',
        '‹' => '＜',
        c if (c as u32) < 0x20 => ' ',
        c if (c as u32) > 0xFFFF => '〓',
        c => c,
    }
}

/// Greedy line breaking: anywhere between full-width characters, at a space inside Latin text
/// when one is near, and at every newline.
pub fn wrap(text: &str, max: f32, size: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        let mut w = 0.0;
        for c in para.chars().map(printable) {
            let cw = if half_width(c) { 0.5 * size } else { size };
            // 禁則: closing punctuation hangs at the end of the line rather than starting one.
            let hangs = "、。，．）」』】〕・ー！？".contains(c);
            if w + cw > max && !line.is_empty() && !hangs {
                let cut = if half_width(c) && c != ' ' {
                    line.rfind(' ').filter(|&i| line.len() - i < 24)
                } else {
                    None
                };
                match cut {
                    Some(i) => {
                        let rest = line[i + 1..].to_owned();
                        line.truncate(i);
                        lines.push(std::mem::take(&mut line));
                        line = rest;
                        w = width(&line, size);
                    }
                    None => {
                        lines.push(std::mem::take(&mut line));
                        w = 0.0;
                    }
                }
                if c == ' ' {
                    continue;
                }
            }
            line.push(c);
            w += cw;
        }
        lines.push(line);
    }
    lines
}

enum Op {
    Text {
        x: f32,
        y: f32,
        size: f32,
        s: String,
    },
    Line {
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
    },
    Fill {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
    },
}

struct Layout {
    pages: Vec<Vec<Op>>,
    y: f32,
}

impl Layout {
    fn new() -> Self {
        Self {
            pages: vec![Vec::new()],
            y: TOP,
        }
    }

    fn ops(&mut self) -> &mut Vec<Op> {
        self.pages.last_mut().expect("a page")
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = TOP;
    }

    /// Starts a new page unless `h` points still fit.
    fn need(&mut self, h: f32) {
        if self.y - h < BOTTOM && self.y < TOP {
            self.new_page();
        }
    }

    fn text(&mut self, x: f32, size: f32, s: &str) {
        self.need(size * 1.5);
        self.y -= size * 1.5;
        let y = self.y + size * 0.35;
        self.ops().push(Op::Text {
            x,
            y,
            size,
            s: s.to_owned(),
        });
    }

    fn wrapped(&mut self, x: f32, max: f32, size: f32, s: &str) {
        for line in wrap(s, max, size) {
            self.text(x, size, &line);
        }
    }

    fn table(&mut self, headers: &[String], widths: &[u16], rows: &[Vec<String>]) {
        let total_w = PAGE_W - 2.0 * MARGIN_X;
        let sum: f32 = widths.iter().map(|w| f32::from(*w)).sum::<f32>().max(1.0);
        let cols: Vec<f32> = (0..headers.len())
            .map(|i| total_w * f32::from(*widths.get(i).unwrap_or(&1)) / sum)
            .collect();
        let pad = 3.0;
        let lh = SMALL * 1.4;
        let cell_lines = |row: &[String]| -> Vec<Vec<String>> {
            cols.iter()
                .enumerate()
                .map(|(i, w)| wrap(row.get(i).map_or("", String::as_str), w - 2.0 * pad, SMALL))
                .collect()
        };
        let draw = |l: &mut Layout, row: &[String], header: bool| {
            let lines = cell_lines(row);
            let n = lines.iter().map(Vec::len).max().unwrap_or(1).max(1);
            let h = n as f32 * lh + 2.0 * pad;
            let top = l.y;
            let bottom = top - h;
            if header {
                l.ops().push(Op::Fill {
                    x: MARGIN_X,
                    y: bottom,
                    w: total_w,
                    h,
                });
            }
            let mut x = MARGIN_X;
            for (i, w) in cols.iter().enumerate() {
                for (k, s) in lines[i].iter().enumerate() {
                    l.ops().push(Op::Text {
                        x: x + pad,
                        y: top - pad - (k as f32 + 1.0) * lh + SMALL * 0.3,
                        size: SMALL,
                        s: s.clone(),
                    });
                }
                l.ops().push(Op::Line {
                    x1: x,
                    y1: top,
                    x2: x,
                    y2: bottom,
                });
                x += w;
            }
            l.ops().push(Op::Line {
                x1: x,
                y1: top,
                x2: x,
                y2: bottom,
            });
            l.ops().push(Op::Line {
                x1: MARGIN_X,
                y1: top,
                x2: x,
                y2: top,
            });
            l.ops().push(Op::Line {
                x1: MARGIN_X,
                y1: bottom,
                x2: x,
                y2: bottom,
            });
            l.y = bottom;
        };
        let height_of = |row: &[String]| {
            cell_lines(row)
                .iter()
                .map(Vec::len)
                .max()
                .unwrap_or(1)
                .max(1) as f32
                * lh
                + 2.0 * pad
        };
        self.need(height_of(headers) + lh * 2.0);
        draw(self, headers, true);
        for row in rows {
            let h = height_of(row);
            if self.y - h < BOTTOM {
                self.new_page();
                draw(self, headers, true);
            }
            draw(self, row, false);
        }
        self.y -= 6.0;
    }
}

fn lay_out(doc: &Doc) -> Vec<Vec<Op>> {
    let mut l = Layout::new();
    let text_w = PAGE_W - 2.0 * MARGIN_X;
    l.wrapped(MARGIN_X, text_w, 16.0, &doc.title);
    for s in &doc.subtitle {
        l.wrapped(MARGIN_X, text_w, BODY, s);
    }
    l.y -= 6.0;
    let rule = l.y;
    l.ops().push(Op::Line {
        x1: MARGIN_X,
        y1: rule,
        x2: PAGE_W - MARGIN_X,
        y2: rule,
    });
    for b in &doc.blocks {
        match b {
            Block::Heading(s) => {
                l.y -= 6.0;
                l.need(12.5 * 1.5 + BODY * 3.0);
                l.wrapped(MARGIN_X, text_w, 12.5, s);
            }
            Block::Para(s) => {
                l.wrapped(MARGIN_X, text_w, BODY, s);
                l.y -= 3.0;
            }
            Block::List(items) => {
                for s in items {
                    let lines = wrap(s, text_w - 14.0, BODY);
                    for (i, line) in lines.iter().enumerate() {
                        if i == 0 {
                            l.text(MARGIN_X + 2.0, BODY, "・");
                            l.y += BODY * 1.5;
                        }
                        l.text(MARGIN_X + 14.0, BODY, line);
                    }
                }
                l.y -= 3.0;
            }
            Block::Fields(f) => {
                let label_w = f
                    .iter()
                    .map(|(k, _)| width(k, BODY))
                    .fold(0.0, f32::max)
                    .min(text_w * 0.35)
                    + 12.0;
                for (k, v) in f {
                    let lines = wrap(v, text_w - label_w, BODY);
                    for (i, line) in lines.iter().enumerate() {
                        if i == 0 {
                            l.text(MARGIN_X, BODY, k);
                            l.y += BODY * 1.5;
                        }
                        l.text(MARGIN_X + label_w, BODY, line);
                    }
                }
                l.y -= 3.0;
            }
            Block::Table {
                headers,
                widths,
                rows,
            } => l.table(headers, widths, rows),
        }
    }
    l.pages
}

fn ucs2(s: &str) -> Vec<u8> {
    s.chars()
        .map(printable)
        .flat_map(|c| (c as u16).to_be_bytes())
        .collect()
}

/// Renders the document. Deterministic: the same document gives the same bytes.
pub fn render(doc: &Doc) -> Vec<u8> {
    let mut pages = lay_out(doc);
    let total = pages.len();
    for (i, page) in pages.iter_mut().enumerate() {
        let foot = format!("{}　{} / {}", doc.footer, i + 1, total);
        page.push(Op::Text {
            x: MARGIN_X,
            y: 32.0,
            size: 7.5,
            s: foot,
        });
    }

    let mut pdf = Pdf::new();
    let mut next = 1;
    let mut id = || {
        next += 1;
        Ref::new(next - 1)
    };
    let catalog = id();
    let tree = id();
    let font = id();
    let cid = id();
    let descriptor = id();
    let to_unicode = id();
    let info = id();
    let page_ids: Vec<(Ref, Ref)> = pages.iter().map(|_| (id(), id())).collect();

    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().map(|(p, _)| *p))
        .count(page_ids.len() as i32);
    pdf.document_info(info)
        .title(TextStr(&doc.title))
        .producer(TextStr("mamori"));

    let system = || SystemInfo {
        registry: Str(b"Adobe"),
        ordering: Str(b"Japan1"),
        supplement: 2,
    };
    let base = Name(b"HeiseiKakuGo-W5");
    pdf.type0_font(font)
        .base_font(base)
        .encoding_predefined(Name(b"UniJIS-UCS2-HW-H"))
        .descendant_font(cid)
        .to_unicode(to_unicode);
    let mut cf = pdf.cid_font(cid);
    cf.subtype(CidFontType::Type0)
        .base_font(base)
        .system_info(system())
        .font_descriptor(descriptor)
        .default_width(1000.0);
    // Half-width Latin (CIDs 231–325) and half-width katakana (327–389) are ½ em.
    cf.widths().same(231, 325, 500.0).same(327, 389, 500.0);
    cf.finish();
    pdf.font_descriptor(descriptor)
        .name(base)
        .flags(FontFlags::SYMBOLIC)
        .bbox(Rect::new(-92.0, -250.0, 1010.0, 922.0))
        .italic_angle(0.0)
        .ascent(880.0)
        .descent(-120.0)
        .cap_height(737.0)
        .stem_v(114.0);

    let mut used = BTreeSet::new();
    for page in &pages {
        for op in page {
            if let Op::Text { s, .. } = op {
                used.extend(s.chars().map(printable));
            }
        }
    }
    let mut cmap = UnicodeCmap::new(Name(b"Mamori-UCS2"), system());
    for c in used {
        cmap.pair(c as u16, c);
    }
    pdf.cmap(to_unicode, &cmap.finish());

    for (page, (page_id, content_id)) in pages.iter().zip(&page_ids) {
        let mut c = Content::new();
        c.set_line_width(0.5);
        c.set_stroke_gray(0.45);
        for op in page {
            match op {
                Op::Fill { x, y, w, h } => {
                    c.set_fill_gray(0.9);
                    c.rect(*x, *y, *w, *h);
                    c.fill_nonzero();
                    c.set_fill_gray(0.0);
                }
                Op::Line { x1, y1, x2, y2 } => {
                    c.move_to(*x1, *y1);
                    c.line_to(*x2, *y2);
                    c.stroke();
                }
                Op::Text { x, y, size, s } => {
                    c.begin_text();
                    c.set_font(FONT, *size);
                    c.next_line(*x, *y);
                    // Spaces become positioning, not glyphs: viewers that substitute a
                    // font for the standard one often have no glyph for the half-width space.
                    let mut tj = c.show_positioned();
                    let mut items = tj.items();
                    let mut gap = 0.0;
                    for (i, run) in s.split(' ').enumerate() {
                        if i > 0 {
                            gap += 500.0;
                        }
                        if run.is_empty() {
                            continue;
                        }
                        if gap > 0.0 {
                            items.adjust(-gap);
                            gap = 0.0;
                        }
                        items.show(Str(&ucs2(run)));
                    }
                    drop(items);
                    drop(tj);
                    c.end_text();
                }
            }
        }
        let data = c.finish();
        pdf.stream(*content_id, &data);
        let mut p = pdf.page(*page_id);
        p.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H))
            .parent(tree)
            .contents(*content_id);
        p.resources().fonts().pair(FONT, font);
        p.finish();
    }
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_respects_width_and_newlines() {
        let lines = wrap("あいうえおかきくけこ", 50.0, 10.0);
        assert_eq!(lines, ["あいうえお", "かきくけこ"]);
        let lines = wrap("backup policy draft", 60.0, 10.0);
        assert_eq!(lines, ["backup", "policy draft"]);
        assert_eq!(wrap("一\n二", 100.0, 10.0), ["一", "二"]);
        assert_eq!(wrap("", 100.0, 10.0), [""]);
        assert_eq!(
            wrap("あいうえお、かき", 50.0, 10.0),
            ["あいうえお、", "かき"]
        );
    }

    #[test]
    fn a_long_document_makes_a_deterministic_multi_page_pdf() {
        let mut d = Doc::new("テスト報告書");
        d.subtitle.push("施設: みなと診療所".into());
        d.footer = "mamori".into();
        let rows: Vec<Vec<String>> = (0..120)
            .map(|i| {
                vec![
                    format!("{i}"),
                    "利用者の職種・担当業務ごとにアクセス権限を設定している。".repeat(2),
                    "はい".into(),
                ]
            })
            .collect();
        d.heading("項目")
            .table(&["番号", "項目", "回答"], &[1, 8, 2], rows);
        let a = render(&d);
        let b = render(&d);
        assert_eq!(a, b);
        assert!(a.starts_with(b"%PDF-"));
        let s = String::from_utf8_lossy(&a);
        assert!(s.contains("/HeiseiKakuGo-W5"));
        assert!(s.contains("/UniJIS-UCS2-HW-H"));
        assert!(s.matches("/Type /Page\n").count() + s.matches("/Type /Page ").count() >= 1);
        assert!(lay_out(&d).len() > 3);
        // Outside the BMP prints as 〓 rather than breaking the UCS-2 text.
        assert_eq!(
            ucs2("𠮷"),
            "〓"
                .encode_utf16()
                .flat_map(u16::to_be_bytes)
                .collect::<Vec<_>>()
        );
    }
}
