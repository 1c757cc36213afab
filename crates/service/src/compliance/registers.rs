//! The facility's registers (disposal, take-out, training, outside storage): entries kept as
//! evidence — changed with the ledger recording each version, never deleted — each with one
//! file (a certificate, materials, a contract). What mamori does itself (erasing a backup
//! target, an encrypted export) enters the register in the same transaction as its ledger entry.

use std::sync::Arc;

use mamori_compliance::registers::{Entry, Register};
use mamori_domain::Millis;
use mamori_domain::audit::actions;
use mamori_store::{RegisterRow, WriteTx};

use crate::compliance::{kept_file, may_assess};
use crate::error::{Result, ServiceError};
use crate::{Principal, Service, Target};

/// A file mamori wrote itself for an entry (an erasure record).
pub(crate) struct OwnFile {
    pub sha256: String,
    pub name: String,
}

/// An entry mamori records itself, inside the transaction of the act it records.
pub(crate) fn record_own_entry(
    tx: &mut WriteTx<'_>,
    reg: Register,
    entry: Entry,
    file: Option<&OwnFile>,
    by: Option<i64>,
    now: Millis,
) -> Result<i64> {
    let entry = entry
        .checked(reg)
        .map_err(|(f, m)| ServiceError::internal(format!("{f}: {m}")))?;
    tx.save_register_entry(
        None,
        reg,
        &entry,
        file.map(|f| (f.sha256.as_str(), f.name.as_str())),
        "mamori",
        by,
        now,
    )?
    .ok_or_else(|| ServiceError::internal("register entry not written"))
}

impl Service {
    pub async fn register_entries(
        self: &Arc<Self>,
        p: &Principal,
        reg: Register,
    ) -> Result<Vec<RegisterRow>> {
        let pc = p.clone();
        self.read_audited(p, actions::COMPLIANCE_VIEWED, move |_, r, t| {
            t.detail("query", reg.code());
            may_assess(&pc)?;
            Ok(r.register_entries(reg)?)
        })
        .await
    }

    /// The people a training entry can name: active accounts of persons, (login, name).
    pub async fn register_people(self: &Arc<Self>, p: &Principal) -> Result<Vec<(String, String)>> {
        let pc = p.clone();
        self.read_audited(p, actions::COMPLIANCE_VIEWED, move |_, r, t| {
            t.detail("query", "people");
            may_assess(&pc)?;
            Ok(r.accounts()?
                .into_iter()
                .filter(|a| a.active && !a.is_service)
                .map(|a| (a.login, a.display_name))
                .collect())
        })
        .await
    }

    /// Adds an entry (`id` None) or records a new version of one; a file replaces the entry's
    /// file. Attendees must be accounts of this instance.
    pub async fn save_register_entry(
        self: &Arc<Self>,
        p: &Principal,
        reg: Register,
        id: Option<i64>,
        entry: Entry,
        file: Option<(String, Vec<u8>)>,
    ) -> Result<i64> {
        self.gate(p, actions::REGISTER_SAVED, may_assess(p)).await?;
        let entry = entry
            .checked(reg)
            .map_err(|(f, m)| ServiceError::invalid(f, m))?;
        let file = match file {
            Some((name, bytes)) if !bytes.is_empty() => Some(self.hold_file(&name, &bytes)?),
            _ => None,
        };
        let pc = p.clone();
        let now = self.now();
        let mut t = Target::default();
        t.detail("register", reg.code());
        t.detail("entry_id", id);
        t.detail("entry", serde_json::to_value(&entry).unwrap_or_default());
        if let Some(f) = &file {
            t.detail("file", f.name.clone());
            t.detail("sha256", f.sha256());
        }
        let files: Vec<String> = file.iter().map(|f| f.sha256().to_owned()).collect();
        let written = self
            .write_audited(Some(p), actions::REGISTER_SAVED, t, move |_, tx, t| {
                may_assess(&pc)?;
                if !entry.people.is_empty() {
                    let known: std::collections::HashSet<String> = tx
                        .read()
                        .accounts()?
                        .into_iter()
                        .filter(|a| !a.is_service)
                        .map(|a| a.login)
                        .collect();
                    if let Some(unknown) = entry.people.iter().find(|l| !known.contains(*l)) {
                        return Err(ServiceError::invalid(
                            "people",
                            format!("{unknown} というアカウントはありません"),
                        ));
                    }
                }
                let stored = match &file {
                    Some(f) => {
                        f.insert(tx, now)?;
                        Some((f.sha256(), f.name.as_str()))
                    }
                    None => None,
                };
                let id = tx
                    .save_register_entry(
                        id,
                        reg,
                        &entry,
                        stored,
                        "person",
                        Some(pc.account.id),
                        now,
                    )?
                    .ok_or_else(|| ServiceError::not_found("台帳の記録"))?;
                t.detail("entry_id", id);
                Ok(id)
            })
            .await;
        self.discard_if_refused(&written, files).await;
        written
    }

    pub async fn register_file(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
    ) -> Result<(String, String, Vec<u8>)> {
        let pc = p.clone();
        self.read_audited(p, actions::COMPLIANCE_VIEWED, move |this, r, t| {
            t.detail("register_entry", id);
            may_assess(&pc)?;
            let row = r
                .register_entry(id)?
                .ok_or_else(|| ServiceError::not_found("台帳の記録"))?;
            kept_file(this, r, (row.file_sha256, row.file_name), "台帳のファイル")
        })
        .await
    }
}
