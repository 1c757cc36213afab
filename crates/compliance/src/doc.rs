//! A printable document as plain structure (title, headings, paragraphs, field lists, tables),
//! rendered to HTML by the web layer and to PDF by the `pdf` module, so both say the same.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub enum Block {
    Heading(String),
    Para(String),
    /// Label → value pairs.
    Fields(Vec<(String, String)>),
    List(Vec<String>),
    /// Column headers, relative column widths, rows.
    Table {
        headers: Vec<String>,
        widths: Vec<u16>,
        rows: Vec<Vec<String>>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Doc {
    pub title: String,
    /// Lines under the title (facility, date, edition).
    pub subtitle: Vec<String>,
    pub blocks: Vec<Block>,
    /// Printed at the foot of every page.
    pub footer: String,
}

impl Doc {
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            subtitle: Vec::new(),
            blocks: Vec::new(),
            footer: String::new(),
        }
    }

    pub fn heading(&mut self, s: impl Into<String>) -> &mut Self {
        self.blocks.push(Block::Heading(s.into()));
        self
    }

    pub fn para(&mut self, s: impl Into<String>) -> &mut Self {
        self.blocks.push(Block::Para(s.into()));
        self
    }

    pub fn fields(&mut self, f: Vec<(String, String)>) -> &mut Self {
        self.blocks.push(Block::Fields(f));
        self
    }

    pub fn list(&mut self, items: Vec<String>) -> &mut Self {
        self.blocks.push(Block::List(items));
        self
    }

    pub fn table(&mut self, headers: &[&str], widths: &[u16], rows: Vec<Vec<String>>) -> &mut Self {
        self.blocks.push(Block::Table {
            headers: headers.iter().map(|s| (*s).to_owned()).collect(),
            widths: widths.to_vec(),
            rows,
        });
        self
    }

    /// Every piece of text in reading order (tests and search).
    pub fn text(&self) -> String {
        let mut out = vec![self.title.clone()];
        out.extend(self.subtitle.iter().cloned());
        for b in &self.blocks {
            match b {
                Block::Heading(s) | Block::Para(s) => out.push(s.clone()),
                Block::Fields(f) => out.extend(f.iter().map(|(k, v)| format!("{k}: {v}"))),
                Block::List(l) => out.extend(l.iter().cloned()),
                Block::Table { headers, rows, .. } => {
                    out.push(headers.join(" | "));
                    out.extend(rows.iter().map(|r| r.join(" | ")));
                }
            }
        }
        out.join("\n")
    }
}

