//! 職種-based access: a role is a set of grants; a grant is an action, on one record kind or
//! on all of them. Decisions are pure functions of the role and the request.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::DomainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Open records of a kind, and find patients (any read right allows the search).
    Read,
    /// Write drafts, amendments, and proxy entries of a kind.
    Write,
    /// Finalise (確定) records of a kind as their responsible author.
    Finalise,
    /// Approve or reject proxy entries (代行入力) made in one's name.
    ApproveProxy,
    /// Print or export records of a kind.
    PrintExport,
    /// Register and edit patients' identifying data.
    RegisterPatient,
    /// Read the audit trail and ledger.
    ReadAudit,
    /// Create, disable, unlock accounts; reset passwords.
    AdminAccounts,
    /// Change roles, record kinds, policies.
    AdminSettings,
    /// In an emergency, open one patient's records beyond the role's rights for a limited
    /// time, giving a reason (break-glass; reviewed afterwards).
    BreakGlass,
    /// Open, search and download the facility's transaction documents (電子取引データ).
    ReadTransactions,
    /// Register transaction documents and record corrections (訂正) and cancellations.
    WriteTransactions,
}

impl Action {
    pub const ALL: [Action; 12] = [
        Action::Read,
        Action::Write,
        Action::Finalise,
        Action::ApproveProxy,
        Action::PrintExport,
        Action::RegisterPatient,
        Action::ReadAudit,
        Action::AdminAccounts,
        Action::AdminSettings,
        Action::BreakGlass,
        Action::ReadTransactions,
        Action::WriteTransactions,
    ];

    /// Whether the action applies to a record kind (otherwise it is facility-wide).
    pub fn per_kind(self) -> bool {
        matches!(
            self,
            Action::Read
                | Action::Write
                | Action::Finalise
                | Action::ApproveProxy
                | Action::PrintExport
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
            Action::Finalise => "finalise",
            Action::ApproveProxy => "approve_proxy",
            Action::PrintExport => "print_export",
            Action::RegisterPatient => "register_patient",
            Action::ReadAudit => "read_audit",
            Action::AdminAccounts => "admin_accounts",
            Action::AdminSettings => "admin_settings",
            Action::BreakGlass => "break_glass",
            Action::ReadTransactions => "transactions_read",
            Action::WriteTransactions => "transactions_write",
        }
    }

    pub fn label_ja(self) -> &'static str {
        match self {
            Action::Read => "閲覧",
            Action::Write => "記載",
            Action::Finalise => "確定",
            Action::ApproveProxy => "代行入力の承認",
            Action::PrintExport => "印刷・出力",
            Action::RegisterPatient => "患者登録",
            Action::ReadAudit => "監査ログ閲覧",
            Action::AdminAccounts => "アカウント管理",
            Action::AdminSettings => "設定管理",
            Action::BreakGlass => "非常時アクセス",
            Action::ReadTransactions => "取引書類の閲覧",
            Action::WriteTransactions => "取引書類の登録・訂正",
        }
    }
}

impl FromStr for Action {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| DomainError::Invalid(format!("unknown action '{s}'")))
    }
}

/// `action` on `kind` (None = every kind). Written as `read:*`, `read:medical_record`,
/// or `read_audit` for facility-wide actions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Grant {
    pub action: Action,
    pub kind: Option<String>,
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, self.action.per_kind()) {
            (_, false) => f.write_str(self.action.as_str()),
            (None, true) => write!(f, "{}:*", self.action.as_str()),
            (Some(k), true) => write!(f, "{}:{k}", self.action.as_str()),
        }
    }
}

