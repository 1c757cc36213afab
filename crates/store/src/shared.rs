//! What the nodes of one instance share besides the ledgered rows: named exclusive turns (one
//! backup at a time, one password check per account at a time) and short-lived values that
//! must be asked for on any node and used once (a passkey challenge issued by one node and
//! answered through another).
//!
//! On SQLite there is one process, and both live in its memory. On PostgreSQL a turn is a
//! session advisory lock, held by a connection for as long as the turn lasts (a node that
//! dies gives its turns back with its connections), and the values are rows of an UNLOGGED
//! table, `ephemeral`: never in the ledger, not copied into backups, lost in a server crash —
//! each is a challenge at most five minutes old, and losing one only means asking again.
//! Someone who can write that table could plant a challenge; without the authenticator's
//! signature over it, a planted challenge opens nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

use crate::sql::{Conn, OptionalExtension, PgConn};
use crate::{Store, StoreError};

/// The PostgreSQL table of short-lived shared values (created with the schema, and on open
/// for databases installed before it existed).
pub(crate) const EPHEMERAL_DDL: &str = "CREATE UNLOGGED TABLE IF NOT EXISTS ephemeral \
     (key text PRIMARY KEY, value bytea NOT NULL, expires bigint NOT NULL)";

/// The in-process half: turns among this node's tasks, and on SQLite the values.
pub(crate) struct Local {
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Turns dropped whose database lock is being released (on a blocking thread).
    releasing: Mutex<HashMap<String, usize>>,
    values: Mutex<HashMap<String, (Vec<u8>, i64)>>,
    /// Database turns held at once by this node, each on a connection of its own: sign-ins
    /// to many accounts at once wait here, in memory, instead of opening connections until
    /// the server refuses more.
    db_turns: Arc<tokio::sync::Semaphore>,
}

/// Database turns one node holds at once.
const DB_TURNS: usize = 32;

impl Default for Local {
    fn default() -> Self {
        Self {
            turns: Default::default(),
            releasing: Default::default(),
            values: Default::default(),
            db_turns: Arc::new(tokio::sync::Semaphore::new(DB_TURNS)),
        }
    }
}

/// A turn on `name`, held until dropped, across every node of the instance.
pub struct Turn {
    local: Option<OwnedMutexGuard<()>>,
    store: Store,
    name: String,
    /// PostgreSQL: the connection holding the advisory lock, and its place among the
    /// node's database turns.
    pg: Option<(PgConn, i64)>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl std::fmt::Debug for Turn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Turn").field("name", &self.name).finish()
    }
}

/// The advisory lock's key for a turn's name: the same on every node.
fn lock_key(name: &str) -> i64 {
    crate::postgres::lock_key(&format!("turn {name}"))
}

