//! Copies the write-ahead log back into the database on its own thread and connection. Left
//! to the writer, SQLite checkpoints inside a commit once the log passes its limit: every
//! request waiting on that commit (a chart read waits for its ledger entry) then waits for
//! tens of megabytes to be copied and synced. A passive checkpoint from another connection
//! runs beside the writer and readers without blocking either; the writer's own automatic
//! checkpoint stays as the backstop and finds the work already done.

use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::StoreError;

/// How often the log is copied back: short enough that a checkpoint has little to copy.
const EVERY: Duration = Duration::from_millis(250);

pub(crate) struct Checkpointer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub(crate) fn start(db_path: &Path) -> Result<Self, StoreError> {
        let conn = rusqlite::Connection::open_with_flags(
            db_path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_millis(50))?;
        let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
        let thread = std::thread::Builder::new()
            .name("mamori-wal-checkpoint".into())
            .spawn(move || run(conn, stopped))?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

fn run(conn: rusqlite::Connection, stopped: Receiver<()>) {
    loop {
        match stopped.recv_timeout(EVERY) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        // Busy (another checkpoint running) or behind a reader is normal; the next round
        // continues where this one stopped.
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "passive checkpoint did not run");
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
