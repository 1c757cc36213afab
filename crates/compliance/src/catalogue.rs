//! Catalogues as versioned data files (see `catalogues/README.md`): parsed, validated, and
//! looked up by ID. A broken file is refused whole with a message naming the file, the item
//! and the field, so a new edition cannot half-load.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

/// The editions shipped with mamori, embedded so that a fresh instance has them.
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "mhlw-checklist-medical-r6.toml",
        include_str!("../../../catalogues/mhlw-checklist-medical-r6.toml"),
    ),
    (
        "mhlw-checklist-medical-r7.toml",
        include_str!("../../../catalogues/mhlw-checklist-medical-r7.toml"),
    ),
    (
        "mhlw-checklist-vendor-r6.toml",
        include_str!("../../../catalogues/mhlw-checklist-vendor-r6.toml"),
    ),
    (
        "mhlw-checklist-vendor-r7.toml",
        include_str!("../../../catalogues/mhlw-checklist-vendor-r7.toml"),
    ),
    (
        "mhlw-guideline-6.0.toml",
        include_str!("../../../catalogues/mhlw-guideline-6.0.toml"),
    ),
    (
        "nta-dencho-2024.toml",
        include_str!("../../../catalogues/nta-dencho-2024.toml"),
    ),
];

/// What mamori can observe from the live system; an item's `observe` must name one of these.
/// The service has exactly one rule per variant (an exhaustive match), so a new observable
/// cannot be listed here without a rule, nor a rule written for a name no catalogue can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Observable {
    SecurityOfficer,
    OperatingRules,
    AssetLedger,
    RemoteMaintenance,
    MdsSds,
    RoleAccess,
    UnusedAccounts,
    AccessLogs,
    LogReview,
    PasswordPolicy,
    TwoFactor,
    IdleLock,
    PatchesServer,
    PatchesPc,
    PatchesNetwork,
    PatchesAll,
    ConnectionRestriction,
    ContactChart,
    BackupRestore,
    BackupOffline,
    Bcp,
    ClockSync,
    MaintenanceControl,
    EmergencyAccess,
    Finalisation,
    Signatures,
    Retention,
    Training,
    Outsourcing,
    TakeOut,
    Disposal,
    /// 電子帳簿保存法: corrections and cancellations kept as versions, proven by the ledger.
    TxHistory,
    /// Every transaction document's file time-stamped by an accredited TSA, in time.
    TxTimestamps,
    /// Every document findable by date, amount and counterparty.
    TxSearch,
    /// The facility's legal form and year end set, so retention dates are its own.
    TxRetention,
    /// Received invoices pass the インボイス checks.
    InvoiceChecks,
}

impl Observable {
    pub const ALL: [Observable; 36] = [
        Observable::SecurityOfficer,
        Observable::OperatingRules,
        Observable::AssetLedger,
        Observable::RemoteMaintenance,
        Observable::MdsSds,
        Observable::RoleAccess,
        Observable::UnusedAccounts,
        Observable::AccessLogs,
        Observable::LogReview,
        Observable::PasswordPolicy,
        Observable::TwoFactor,
        Observable::IdleLock,
        Observable::PatchesServer,
        Observable::PatchesPc,
        Observable::PatchesNetwork,
        Observable::PatchesAll,
        Observable::ConnectionRestriction,
        Observable::ContactChart,
        Observable::BackupRestore,
        Observable::BackupOffline,
        Observable::Bcp,
        Observable::ClockSync,
        Observable::MaintenanceControl,
        Observable::EmergencyAccess,
        Observable::Finalisation,
        Observable::Signatures,
        Observable::Retention,
        Observable::Training,
        Observable::Outsourcing,
        Observable::TakeOut,
        Observable::Disposal,
        Observable::TxHistory,
        Observable::TxTimestamps,
        Observable::TxSearch,
        Observable::TxRetention,
        Observable::InvoiceChecks,
    ];

