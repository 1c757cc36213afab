//! Opening a database an earlier release wrote: before any migration runs, a complete copy of
//! it goes beside the instance (`pre-upgrade/`), synced to disk, so that whatever the new
//! release then does, the instance as it was can be put back by copying one file. The
//! migrations themselves run in one transaction (`schema.rs`).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, DatabaseName};

use crate::StoreError;

pub const PRE_UPGRADE_DIR: &str = "pre-upgrade";

/// What opening the store changed: the schema it found, the one it wrote, and the copy.
#[derive(Clone, Debug)]
pub struct Upgrade {
    pub from: usize,
    pub to: usize,
    pub copy: PathBuf,
    pub copy_bytes: u64,
    /// Ledger entries in the copy: the state it holds is the ledger up to here.
    pub ledger_entries: u64,
}

/// Copies the database (with what its log holds) to `dir/pre-upgrade/` through SQLite's
/// online backup; written under a temporary name and renamed once synced, so a crash leaves
/// either no copy or a whole one.
pub(crate) fn copy_before(
    conn: &Connection,
    dir: &Path,
    from: usize,
    to: usize,
) -> Result<Upgrade, StoreError> {
    let folder = dir.join(PRE_UPGRADE_DIR);
    let refuse = |e: &dyn std::fmt::Display| {
        StoreError::Schema(format!(
            "以前のリリースのデータベースを更新する前の複製を {} に作れませんでした（{e}）。\
             何も変更していません。空き容量と権限を確かめてから、もう一度起動してください",
            folder.display()
        ))
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let copy = folder.join(format!("mamori-schema{from}-{stamp}.db"));
    let part = folder.join(format!("mamori-schema{from}-{stamp}.db.part"));
    let made = (|| -> Result<(u64, i64), Box<dyn std::error::Error>> {
        std::fs::create_dir_all(&folder)?;
        crate::restrict_dir(&folder)?;
        let _ = std::fs::remove_file(&part);
        conn.backup(DatabaseName::Main, &part, None)?;
        crate::restrict_file(&part)?;
        // One self-contained file: the copy keeps no log of its own beside it.
        let entries: i64 = {
            let c = Connection::open(&part)?;
            c.pragma_update(None, "journal_mode", "DELETE")?;
            c.query_row("SELECT count(*) FROM ledger", (), |r| r.get(0))?
        };
        let file = std::fs::File::open(&part)?;
        file.sync_all()?;
        let bytes = file.metadata()?.len();
        std::fs::rename(&part, &copy)?;
        std::fs::File::open(&folder)?.sync_all()?;
        Ok((bytes, entries))
    })();
    let (copy_bytes, ledger_entries) = made.map_err(|e| {
        let _ = std::fs::remove_file(&part);
        refuse(&e)
    })?;
    Ok(Upgrade {
        from,
        to,
        copy,
        copy_bytes,
        ledger_entries: ledger_entries as u64,
    })
}
