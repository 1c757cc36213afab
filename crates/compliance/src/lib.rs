//! The compliance pillar's domain: the MHLW checklist and guideline as data (catalogues), an
//! assessment's answers and scores, the asset ledger's CSV format, the risk register's seed, the facility's registers (disposal, take-out, training, outside storage),
//! and the documents mamori prints. No I/O and no clock: callers pass texts, rows and times.
#![forbid(unsafe_code)]

pub mod answer;
pub mod assets;
pub mod catalogue;
pub mod doc;
pub mod pdf;
pub mod registers;
pub mod risks;
pub mod spreadsheet;

pub use answer::{Answer, Observation, Resolved, Score, Source};
pub use catalogue::{Catalogue, CatalogueError, Item, Library, Section};
