//! Facility settings: 職種 roles and their grants, record kinds and retention periods.

use crate::ErrorCode;
use std::collections::BTreeSet;
use std::sync::Arc;

use mamori_domain::audit::actions;
use mamori_domain::kinds::{RecordKind, valid_kind_code};
use mamori_domain::permission::{
    Action, Grant, Role, default_roles, needs_second_administrator, valid_role_code,
};
use serde::{Deserialize, Serialize};

use crate::error::{Result, ServiceError};
use crate::{Principal, Service, Target};

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct RoleInput {
    pub code: String,
    pub name_ja: String,
    #[serde(default)]
    pub name_en: String,
    pub grants: Vec<String>,
    /// A new role: refused when the code is already taken (instead of changing that role).
    #[serde(default)]
    pub create: bool,
    /// Whether members need a second factor; absent leaves it as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub two_factor: Option<bool>,
    /// Whether members need a facility client certificate; absent leaves it as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<bool>,
}

/// What saving a role did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RoleSaved {
    Saved(Role),
    /// Waits for a second administrator; `reason` says why.
    Proposed {
        id: i64,
        reason: &'static str,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleProposal {
    #[serde(flatten)]
    pub row: mamori_store::RoleProposalRow,
    pub proposed_by_name: String,
    pub decided_by_name: Option<String>,
    /// The proposed role, readable (None only if the stored text is damaged).
    pub input: Option<RoleInput>,
}

fn pending_proposal(
    tx: &mut mamori_store::WriteTx<'_>,
    id: i64,
) -> Result<mamori_store::RoleProposalRow> {
    let row = tx
        .read()
        .role_proposal(id)?
        .ok_or_else(|| ServiceError::not_found("職種の変更の申請"))?;
    if row.outcome.is_some() {
        return Err(ServiceError::new(
            ErrorCode::InvalidState,
            "この申請は既に承認または却下されています",
        ));
    }
    Ok(row)
}