impl FromStr for Grant {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, k) = match s.split_once(':') {
            Some((a, k)) => (a, Some(k)),
            None => (s, None),
        };
        let action: Action = a.parse()?;
        match (action.per_kind(), k) {
            (false, None) => Ok(Grant { action, kind: None }),
            (false, Some(_)) => Err(DomainError::Invalid(format!(
                "'{a}' applies to the whole facility and takes no record kind"
            ))),
            (true, None) | (true, Some("*")) => Ok(Grant { action, kind: None }),
            (true, Some(k)) if crate::kinds::valid_kind_code(k) => Ok(Grant {
                action,
                kind: Some(k.to_owned()),
            }),
            (true, Some(k)) => Err(DomainError::Invalid(format!("bad record kind '{k}'"))),
        }
    }
}

impl Serialize for Grant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Grant {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub code: String,
    pub name_ja: String,
    pub name_en: String,
    pub grants: BTreeSet<Grant>,
    /// Built-in roles keep their code; the facility may still change their grants.
    pub builtin: bool,
}

impl Role {
    pub fn allows(&self, action: Action, kind: Option<&str>) -> bool {
        self.grants.iter().any(|g| {
            g.action == action
                && match (&g.kind, kind) {
                    (None, _) => true,
                    (Some(gk), Some(k)) => gk == k,
                    // Asking "on any kind?" (e.g. may this role search patients).
                    (Some(_), None) => true,
                }
        })
    }

    /// Refuses with a message naming what is missing.
    pub fn require(&self, action: Action, kind: Option<&str>) -> Result<(), DomainError> {
        if self.allows(action, kind) {
            Ok(())
        } else {
            Err(DomainError::Forbidden(match kind {
                Some(k) => format!(
                    "{}（{}）の{}権限がありません",
                    self.name_ja,
                    k,
                    action.label_ja()
                ),
                None => format!("{}に{}権限がありません", self.name_ja, action.label_ja()),
            }))
        }
    }

    /// Record kinds this role may read (None = all).
    pub fn readable_kinds(&self) -> Option<BTreeSet<String>> {
        let mut kinds = BTreeSet::new();
        for g in &self.grants {
            if g.action == Action::Read {
                match &g.kind {
                    None => return None,
                    Some(k) => {
                        kinds.insert(k.clone());
                    }
                }
            }
        }
        Some(kinds)
    }

    /// Grants this role has beyond `template` (used to flag roles with extra rights).
    pub fn extra_grants(&self, template: &Role) -> Vec<Grant> {
        self.grants
            .iter()
            .filter(|g| !template.allows(g.action, g.kind.as_deref()))
            .cloned()
            .collect()
    }
}

pub fn valid_role_code(code: &str) -> bool {
    crate::kinds::valid_kind_code(code)
}

fn grants(list: &[&str]) -> BTreeSet<Grant> {
    list.iter()
        .map(|s| s.parse().expect("built-in grant"))
        .collect()
}

fn role(code: &str, ja: &str, en: &str, g: &[&str]) -> Role {
    Role {
        code: code.into(),
        name_ja: ja.into(),
        name_en: en.into(),
        grants: grants(g),
        builtin: true,
    }
}

