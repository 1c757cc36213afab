//! A finalised record as a PDF/A-2b document: A4, Japanese text in an embedded subset of the
//! configured font, the facts a reader needs to know whose record it is and who is
//! responsible, then the body, wrapped and paginated. The same input gives the same bytes.

use krilla::configure::{Archival, ConfigurationBuilder};
use krilla::geom::{PathBuilder, Point};
use krilla::metadata::{DateTime, Metadata};
use krilla::page::PageSettings;
use krilla::paint::Stroke;
use krilla::text::{Font, TextDirection};
use krilla::{Document, SerializeSettings};
use skrifa::MetadataProvider;
use skrifa::instance::{LocationRef, Size};

use crate::{PdfError, Result};

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 56.0;
const TITLE_SIZE: f32 = 16.0;
const HEAD_SIZE: f32 = 9.5;
const BODY_SIZE: f32 = 10.5;
const FOOT_SIZE: f32 = 8.0;

/// The text of one document; every string is shown as given.
#[derive(Clone, Debug, Default)]
pub struct Letter {
    /// The kind and title, e.g. 「紹介状 — 〇〇病院 内科 御侍史」.
    pub title: String,
    /// Lines under the title: facility, patient, author, dates.
    pub heading: Vec<String>,
    pub body: String,
    /// Printed at the foot of every page with its number (e.g. the record and version).
    pub footer: String,
    /// The document's creation time (the finalisation), UTC seconds since 1970.
    pub created_unix: i64,
    pub author: String,
    pub language: String,
}

/// An OpenType/TrueType font (a `.ttc` collection names its face by index).
pub struct FontFile {
    pub data: Vec<u8>,
    pub index: u32,
}

struct Measure<'a> {
    font: skrifa::FontRef<'a>,
}

impl Measure<'_> {
    fn width(&self, s: &str, size: f32) -> f32 {
        let metrics = self
            .font
            .glyph_metrics(Size::new(size), LocationRef::default());
        let cmap = self.font.charmap();
        s.chars()
            .map(|c| {
                cmap.map(c)
                    .and_then(|g| metrics.advance_width(g))
                    .unwrap_or(size)
            })
            .sum()
    }

    /// Lines no wider than `width`: a break at any character (Japanese has no spaces), never
    /// before closing punctuation (禁則), and at a space where a Latin word would be cut.
    fn wrap(&self, text: &str, size: f32, width: f32) -> Vec<String> {
        const NO_START: &str =
            "、。，．・：；？！）」』】〕〉》”’ー々ぁぃぅぇぉっゃゅょァィゥェォッャュョ,.:;?!)]}";
        let mut out = Vec::new();
        for para in text.replace('\t', "    ").split('\n') {
            let mut line = String::new();
            let mut w = 0.0;
            for c in para.chars().filter(|c| !c.is_control()) {
                let cw = self.width(c.encode_utf8(&mut [0; 4]), size);
                if w + cw > width && !line.is_empty() && !NO_START.contains(c) {
                    let mut rest = String::new();
                    if c.is_ascii_alphanumeric()
                        && let Some(at) = line.rfind(' ')
                        && at > 0
                    {
                        rest = line.split_off(at + 1);
                    }
                    out.push(std::mem::take(&mut line).trim_end().to_owned());
                    w = self.width(&rest, size);
                    line = rest;
                }
                line.push(c);
                w += cw;
            }
            out.push(line);
        }
        out
    }
}

fn pdf_date(unix: i64) -> DateTime {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    DateTime::new(t.year().clamp(0, 9999) as u16)
        .month(t.month() as u8)
        .day(t.day())
        .hour(t.hour())
        .minute(t.minute())
        .second(t.second())
        .utc_offset_hour(0)
        .utc_offset_minute(0)
}

/// The PDF of `letter` in `font`.
pub fn render(letter: &Letter, font: &FontFile) -> Result<Vec<u8>> {
    let measure = Measure {
        font: skrifa::FontRef::from_index(&font.data, font.index)
            .map_err(|e| PdfError::Font(format!("{e}")))?,
    };
    let kfont = Font::new(font.data.clone().into(), font.index)
        .ok_or_else(|| PdfError::Font("フォントを読めません".into()))?;
    let settings = SerializeSettings {
        configuration: ConfigurationBuilder::new()
            .with_archival_validator(Archival::A2_B)
            .finish()
            .map_err(|e| PdfError::Write(format!("{e:?}")))?,
        // The signature's incremental update writes after this: no tags to keep in step.
        enable_tagging: false,
        ..Default::default()
    };
    let mut doc = Document::new_with(settings);
    doc.set_metadata(
        Metadata::new()
            .title(letter.title.clone())
            .authors(vec![letter.author.clone()])
            .creator("mamori".into())
            .producer("mamori".into())
            .language(letter.language.clone())
            .creation_date(pdf_date(letter.created_unix)),
    );
    let text_w = PAGE_W - 2.0 * MARGIN;
    // (size, baseline y, text) per page; the first page carries the title and the heading.
    let mut pages: Vec<Vec<(f32, f32, String)>> = vec![Vec::new()];
    let mut y = MARGIN;
    for l in measure.wrap(&letter.title, TITLE_SIZE, text_w) {
        y += TITLE_SIZE * 1.4;
        pages[0].push((TITLE_SIZE, y, l));
    }
    y += HEAD_SIZE * 0.8;
    for h in &letter.heading {
        for l in measure.wrap(h, HEAD_SIZE, text_w) {
            y += HEAD_SIZE * 1.6;
            pages[0].push((HEAD_SIZE, y, l));
        }
    }
    let rule_y = y + HEAD_SIZE;
    y = rule_y + BODY_SIZE * 0.5;
    let bottom = PAGE_H - MARGIN - FOOT_SIZE * 2.0;
    for l in measure.wrap(&letter.body, BODY_SIZE, text_w) {
        y += BODY_SIZE * 1.7;
        if y > bottom {
            pages.push(Vec::new());
            y = MARGIN + BODY_SIZE;
        }
        pages.last_mut().expect("a page").push((BODY_SIZE, y, l));
    }
    let total = pages.len();
    for (n, lines) in pages.into_iter().enumerate() {
        let mut page =
            doc.start_page_with(PageSettings::from_wh(PAGE_W, PAGE_H).ok_or(PdfError::Layout)?);
        let mut s = page.surface();
        for (size, y, line) in lines {
            if !line.is_empty() {
                s.draw_text(
                    Point::from_xy(MARGIN, y),
                    kfont.clone(),
                    size,
                    &line,
                    false,
                    TextDirection::Auto,
                );
            }
        }
        if n == 0 {
            let mut pb = PathBuilder::new();
            pb.move_to(MARGIN, rule_y);
            pb.line_to(PAGE_W - MARGIN, rule_y);
            if let Some(path) = pb.finish() {
                s.set_stroke(Some(Stroke {
                    width: 0.6,
                    ..Default::default()
                }));
                s.draw_path(&path);
                s.set_stroke(None);
            }
        }
        let foot = format!("{}　{} / {}", letter.footer, n + 1, total);
        s.draw_text(
            Point::from_xy(MARGIN, PAGE_H - MARGIN + FOOT_SIZE),
            kfont.clone(),
            FOOT_SIZE,
            &foot,
            false,
            TextDirection::Auto,
        );
        s.finish();
        page.finish();
    }
    doc.finish().map_err(|e| PdfError::Write(format!("{e:?}")))
}
