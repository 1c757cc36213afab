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

use crossbeam_channel::{Receiver, Sender};
use rusqlite::Connection;

use crate::StoreError;
use crate::page_map::{FileStamp, PageMap};
use crate::wal_frames::{WalCursor, scan};

/// How often the log is copied back: short enough that a checkpoint has little to copy.
const EVERY: Duration = Duration::from_millis(250);

/// Past this size the log is not being restarted (under a steady stream of commits a passive
/// checkpoint never finds it wholly copied when the next commit starts), and the writer waits
/// for one round between two commits. SQLite's automatic checkpoint did the same inside a
/// commit at 64 MiB; the journal size limit brings the file back to that after the restart.
const WAL_LIMIT: u64 = 96 << 20;

pub(crate) struct Checkpointer {
    stop: Option<Sender<()>>,
    now: Sender<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// The writer's hold on the log's size.
pub(crate) struct Backstop {
    wal: PathBuf,
    now: Sender<Sender<()>>,
    /// The log's size when the writer last waited for a round. A long read (a full backup)
    /// keeps the log from being restarted; the writer then waits again only after the log has
    /// grown by another `WAL_STEP`, not after every commit.
    waited_at: std::cell::Cell<u64>,
}

const WAL_STEP: u64 = 16 << 20;

impl Backstop {
    /// Called between two commits: when the log has outgrown its limit, runs a round while
    /// nothing is being written, so that the next commit restarts the log.
    pub(crate) fn after_commit(&self) {
        let len = wal_len(&self.wal);
        if len <= WAL_LIMIT {
            self.waited_at.set(0);
            return;
        }
        if len < self.waited_at.get() + WAL_STEP {
            return;
        }
        self.waited_at.set(len);
        let (done, wait) = crossbeam_channel::bounded(1);
        if self.now.send(done).is_ok() {
            let _ = wait.recv_timeout(Duration::from_secs(60));
        }
    }
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
            wal: wal_path(db_path),
            conn: open()?,
            pin: open()?,
            map: PageMap::open_or_create(db_path)?,
            cursor: WalCursor::default(),
        };
        // Pages copied while no map was kept (an instance of an earlier release) are covered
        // by the stamp check of the first round.
        rounds.round()?;
        let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
        let (now, asked) = crossbeam_channel::unbounded::<Sender<()>>();
        let thread = std::thread::Builder::new()
            .name("mamori-wal-checkpoint".into())
            .spawn(move || run(rounds, stopped, asked))?;
        Ok(Self {
            stop: Some(stop),
            now,
            thread: Some(thread),
        })
    }

    pub(crate) fn backstop(&self, db_path: &Path) -> Backstop {
        Backstop {
            wal: wal_path(db_path),
            now: self.now.clone(),
            waited_at: std::cell::Cell::new(0),
        }
    }
}

fn wal_path(db: &Path) -> PathBuf {
    crate::beside(db, "-wal")
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
            .query_row("SELECT count(*) FROM sqlite_schema", (), |_| Ok(()));
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
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", (), |_| Ok(()))
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

fn run(mut rounds: Rounds, stopped: Receiver<()>, asked: Receiver<Sender<()>>) {
    loop {
        let (stop, reply) = crossbeam_channel::select! {
            recv(stopped) -> _ => (true, None),
            recv(asked) -> r => (false, r.ok()),
            default(EVERY) => (false, None),
        };
        if let Err(e) = rounds.round() {
            tracing::warn!(error = %e, "checkpoint round failed");
        }
        if let Some(reply) = reply {
            let _ = reply.send(());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Commits back to back never find the log wholly copied, so it is never restarted by the
    /// rounds alone; the backstop between commits keeps it near its limit.
    #[test]
    fn under_a_steady_stream_of_commits_the_log_stays_near_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("mamori.db");
        let w = Connection::open(&db).unwrap();
        w.pragma_update(None, "journal_mode", "WAL").unwrap();
        w.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        w.pragma_update(None, "journal_size_limit", 64 << 20)
            .unwrap();
        no_checkpoint_on_close(&w).unwrap();
        w.execute_batch("CREATE TABLE t(x BLOB)").unwrap();
        let cp = Checkpointer::start(&db).unwrap();
        let backstop = cp.backstop(&db);
        let mut largest = 0;
        // 320 MiB in 4 MiB commits, rewriting the same rows: the database stays small.
        for i in 0..80 {
            w.execute_batch("BEGIN").unwrap();
            w.execute("DELETE FROM t WHERE rowid % 4 = ?1", [i % 4])
                .unwrap();
            for _ in 0..4 {
                w.execute("INSERT INTO t VALUES (randomblob(1048576))", ())
                    .unwrap();
            }
            w.execute_batch("COMMIT").unwrap();
            backstop.after_commit();
            largest = largest.max(wal_len(&wal_path(&db)));
        }
        assert!(
            largest <= WAL_LIMIT + (8 << 20),
            "the log grew to {} MiB",
            largest >> 20
        );
    }
}