    /// The name catalogues use in an item's `observe`.
    pub fn as_str(self) -> &'static str {
        match self {
            Observable::SecurityOfficer => "security_officer",
            Observable::OperatingRules => "operating_rules",
            Observable::AssetLedger => "asset_ledger",
            Observable::RemoteMaintenance => "remote_maintenance",
            Observable::MdsSds => "mds_sds",
            Observable::RoleAccess => "role_access",
            Observable::UnusedAccounts => "unused_accounts",
            Observable::AccessLogs => "access_logs",
            Observable::LogReview => "log_review",
            Observable::PasswordPolicy => "password_policy",
            Observable::TwoFactor => "two_factor",
            Observable::IdleLock => "idle_lock",
            Observable::PatchesServer => "patches_server",
            Observable::PatchesPc => "patches_pc",
            Observable::PatchesNetwork => "patches_network",
            Observable::PatchesAll => "patches_all",
            Observable::ConnectionRestriction => "connection_restriction",
            Observable::ContactChart => "contact_chart",
            Observable::BackupRestore => "backup_restore",
            Observable::BackupOffline => "backup_offline",
            Observable::Bcp => "bcp",
            Observable::ClockSync => "clock_sync",
            Observable::MaintenanceControl => "maintenance_control",
            Observable::EmergencyAccess => "emergency_access",
            Observable::Finalisation => "finalisation",
            Observable::Signatures => "signatures",
            Observable::Retention => "retention",
            Observable::Training => "training",
            Observable::Outsourcing => "outsourcing",
            Observable::TakeOut => "take_out",
            Observable::Disposal => "disposal",
            Observable::TxHistory => "tx_history",
            Observable::TxTimestamps => "tx_timestamps",
            Observable::TxSearch => "tx_search",
            Observable::TxRetention => "tx_retention",
            Observable::InvoiceChecks => "invoice_checks",
        }
    }

    pub fn parse(name: &str) -> Option<Observable> {
        Observable::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub id: String,
    pub family: String,
    pub title: String,
    pub edition: String,
    pub fiscal_year: i32,
    pub sheet: String,
    pub source: String,
    #[serde(default)]
    pub uncertain: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub id: String,
    pub topic: String,
    pub section: String,
    pub number: String,
    pub text: String,
    #[serde(default)]
    pub scope: Option<String>,
    pub since: i32,
    pub required_by: i32,
    #[serde(default)]
    pub refs: Vec<String>,
    #[serde(default)]
    pub observe: Option<String>,
    /// What the item asks that the observation cannot see: then an observation can answer
    /// いいえ but only a person can answer はい.
    #[serde(default)]
    pub unseen: Option<String>,
    #[serde(default)]
    pub uncertain: Option<String>,
}

