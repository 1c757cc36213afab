//! Tells caches of "who is this token and what may it do" when that may have changed. The
//! writer connection reports every row it changes; a commit that changed a row of an access
//! table moves the generation on, *after* the commit is visible and *before* any caller of
//! that commit is answered. A cache entry filled at generation G is good while the generation
//! is still G: a revoked session, a deactivated account or a changed role is never served
//! from memory once its writer has been told "done".

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rusqlite::Connection;

/// The tables that decide who a session is and what it may do. Each is a rowid table (the
/// update hook does not report WITHOUT ROWID tables; a test keeps it so).
pub const ACCESS_TABLES: &[&str] = &[
    "sessions",
    "accounts",
    "roles",
    "emergency_access",
    "client_cert_roles",
];

#[derive(Clone, Default)]
pub(crate) struct AccessWatch {
    touched: Arc<AtomicBool>,
    generation: Arc<AtomicU64>,
}

impl AccessWatch {
    /// Reports access-table changes made on `conn` (the writer's).
    pub(crate) fn install(&self, conn: &Connection) {
        let touched = self.touched.clone();
        conn.update_hook(Some(
            move |_: rusqlite::hooks::Action, _: &str, table: &str, _: i64| {
                if ACCESS_TABLES.contains(&table) {
                    touched.store(true, Ordering::Relaxed);
                }
            },
        ));
    }

    /// After a transaction ended (committed or rolled back): moves the generation on if it
    /// touched an access table. A rollback moves it needlessly, which only costs a cache miss.
    pub(crate) fn transaction_ended(&self) {
        if self.touched.swap(false, Ordering::Relaxed) {
            self.generation.fetch_add(1, Ordering::Release);
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_access_table_is_a_rowid_table() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(dir.path(), Default::default()).unwrap();
        let r = store.reader().unwrap();
        for t in ACCESS_TABLES {
            let sql: String = r
                .get()
                .conn
                .query_row(
                    "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    [t],
                    |row| row.get(0),
                )
                .unwrap_or_else(|e| panic!("{t} exists: {e}"));
            assert!(
                !sql.to_uppercase().contains("WITHOUT ROWID"),
                "{t} must stay a rowid table for the update hook"
            );
        }
    }

    #[test]
    fn a_commit_to_an_access_table_moves_the_generation_and_others_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(dir.path(), Default::default()).unwrap();
        let g0 = store.access_generation();
        store.write_blocking(|tx| tx.set_meta("x", "y")).unwrap();
        assert_eq!(store.access_generation(), g0, "meta is not an access table");
        store
            .write_blocking(|tx| tx.revoke_session("no-such-token", 1).map(|_| ()))
            .unwrap();
        assert_eq!(store.access_generation(), g0, "no row changed");
        store
            .write_blocking(|tx| {
                let role = mamori_domain::permission::Role {
                    code: "t".into(),
                    name_ja: "試験".into(),
                    name_en: "test".into(),
                    grants: Default::default(),
                    builtin: false,
                };
                tx.save_role(&role, 1)?;
                tx.append(&mamori_domain::audit::AuditEvent::new(
                    1,
                    None,
                    "test.role_changed",
                    mamori_domain::audit::Outcome::Ok,
                ))
            })
            .unwrap();
        assert!(store.access_generation() > g0, "a new role moves it");
    }
}
