//! The registers the checklist asks for: the facility's security organisation, the asset
//! ledger (with MDS/SDS documents), the risk register and the incident contact chart.

use std::sync::Arc;

use mamori_compliance::assets::{self, Asset};
use mamori_compliance::risks::{self, Risk};
use mamori_domain::audit::actions;
use mamori_store::{AssetRow, ContactRow, RiskRow};

use crate::compliance::observe::{PROFILE_KEY, Profile, profile_in};
use crate::compliance::{kept_file, may_assess};
use crate::error::{Result, ServiceError};
use crate::{Principal, Service, Target};

/// Largest asset CSV accepted.
pub const MAX_CSV_BYTES: usize = 5 * 1024 * 1024;

const RISKS_SEEDED: &str = "compliance.risks_seeded";

pub const CONTACT_CATEGORIES: &[(&str, &str, &str)] = &[
    ("internal", "組織内", "Inside the facility"),
    ("vendor", "事業者", "Vendors"),
    ("mhlw", "厚生労働省", "MHLW"),
    ("police", "警察", "Police"),
    ("other", "その他", "Other"),
];

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ContactInput {
    pub category: String,
    pub name: String,
    #[serde(default)]
    pub organisation: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub note: String,
}

fn short(field: &'static str, v: &str, max: usize) -> Result<String> {
    let v = v.trim();
    if v.chars().count() > max {
        return Err(ServiceError::invalid(
            field,
            format!("{max}文字以内にしてください"),
        ));
    }
    Ok(v.to_owned())
}

fn date_or_empty(field: &'static str, v: &str) -> Result<String> {
    let v = v.trim();
    if v.is_empty() || assets::valid_date(v) {
        Ok(v.to_owned())
    } else {
        Err(ServiceError::invalid(
            field,
            "日付は YYYY-MM-DD の形で入力してください",
        ))
    }
}

impl Service {
    pub async fn compliance_profile(self: &Arc<Self>, p: &Principal) -> Result<Profile> {
        let pc = p.clone();
        self.read_audited(p, actions::COMPLIANCE_VIEWED, move |_, r, t| {
            t.detail("query", "profile");
            may_assess(&pc)?;
            profile_in(r)
        })
        .await
    }

    pub async fn save_compliance_profile(
        self: &Arc<Self>,
        p: &Principal,
        input: Profile,
    ) -> Result<()> {
        let profile = Profile {
            security_officer: short("security_officer", &input.security_officer, 200)?,
            director: short("director", &input.director, 200)?,
            rules_adopted_on: date_or_empty("rules_adopted_on", &input.rules_adopted_on)?,
            bcp_adopted_on: date_or_empty("bcp_adopted_on", &input.bcp_adopted_on)?,
        };
        let json = serde_json::to_string(&profile).map_err(ServiceError::internal)?;
        let pc = p.clone();
        let mut t = Target::default();
        t.detail(
            "profile",
            serde_json::to_value(&profile).unwrap_or_default(),
        );
        self.write_audited(Some(p), actions::COMPLIANCE_PROFILE, t, move |_, tx, _| {
            may_assess(&pc)?;
            tx.set_meta(PROFILE_KEY, &json)?;
            Ok(())
        })
        .await
    }

    pub async fn assets(self: &Arc<Self>, p: &Principal) -> Result<Vec<AssetRow>> {
        let pc = p.clone();
        self.read_audited(p, actions::COMPLIANCE_VIEWED, move |_, r, t| {
            t.detail("query", "assets");
            may_assess(&pc)?;
            Ok(r.assets()?)
        })
        .await
    }

    /// Adds a device or replaces the one with the same name.
    pub async fn save_asset(self: &Arc<Self>, p: &Principal, a: Asset) -> Result<i64> {
        let a = a.checked().map_err(|m| ServiceError::invalid("asset", m))?;
        let pc = p.clone();
        let now = self.now();
        let mut t = Target::default();
        t.detail("asset", serde_json::to_value(&a).unwrap_or_default());
        self.write_audited(Some(p), actions::ASSET_SAVED, t, move |_, tx, _| {
            may_assess(&pc)?;
            Ok(tx.upsert_asset(&a, pc.account.id, now)?)
        })
        .await
    }