impl Item {
    /// What mamori observes for this item (a loaded catalogue's names are checked).
    pub fn observable(&self) -> Option<Observable> {
        self.observe.as_deref().and_then(Observable::parse)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    pub catalogue: Header,
    pub sections: Vec<Section>,
    pub items: Vec<Item>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CatalogueError {
    #[error("{file}: TOML として読めません: {message}")]
    Syntax { file: String, message: String },
    #[error("{file}: {place} の {field}: {message}")]
    Invalid {
        file: String,
        place: String,
        field: &'static str,
        message: String,
    },
    #[error("{file}: カタログ ID {id} は {other} と重複しています")]
    DuplicateCatalogue {
        file: String,
        id: String,
        other: String,
    },
}

const SHEETS: &[&str] = &["medical", "vendor", "guideline", "dencho"];

fn id_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Catalogue {
    /// Parses and validates one file; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, CatalogueError> {
        let c: Catalogue = toml::from_str(text).map_err(|e| CatalogueError::Syntax {
            file: file.to_owned(),
            message: e.message().to_owned(),
        })?;
        c.validate(file)?;
        Ok(c)
    }

    fn validate(&self, file: &str) -> Result<(), CatalogueError> {
        let bad = |place: &str, field: &'static str, message: &str| CatalogueError::Invalid {
            file: file.to_owned(),
            place: place.to_owned(),
            field,
            message: message.to_owned(),
        };
        let h = &self.catalogue;
        if !id_ok(&h.id) {
            return Err(bad(
                "[catalogue]",
                "id",
                "英数字と - _ . の64文字以内にしてください",
            ));
        }
        if !id_ok(&h.family) {
            return Err(bad(
                "[catalogue]",
                "family",
                "英数字と - _ . の64文字以内にしてください",
            ));
        }
        if !SHEETS.contains(&h.sheet.as_str()) {
            return Err(bad(
                "[catalogue]",
                "sheet",
                "medical・vendor・guideline のいずれかにしてください",
            ));
        }
        if !(2000..=2100).contains(&h.fiscal_year) {
            return Err(bad(
                "[catalogue]",
                "fiscal_year",
                "西暦の年度にしてください",
            ));
        }
        for (field, v) in [
            ("title", &h.title),
            ("edition", &h.edition),
            ("source", &h.source),
        ] {
            if v.trim().is_empty() {
                return Err(bad("[catalogue]", field, "空です"));
            }
        }
        if self.items.is_empty() {
            return Err(bad("[catalogue]", "items", "項目がありません"));
        }
        let mut sections = HashSet::new();
        for s in &self.sections {
            if s.id.trim().is_empty() || !sections.insert(s.id.as_str()) {
                return Err(bad(
                    &format!("section {}", s.id),
                    "id",
                    "空か、ほかの節と重複しています",
                ));
            }
        }
        let mut ids = HashSet::new();
        for i in &self.items {
            let place = format!("item {}", i.id);
            if !id_ok(&i.id) {
                return Err(bad(
                    &place,
                    "id",
                    "英数字と - _ . の64文字以内にしてください",
                ));
            }
            if !ids.insert(i.id.as_str()) {
                return Err(bad(&place, "id", "同じ ID の項目がすでにあります"));
            }
            if !id_ok(&i.topic) {
                return Err(bad(
                    &place,
                    "topic",
                    "英数字と - _ . の64文字以内にしてください",
                ));
            }
            if !sections.contains(i.section.as_str()) {
                return Err(bad(&place, "section", "[[sections]] にない節です"));
            }
            if i.text.trim().is_empty() || i.number.trim().is_empty() {
                return Err(bad(&place, "text", "番号と本文は必須です"));
            }
            if i.required_by < i.since {
                return Err(bad(&place, "required_by", "since より前の年度です"));
            }
            if let Some(o) = &i.observe
                && Observable::parse(o).is_none()
            {
                return Err(bad(
                    &place,
                    "observe",
                    "mamori が観測できる項目ではありません",
                ));
            }
        }
        Ok(())
    }

    pub fn id(&self) -> &str {
        &self.catalogue.id
    }

    pub fn item(&self, id: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.id == id)
    }

    pub fn section(&self, id: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.id == id)
    }

    pub fn sheet_ja(&self) -> &'static str {
        match self.catalogue.sheet.as_str() {
            "medical" => "医療機関確認用",
            "vendor" => "事業者確認用",
            "dencho" => "電子帳簿保存法・インボイス",
            _ => "ガイドライン遵守事項",
        }
    }
}

/// Every loaded catalogue by ID.
#[derive(Debug, Clone, Default)]
pub struct Library {
    by_id: BTreeMap<String, (String, Catalogue)>,
}

impl Library {
    /// The embedded editions; these are tested, so a failure here is a build defect. Parsed
    /// once per process (every page and answer starts from them).
    pub fn embedded() -> Self {
        static EMBEDDED_LIBRARY: std::sync::OnceLock<Library> = std::sync::OnceLock::new();
        EMBEDDED_LIBRARY
            .get_or_init(|| {
                let mut lib = Self::default();
                for (file, text) in EMBEDDED {
                    lib.add(file, text).expect("embedded catalogue is valid");
                }
                lib
            })
            .clone()
    }