/// The print style of documents: A4, readable at arm's length, tables that break across pages.
pub const PRINT_CSS: &str = r#"
@page { size: A4; margin: 16mm 14mm; }
body { font-family: "Noto Sans JP", "Hiragino Kaku Gothic ProN", "Yu Gothic", "Meiryo", sans-serif; color: #111; line-height: 1.6; margin: 1.5rem auto; max-width: 60rem; padding: 0 1rem; }
h1 { font-size: 1.45rem; margin: 0 0 .3rem; }
h2 { font-size: 1.1rem; border-bottom: 2px solid #1d4e89; padding-bottom: .15rem; margin-top: 1.6rem; }
.sub { color: #333; margin: 0; font-size: .92rem; }
table { border-collapse: collapse; width: 100%; font-size: .88rem; }
th, td { border: 1px solid #777; padding: .3rem .4rem; vertical-align: top; text-align: left; white-space: pre-wrap; }
th { background: #e8edf3; }
th.n, td.n { white-space: nowrap; width: 1%; }
dl.fields { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dl.fields dt { font-weight: bold; }
dl.fields dd { margin: 0; white-space: pre-wrap; }
footer { margin-top: 2rem; color: #444; font-size: .8rem; border-top: 1px solid #999; }
nav.no-print { margin-bottom: 1rem; display: flex; gap: 1rem; }
nav.no-print a { color: #0b4f9c; }
@media print { nav.no-print { display: none; } thead { display: table-header-group; } tr { break-inside: avoid; } }
"#;

use mamori_domain::html::escape as esc;

impl Doc {
    /// A standalone printable HTML page. With `stylesheet` the style is linked (the web
    /// server's strict CSP forbids inline style); without, it is embedded (a file on disk).
    /// `nav` is trusted HTML placed before the document and hidden in print.
    pub fn to_html(&self, stylesheet: Option<&str>, nav: &str) -> String {
        let mut h =
            String::from("<!DOCTYPE html>\n<html lang=\"ja\">\n<head>\n<meta charset=\"utf-8\">\n");
        h.push_str(&format!("<title>{}</title>\n", esc(&self.title)));
        match stylesheet {
            Some(url) => h.push_str(&format!(
                "<link rel=\"stylesheet\" href=\"{}\">\n",
                esc(url)
            )),
            None => h.push_str(&format!("<style>{PRINT_CSS}</style>\n")),
        }
        h.push_str("</head>\n<body>\n");
        if !nav.is_empty() {
            h.push_str(&format!("<nav class=\"no-print\">{nav}</nav>\n"));
        }
        h.push_str(&format!("<main>\n<h1>{}</h1>\n", esc(&self.title)));
        for s in &self.subtitle {
            h.push_str(&format!("<p class=\"sub\">{}</p>\n", esc(s)));
        }
        for b in &self.blocks {
            match b {
                Block::Heading(s) => h.push_str(&format!("<h2>{}</h2>\n", esc(s))),
                Block::Para(s) => h.push_str(&format!("<p>{}</p>\n", esc(s))),
                Block::List(items) => {
                    h.push_str("<ul>\n");
                    for i in items {
                        h.push_str(&format!("<li>{}</li>\n", esc(i)));
                    }
                    h.push_str("</ul>\n");
                }
                Block::Fields(f) => {
                    h.push_str("<dl class=\"fields\">\n");
                    for (k, v) in f {
                        h.push_str(&format!("<dt>{}</dt><dd>{}</dd>\n", esc(k), esc(v)));
                    }
                    h.push_str("</dl>\n");
                }
                Block::Table {
                    headers,
                    widths,
                    rows,
                } => {
                    // Narrow columns (numbers, answers) never wrap; a class, as the
                    // server's CSP allows no inline style.
                    let total: u16 = widths.iter().sum::<u16>().max(1);
                    let class = |i: usize| {
                        if widths.get(i).is_some_and(|w| w * 10 <= total) {
                            " class=\"n\""
                        } else {
                            ""
                        }
                    };
                    h.push_str("<table>\n<thead><tr>");
                    for (i, c) in headers.iter().enumerate() {
                        h.push_str(&format!("<th scope=\"col\"{}>{}</th>", class(i), esc(c)));
                    }
                    h.push_str("</tr></thead>\n<tbody>\n");
                    for r in rows {
                        h.push_str("<tr>");
                        for (i, c) in r.iter().enumerate() {
                            h.push_str(&format!("<td{}>{}</td>", class(i), esc(c)));
                        }
                        h.push_str("</tr>\n");
                    }
                    h.push_str("</tbody>\n</table>\n");
                }
            }
        }
        h.push_str(&format!(
            "</main>\n<footer>{}</footer>\n</body>\n</html>\n",
            esc(&self.footer)
        ));
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_everything_it_is_given() {
        let mut d = Doc::new("<報告>");
        d.para("a & b").table(
            &["列"],
            &[1],
            vec![vec!["<script>alert(1)</script>".into()]],
        );
        let h = d.to_html(None, "");
        assert!(h.contains("&lt;報告&gt;"));
        assert!(h.contains("a &amp; b"));
        assert!(!h.contains("<script>"));
        assert!(h.contains("<style>"));
        let linked = d.to_html(Some("/static/doc.css"), "<a href=\"/\">戻る</a>");
        assert!(linked.contains("href=\"/static/doc.css\"") && !linked.contains("<style>"));
    }
}
