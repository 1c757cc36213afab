use crate::ErrorCode;
use std::sync::Arc;

use mamori_domain::audit::actions;
use mamori_domain::patient::{
    Sex, kana_key, validate_birth_date, validate_names, validate_patient_id,
};
use mamori_domain::permission::Action;
use mamori_store::Patient;
use serde::Deserialize;

use crate::error::{Result, ServiceError};
use crate::{Principal, Service, Target};

#[derive(Debug, Clone, Deserialize)]
pub struct NewPatient {
    pub id: String,
    pub name_kanji: String,
    pub name_kana: String,
    pub birth_date: String,
    pub sex: String,
}

/// Anyone who may read some record kind, or register patients, may look patients up.
fn may_find_patients(p: &Principal) -> Result<()> {
    if p.role.allows(Action::Read, None) || p.role.allows(Action::RegisterPatient, None) {
        Ok(())
    } else {
        Err(ServiceError::forbidden(format!(
            "{}に患者の検索・閲覧権限がありません",
            p.role.name_ja
        )))
    }
}

impl Service {
    pub async fn create_patient(
        self: &Arc<Self>,
        p: &Principal,
        new: NewPatient,
    ) -> Result<Patient> {
        let pc = p.clone();
        let now = self.now();
        let today = crate::ledger::audit::jst_date(now);
        let mut t = Target::default();
        if validate_patient_id(&new.id).is_ok() {
            t.patient = Some(new.id.clone());
        }
        self.write_audited(Some(p), actions::PATIENT_CREATED, t, move |_, tx, _| {
            pc.require(Action::RegisterPatient, None)?;
            validate_patient_id(&new.id).map_err(|e| ServiceError::from(e).with_field("id"))?;
            let key = validate_names(&new.name_kanji, &new.name_kana)
                .map_err(|e| ServiceError::from(e).with_field("name_kana"))?;
            validate_birth_date(&new.birth_date, &today)
                .map_err(|e| ServiceError::from(e).with_field("birth_date"))?;
            let sex = Sex::parse(&new.sex).map_err(|e| ServiceError::from(e).with_field("sex"))?;
            if tx.read().patient(&new.id)?.is_some() {
                return Err(ServiceError::new(
                    ErrorCode::Conflict,
                    "この患者IDは既に登録されています",
                )
                .with_field("id"));
            }
            tx.insert_patient(
                &new.id,
                new.name_kanji.trim(),
                new.name_kana.trim(),
                &key,
                &new.birth_date,
                sex.as_str(),
                now,
                pc.account.id,
            )?;
            tx.read()
                .patient(&new.id)?
                .ok_or_else(|| ServiceError::internal("patient vanished"))
        })
        .await
    }

    /// Finds patients by ID prefix or kana prefix. The query itself is recorded.
    pub async fn search_patients(self: &Arc<Self>, p: &Principal, q: &str) -> Result<Vec<Patient>> {
        let pc = p.clone();
        let q = q.trim().to_owned();
        self.read_audited(p, actions::PATIENT_SEARCH, move |_, r, t| {
            t.detail("q", q.clone());
            may_find_patients(&pc)?;
            if q.is_empty() || q.chars().count() > 50 {
                return Err(ServiceError::invalid(
                    "q",
                    "患者IDかフリガナを50文字以内で入力してください",
                ));
            }
            let id_prefix = if validate_patient_id(&q).is_ok() {
                q.as_str()
            } else {
                ""
            };
            let kana = kana_key(&q).unwrap_or_default();
            if id_prefix.is_empty() && kana.is_empty() {
                return Err(ServiceError::invalid(
                    "q",
                    "患者IDかフリガナ（カタカナ・ひらがな）で検索してください",
                ));
            }
            let found = r.search_patients(id_prefix, &kana, 50)?;
            t.detail("results", found.len());
            Ok(found)
        })
        .await
    }

    pub async fn patient(self: &Arc<Self>, p: &Principal, id: &str) -> Result<Patient> {
        let pc = p.clone();
        let id = id.to_owned();
        self.read_audited(p, actions::PATIENT_READ, move |_, r, t| {
            if validate_patient_id(&id).is_ok() {
                t.patient = Some(id.clone());
            }
            may_find_patients(&pc)?;
            r.patient(&id)?
                .ok_or_else(|| ServiceError::not_found("患者"))
        })
        .await
    }
}
