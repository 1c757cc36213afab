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
use mamori_store::{Account, EmergencyRow, Reader, Session, StoreError};

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
    /// The state for `token_hash` if it was read at `generation`.
    pub fn get(&self, token_hash: &str, generation: u64) -> Option<Arc<SignInState>> {
        let map = self.entries.lock().expect("sign-in cache");
        map.get(token_hash)
            .filter(|(g, _)| *g == generation)
            .map(|(_, s)| s.clone())
    }

    /// Keeps `state`, read at `generation` (taken *before* the read, so that a change
    /// committed during the read leaves the entry already stale).
    pub fn put(&self, token_hash: String, generation: u64, state: Arc<SignInState>) {
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