    /// Adds one file. An ID already loaded is refused, so a local file cannot silently
    /// replace a shipped edition that assessments refer to.
    pub fn add(&mut self, file: &str, text: &str) -> Result<&Catalogue, CatalogueError> {
        let c = Catalogue::parse(file, text)?;
        if let Some((other, _)) = self.by_id.get(c.id()) {
            return Err(CatalogueError::DuplicateCatalogue {
                file: file.to_owned(),
                id: c.id().to_owned(),
                other: other.clone(),
            });
        }
        let id = c.id().to_owned();
        self.by_id.insert(id.clone(), (file.to_owned(), c));
        Ok(&self.by_id[&id].1)
    }

    pub fn get(&self, id: &str) -> Option<&Catalogue> {
        self.by_id.get(id).map(|(_, c)| c)
    }

    /// All catalogues, newest fiscal year first, then by ID.
    pub fn list(&self) -> Vec<&Catalogue> {
        let mut v: Vec<&Catalogue> = self.by_id.values().map(|(_, c)| c).collect();
        v.sort_by(|a, b| {
            b.catalogue
                .fiscal_year
                .cmp(&a.catalogue.fiscal_year)
                .then_with(|| a.id().cmp(b.id()))
        });
        v
    }

    /// The newest edition of a family (what a new assessment should use by default).
    pub fn latest(&self, family: &str) -> Option<&Catalogue> {
        self.list()
            .into_iter()
            .find(|c| c.catalogue.family == family)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn observables_round_trip_by_name() {
        for o in Observable::ALL {
            assert_eq!(Observable::parse(o.as_str()), Some(o));
        }
        assert_eq!(Observable::parse("nothing_like_this"), None);
    }

    use super::*;

    const MINIMAL: &str = r#"
[catalogue]
id = "t-1"
family = "t"
title = "T"
edition = "1"
fiscal_year = 2025
sheet = "medical"
source = "test"

[[sections]]
id = "1"
title = "S"

[[items]]
id = "A"
topic = "a"
section = "1"
number = "1-①"
text = "x"
since = 2025
required_by = 2025
"#;

    #[test]
    fn embedded_catalogues_load_with_unique_ids() {
        let lib = Library::embedded();
        assert_eq!(lib.list().len(), EMBEDDED.len());
        let r7 = lib.get("mhlw-checklist-medical-r7").unwrap();
        assert_eq!(r7.items.len(), 18);
        assert_eq!(
            lib.latest("mhlw-checklist-medical").unwrap().id(),
            "mhlw-checklist-medical-r7"
        );
        // Every checklist item of the R6 sheet (seed 003's list) is there: 1 + 14 + 3.
        let r6 = lib.get("mhlw-checklist-medical-r6").unwrap();
        let per = |s: &str| r6.items.iter().filter(|i| i.section == s).count();
        assert_eq!((per("1"), per("2"), per("3")), (1, 14, 3));
        // Every medical-sheet topic of R6 is still asked in R7 (nothing was removed).
        for i in &r6.items {
            assert!(r7.items.iter().any(|j| j.topic == i.topic), "{}", i.topic);
        }
    }

    #[test]
    fn a_minimal_file_loads() {
        let c = Catalogue::parse("t.toml", MINIMAL).unwrap();
        assert_eq!(c.item("A").unwrap().number, "1-①");
    }

    #[test]
    fn broken_files_are_refused_with_the_place() {
        let dup = format!(
            "{MINIMAL}\n[[items]]\nid = \"A\"\ntopic = \"b\"\nsection = \"1\"\nnumber = \"2\"\ntext = \"y\"\nsince = 2025\nrequired_by = 2025\n"
        );
        let e = Catalogue::parse("t.toml", &dup).unwrap_err();
        assert!(e.to_string().contains("item A"), "{e}");
        assert!(
            e.to_string().contains("重複") || e.to_string().contains("すでに"),
            "{e}"
        );

        let e = Catalogue::parse(
            "t.toml",
            &MINIMAL.replace("section = \"1\"\nnumber", "section = \"9\"\nnumber"),
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                CatalogueError::Invalid {
                    field: "section",
                    ..
                }
            ),
            "{e}"
        );

        let e = Catalogue::parse(
            "t.toml",
            &MINIMAL.replace("required_by = 2025", "required_by = 2020"),
        )
        .unwrap_err();
        assert!(matches!(
            e,
            CatalogueError::Invalid {
                field: "required_by",
                ..
            }
        ));

        let e = Catalogue::parse(
            "t.toml",
            &MINIMAL.replace("text = \"x\"", "text = \"x\"\nobserve = \"mind_reading\""),
        )
        .unwrap_err();
        assert!(matches!(
            e,
            CatalogueError::Invalid {
                field: "observe",
                ..
            }
        ));

        let e = Catalogue::parse(
            "t.toml",
            &MINIMAL.replace("sheet = \"medical\"", "sheet = \"pharmacy\""),
        )
        .unwrap_err();
        assert!(matches!(e, CatalogueError::Invalid { field: "sheet", .. }));

        let e = Catalogue::parse(
            "t.toml",
            &MINIMAL.replace("text = \"x\"", "text = \"x\"\ncolour = \"red\""),
        )
        .unwrap_err();
        assert!(matches!(e, CatalogueError::Syntax { .. }), "{e}");
        assert!(e.to_string().starts_with("t.toml:"));

        let e = Catalogue::parse("t.toml", "[catalogue").unwrap_err();
        assert!(matches!(e, CatalogueError::Syntax { .. }));
    }