    /// Imports a CSV in the documented format: all rows or none; every bad row is named.
    pub async fn import_assets(self: &Arc<Self>, p: &Principal, bytes: &[u8]) -> Result<usize> {
        self.gate(p, actions::ASSET_IMPORTED, may_assess(p)).await?;
        if bytes.len() > MAX_CSV_BYTES {
            return Err(ServiceError::invalid(
                "file",
                "CSV が大きすぎます（5MB まで）",
            ));
        }
        let rows = assets::parse_csv(bytes).map_err(|errors| {
            let lines: Vec<String> = errors.iter().take(50).map(ToString::to_string).collect();
            let more = errors.len().saturating_sub(50);
            ServiceError::invalid(
                "file",
                format!(
                    "取り込めない行があるため、何も取り込んでいません。{}{}",
                    lines.join(" ／ "),
                    if more > 0 {
                        format!(" ほか {more} 行")
                    } else {
                        String::new()
                    }
                ),
            )
        })?;
        let pc = p.clone();
        let now = self.now();
        let n = rows.len();
        let mut t = Target::default();
        t.detail("rows", n);
        t.detail(
            "names",
            rows.iter().map(|a| a.name.clone()).collect::<Vec<_>>(),
        );
        self.write_audited(Some(p), actions::ASSET_IMPORTED, t, move |_, tx, _| {
            may_assess(&pc)?;
            for a in &rows {
                tx.upsert_asset(a, pc.account.id, now)?;
            }
            Ok(n)
        })
        .await
    }

    pub async fn assets_csv(self: &Arc<Self>, p: &Principal) -> Result<Vec<u8>> {
        let rows = self.assets(p).await?;
        Ok(assets::to_csv(
            &rows.into_iter().map(|r| r.asset).collect::<Vec<_>>(),
        ))
    }

    pub async fn delete_asset(self: &Arc<Self>, p: &Principal, id: i64) -> Result<()> {
        let pc = p.clone();
        let mut t = Target::default();
        t.detail("asset_id", id);
        self.write_audited(Some(p), actions::ASSET_DELETED, t, move |_, tx, t| {
            may_assess(&pc)?;
            let a = tx
                .read()
                .asset(id)?
                .ok_or_else(|| ServiceError::not_found("機器"))?;
            t.detail("name", a.asset.name);
            tx.delete_asset(id)?;
            Ok(())
        })
        .await
    }

