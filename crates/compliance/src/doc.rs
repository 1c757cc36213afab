//! A printable document as plain structure (title, headings, paragraphs, field lists, tables),
//! rendered to HTML by the web layer and to PDF by [`crate::pdf`], so both say the same.

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
