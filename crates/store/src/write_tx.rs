use crate::sql::{Conn, params};
use mamori_domain::Millis;
use mamori_domain::audit::AuditEvent;
use mamori_domain::kinds::RecordKind;
use mamori_domain::permission::Role;
use mamori_ledger::Hash;

use crate::ledger::LedgerState;
use crate::{CertificateRow, Reader, StoreError, VersionRow};

/// The write side, valid inside one transaction of the group commit.
pub struct WriteTx<'c> {
    pub(crate) conn: Conn<'c>,
    state: &'c mut LedgerState,
    depth: u32,
}

impl<'c> WriteTx<'c> {
    pub(crate) fn new(conn: impl Into<Conn<'c>>, state: &'c mut LedgerState) -> Self {
        Self {
            conn: conn.into(),
            state,
            depth: 0,
        }
    }

    /// Reads that see this transaction's own writes.
    pub fn read(&self) -> Reader<'_> {
        Reader::new(self.conn)
    }

    /// Runs `f` in a nested savepoint: on error its writes (and ledger appends) are undone,
    /// while the enclosing transaction continues (e.g. to record the refusal itself).
    pub fn attempt<R, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&mut WriteTx<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        self.depth += 1;
        let name = format!("attempt{}", self.depth);
        self.conn
            .execute_batch(&format!("SAVEPOINT {name}"))
            .map_err(StoreError::from)?;
        let before = self.state.clone();
        let result = f(self);
        let end = match result {
            Ok(_) => format!("RELEASE {name}"),
            Err(_) => {
                *self.state = before;
                format!("ROLLBACK TO {name}; RELEASE {name}")
            }
        };
        self.depth -= 1;
        self.conn.execute_batch(&end).map_err(StoreError::from)?;
        result
    }

    /// Runs `f` and undoes everything it did, ledger appends included: a rehearsal of the run
    /// that a retrying backend would throw away.
    pub(crate) fn rehearse<R, E>(
        &mut self,
        f: &impl Fn(&mut WriteTx<'_>) -> Result<R, E>,
    ) -> Result<(), StoreError> {
        self.depth += 1;
        let name = format!("rehearsal{}", self.depth);
        self.conn.execute_batch(&format!("SAVEPOINT {name}"))?;
        let before = self.state.clone();
        let _ = f(self);
        *self.state = before;
        self.depth -= 1;
        self.conn
            .execute_batch(&format!("ROLLBACK TO {name}; RELEASE {name}"))?;
        Ok(())
    }

    /// Appends an event to the ledger; returns its index.
    pub fn append(&mut self, ev: &AuditEvent) -> Result<u64, StoreError> {
        crate::ledger::append(self.conn, self.state, ev)
    }

    /// Whether this instance's rows have been stated in the ledger (see `state`).
    pub fn state_baselined(&self) -> Result<bool, StoreError> {
        Ok(self.read().meta(crate::state::BASELINE_KEY)?.is_some())
    }

    /// States every covered row in ledger entries of `action`, `per_entry` rows each (the
    /// baseline from which `verify` compares rows with the ledger); returns the rows stated.
    pub fn append_state_baseline(
        &mut self,
        template: &AuditEvent,
        per_entry: usize,
    ) -> Result<u64, StoreError> {
        let mut rows = Vec::new();
        crate::state::for_each_covered_row(self.conn, |t, k, v| {
            rows.push(serde_json::json!([t, k, v]));
            Ok(())
        })?;
        let n = rows.len() as u64;
        let chunks: Vec<Vec<serde_json::Value>> =
            rows.chunks(per_entry.max(1)).map(<[_]>::to_vec).collect();
        let total = chunks.len();
        for (i, chunk) in chunks.into_iter().enumerate() {
            let mut ev = template.clone();
            ev.detail = serde_json::json!({ "part": i + 1, "of": total, "rows": chunk.len() });
            ev.state = Some(serde_json::Value::Array(chunk));
            self.append(&ev)?;
        }
        self.set_meta(crate::state::BASELINE_KEY, &self.ledger_size().to_string())?;
        Ok(n)
    }

    pub fn ledger_size(&self) -> u64 {
        self.state.frontier.size()
    }

    pub fn ledger_root(&self) -> Hash {
        self.state.frontier.root()
    }

    /// Brings the query indexes fully up to date (before audit queries).
    pub fn index_all(&mut self) -> Result<u64, StoreError> {
        crate::ledger::index_pending(self.conn, self.state, u64::MAX)
    }

    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    pub fn save_role(&mut self, role: &Role, now: Millis) -> Result<(), StoreError> {
        let grants = serde_json::to_string(&role.grants).expect("grants serialise");
        self.conn.execute(
            "INSERT INTO roles (code, name_ja, name_en, grants, builtin, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (code) DO UPDATE SET name_ja = excluded.name_ja, name_en = excluded.name_en,
                grants = excluded.grants, updated_at = excluded.updated_at",
            params![role.code, role.name_ja, role.name_en, grants, role.builtin, now],
        )?;
        Ok(())
    }

    pub fn insert_role_proposal(
        &mut self,
        role_code: &str,
        proposal: &str,
        reason: &str,
        by: i64,
        now: Millis,
    ) -> Result<i64, StoreError> {
        let inserted: i64 = self.conn.query_row(
            "INSERT INTO role_proposals (role_code, proposal, reason, proposed_by, proposed_at)
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            params![role_code, proposal, reason, by, now],
            |r| r.get(0),
        )?;
        Ok(inserted)
    }

    /// Decides a pending proposal; false if it was already decided.
    pub fn decide_role_proposal(
        &mut self,
        id: i64,
        by: i64,
        outcome: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "UPDATE role_proposals SET decided_by = ?2, decided_at = ?3, outcome = ?4
             WHERE id = ?1 AND outcome IS NULL",
            params![id, by, now, outcome],
        )? == 1)
    }

    pub fn save_kind(&mut self, kind: &RecordKind, now: Millis) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO record_kinds (code, name_ja, name_en, retention_years, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (code) DO UPDATE SET name_ja = excluded.name_ja, name_en = excluded.name_en,
                retention_years = excluded.retention_years, updated_at = excluded.updated_at",
            params![kind.code, kind.name_ja, kind.name_en, kind.retention_years, now],
        )?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn insert_account(
        &mut self,
        login: &str,
        display_name: &str,
        role: &str,
        is_service: bool,
        password_hash: Option<&str>,
        must_change: bool,
        now: Millis,
        created_by: Option<i64>,
    ) -> Result<i64, StoreError> {
        let inserted: i64 = self.conn.query_row(
            "INSERT INTO accounts (login, display_name, role, is_service, status, password_hash, password_changed_at,
                must_change_password, created_at, created_by)
             VALUES (?1, ?2, ?3, ?4, 'active', ?5, ?6, ?7, ?6, ?8) RETURNING id",
            params![login, display_name, role, is_service, password_hash, now, must_change, created_by],
            |r| r.get(0),
        )?;
        let id = inserted;
        if let Some(h) = password_hash {
            self.push_password_history(id, h, now)?;
        }
        Ok(id)
    }

    fn push_password_history(
        &mut self,
        id: i64,
        hash: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO password_history (account_id, hash, set_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![id, hash, now])?;
        Ok(())
    }

    pub fn set_account_active(&mut self, id: i64, active: bool) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE accounts SET status = ?2 WHERE id = ?1",
            params![id, if active { "active" } else { "disabled" }],
        )?;
        Ok(())
    }

    pub fn set_account_role(&mut self, id: i64, role: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE accounts SET role = ?2 WHERE id = ?1",
            params![id, role],
        )?;
        Ok(())
    }

    pub fn set_password(
        &mut self,
        id: i64,
        hash: &str,
        must_change: bool,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE accounts SET password_hash = ?2, must_change_password = ?3, password_changed_at = ?4,
                failed_logins = 0, locked_until = NULL WHERE id = ?1",
            params![id, hash, must_change, now],
        )?;
        self.push_password_history(id, hash, now)
    }

    pub fn record_password_reset(
        &mut self,
        id: i64,
        by: i64,
        identity_check: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO password_resets (account_id, reset_by, identity_check, at) VALUES (?1, ?2, ?3, ?4)",
            params![id, by, identity_check, now],
        )?;
        Ok(())
    }

    pub fn set_login_failures(
        &mut self,
        id: i64,
        failures: u32,
        locked_until: Option<Millis>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE accounts SET failed_logins = ?2, locked_until = COALESCE(?3, locked_until) WHERE id = ?1",
            params![id, failures, locked_until],
        )?;
        Ok(())
    }

    pub fn set_login_success(&mut self, id: i64, now: Millis) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE accounts SET failed_logins = 0, locked_until = NULL, last_login_at = ?2 WHERE id = ?1",
            params![id, now],
        )?;
        Ok(())
    }

    pub fn unlock_account(&mut self, id: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE accounts SET failed_logins = 0, locked_until = NULL WHERE id = ?1",
            [id],
        )?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn insert_session(
        &mut self,
        token_hash: &str,
        account_id: i64,
        is_api_token: bool,
        name: Option<&str>,
        csrf: &str,
        now: Millis,
        expires_at: Option<Millis>,
        scopes: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO sessions (token_hash, account_id, is_api_token, name, csrf, created_at, last_seen_at, expires_at, scopes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8)",
            params![token_hash, account_id, is_api_token, name, csrf, now, expires_at, scopes],
        )?;
        Ok(())
    }

    pub fn set_session_second_factor_pending(
        &mut self,
        token_hash: &str,
        pending: bool,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE sessions SET second_factor_pending = ?2 WHERE token_hash = ?1",
            params![token_hash, pending],
        )?;
        Ok(())
    }

    /// Starts (or restarts) a TOTP enrolment; the factor is not in force until enabled.
    pub fn begin_totp(&mut self, account_id: i64, secret: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO totp (account_id, secret, enabled_at, last_step) VALUES (?1, ?2, NULL, 0)
             ON CONFLICT(account_id) DO UPDATE SET secret = ?2, enabled_at = NULL, last_step = 0",
            params![account_id, secret],
        )?;
        Ok(())
    }

    pub fn enable_totp(
        &mut self,
        account_id: i64,
        step: i64,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE totp SET enabled_at = ?2, last_step = ?3 WHERE account_id = ?1",
            params![account_id, now, step],
        )?;
        Ok(())
    }

    /// Records the time step of an accepted code, so that the same code cannot be used twice.
    pub fn set_totp_step(&mut self, account_id: i64, step: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE totp SET last_step = ?2 WHERE account_id = ?1",
            params![account_id, step],
        )?;
        Ok(())
    }

    pub fn remove_second_factor(&mut self, account_id: i64) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM totp WHERE account_id = ?1", [account_id])?;
        self.conn.execute(
            "DELETE FROM recovery_codes WHERE account_id = ?1",
            [account_id],
        )?;
        Ok(())
    }

    pub fn replace_recovery_codes(
        &mut self,
        account_id: i64,
        hashes: &[String],
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "DELETE FROM recovery_codes WHERE account_id = ?1",
            [account_id],
        )?;
        let mut st = self.conn.prepare_cached(
            "INSERT INTO recovery_codes (account_id, code_hash, used_at) VALUES (?1, ?2, NULL)",
        )?;
        for h in hashes {
            st.execute(params![account_id, h])?;
        }
        Ok(())
    }

    /// Marks an unused recovery code used; false if there was none such.
    pub fn use_recovery_code(
        &mut self,
        account_id: i64,
        hash: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "UPDATE recovery_codes SET used_at = ?3
             WHERE account_id = ?1 AND code_hash = ?2 AND used_at IS NULL",
            params![account_id, hash, now],
        )? == 1)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn insert_maintenance_window(
        &mut self,
        account_id: i64,
        starts_at: Millis,
        ends_at: Millis,
        purpose: &str,
        personal_info: bool,
        requested_by: i64,
        now: Millis,
    ) -> Result<i64, StoreError> {
        let inserted: i64 = self.conn.query_row(
            "INSERT INTO maintenance_windows
               (account_id, starts_at, ends_at, purpose, personal_info, requested_by, requested_at, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'requested') RETURNING id",
            params![account_id, starts_at, ends_at, purpose, personal_info, requested_by, now],
            |r| r.get(0),
        )?;
        Ok(inserted)
    }

    /// Approves or rejects a requested window; false if it was not waiting for a decision.
    pub fn decide_maintenance_window(
        &mut self,
        id: i64,
        approve: bool,
        by: i64,
        now: Millis,
    ) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "UPDATE maintenance_windows SET status = ?2, decided_by = ?3, decided_at = ?4
             WHERE id = ?1 AND status = 'requested'",
            params![id, if approve { "approved" } else { "rejected" }, by, now],
        )? == 1)
    }

    pub fn acknowledge_maintenance_report(
        &mut self,
        id: i64,
        by: i64,
        comment: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "UPDATE maintenance_windows
             SET acknowledged_by = ?2, acknowledged_at = ?3, acknowledgement = ?4
             WHERE id = ?1 AND status = 'approved' AND acknowledged_at IS NULL",
            params![id, by, now, comment],
        )? == 1)
    }

    pub fn insert_certificate(&mut self, c: &CertificateRow) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO certificates (serial, kind, subject, account_id, device_id, not_before,
                 not_after, issued_at, issued_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                c.serial,
                c.kind,
                c.subject,
                c.account_id,
                c.device_id,
                c.not_before,
                c.not_after,
                c.issued_at,
                c.issued_by
            ],
        )?;
        Ok(())
    }

    /// Revokes a certificate; false if it is unknown or already revoked.
    pub fn revoke_certificate(
        &mut self,
        serial: &str,
        reason: &str,
        by: Option<i64>,
        now: Millis,
    ) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "UPDATE certificates SET revoked_at = ?2, revoke_reason = ?3, revoked_by = ?4
             WHERE serial = ?1 AND revoked_at IS NULL",
            params![serial, now, reason, by],
        )? == 1)
    }

    pub fn insert_emergency_access(
        &mut self,
        account_id: i64,
        patient_id: &str,
        reason: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<i64, StoreError> {
        let inserted: i64 = self.conn.query_row(
            "INSERT INTO emergency_access (account_id, patient_id, reason, started_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            params![account_id, patient_id, reason, now, expires_at],
            |r| r.get(0),
        )?;
        Ok(inserted)
    }

    /// Records that a sealed emergency account signed in (kind `account`).
    pub fn insert_emergency_account_use(
        &mut self,
        account_id: i64,
        now: Millis,
        expires_at: Millis,
    ) -> Result<i64, StoreError> {
        let inserted: i64 = self.conn.query_row(
            "INSERT INTO emergency_access (kind, account_id, patient_id, reason, started_at, expires_at)
             VALUES ('account', ?1, NULL, '非常用アカウントでのログイン', ?2, ?3) RETURNING id",
            params![account_id, now, expires_at],
            |r| r.get(0),
        )?;
        self.conn.execute(
            "UPDATE emergency_accounts SET used_at = ?2 WHERE account_id = ?1",
            params![account_id, now],
        )?;
        Ok(inserted)
    }

    /// Marks (or unmarks) an account as a sealed emergency account.
    pub fn set_emergency_account(&mut self, account_id: i64, yes: bool) -> Result<(), StoreError> {
        if yes {
            self.conn.execute(
                "INSERT INTO emergency_accounts (account_id, used_at) VALUES (?1, NULL) ON CONFLICT DO NOTHING",
                [account_id],
            )?;
        } else {
            self.conn.execute(
                "DELETE FROM emergency_accounts WHERE account_id = ?1",
                [account_id],
            )?;
        }
        Ok(())
    }

    /// New credentials make a used emergency account usable again.
    pub fn rearm_emergency_account(&mut self, account_id: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE emergency_accounts SET used_at = NULL WHERE account_id = ?1",
            [account_id],
        )?;
        Ok(())
    }

    pub fn end_emergency_access(&mut self, id: i64, now: Millis) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "UPDATE emergency_access SET ended_at = ?2 WHERE id = ?1 AND ended_at IS NULL",
            params![id, now],
        )? == 1)
    }

    pub fn review_emergency_access(
        &mut self,
        id: i64,
        by: i64,
        comment: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "UPDATE emergency_access SET reviewed_by = ?2, reviewed_at = ?3, review_comment = ?4
             WHERE id = ?1 AND reviewed_at IS NULL",
            params![id, by, now, comment],
        )? == 1)
    }

    pub fn set_role_client_cert(&mut self, code: &str, required: bool) -> Result<(), StoreError> {
        if required {
            self.conn.execute(
                "INSERT INTO client_cert_roles (role_code) VALUES (?1) ON CONFLICT DO NOTHING",
                [code],
            )?;
        } else {
            self.conn
                .execute("DELETE FROM client_cert_roles WHERE role_code = ?1", [code])?;
        }
        Ok(())
    }

    pub fn set_role_two_factor(&mut self, code: &str, required: bool) -> Result<(), StoreError> {
        if required {
            self.conn.execute(
                "INSERT INTO two_factor_roles (role_code) VALUES (?1) ON CONFLICT DO NOTHING",
                [code],
            )?;
        } else {
            self.conn
                .execute("DELETE FROM two_factor_roles WHERE role_code = ?1", [code])?;
        }
        Ok(())
    }

    /// Locks (Some) or unlocks (None) a session; unlocking also counts as activity.
    pub fn set_session_locked(
        &mut self,
        token_hash: &str,
        locked_at: Option<Millis>,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE sessions SET locked_at = ?2, last_seen_at = CASE WHEN CAST(?2 AS BIGINT) IS NULL THEN ?3 ELSE last_seen_at END
             WHERE token_hash = ?1",
            params![token_hash, locked_at, now],
        )?;
        Ok(())
    }

    pub fn touch_session(&mut self, token_hash: &str, now: Millis) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE sessions SET last_seen_at = ?2 WHERE token_hash = ?1")?
            .execute(params![token_hash, now])?;
        Ok(())
    }

    pub fn revoke_session(&mut self, token_hash: &str, now: Millis) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE sessions SET revoked_at = ?2 WHERE token_hash = ?1 AND revoked_at IS NULL",
            params![token_hash, now],
        )?;
        Ok(n > 0)
    }

    /// Ends every login session of an account (API tokens survive a password change).
    pub fn revoke_sessions_of(
        &mut self,
        account_id: i64,
        include_tokens: bool,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE sessions SET revoked_at = ?2 WHERE account_id = ?1 AND revoked_at IS NULL AND (?3 OR is_api_token = 0)",
            params![account_id, now, include_tokens],
        )?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn insert_patient(
        &mut self,
        id: &str,
        name_kanji: &str,
        name_kana: &str,
        kana_key: &str,
        birth_date: &str,
        sex: &str,
        now: Millis,
        by: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO patients (id, name_kanji, name_kana, kana_key, birth_date, sex, created_at, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![id, name_kanji, name_kana, kana_key, birth_date, sex, now, by],
        )?;
        Ok(())
    }

    /// Names a record by another system's identifier; false if that identifier is taken.
    pub fn insert_record_identifier(
        &mut self,
        system: &str,
        value: &str,
        record_id: i64,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT INTO record_identifiers (system, value, record_id) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
            params![system, value, record_id],
        )?;
        Ok(n == 1)
    }

    pub fn insert_record(
        &mut self,
        patient_id: &str,
        kind: &str,
        now: Millis,
        by: i64,
    ) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "INSERT INTO records (patient_id, kind, created_at, created_by) VALUES (?1, ?2, ?3, ?4) RETURNING id",
            params![patient_id, kind, now, by],
            |r| r.get(0),
        )?)
    }

    pub fn insert_version(&mut self, v: &VersionRow) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO versions (record_id, version_no, state, kind, author_id, enterer_id, content_sha256,
                    predecessor, reason, created_at, finalised_at, rejection_reason, ledger_index)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                v.record_id,
                v.version_no,
                v.state,
                v.kind,
                v.author_id,
                v.enterer_id,
                v.content_sha256,
                v.predecessor,
                v.reason,
                v.created_at,
                v.finalised_at,
                v.rejection_reason,
                v.ledger_index
            ])?;
        Ok(())
    }

    /// Rewrites the mutable part of a head version (a draft or a pending proxy entry). The
    /// database refuses this for finalised versions.
    pub fn update_version(&mut self, v: &VersionRow) -> Result<(), StoreError> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE versions SET state = ?3, content_sha256 = ?4, finalised_at = ?5, rejection_reason = ?6,
                    ledger_index = ?7
                 WHERE record_id = ?1 AND version_no = ?2",
            )?
            .execute(params![
                v.record_id,
                v.version_no,
                v.state,
                v.content_sha256,
                v.finalised_at,
                v.rejection_reason,
                v.ledger_index
            ])?;
        if n != 1 {
            return Err(StoreError::Corrupt(format!(
                "version {}/{} not found",
                v.record_id, v.version_no
            )));
        }
        Ok(())
    }

    pub fn insert_blob(
        &mut self,
        sha256: &str,
        size: u64,
        media_type: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("INSERT INTO blobs (sha256, size, media_type, created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING")?
            .execute(params![sha256, size as i64, media_type, now])?;
        Ok(())
    }

    pub fn insert_checkpoint(
        &mut self,
        size: u64,
        root: &Hash,
        now: Millis,
        note: &str,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO checkpoints (size, root, created_at, note) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            params![size as i64, &root[..], now, note],
        )?;
        Ok(())
    }
}