impl Store {
    fn local_turn(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.shared
            .turns
            .lock()
            .expect("turns")
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// Waits for the turn on `name`, then holds it until the `Turn` is dropped. Within a node
    /// the waiters queue in memory; across nodes the first in each node's queue waits on the
    /// database.
    pub async fn turn(&self, name: &str) -> Result<Turn, StoreError> {
        let mut turn = self.held_turn(self.local_turn(name).lock_owned().await, name);
        if self.on_postgres() {
            turn.permit = Some(self.db_turn_permit().await?);
            let (store, key) = (self.clone(), lock_key(name));
            turn.pg = Some(
                tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
                    let c = store.lock_connection()?;
                    match Conn::Pg(&c).execute("SELECT pg_advisory_lock(?1)", [key]) {
                        Ok(_) => Ok((c, key)),
                        Err(e) => {
                            store.discard_lock_connection(c);
                            Err(e.into())
                        }
                    }
                })
                .await
                .map_err(|e| StoreError::Corrupt(format!("turn task failed: {e}")))??,
            );
        }
        Ok(turn)
    }

    /// A turn held in this process so far (the database's lock is added on PostgreSQL).
    fn held_turn(&self, local: OwnedMutexGuard<()>, name: &str) -> Turn {
        Turn {
            local: Some(local),
            store: self.clone(),
            name: name.to_owned(),
            pg: None,
            permit: None,
        }
    }

    async fn db_turn_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, StoreError> {
        self.shared
            .db_turns
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)
    }

    fn releasing(&self, name: &str) -> bool {
        self.shared
            .releasing
            .lock()
            .expect("releasing turns")
            .contains_key(name)
    }

    /// The turn on `name` if nobody, on any node, holds it now. A turn of this node that was
    /// just given up, its database lock still being released, is free: that is waited for.
    pub async fn try_turn(&self, name: &str) -> Result<Option<Turn>, StoreError> {
        let m = self.local_turn(name);
        let local = match m.clone().try_lock_owned() {
            Ok(g) => g,
            Err(_) if self.releasing(name) => {
                match tokio::time::timeout(std::time::Duration::from_secs(5), m.lock_owned()).await
                {
                    Ok(g) => g,
                    Err(_) => return Ok(None),
                }
            }
            Err(_) => return Ok(None),
        };
        let mut turn = self.held_turn(local, name);
        if self.on_postgres() {
            turn.permit = Some(self.db_turn_permit().await?);
            let (store, key) = (self.clone(), lock_key(name));
            let got = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
                let c = store.lock_connection()?;
                match Conn::Pg(&c).query_row("SELECT pg_try_advisory_lock(?1)", [key], |r| {
                    r.get::<_, bool>(0)
                }) {
                    Ok(true) => Ok(Some((c, key))),
                    Ok(false) => {
                        store.give_back_lock_connection(c);
                        Ok(None)
                    }
                    Err(e) => {
                        store.discard_lock_connection(c);
                        Err(e.into())
                    }
                }
            })
            .await
            .map_err(|e| StoreError::Corrupt(format!("turn task failed: {e}")))??;
            match got {
                Some(held) => turn.pg = Some(held),
                None => return Ok(None),
            }
        }
        Ok(Some(turn))
    }

    /// Whether some node holds the turn on `name` now (for a status page; it may change the
    /// moment after). Blocking: for reads already off the async workers.
    pub fn turn_taken(&self, name: &str) -> Result<bool, StoreError> {
        let held = self.local_turn(name).try_lock().is_err();
        self.forget_idle_turn(name);
        if held {
            return Ok(true);
        }
        if !self.on_postgres() {
            return Ok(false);
        }
        let c = self.lock_connection()?;
        let key = lock_key(name);
        let conn = Conn::Pg(&c);
        let asked = conn
            .query_row("SELECT pg_try_advisory_lock(?1)", [key], |r| {
                r.get::<_, bool>(0)
            })
            .and_then(|free| {
                if free {
                    conn.query_row("SELECT pg_advisory_unlock(?1)", [key], |_| Ok(()))?;
                }
                Ok(free)
            });
        match asked {
            Ok(free) => {
                self.give_back_lock_connection(c);
                Ok(!free)
            }
            Err(e) => {
                self.discard_lock_connection(c);
                Err(e.into())
            }
        }
    }

    /// Keeps `value` under `key` until `expires` (milliseconds), replacing what was there.
    pub async fn put_ephemeral(
        &self,
        key: &str,
        value: Vec<u8>,
        now: i64,
        expires: i64,
    ) -> Result<(), StoreError> {
        if !self.on_postgres() {
            let mut m = self.shared.values.lock().expect("ephemeral values");
            m.retain(|_, (_, e)| *e > now);
            m.insert(key.to_owned(), (value, expires));
            return Ok(());
        }
        let (store, key) = (self.clone(), key.to_owned());
        blocking(move || {
            let c = store.lock_connection()?;
            let done = (|| -> Result<(), StoreError> {
                let conn = Conn::Pg(&c);
                conn.execute("DELETE FROM ephemeral WHERE expires <= ?1", [now])?;
                conn.execute(
                    "INSERT INTO ephemeral (key, value, expires) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires",
                    crate::sql::params![key, value, expires],
                )?;
                Ok(())
            })();
            store.give_back_lock_connection(c);
            done
        })
        .await
    }

    /// The value under `key` if it has not expired at `now`; removed by asking, so two nodes
    /// asking at once cannot both have it.
    pub async fn take_ephemeral(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>, StoreError> {
        if !self.on_postgres() {
            let taken = self
                .shared
                .values
                .lock()
                .expect("ephemeral values")
                .remove(key);
            return Ok(taken.filter(|(_, e)| *e > now).map(|(v, _)| v));
        }
        let (store, key) = (self.clone(), key.to_owned());
        blocking(move || {
            let c = store.lock_connection()?;
            let taken = Conn::Pg(&c)
                .query_row(
                    "DELETE FROM ephemeral WHERE key = ?1 RETURNING value, expires",
                    [key],
                    |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)),
                )
                .optional();
            store.give_back_lock_connection(c);
            Ok(taken?.filter(|(_, e)| *e > now).map(|(v, _)| v))
        })
        .await
    }
}

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, StoreError> + Send + 'static,
) -> Result<R, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Corrupt(format!("shared-state task failed: {e}")))?
}