/// The default 職種 roles. Clinical staff read everything they may need for care; each
/// profession writes and finalises its own kinds; clerks enter on a doctor's behalf but
/// finalise nothing; administrators, auditors and maintenance staff see no chart content.
pub fn default_roles() -> Vec<Role> {
    let physician = [
        "read:*",
        "write:*",
        "finalise:*",
        "approve_proxy:*",
        "print_export:*",
        "register_patient",
        "break_glass",
    ];
    vec![
        role("doctor", "医師", "Physician", &physician),
        role("dentist", "歯科医師", "Dentist", &physician),
        role(
            "pharmacist",
            "薬剤師",
            "Pharmacist",
            &[
                "read:*",
                "write:pharmacy",
                "finalise:pharmacy",
                "print_export:pharmacy",
                "break_glass",
            ],
        ),
        role(
            "nurse",
            "看護師",
            "Nurse",
            &[
                "read:*",
                "write:nursing",
                "finalise:nursing",
                "print_export:nursing",
                "break_glass",
            ],
        ),
        role(
            "radiographer",
            "診療放射線技師",
            "Radiographer",
            &[
                "read:imaging",
                "read:medical_record",
                "write:imaging",
                "finalise:imaging",
                "break_glass",
            ],
        ),
        role(
            "lab_technician",
            "臨床検査技師",
            "Laboratory technician",
            &[
                "read:lab_result",
                "read:medical_record",
                "write:lab_result",
                "finalise:lab_result",
                "break_glass",
            ],
        ),
        role(
            "clerk",
            "医療事務",
            "Medical clerk",
            &[
                "register_patient",
                "read:medical_record",
                "read:prescription",
                "read:referral",
                "read:scan",
                "read:consent",
                "write:medical_record",
                "write:prescription",
                "write:referral",
                "write:scan",
                "write:consent",
                "print_export:referral",
            ],
        ),
        role(
            "sysadmin",
            "システム管理者",
            "System administrator",
            &["admin_accounts", "admin_settings"],
        ),
        role("auditor", "監査担当", "Auditor", &["read_audit"]),
        // 電子帳簿保存法: the clinic's invoices and receipts, nothing of the patients'.
        role(
            "accountant",
            "経理担当",
            "Accounting",
            &["transactions_read", "transactions_write"],
        ),
        role("maintenance", "保守要員", "Maintenance engineer", &[]),
    ]
}

/// Actions on patients' records: what an administrative role may gain only with a second
/// administrator's approval.
const CLINICAL: &[Action] = &[
    Action::Read,
    Action::Write,
    Action::Finalise,
    Action::ApproveProxy,
    Action::PrintExport,
    Action::BreakGlass,
];