    #[test]
    fn a_local_file_cannot_replace_a_shipped_edition() {
        let mut lib = Library::embedded();
        let clash = MINIMAL.replace("id = \"t-1\"", "id = \"mhlw-checklist-medical-r7\"");
        let e = lib.add("local.toml", &clash).unwrap_err();
        assert!(matches!(e, CatalogueError::DuplicateCatalogue { .. }));
        lib.add("local.toml", MINIMAL).unwrap();
        assert!(lib.get("t-1").is_some());
    }

    /// The 令和5年度 list of what was due in 2023 and what in 2024 (seed 003: MHLW's
    /// checklist as published 2023-06-09, transcribed here as scope, keyword, year), against
    /// the R6 sheet's items: the same items, the same scopes, the same years.
    #[test]
    fn the_r6_sheet_has_the_published_items_scopes_and_years() {
        const PUBLISHED: &[(&str, &str, i32)] = &[
            ("", "安全管理責任者", 2023),
            ("医療情報システム全般", "台帳", 2023),
            ("医療情報システム全般", "リモートメンテナンス", 2023),
            ("医療情報システム全般", "MDS", 2023),
            ("サーバ", "アクセス権限", 2023),
            ("サーバ", "不要なアカウント", 2023),
            ("サーバ", "アクセスログ", 2023),
            ("ネットワーク機器", "セキュリティパッチ", 2023),
            ("ネットワーク機器", "接続元", 2023),
            ("", "連絡体制図", 2023),
            ("サーバ", "セキュリティパッチ", 2024),
            ("サーバ", "不要なソフトウェア", 2024),
            ("端末PC", "アクセス権限", 2024),
            ("端末PC", "不要なアカウント", 2024),
            ("端末PC", "セキュリティパッチ", 2024),
            ("端末PC", "不要なソフトウェア", 2024),
            ("", "バックアップ", 2024),
            ("", "BCP", 2024),
        ];
        let lib = Library::embedded();
        let c = lib.get("mhlw-checklist-medical-r6").unwrap();
        assert_eq!(c.items.len(), PUBLISHED.len());
        for (scope, word, year) in PUBLISHED {
            let found: Vec<&Item> = c
                .items
                .iter()
                .filter(|i| {
                    i.scope.as_deref().unwrap_or("") == *scope
                        && (i.text.contains(word)
                            || (*word == "連絡体制図" && i.text.contains("連絡体制")))
                })
                .collect();
            assert_eq!(found.len(), 1, "{scope} {word}: {found:?}");
            assert_eq!(found[0].required_by, *year, "{scope} {word}");
        }
    }
}
