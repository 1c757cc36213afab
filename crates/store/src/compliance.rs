//! Rows of the compliance pillar: assessments and answers, evidence, the asset ledger, the
//! risk register, the incident contact chart and the facility's registers.

use crate::sql::{OptionalExtension, Row, params};
use mamori_compliance::assets::Asset;
use mamori_compliance::registers::{Entry, Register};
use mamori_compliance::risks::Risk;
use mamori_domain::Millis;
use serde::Serialize;

use crate::{Reader, StoreError, WriteTx};

#[derive(Debug, Clone, Serialize)]
pub struct AssessmentRow {
    pub id: i64,
    pub catalogue_id: String,
    pub title: String,
    pub assessed_on: String,
    pub created_by: Option<i64>,
    pub created_at: Millis,
    pub closed_at: Option<Millis>,
    pub closed_by: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AnswerRow {
    pub item_id: String,
    pub answer: String,
    /// `declared` (a person) or `observed` (frozen when the assessment was closed).
    pub source: String,
    pub owner: String,
    pub due: Option<String>,
    pub note: String,
    /// The observation as JSON, for observed rows.
    pub observation: Option<String>,
    pub answered_by: Option<i64>,
    pub answered_at: Millis,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvidenceRow {
    pub id: i64,
    pub assessment_id: i64,
    pub item_id: String,
    pub kind: String,
    pub name: String,
    pub url: Option<String>,
    pub sha256: Option<String>,
    pub media_type: Option<String>,
    pub size: Option<i64>,
    pub added_by: i64,
    pub added_at: Millis,
}

#[derive(Debug, Clone, Serialize)]
pub struct AssetRow {
    pub id: i64,
    #[serde(flatten)]
    pub asset: Asset,
    pub mds_sha256: Option<String>,
    pub mds_name: Option<String>,
    pub updated_at: Millis,
}

#[derive(Debug, Clone, Serialize)]
pub struct RiskRow {
    pub id: i64,
    pub seed_key: Option<String>,
    #[serde(flatten)]
    pub risk: Risk,
    pub updated_at: Millis,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContactRow {
    pub id: i64,
    /// internal | vendor | mhlw | police | other
    pub category: String,
    pub name: String,
    pub organisation: String,
    pub phone: String,
    pub email: String,
    pub note: String,
    pub position: i64,
}

fn assessment(r: &Row<'_>) -> crate::sql::Result<AssessmentRow> {
    Ok(AssessmentRow {
        id: r.get(0)?,
        catalogue_id: r.get(1)?,
        title: r.get(2)?,
        assessed_on: r.get(3)?,
        created_by: r.get(4)?,
        created_at: r.get(5)?,
        closed_at: r.get(6)?,
        closed_by: r.get(7)?,
    })
}

const ASSESSMENT: &str = "SELECT id, catalogue_id, title, assessed_on, created_by, created_at, closed_at, closed_by FROM compliance_assessments";

fn asset(r: &Row<'_>) -> crate::sql::Result<AssetRow> {
    Ok(AssetRow {
        id: r.get(0)?,
        asset: Asset {
            name: r.get(1)?,
            kind: r.get(2)?,
            location: r.get(3)?,
            owner: r.get(4)?,
            os: r.get(5)?,
            patched_on: r.get(6)?,
            remote_maintenance: r.get(7)?,
            maintainer: r.get(8)?,
            vendor: r.get(9)?,
            mds_sds: r.get(10)?,
            connection_restriction: r.get(11)?,
            note: r.get(12)?,
        },
        mds_sha256: r.get(13)?,
        mds_name: r.get(14)?,
        updated_at: r.get(15)?,
    })
}

const ASSET: &str = "SELECT id, name, kind, location, owner, os, patched_on, remote_maintenance, maintainer, vendor, mds_sds, connection_restriction, note, mds_sha256, mds_name, updated_at FROM compliance_assets";

fn risk(r: &Row<'_>) -> crate::sql::Result<RiskRow> {
    Ok(RiskRow {
        id: r.get(0)?,
        seed_key: r.get(1)?,
        risk: Risk {
            asset: r.get(2)?,
            threat: r.get(3)?,
            likelihood: r.get(4)?,
            impact: r.get(5)?,
            control: r.get(6)?,
            feature: r.get(7)?,
            residual: r.get(8)?,
            owner: r.get(9)?,
        },
        updated_at: r.get(10)?,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct RegisterRow {
    pub id: i64,
    pub register: Register,
    pub entry: Entry,
    pub file_sha256: Option<String>,
    pub file_name: Option<String>,
    /// `person`, or `mamori` for what it recorded itself (an erasure, an encrypted export).
    pub source: String,
    pub recorded_by: Option<i64>,
    pub recorded_at: Millis,
    pub updated_at: Millis,
}

fn register_row(r: &Row<'_>) -> crate::sql::Result<RegisterRow> {
    let code: String = r.get(1)?;
    let json: String = r.get(2)?;
    let bad = |e: String| {
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, e.into())
    };
    Ok(RegisterRow {
        id: r.get(0)?,
        register: Register::parse(&code).ok_or_else(|| bad(format!("unknown register {code}")))?,
        entry: serde_json::from_str(&json).map_err(|e| bad(e.to_string()))?,
        file_sha256: r.get(3)?,
        file_name: r.get(4)?,
        source: r.get(5)?,
        recorded_by: r.get(6)?,
        recorded_at: r.get(7)?,
        updated_at: r.get(8)?,
    })
}

const REGISTER_COLUMNS: &str =
    "id, register, entry, file_sha256, file_name, source, recorded_by, recorded_at, updated_at";

impl Reader<'_> {
    /// One register's entries, newest first.
    pub fn register_entries(&self, reg: Register) -> Result<Vec<RegisterRow>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {REGISTER_COLUMNS} FROM compliance_registers WHERE register = ?1 ORDER BY id DESC"
        ))?;
        Ok(st
            .query_map([reg.code()], register_row)?
            .collect::<Result<_, _>>()?)
    }

    pub fn register_entry(&self, id: i64) -> Result<Option<RegisterRow>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {REGISTER_COLUMNS} FROM compliance_registers WHERE id = ?1"
            ))?
            .query_row([id], register_row)
            .optional()?)
    }

    pub fn assessments(&self) -> Result<Vec<AssessmentRow>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(&format!("{ASSESSMENT} ORDER BY assessed_on DESC, id DESC"))?;
        Ok(st.query_map((), assessment)?.collect::<Result<_, _>>()?)
    }

    pub fn assessment(&self, id: i64) -> Result<Option<AssessmentRow>, StoreError> {
        Ok(self
            .conn
            .query_row(&format!("{ASSESSMENT} WHERE id = ?1"), [id], assessment)
            .optional()?)
    }

    pub fn answers(&self, assessment_id: i64) -> Result<Vec<AnswerRow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT item_id, answer, source, owner, due, note, observation, answered_by, answered_at
             FROM compliance_answers WHERE assessment_id = ?1",
        )?;
        Ok(st
            .query_map([assessment_id], |r| {
                Ok(AnswerRow {
                    item_id: r.get(0)?,
                    answer: r.get(1)?,
                    source: r.get(2)?,
                    owner: r.get(3)?,
                    due: r.get(4)?,
                    note: r.get(5)?,
                    observation: r.get(6)?,
                    answered_by: r.get(7)?,
                    answered_at: r.get(8)?,
                })
            })?
            .collect::<Result<_, _>>()?)
    }

    pub fn compliance_evidence(&self, assessment_id: i64) -> Result<Vec<EvidenceRow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, assessment_id, item_id, kind, name, url, sha256, media_type, size, added_by, added_at
             FROM compliance_evidence WHERE assessment_id = ?1 ORDER BY id",
        )?;
        Ok(st
            .query_map([assessment_id], |r| {
                Ok(EvidenceRow {
                    id: r.get(0)?,
                    assessment_id: r.get(1)?,
                    item_id: r.get(2)?,
                    kind: r.get(3)?,
                    name: r.get(4)?,
                    url: r.get(5)?,
                    sha256: r.get(6)?,
                    media_type: r.get(7)?,
                    size: r.get(8)?,
                    added_by: r.get(9)?,
                    added_at: r.get(10)?,
                })
            })?
            .collect::<Result<_, _>>()?)
    }

    pub fn assets(&self) -> Result<Vec<AssetRow>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(&format!("{ASSET} ORDER BY kind, name"))?;
        Ok(st.query_map((), asset)?.collect::<Result<_, _>>()?)
    }

    pub fn asset(&self, id: i64) -> Result<Option<AssetRow>, StoreError> {
        Ok(self
            .conn
            .query_row(&format!("{ASSET} WHERE id = ?1"), [id], asset)
            .optional()?)
    }

    pub fn risks(&self) -> Result<Vec<RiskRow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, seed_key, asset, threat, likelihood, impact, control, feature, residual, owner, updated_at
             FROM compliance_risks ORDER BY likelihood * impact DESC, id",
        )?;
        Ok(st.query_map((), risk)?.collect::<Result<_, _>>()?)
    }

    pub fn contacts(&self) -> Result<Vec<ContactRow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, category, name, organisation, phone, email, note, position
             FROM incident_contacts ORDER BY position, id",
        )?;
        Ok(st
            .query_map((), |r| {
                Ok(ContactRow {
                    id: r.get(0)?,
                    category: r.get(1)?,
                    name: r.get(2)?,
                    organisation: r.get(3)?,
                    phone: r.get(4)?,
                    email: r.get(5)?,
                    note: r.get(6)?,
                    position: r.get(7)?,
                })
            })?
            .collect::<Result<_, _>>()?)
    }
}