    /// Files a vendor's MDS/SDS with a device (and marks it received).
    pub async fn attach_mds(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<()> {
        self.gate(p, actions::ASSET_SAVED, may_assess(p)).await?;
        let file = self.hold_file(name, &bytes)?;
        let pc = p.clone();
        let now = self.now();
        let mut t = Target::default();
        t.detail("asset_id", id);
        t.detail("mds", file.name.clone());
        t.detail("sha256", file.sha256());
        let files = vec![file.sha256().to_owned()];
        let written = self
            .write_audited(Some(p), actions::ASSET_SAVED, t, move |_, tx, _| {
                may_assess(&pc)?;
                file.insert(tx, now)?;
                if !tx.set_asset_mds(id, file.sha256(), &file.name, now)? {
                    return Err(ServiceError::not_found("機器"));
                }
                Ok(())
            })
            .await;
        self.discard_if_refused(&written, files).await;
        written
    }

    pub async fn mds_document(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
    ) -> Result<(String, String, Vec<u8>)> {
        let pc = p.clone();
        self.read_audited(p, actions::COMPLIANCE_VIEWED, move |this, r, t| {
            t.detail("asset_id", id);
            may_assess(&pc)?;
            let a = r
                .asset(id)?
                .ok_or_else(|| ServiceError::not_found("機器"))?;
            kept_file(this, r, (a.mds_sha256, a.mds_name), "MDS/SDS の文書")
        })
        .await
    }

    /// The risk register; seeded once with the common threats to medical institutions.
    pub async fn risks(self: &Arc<Self>, p: &Principal) -> Result<Vec<RiskRow>> {
        self.gate(p, actions::COMPLIANCE_VIEWED, may_assess(p))
            .await?;
        let seeded = self.store().read(|r| r.meta(RISKS_SEEDED)).await?;
        if seeded.is_none() {
            let pc = p.clone();
            let now = self.now();
            let mut t = Target::default();
            t.detail("seeded", risks::seeds().len());
            self.write_audited(Some(p), actions::RISK_SAVED, t, move |_, tx, _| {
                may_assess(&pc)?;
                for (key, r) in risks::seeds() {
                    tx.save_risk(None, Some(&key), &r, now)?;
                }
                tx.set_meta(RISKS_SEEDED, "1")?;
                Ok(())
            })
            .await?;
        }
        let pc = p.clone();
        self.read_audited(p, actions::COMPLIANCE_VIEWED, move |_, r, t| {
            t.detail("query", "risks");
            may_assess(&pc)?;
            Ok(r.risks()?)
        })
        .await
    }

    pub async fn save_risk(
        self: &Arc<Self>,
        p: &Principal,
        id: Option<i64>,
        risk: Risk,
    ) -> Result<i64> {
        let risk = risk
            .checked()
            .map_err(|(f, m)| ServiceError::invalid(f, m))?;
        let pc = p.clone();
        let now = self.now();
        let mut t = Target::default();
        t.detail("risk_id", id);
        t.detail("risk", serde_json::to_value(&risk).unwrap_or_default());
        self.write_audited(Some(p), actions::RISK_SAVED, t, move |_, tx, _| {
            may_assess(&pc)?;
            if let Some(id) = id
                && !tx.read().risks()?.iter().any(|r| r.id == id)
            {
                return Err(ServiceError::not_found("リスク"));
            }
            Ok(tx.save_risk(id, None, &risk, now)?)
        })
        .await
    }

    pub async fn delete_risk(self: &Arc<Self>, p: &Principal, id: i64) -> Result<()> {
        let pc = p.clone();
        let mut t = Target::default();
        t.detail("risk_id", id);
        self.write_audited(Some(p), actions::RISK_DELETED, t, move |_, tx, _| {
            may_assess(&pc)?;
            if !tx.delete_risk(id)? {
                return Err(ServiceError::not_found("リスク"));
            }
            Ok(())
        })
        .await
    }

    pub async fn contacts(self: &Arc<Self>, p: &Principal) -> Result<Vec<ContactRow>> {
        let pc = p.clone();
        self.read_audited(p, actions::COMPLIANCE_VIEWED, move |_, r, t| {
            t.detail("query", "contacts");
            may_assess(&pc)?;
            Ok(r.contacts()?)
        })
        .await
    }

    /// Replaces the contact chart; rows without a name are dropped (empty form lines).
    pub async fn save_contacts(
        self: &Arc<Self>,
        p: &Principal,
        input: Vec<ContactInput>,
    ) -> Result<usize> {
        let mut rows = Vec::new();
        for c in input.into_iter().filter(|c| !c.name.trim().is_empty()) {
            if !CONTACT_CATEGORIES.iter().any(|(k, _, _)| *k == c.category) {
                return Err(ServiceError::invalid("category", "区分を選んでください"));
            }
            rows.push(ContactRow {
                id: 0,
                category: c.category,
                name: short("name", &c.name, 200)?,
                organisation: short("organisation", &c.organisation, 200)?,
                phone: short("phone", &c.phone, 50)?,
                email: short("email", &c.email, 200)?,
                note: short("note", &c.note, 500)?,
                position: 0,
            });
        }
        if rows.len() > 200 {
            return Err(ServiceError::invalid("name", "連絡先は200件までです"));
        }
        let pc = p.clone();
        let n = rows.len();
        let mut t = Target::default();
        t.detail("contacts", n);
        self.write_audited(Some(p), actions::CONTACTS_SAVED, t, move |_, tx, _| {
            may_assess(&pc)?;
            tx.replace_contacts(&rows)?;
            Ok(n)
        })
        .await
    }
}