impl Drop for Turn {
    fn drop(&mut self) {
        let local = self.local.take();
        let (store, name) = (self.store.clone(), std::mem::take(&mut self.name));
        let pg = self.pg.take();
        let permit = self.permit.take();
        let on_pg = pg.is_some();
        if on_pg {
            *store
                .shared
                .releasing
                .lock()
                .expect("releasing turns")
                .entry(name.clone())
                .or_default() += 1;
        }
        // The database's lock is released before the node's next waiter is let in.
        let release = move || {
            if let Some((c, key)) = pg {
                let unlocked = Conn::Pg(&c)
                    .query_row("SELECT pg_advisory_unlock(?1)", [key], |r| {
                        r.get::<_, bool>(0)
                    })
                    .unwrap_or(false);
                // A connection whose unlock failed is closed, which releases the lock anyway.
                if unlocked {
                    store.give_back_lock_connection(c);
                } else {
                    store.discard_lock_connection(c);
                }
            }
            drop(permit);
            drop(local);
            if on_pg {
                // After the local lock: a `try_turn` that saw it held waits for it meanwhile.
                let mut r = store.shared.releasing.lock().expect("releasing turns");
                if let Some(n) = r.get_mut(&name) {
                    *n -= 1;
                    if *n == 0 {
                        r.remove(&name);
                    }
                }
            }
            store.forget_idle_turn(&name);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) if on_pg => {
                h.spawn_blocking(release);
            }
            _ => release(),
        }
    }
}

impl Store {
    /// Forgets the in-memory lock of a turn nobody holds or waits for (one per account
    /// would otherwise stay for good).
    fn forget_idle_turn(&self, name: &str) {
        let mut turns = self.shared.turns.lock().expect("turns");
        if turns.get(name).is_some_and(|m| Arc::strong_count(m) == 1) {
            turns.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), Default::default()).unwrap();
        (dir, s)
    }

    #[tokio::test]
    async fn a_turn_is_held_until_dropped_and_then_free() {
        let (_d, s) = store();
        let t = s.turn("backup").await.unwrap();
        assert!(s.try_turn("backup").await.unwrap().is_none());
        assert!(s.turn_taken("backup").unwrap());
        assert!(s.try_turn("other").await.unwrap().is_some());
        drop(t);
        assert!(!s.turn_taken("backup").unwrap());
        assert!(
            s.shared.turns.lock().unwrap().is_empty(),
            "idle turns are forgotten"
        );
    }

    #[tokio::test]
    async fn an_ephemeral_value_is_taken_once_and_not_after_it_expires() {
        let (_d, s) = store();
        s.put_ephemeral("k", b"one".to_vec(), 0, 100).await.unwrap();
        assert_eq!(
            s.take_ephemeral("k", 50).await.unwrap(),
            Some(b"one".to_vec())
        );
        assert_eq!(s.take_ephemeral("k", 50).await.unwrap(), None);
        s.put_ephemeral("k", b"two".to_vec(), 0, 100).await.unwrap();
        assert_eq!(s.take_ephemeral("k", 100).await.unwrap(), None);
    }
}
