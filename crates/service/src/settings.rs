//! Facility settings: 職種 roles and their grants, record kinds and retention periods.

use std::collections::BTreeSet;
use std::sync::Arc;

use mamori_domain::audit::actions;
use mamori_domain::kinds::{RecordKind, valid_kind_code};
use mamori_domain::permission::{Action, Grant, Role, default_roles, valid_role_code};
use serde::{Deserialize, Serialize};

use crate::error::{Result, ServiceError};
use crate::{Principal, Service, Target};

#[derive(Debug, Clone, Deserialize)]
pub struct RoleInput {
    pub code: String,
    pub name_ja: String,
    #[serde(default)]
    pub name_en: String,
    pub grants: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleView {
    #[serde(flatten)]
    pub role: Role,
    /// Grants beyond the built-in template of the same code (for built-in roles).
    pub extra_grants: Vec<Grant>,
}

impl Service {
    pub async fn roles(self: &Arc<Self>, p: &Principal) -> Result<Vec<RoleView>> {
        p.require(Action::AdminSettings, None)
            .or_else(|_| p.require(Action::AdminAccounts, None))?;
        let templates = default_roles();
        let roles = self.store.read(|r| r.roles()).await?;
        Ok(roles
            .into_iter()
            .map(|role| {
                let extra_grants = templates
                    .iter()
                    .find(|t| t.code == role.code)
                    .map(|t| role.extra_grants(t))
                    .unwrap_or_default();
                RoleView { role, extra_grants }
            })
            .collect())
    }

    pub async fn save_role(self: &Arc<Self>, p: &Principal, input: RoleInput) -> Result<Role> {
        let pc = p.clone();
        let now = self.now();
        let mut t = Target::default();
        t.detail("role", input.code.clone());
        t.detail("grants", input.grants.clone());
        self.write_audited(Some(p), actions::ROLE_SAVED, t, move |_, tx, _| {
            pc.require(Action::AdminSettings, None)?;
            if !valid_role_code(&input.code) {
                return Err(ServiceError::invalid(
                    "code",
                    "職種コードは英小文字・数字・_ で40文字以内にしてください",
                ));
            }
            let name = input.name_ja.trim();
            if name.is_empty() || name.chars().count() > 50 {
                return Err(ServiceError::invalid(
                    "name_ja",
                    "職種名を50文字以内で入力してください",
                ));
            }
            let grants: BTreeSet<Grant> = input
                .grants
                .iter()
                .map(|g| g.parse::<Grant>())
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| ServiceError::from(e).with_field("grants"))?;
            let kinds = tx.read().kinds()?;
            if let Some(g) = grants.iter().find(|g| {
                g.kind
                    .as_ref()
                    .is_some_and(|k| !kinds.iter().any(|x| &x.code == k))
            }) {
                return Err(ServiceError::invalid(
                    "grants",
                    format!(
                        "記録種別 '{}' は存在しません",
                        g.kind.as_deref().unwrap_or("")
                    ),
                ));
            }
            let existing = tx.read().role(&input.code)?;
            // An administrator must not be able to lock every administrator out.
            if input.code == pc.role.code
                && !grants.iter().any(|g| g.action == Action::AdminSettings)
            {
                return Err(ServiceError::new(
                    "invalid_state",
                    "自分の職種から設定管理権限を外すことはできません",
                ));
            }
            let role = Role {
                code: input.code.clone(),
                name_ja: name.to_owned(),
                name_en: if input.name_en.trim().is_empty() {
                    name.to_owned()
                } else {
                    input.name_en.trim().to_owned()
                },
                grants,
                builtin: existing.as_ref().is_some_and(|r| r.builtin),
            };
            tx.save_role(&role, now)?;
            Ok(role)
        })
        .await
    }

    /// Record kinds are needed by everyone who writes; any signed-in user may list them.
    pub async fn kinds(self: &Arc<Self>, _p: &Principal) -> Result<Vec<RecordKind>> {
        Ok(self.store.read(|r| r.kinds()).await?)
    }

    pub async fn save_kind(
        self: &Arc<Self>,
        p: &Principal,
        kind: RecordKind,
    ) -> Result<RecordKind> {
        let pc = p.clone();
        let now = self.now();
        let mut t = Target::default();
        t.detail("kind", kind.code.clone());
        t.detail("retention_years", kind.retention_years);
        self.write_audited(Some(p), actions::KIND_SAVED, t, move |_, tx, _| {
            pc.require(Action::AdminSettings, None)?;
            if !valid_kind_code(&kind.code) {
                return Err(ServiceError::invalid(
                    "code",
                    "種別コードは英小文字・数字・_ で40文字以内にしてください",
                ));
            }
            if kind.name_ja.trim().is_empty() || kind.name_ja.chars().count() > 50 {
                return Err(ServiceError::invalid(
                    "name_ja",
                    "種別名を50文字以内で入力してください",
                ));
            }
            if !(1..=200).contains(&kind.retention_years) {
                return Err(ServiceError::invalid(
                    "retention_years",
                    "保存期間は1〜200年で指定してください",
                ));
            }
            if let Some(old) = tx.read().kind(&kind.code)?
                && kind.retention_years < old.retention_years
            {
                return Err(ServiceError::invalid(
                    "retention_years",
                    "保存期間を短くすることはできません（保存中の記録の保存義務を守るため）",
                ));
            }
            let k = RecordKind {
                code: kind.code,
                name_ja: kind.name_ja.trim().to_owned(),
                name_en: kind.name_en.trim().to_owned(),
                retention_years: kind.retention_years,
            };
            tx.save_kind(&k, now)?;
            Ok(k)
        })
        .await
    }
}