/// A role from the input, validated against the record kinds that exist; with the stored one.
fn checked_role(
    tx: &mut mamori_store::WriteTx<'_>,
    input: &RoleInput,
    pc: &Principal,
) -> Result<(Role, Option<Role>)> {
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
    if input.name_en.chars().count() > 50 {
        return Err(ServiceError::invalid(
            "name_en",
            "英語の職種名は50文字以内にしてください",
        ));
    }
    if input.grants.len() > 1000 {
        return Err(ServiceError::invalid("grants", "権限の指定が多すぎます"));
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
    if input.create && existing.is_some() {
        return Err(
            ServiceError::new(ErrorCode::Conflict, "この職種コードは既に使われています")
                .with_field("code"),
        );
    }
    // An administrator must not be able to lock every administrator out.
    if input.code == pc.role.code && !grants.iter().any(|g| g.action == Action::AdminSettings) {
        return Err(ServiceError::new(
            ErrorCode::InvalidState,
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
    Ok((role, existing))
}

/// Saves a role with the sign-in policies given beside it, in the caller's transaction; the
/// policies that change are named in the entry.
fn save_role_and_policies(
    tx: &mut mamori_store::WriteTx<'_>,
    role: &Role,
    input: &RoleInput,
    now: mamori_domain::Millis,
    t: &mut Target,
) -> Result<()> {
    tx.save_role(role, now)?;
    let r = tx.read();
    let (two_factor, client_cert) = (
        r.two_factor_roles()?.contains(&role.code),
        r.client_cert_roles()?.contains(&role.code),
    );
    if let Some(on) = input.two_factor.filter(|on| *on != two_factor) {
        tx.set_role_two_factor(&role.code, on)?;
        t.detail("two_factor", on);
    }
    if let Some(on) = input.client_cert.filter(|on| *on != client_cert) {
        tx.set_role_client_cert(&role.code, on)?;
        t.detail("client_cert", on);
    }
    Ok(())
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
        self.gate(
            p,
            actions::ROLES_VIEWED,
            p.require(Action::AdminSettings, None)
                .or_else(|_| p.require(Action::AdminAccounts, None)),
        )
        .await?;
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

    /// Saves a role, or — where one administrator alone must not decide — records it as a
    /// proposal for a second administrator (separation of duties): a change to the role the
    /// caller holds, and clinical rights (reading, writing, printing, break-glass) newly given
    /// to a role that administers accounts or settings.
    pub async fn save_role(self: &Arc<Self>, p: &Principal, input: RoleInput) -> Result<RoleSaved> {
        let pc = p.clone();
        let now = self.now();
        let mut t = Target::default();
        t.detail("role", input.code.clone());
        t.detail("grants", input.grants.clone());
        let proposal_json = serde_json::to_string(&input).map_err(ServiceError::internal)?;
        let outcome = self
            .write_audited(Some(p), actions::ROLE_SAVED, t, move |_, tx, t| {
                pc.require(Action::AdminSettings, None)?;
                let (role, existing) = checked_role(tx, &input, &pc)?;
                match needs_second_administrator(&pc.role.code, &role, existing.as_ref()) {
                    None => {
                        save_role_and_policies(tx, &role, &input, now, t)?;
                        Ok(RoleSaved::Saved(role))
                    }
                    Some(reason) => {
                        let id = tx.insert_role_proposal(
                            &role.code,
                            &proposal_json,
                            reason,
                            pc.account.id,
                            now,
                        )?;
                        t.detail("proposal", id);
                        t.detail("needs_second_administrator", reason);
                        t.action = Some(actions::ROLE_PROPOSED);
                        Ok(RoleSaved::Proposed { id, reason })
                    }
                }
            })
            .await?;
        Ok(outcome)
    }

    /// Role changes waiting for (or decided by) a second administrator.
    pub async fn role_proposals(self: &Arc<Self>, p: &Principal) -> Result<Vec<RoleProposal>> {
        self.gate(
            p,
            actions::ROLES_VIEWED,
            p.require(Action::AdminSettings, None),
        )
        .await?;
        let rows = self.store.read(|r| {
            let accounts = r.accounts()?;
            let name = |id: i64| {
                accounts
                    .iter()
                    .find(|a| a.id == id)
                    .map(|a| format!("{} ({})", a.display_name, a.login))
                    .unwrap_or_else(|| format!("#{id}"))
            };
            Ok(r.role_proposals(50)?
                .into_iter()
                .map(|row| RoleProposal {
                    proposed_by_name: name(row.proposed_by),
                    decided_by_name: row.decided_by.map(name),
                    input: serde_json::from_str(&row.proposal).ok(),
                    row,
                })
                .collect::<Vec<_>>())
        });
        Ok(rows.await?)
    }

    /// A second administrator applies a proposed role change (checked again as it is now).
    pub async fn approve_role_proposal(self: &Arc<Self>, p: &Principal, id: i64) -> Result<Role> {
        let pc = p.clone();
        let now = self.now();
        let mut t = Target::default();
        t.detail("proposal", id);
        self.write_audited(
            Some(p),
            actions::ROLE_PROPOSAL_APPROVED,
            t,
            move |_, tx, t| {
                pc.require(Action::AdminSettings, None)?;
                let row = pending_proposal(tx, id)?;
                if row.proposed_by == pc.account.id {
                    return Err(ServiceError::new(
                        ErrorCode::Forbidden,
                        "自分で申請した変更は承認できません。別の管理者に承認を依頼してください",
                    ));
                }
                let input: RoleInput = serde_json::from_str(&row.proposal)
                    .map_err(|e| ServiceError::internal(format!("stored proposal: {e}")))?;
                t.detail("role", input.code.clone());
                t.detail("grants", input.grants.clone());
                let (role, _) = checked_role(tx, &input, &pc)?;
                save_role_and_policies(tx, &role, &input, now, t)?;
                tx.decide_role_proposal(id, pc.account.id, "approved", now)?;
                Ok(role)
            },
        )
        .await
    }

    /// Rejects a proposed role change (another administrator), or withdraws it (its proposer).
    pub async fn reject_role_proposal(self: &Arc<Self>, p: &Principal, id: i64) -> Result<()> {
        let pc = p.clone();
        let now = self.now();
        let mut t = Target::default();
        t.detail("proposal", id);
        self.write_audited(
            Some(p),
            actions::ROLE_PROPOSAL_REJECTED,
            t,
            move |_, tx, t| {
                pc.require(Action::AdminSettings, None)?;
                let row = pending_proposal(tx, id)?;
                t.detail("role", row.role_code.clone());
                tx.decide_role_proposal(id, pc.account.id, "rejected", now)?;
                Ok(())
            },
        )
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
                code: kind.code.clone(),
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