/// Separation of duties: why saving `role` (replacing `existing`) needs a second
/// administrator when someone holding `holder_role` proposes it — a change to the role one
/// holds, or clinical rights newly given to a role that administers accounts or settings.
pub fn needs_second_administrator(
    holder_role: &str,
    role: &Role,
    existing: Option<&Role>,
) -> Option<&'static str> {
    if role.code == holder_role {
        return Some("own_role");
    }
    let administrative = role
        .grants
        .iter()
        .any(|g| matches!(g.action, Action::AdminAccounts | Action::AdminSettings));
    let widened = role
        .grants
        .iter()
        .any(|g| CLINICAL.contains(&g.action) && !existing.is_some_and(|e| e.grants.contains(g)));
    (administrative && widened).then_some("clinical_rights_for_administrative_role")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_one_administrator_may_not_make_alone() {
        let roles = default_roles();
        let get = |c: &str| roles.iter().find(|r| r.code == c).unwrap().clone();
        let with = |mut r: Role, g: &str| {
            r.grants.insert(g.parse().unwrap());
            r
        };
        let sysadmin = get("sysadmin");
        // One's own role, even unchanged.
        assert_eq!(
            needs_second_administrator("sysadmin", &sysadmin, Some(&sysadmin)),
            Some("own_role")
        );
        // Reading for an administrative role held by someone else.
        let widened = with(sysadmin.clone(), "read:*");
        assert_eq!(
            needs_second_administrator("it_admin", &widened, Some(&sysadmin)),
            Some("clinical_rights_for_administrative_role")
        );
        // A clinical right it already had, or a clinical role widened: one administrator.
        assert_eq!(
            needs_second_administrator("it_admin", &widened, Some(&widened)),
            None
        );
        let nurse = get("nurse");
        let nurse_more = with(nurse.clone(), "print_export:*");
        assert_eq!(
            needs_second_administrator("sysadmin", &nurse_more, Some(&nurse)),
            None
        );
        // A new administrative role born with clinical rights.
        let mut fresh = with(get("auditor"), "admin_accounts");
        fresh.code = "it_admin".into();
        let fresh = with(fresh, "break_glass");
        assert!(needs_second_administrator("sysadmin", &fresh, None).is_some());
    }

    #[test]
    fn grant_text_round_trips() {
        for s in [
            "read:*",
            "read:medical_record",
            "read_audit",
            "approve_proxy:nursing",
        ] {
            assert_eq!(s.parse::<Grant>().unwrap().to_string(), s);
        }
        assert!("read_audit:nursing".parse::<Grant>().is_err());
        assert!("fly:*".parse::<Grant>().is_err());
        assert!("read:Bad Kind".parse::<Grant>().is_err());
    }

    /// The default matrix, written out as a table so a change to it is a deliberate act.
    #[test]
    fn default_role_matrix_exhaustively() {
        let kinds = crate::kinds::default_kinds();
        let expect = |role: &str, action: Action, kind: &str| -> bool {
            let clinical_kinds_of = |r: &str| match r {
                "pharmacist" => vec!["pharmacy"],
                "nurse" => vec!["nursing"],
                "radiographer" => vec!["imaging"],
                "lab_technician" => vec!["lab_result"],
                _ => vec![],
            };
            let clerk_kinds = [
                "medical_record",
                "prescription",
                "referral",
                "scan",
                "consent",
            ];
            match (role, action) {
                ("doctor" | "dentist", a) => {
                    a.per_kind() || a == Action::RegisterPatient || a == Action::BreakGlass
                }
                ("pharmacist" | "nurse", Action::Read) => true,
                ("radiographer", Action::Read) => ["imaging", "medical_record"].contains(&kind),
                ("lab_technician", Action::Read) => {
                    ["lab_result", "medical_record"].contains(&kind)
                }
                ("pharmacist" | "nurse", Action::PrintExport) => {
                    clinical_kinds_of(role).contains(&kind)
                }
                (
                    "pharmacist" | "nurse" | "radiographer" | "lab_technician",
                    Action::Write | Action::Finalise,
                ) => clinical_kinds_of(role).contains(&kind),
                ("clerk", Action::Read | Action::Write) => clerk_kinds.contains(&kind),
                ("clerk", Action::PrintExport) => kind == "referral",
                ("clerk", Action::RegisterPatient) => true,
                ("sysadmin", Action::AdminAccounts | Action::AdminSettings) => true,
                ("auditor", Action::ReadAudit) => true,
                ("accountant", Action::ReadTransactions | Action::WriteTransactions) => true,
                (
                    "pharmacist" | "nurse" | "radiographer" | "lab_technician",
                    Action::BreakGlass,
                ) => true,
                _ => false,
            }
        };
        for r in default_roles() {
            for a in Action::ALL {
                for k in &kinds {
                    let kind = a.per_kind().then_some(k.code.as_str());
                    assert_eq!(
                        r.allows(a, kind),
                        expect(&r.code, a, &k.code),
                        "{} {:?} {}",
                        r.code,
                        a,
                        k.code
                    );
                }
            }
        }
    }

    #[test]
    fn required_default_roles_exist() {
        let names: Vec<_> = default_roles().into_iter().map(|r| r.name_ja).collect();
        for n in [
            "医師",
            "歯科医師",
            "薬剤師",
            "看護師",
            "診療放射線技師",
            "臨床検査技師",
            "医療事務",
            "経理担当",
            "システム管理者",
            "監査担当",
            "保守要員",
        ] {
            assert!(names.iter().any(|x| x == n), "{n}");
        }
    }

    #[test]
    fn extra_grants_are_reported() {
        let roles = default_roles();
        let nurse = roles.iter().find(|r| r.code == "nurse").unwrap().clone();
        let mut wider = nurse.clone();
        wider
            .grants
            .insert("finalise:medical_record".parse().unwrap());
        assert_eq!(
            wider.extra_grants(&nurse),
            vec!["finalise:medical_record".parse::<Grant>().unwrap()]
        );
        assert!(nurse.extra_grants(&nurse).is_empty());
    }
}
