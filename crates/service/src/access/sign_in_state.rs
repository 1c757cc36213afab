//! What a token resolves to — its session, account, role, break-glass accesses and whether
//! the role needs a client certificate — kept in memory between requests. Every request
//! still checks timeouts, locks and certificates against its own clock and connection; only
//! the rows are reused, and only while the store's access generation says none of them can
//! have changed (a revoked session, a deactivated account or an edited role moves it on
//! before its writer is answered).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mamori_domain::Millis;
use mamori_domain::permission::Role;
use mamori_store::{Account, EmergencyRow, Reader, Session, Store, StoreError};

/// The rows a token resolves to.
#[derive(Debug, Clone)]
pub(crate) struct SignInState {
    pub session: Session,
    pub account: Account,
    pub role: Role,
    /// Break-glass accesses not ended and not expired when read; each use filters by its time.
    pub emergency: Vec<EmergencyRow>,
    pub needs_client_cert: bool,
}

impl SignInState {
    /// Reads the rows for `token_hash` (None: no such session, or its account or role is gone).
    pub fn read(r: &Reader<'_>, token_hash: &str, now: Millis) -> Result<Option<Self>, StoreError> {
        let Some(session) = r.session(token_hash)? else {
            return Ok(None);
        };
        let Some(account) = r.account(session.account_id)? else {
            return Ok(None);
        };
        let Some(role) = r.role(&account.role)? else {
            return Ok(None);
        };
        let emergency = r.emergency_accesses(Some(account.id), Some(now), false)?;
        let needs_client_cert = r.role_requires_client_cert(&account.role)?;
        Ok(Some(Self {
            session,
            account,
            role,
            emergency,
            needs_client_cert,
        }))
    }

    /// The break-glass accesses still running at `now`.
    pub fn emergency_at(&self, now: Millis) -> Vec<EmergencyRow> {
        self.emergency
            .iter()
            .filter(|e| e.ended_at.is_none() && e.expires_at > now)
            .cloned()
            .collect()
    }
}

/// Entries kept at most; beyond this the cache starts again (sessions are few in a facility).
const CAPACITY: usize = 4096;

#[derive(Default)]
pub(crate) struct SignInCache {
    entries: Mutex<HashMap<String, (u64, Arc<SignInState>)>>,
}

impl SignInCache {
    /// What `token_hash` resolves to: the kept state while the store's access generation has
    /// not moved since it was read, else read now (and kept). `None`: no such session.
    pub async fn resolve(
        &self,
        store: &Store,
        token_hash: &str,
        now: Millis,
    ) -> Result<Option<Arc<SignInState>>, StoreError> {
        // Taken before the read: a change committed during the read leaves the entry stale.
        let generation = store.access_generation();
        if let Some(state) = self.get(token_hash, generation) {
            return Ok(Some(state));
        }
        let th = token_hash.to_owned();
        let read = store
            .read(move |r| SignInState::read(r, &th, now))
            .await?
            .map(Arc::new);
        if let Some(state) = &read {
            self.put(token_hash.to_owned(), generation, state.clone());
        }
        Ok(read)
    }

    /// The state for `token_hash` if it was read at `generation`.
    fn get(&self, token_hash: &str, generation: u64) -> Option<Arc<SignInState>> {
        let map = self.entries.lock().expect("sign-in cache");
        map.get(token_hash)
            .filter(|(g, _)| *g == generation)
            .map(|(_, s)| s.clone())
    }

    /// Keeps `state`, read at `generation`.
    fn put(&self, token_hash: String, generation: u64, state: Arc<SignInState>) {
        let mut map = self.entries.lock().expect("sign-in cache");
        if map.len() >= CAPACITY {
            map.retain(|_, (g, _)| *g == generation);
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        map.insert(token_hash, (generation, state));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cache is invalidated by changes to `ACCESS_TABLES`; so the state it keeps must be
    /// read from those tables and no other. A read added here without its table there fails.
    #[test]
    fn the_sign_in_read_touches_only_the_tables_that_invalidate_it() {
        let dir = tempfile::tempdir().unwrap();
        crate::instance::init(
            dir.path(),
            &crate::instance::InitParams {
                facility: "試験",
                admin_login: "admin",
                admin_password: "初期パスワード 123",
            },
        )
        .unwrap();
        let svc = crate::instance::open(dir.path()).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let token = rt
            .block_on(svc.change_password(
                "admin",
                "初期パスワード 123",
                "管理者の新しいパスワード 2026",
                None,
            ))
            .unwrap()
            .token;
        let ro = mamori_store::ReadOnly::open(dir.path()).unwrap();
        let (state, tables) = ro.tables_read(|r| {
            SignInState::read(r, &crate::crypto::token_hash(&token), i64::MAX / 2).unwrap()
        });
        assert!(state.is_some(), "the session is found");
        let allowed: std::collections::BTreeSet<String> = mamori_store::ACCESS_TABLES
            .iter()
            .map(|t| (*t).to_owned())
            .collect();
        assert!(!tables.is_empty());
        assert!(
            tables.is_subset(&allowed),
            "read {tables:?}; only {allowed:?} invalidate the cache"
        );
    }
}
