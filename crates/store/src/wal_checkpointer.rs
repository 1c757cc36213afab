//! Copies the write-ahead log back into the database on its own thread and connections, and is
//! the only thing that does (the writer's automatic checkpoint and the checkpoint on close are
//! off): each round first records in the page map which pages it may copy (`page_map.rs`), so
//! an incremental backup knows what changed without reading the whole file.
//!
//! Left to the writer, SQLite checkpoints inside a commit once the log passes its limit: every
//! request waiting on that commit (a chart read waits for its ledger entry) then waits for
//! tens of megabytes to be copied and synced. A passive checkpoint from another connection
//! runs beside the writer and readers without blocking either.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rusqlite::Connection;

use crate::StoreError;
use crate::page_map::{FileStamp, PageMap};
use crate::wal_frames::{WalCursor, scan};

/// How often the log is copied back: short enough that a checkpoint has little to copy.
const EVERY: Duration = Duration::from_millis(250);

pub(crate) struct Checkpointer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Read-write connections to the database that never checkpoint on their own.
pub(crate) fn no_checkpoint_on_close(conn: &Connection) -> Result<(), StoreError> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    Ok(())
}

struct Rounds {
    db: PathBuf,
    wal: PathBuf,
    /// Runs the checkpoints.
    conn: Connection,
    /// Holds a read transaction while a round runs: the log cannot be restarted and a
    /// checkpoint copies nothing newer than this snapshot, so nothing it copies was appended
    /// after the scan.
    pin: Connection,
    map: PageMap,
    cursor: WalCursor,
}

impl Checkpointer {
    pub(crate) fn start(db_path: &Path) -> Result<Self, StoreError> {
        let open = || -> Result<Connection, StoreError> {
            let c = Connection::open_with_flags(
                db_path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            c.busy_timeout(Duration::from_millis(50))?;
            no_checkpoint_on_close(&c)?;
            Ok(c)
        };
        let mut rounds = Rounds {
            db: db_path.to_owned(),
            wal: db_path.with_file_name(format!(
                "{}-wal",
                db_path
                    .file_name()
                    .map_or("mamori.db".into(), |n| n.to_string_lossy())
            )),
            conn: open()?,
            pin: open()?,
            map: PageMap::open_or_create(db_path)?,
            cursor: WalCursor::default(),
        };
        // Pages copied while no map was kept (an instance of an earlier release) are covered
        // by the stamp check of the first round.
        rounds.round()?;
        let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
        let thread = std::thread::Builder::new()
            .name("mamori-wal-checkpoint".into())
            .spawn(move || run(rounds, stopped))?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Rounds {
    fn round(&mut self) -> Result<(), StoreError> {
        let _lock = self.map.lock()?;
        let mut header = self.map.header()?;
        let stamp = FileStamp::of(&self.db)?;
        if stamp != header.stamp {
            // Written by something other than this checkpointer since its last round.
            tracing::info!("database file changed outside the checkpointer; page map restarted");
            self.map.start_over(stamp)?;
            header = self.map.header()?;
        }
        self.pin.execute_batch("BEGIN")?;
        let pinned = self
            .pin
            .query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()));
        let result = pinned.map_err(StoreError::from).and_then(|()| {
            let bound = stamp.size / 512 + wal_len(&self.wal) / 536 + 1;
            let found = scan(
                &self.wal,
                &mut self.cursor,
                bound.min(u32::MAX as u64) as u32,
            )?;
            if !found.pages.is_empty() {
                let round = header.round + 1;
                self.map.record(&header, round, &found.pages)?;
                header.round = round;
            }
            // Busy (behind a reader) is normal; the next round continues where this one stopped.
            if let Err(e) = self
                .conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            {
                tracing::debug!(error = %e, "passive checkpoint did not run");
            }
            Ok(())
        });
        self.pin.execute_batch("ROLLBACK")?;
        result?;
        self.map.stamp(&header, FileStamp::of(&self.db)?)?;
        Ok(())
    }
}

fn wal_len(wal: &Path) -> u64 {
    std::fs::metadata(wal).map_or(0, |m| m.len())
}

fn run(mut rounds: Rounds, stopped: Receiver<()>) {
    loop {
        let stop = !matches!(stopped.recv_timeout(EVERY), Err(RecvTimeoutError::Timeout));
        if let Err(e) = rounds.round() {
            tracing::warn!(error = %e, "checkpoint round failed");
        }
        if stop {
            return;
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