impl WriteTx<'_> {
    /// Adds an entry (`id` None) or replaces one entry's fields, keeping its file unless a new
    /// one is given. Entries are never deleted: a register is evidence.
    #[allow(clippy::too_many_arguments)]
    pub fn save_register_entry(
        &mut self,
        id: Option<i64>,
        reg: Register,
        entry: &Entry,
        file: Option<(&str, &str)>,
        source: &str,
        by: Option<i64>,
        now: Millis,
    ) -> Result<Option<i64>, StoreError> {
        let json = serde_json::to_string(entry).map_err(|e| StoreError::Schema(e.to_string()))?;
        let (sha, name) = file.unzip();
        match id {
            Some(id) => {
                let n = self.conn.execute(
                    "UPDATE compliance_registers SET entry = ?3, file_sha256 = COALESCE(?4, file_sha256),
                     file_name = COALESCE(?5, file_name), updated_at = ?6
                     WHERE id = ?1 AND register = ?2",
                    params![id, reg.code(), json, sha, name, now],
                )?;
                Ok((n == 1).then_some(id))
            }
            None => {
                let inserted: i64 = self.conn.query_row(
                    "INSERT INTO compliance_registers (register, entry, file_sha256, file_name, source, recorded_by, recorded_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) RETURNING id",
                    params![reg.code(), json, sha, name, source, by, now],
                    |r| r.get(0),
                )?;
                Ok(Some(inserted))
            }
        }
    }

    pub fn insert_assessment(
        &mut self,
        catalogue_id: &str,
        title: &str,
        assessed_on: &str,
        by: Option<i64>,
        now: Millis,
    ) -> Result<i64, StoreError> {
        let inserted: i64 = self.conn.query_row(
            "INSERT INTO compliance_assessments (catalogue_id, title, assessed_on, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            params![catalogue_id, title, assessed_on, by, now],
            |r| r.get(0),
        )?;
        Ok(inserted)
    }

    pub fn close_assessment(&mut self, id: i64, by: i64, now: Millis) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE compliance_assessments SET closed_at = ?2, closed_by = ?3 WHERE id = ?1 AND closed_at IS NULL",
            params![id, now, by],
        )?;
        Ok(())
    }

    pub fn upsert_answer(&mut self, assessment_id: i64, a: &AnswerRow) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO compliance_answers (assessment_id, item_id, answer, source, owner, due, note, observation, answered_by, answered_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (assessment_id, item_id) DO UPDATE SET answer = excluded.answer, source = excluded.source,
               owner = excluded.owner, due = excluded.due, note = excluded.note, observation = excluded.observation,
               answered_by = excluded.answered_by, answered_at = excluded.answered_at",
            params![
                assessment_id,
                a.item_id,
                a.answer,
                a.source,
                a.owner,
                a.due,
                a.note,
                a.observation,
                a.answered_by,
                a.answered_at
            ],
        )?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn insert_compliance_evidence(
        &mut self,
        assessment_id: i64,
        item_id: &str,
        kind: &str,
        name: &str,
        url: Option<&str>,
        blob: Option<(&str, &str, u64)>,
        by: i64,
        now: Millis,
    ) -> Result<i64, StoreError> {
        let inserted: i64 = self.conn.query_row(
            "INSERT INTO compliance_evidence (assessment_id, item_id, kind, name, url, sha256, media_type, size, added_by, added_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
            params![
                assessment_id,
                item_id,
                kind,
                name,
                url,
                blob.map(|b| b.0),
                blob.map(|b| b.1),
                blob.map(|b| b.2 as i64),
                by,
                now
            ],
            |r| r.get(0),
        )?;
        Ok(inserted)
    }

    /// Inserts a device, or replaces the one with the same name; returns its id.
    pub fn upsert_asset(&mut self, a: &Asset, by: i64, now: Millis) -> Result<i64, StoreError> {
        self.conn.execute(
            "INSERT INTO compliance_assets (name, kind, location, owner, os, patched_on, remote_maintenance, maintainer, vendor, mds_sds, connection_restriction, note, updated_at, updated_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, location = excluded.location, owner = excluded.owner,
               os = excluded.os, patched_on = excluded.patched_on, remote_maintenance = excluded.remote_maintenance,
               maintainer = excluded.maintainer, vendor = excluded.vendor, mds_sds = excluded.mds_sds,
               connection_restriction = excluded.connection_restriction, note = excluded.note,
               updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            params![
                a.name,
                a.kind,
                a.location,
                a.owner,
                a.os,
                a.patched_on,
                a.remote_maintenance,
                a.maintainer,
                a.vendor,
                a.mds_sds,
                a.connection_restriction,
                a.note,
                now,
                by
            ],
        )?;
        Ok(self.conn.query_row(
            "SELECT id FROM compliance_assets WHERE name = ?1",
            [&a.name],
            |r| r.get(0),
        )?)
    }

    pub fn set_asset_mds(
        &mut self,
        id: i64,
        sha256: &str,
        name: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "UPDATE compliance_assets SET mds_sha256 = ?2, mds_name = ?3, mds_sds = 'received', updated_at = ?4 WHERE id = ?1",
            params![id, sha256, name, now],
        )? == 1)
    }

    pub fn delete_asset(&mut self, id: i64) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM compliance_assets WHERE id = ?1", [id])?
            == 1)
    }

    /// Inserts (id `None`) or updates a risk; a seed key makes seeding idempotent.
    pub fn save_risk(
        &mut self,
        id: Option<i64>,
        seed_key: Option<&str>,
        r: &Risk,
        now: Millis,
    ) -> Result<i64, StoreError> {
        match id {
            Some(id) => {
                self.conn.execute(
                    "UPDATE compliance_risks SET asset = ?2, threat = ?3, likelihood = ?4, impact = ?5, control = ?6, feature = ?7, residual = ?8, owner = ?9, updated_at = ?10 WHERE id = ?1",
                    params![id, r.asset, r.threat, r.likelihood, r.impact, r.control, r.feature, r.residual, r.owner, now],
                )?;
                Ok(id)
            }
            None => {
                let inserted: Option<i64> = self.conn.query_row(
                    "INSERT INTO compliance_risks (seed_key, asset, threat, likelihood, impact, control, feature, residual, owner, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING RETURNING id",
                    params![seed_key, r.asset, r.threat, r.likelihood, r.impact, r.control, r.feature, r.residual, r.owner, now],
                    |r| r.get(0),
                ).optional()?;
                // A seeded risk that is already there keeps its row (and its id).
                match inserted {
                    Some(id) => Ok(id),
                    None => Ok(self.conn.query_row(
                        "SELECT id FROM compliance_risks WHERE seed_key = ?1",
                        [seed_key],
                        |r| r.get(0),
                    )?),
                }
            }
        }
    }

    pub fn delete_risk(&mut self, id: i64) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM compliance_risks WHERE id = ?1", [id])?
            == 1)
    }

    /// Replaces the whole contact chart (it is edited as one form).
    pub fn replace_contacts(&mut self, rows: &[ContactRow]) -> Result<(), StoreError> {
        self.conn.execute("DELETE FROM incident_contacts", ())?;
        for (i, c) in rows.iter().enumerate() {
            self.conn.execute(
                "INSERT INTO incident_contacts (category, name, organisation, phone, email, note, position) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![c.category, c.name, c.organisation, c.phone, c.email, c.note, i as i64],
            )?;
        }
        Ok(())
    }
}
