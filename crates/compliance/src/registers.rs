//! The facility's registers for what software cannot do by itself but must be able to show:
//! disposal of media (情報の破棄), take-out of information and devices (持ち出し), staff
//! training (教育・訓練) and outside storage (外部保存・委託). Each register is a list of
//! entries whose fields are described here as data, so the forms, the checks, the API and the
//! printed register all come from one place; what the entries prove is observed here too.
//!
//! Length: the four registers' field lists are data (about 250 lines) and about 300 lines
//! are tests, including a property test over any entry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Observation;
use crate::assets::{days, valid_date};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Register {
    Disposal,
    TakeOut,
    Training,
    Outsourcing,
}

/// The type of one field, and for a choice its options (code, 日本語, English).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    LongText,
    Date,
    Choice(&'static [(&'static str, &'static str, &'static str)]),
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub key: &'static str,
    pub ja: &'static str,
    pub en: &'static str,
    pub kind: FieldKind,
    pub required: bool,
}

const fn field(
    key: &'static str,
    ja: &'static str,
    en: &'static str,
    kind: FieldKind,
    required: bool,
) -> Field {
    Field {
        key,
        ja,
        en,
        kind,
        required,
    }
}

use FieldKind::{Choice, Date, LongText, Text};

const YES_NO: &[(&str, &str, &str)] = &[("yes", "はい", "Yes"), ("no", "いいえ", "No")];
const YES_NO_UNKNOWN: &[(&str, &str, &str)] = &[
    ("yes", "はい", "Yes"),
    ("no", "いいえ", "No"),
    ("unknown", "不明", "Unknown"),
];

const DISPOSAL: &[Field] = &[
    field("disposed_on", "破棄した日", "Disposed on", Date, true),
    field(
        "what",
        "破棄したもの（機器・媒体・文書）",
        "What was disposed of",
        Text,
        true,
    ),
    field(
        "asset",
        "機器台帳の機器名",
        "Device in the asset ledger",
        Text,
        false,
    ),
    field(
        "personal",
        "個人情報を含んでいたか",
        "Held personal information",
        Choice(YES_NO_UNKNOWN),
        true,
    ),
    field(
        "method",
        "方法",
        "Method",
        Choice(&[
            (
                "crypto_erase",
                "暗号消去（鍵の破棄）と削除",
                "Cryptographic erasure and deletion",
            ),
            ("overwrite", "上書き消去", "Overwriting"),
            ("degauss", "磁気消去", "Degaussing"),
            ("physical", "物理破壊", "Physical destruction"),
            ("shred", "裁断・溶解（紙）", "Shredding (paper)"),
            ("vendor", "専門業者に委託", "Specialist contractor"),
        ]),
        true,
    ),
    field("performed_by", "実施者", "Performed by", Text, true),
    field("confirmed_by", "確認者", "Confirmed by", Text, false),
    field(
        "vendor",
        "委託先（業者に委託した場合）",
        "Contractor",
        Text,
        false,
    ),
    field("note", "備考", "Note", LongText, false),
];

const TAKE_OUT: &[Field] = &[
    field("taken_on", "持ち出した日", "Taken out on", Date, true),
    field(
        "what",
        "持ち出したもの",
        "What left the facility",
        Text,
        true,
    ),
    field(
        "medium",
        "媒体",
        "Medium",
        Choice(&[
            (
                "encrypted_bundle",
                "暗号化した出力（mamori）",
                "Encrypted export (mamori)",
            ),
            ("usb", "USB メモリ・外付けディスク", "USB stick or disk"),
            ("laptop", "ノートPC・タブレット", "Laptop or tablet"),
            ("paper", "紙", "Paper"),
            ("other", "その他", "Other"),
        ]),
        true,
    ),
    field(
        "encrypted",
        "暗号化・パスワード設定",
        "Encrypted or password-protected",
        Choice(YES_NO),
        true,
    ),
    field("purpose", "目的", "Purpose", Text, true),
    field("destination", "持ち出し先", "Destination", Text, false),
    field("taken_by", "持ち出した人", "Taken by", Text, true),
    field("approved_by", "承認者", "Approved by", Text, true),
    field(
        "returned_on",
        "返却・消去した日",
        "Returned or erased on",
        Date,
        false,
    ),
    field("note", "備考", "Note", LongText, false),
];

const TRAINING: &[Field] = &[
    field("held_on", "実施日", "Held on", Date, true),
    field("title", "研修・訓練の名称", "Title", Text, true),
    field(
        "kind",
        "種類",
        "Kind",
        Choice(&[
            ("hiring", "採用時研修", "On hiring"),
            ("periodic", "定期研修", "Periodic"),
            (
                "drill",
                "訓練（インシデント対応・BCP）",
                "Drill (incident response, BCP)",
            ),
        ]),
        true,
    ),
    field("topics", "内容", "Topics", LongText, true),
    field("instructor", "講師", "Instructor", Text, false),
    field("note", "備考", "Note", LongText, false),
];

const OUTSOURCING: &[Field] = &[
    field("provider", "事業者", "Provider", Text, true),
    field("service", "サービス（委託する業務）", "Service", Text, true),
    field(
        "target",
        "mamori のバックアップ先（s3://バケット/接頭辞）",
        "mamori backup target (s3://bucket/prefix)",
        Text,
        false,
    ),
    field(
        "region",
        "リージョン・所在地",
        "Region or location",
        Text,
        true,
    ),
    field(
        "in_japan",
        "データは国内に保存されるか",
        "Data kept in Japan",
        Choice(YES_NO_UNKNOWN),
        true,
    ),
    field(
        "japanese_law",
        "契約の準拠法は日本法、管轄は国内の裁判所か",
        "Contract under Japanese law and courts",
        Choice(YES_NO_UNKNOWN),
        true,
    ),
    field(
        "certifications",
        "事業者の認証（ISMAP・ISMS・プライバシーマーク等）",
        "Provider certifications",
        Text,
        false,
    ),
    field(
        "responsibility",
        "責任分界（医療機関が行うこと／事業者が行うこと）",
        "Responsibility split (facility / provider)",
        LongText,
        true,
    ),
    field("contract_on", "契約日", "Contract date", Date, false),
    field(
        "reviewed_on",
        "最後に見直した日",
        "Last reviewed on",
        Date,
        false,
    ),
    field("note", "備考", "Note", LongText, false),
];

/// Longest text accepted in one field.
pub const MAX_FIELD_CHARS: usize = 2000;
/// Most attendees named for one training session.
pub const MAX_PEOPLE: usize = 2000;

impl Register {
    pub const ALL: [Register; 4] = [
        Register::Disposal,
        Register::TakeOut,
        Register::Training,
        Register::Outsourcing,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Register::Disposal => "disposal",
            Register::TakeOut => "take_out",
            Register::Training => "training",
            Register::Outsourcing => "outsourcing",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == s)
    }

    pub fn ja(self) -> &'static str {
        match self {
            Register::Disposal => "破棄台帳",
            Register::TakeOut => "持ち出し台帳",
            Register::Training => "教育・訓練",
            Register::Outsourcing => "外部保存・委託",
        }
    }

    pub fn en(self) -> &'static str {
        match self {
            Register::Disposal => "Disposal register",
            Register::TakeOut => "Take-out register",
            Register::Training => "Training",
            Register::Outsourcing => "Outside storage and contractors",
        }
    }

    /// What the register is for, shown above it.
    pub fn help_ja(self) -> &'static str {
        match self {
            Register::Disposal => {
                "医療情報を保存していた機器・媒体・文書を破棄したら記録します（方法、実施者、確認者、業者の消去証明書）。mamori が書いたバックアップ先の消去は、バックアップ画面から行うと自動で記録されます。"
            }
            Register::TakeOut => {
                "医療情報や機器を院外に持ち出すときに記録し、返却・消去したら日付を入れます。mamori の暗号化出力は、出力時に自動で記録されます。"
            }
            Register::Training => {
                "採用時と定期の研修、インシデント対応・BCP の訓練を、参加者と資料とともに記録します。参加者は mamori のアカウントから選びます。"
            }
            Register::Outsourcing => {
                "クラウド（S3 等）へのバックアップや外部保存、保守の委託先ごとに、所在地、準拠法、責任分界を記録します（3省2ガイドライン）。"
            }
        }
    }

    pub fn help_en(self) -> &'static str {
        match self {
            Register::Disposal => {
                "Record each device, medium or document that held medical information when it is disposed of (method, who, who checked, the contractor's certificate). Erasing a backup target from the backup page records itself."
            }
            Register::TakeOut => {
                "Record information or devices that leave the facility, and the date they came back or were erased. mamori's encrypted exports record themselves."
            }
            Register::Training => {
                "Record training on hiring and periodic training and drills, with who attended and the materials."
            }
            Register::Outsourcing => {
                "For each cloud storage, outside storage or contractor: location, governing law and the responsibility split."
            }
        }
    }

    pub fn fields(self) -> &'static [Field] {
        match self {
            Register::Disposal => DISPOSAL,
            Register::TakeOut => TAKE_OUT,
            Register::Training => TRAINING,
            Register::Outsourcing => OUTSOURCING,
        }
    }

    /// The field that dates an entry (newest first in the list).
    pub fn date_field(self) -> &'static str {
        match self {
            Register::Disposal => "disposed_on",
            Register::TakeOut => "taken_on",
            Register::Training => "held_on",
            Register::Outsourcing => "contract_on",
        }
    }

    /// The label of the file kept with an entry.
    pub fn file_label(self) -> (&'static str, &'static str) {
        match self {
            Register::Disposal => ("消去・破棄の証明書", "Erasure certificate"),
            Register::TakeOut => ("承認書など", "Approval or other document"),
            Register::Training => ("資料", "Materials"),
            Register::Outsourcing => ("契約書・SLA", "Contract or SLA"),
        }
    }

    /// Whether entries name the accounts that took part (training attendance).
    pub fn has_people(self) -> bool {
        self == Register::Training
    }
}

/// One entry as entered: field values by key, and for training the logins that attended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub fields: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub people: Vec<String>,
}

impl Entry {
    pub fn get(&self, key: &str) -> &str {
        self.fields.get(key).map(String::as_str).unwrap_or("")
    }

    /// A field's value as shown: a choice by its label (English when `en`), text as it is.
    pub fn shown(&self, f: &Field, en: bool) -> &str {
        let v = self.get(f.key);
        match f.kind {
            Choice(options) => options
                .iter()
                .find(|(c, _, _)| *c == v)
                .map_or(v, |(_, ja, e)| if en { *e } else { *ja }),
            _ => v,
        }
    }

    /// Trims every value, drops empty ones, and checks each against the register's fields:
    /// unknown keys, missing required values, impossible dates and unknown choices are refused
    /// with the field named.
    pub fn checked(mut self, reg: Register) -> Result<Self, (&'static str, String)> {
        if !reg.has_people() && !self.people.is_empty() {
            return Err(("people", "この台帳には参加者の欄がありません".into()));
        }
        let fields = reg.fields();
        let mut out = BTreeMap::new();
        for (k, v) in std::mem::take(&mut self.fields) {
            let Some(f) = fields.iter().find(|f| f.key == k) else {
                return Err(("fields", format!("{k} はこの台帳にない項目です")));
            };
            let k = f.key;
            let v = v.trim().to_owned();
            if v.is_empty() {
                continue;
            }
            if v.chars().count() > MAX_FIELD_CHARS {
                return Err((k, format!("{MAX_FIELD_CHARS}文字以内にしてください")));
            }
            match f.kind {
                Date if !valid_date(&v) => {
                    return Err((k, "日付は YYYY-MM-DD の形で入力してください".into()));
                }
                Choice(options) if !options.iter().any(|(c, _, _)| *c == v) => {
                    return Err((k, "選択肢から選んでください".into()));
                }
                _ => {}
            }
            out.insert(k.to_owned(), v);
        }
        if let Some(f) = fields
            .iter()
            .find(|f| f.required && !out.contains_key(f.key))
        {
            return Err((f.key, format!("{}を入力してください", f.ja)));
        }
        if reg == Register::TakeOut
            && let Some(back) = out.get("returned_on")
            && days(back) < out.get("taken_on").and_then(|d| days(d))
        {
            return Err((
                "returned_on",
                "返却・消去した日が持ち出した日より前です".into(),
            ));
        }
        let mut people: Vec<String> = self
            .people
            .into_iter()
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect();
        people.sort();
        people.dedup();
        if people.len() > MAX_PEOPLE {
            return Err(("people", format!("参加者は{MAX_PEOPLE}人までです")));
        }
        Ok(Entry {
            fields: out,
            people,
        })
    }
}

/// Training over the last year against the active accounts: いいえ when there was none or
/// someone active did not attend; otherwise partly observed (what was taught and whether
/// new staff were trained on hiring is for the officer to say).
pub fn observe_training(
    entries: &[Entry],
    active_logins: &[String],
    today: &str,
    at: i64,
) -> Observation {
    let Some(today_days) = days(today) else {
        return Observation::new(false, "今日の日付を読めません", "Unreadable date", at);
    };
    let recent: Vec<&Entry> = entries
        .iter()
        .filter(|e| days(e.get("held_on")).is_some_and(|d| d <= today_days && today_days - d < 365))
        .collect();
    if recent.is_empty() {
        return Observation::new(
            false,
            "過去1年に教育・訓練の記録がありません（自己点検 › 教育・訓練）",
            "No training recorded in the last year",
            at,
        );
    }
    let latest = recent
        .iter()
        .map(|e| e.get("held_on"))
        .max()
        .unwrap_or_default();
    let absent: Vec<&String> = active_logins
        .iter()
        .filter(|l| !recent.iter().any(|e| e.people.contains(l)))
        .collect();
    if absent.is_empty() {
        Observation::new(
            true,
            format!(
                "過去1年の教育・訓練 {} 回（最新 {latest}）。有効なアカウント {} 人全員が参加",
                recent.len(),
                active_logins.len()
            ),
            format!(
                "{} sessions in the last year (latest {latest}); every active account attended",
                recent.len()
            ),
            at,
        )
        .partly("研修の内容が指針に沿っていること、採用時の研修、経営層への報告")
    } else {
        let shown: Vec<&str> = absent.iter().take(20).map(|s| s.as_str()).collect();
        Observation::new(
            false,
            format!(
                "過去1年の教育・訓練 {} 回（最新 {latest}）。参加記録のない有効なアカウント {} 人: {}{}",
                recent.len(),
                absent.len(),
                shown.join("、"),
                if absent.len() > shown.len() {
                    " ほか"
                } else {
                    ""
                }
            ),
            format!(
                "{} active accounts have no training attendance in the last year",
                absent.len()
            ),
            at,
        )
    }
}

/// Outside storage: each S3 backup target mamori uses must have an entry naming it, with the
/// data in Japan, a contract under Japanese law and the responsibility split written down.
/// `None` when mamori stores nothing outside and no contractor is recorded (the officer
/// answers for contractors mamori cannot see).
pub fn observe_outsourcing(
    entries: &[Entry],
    s3_targets: &[String],
    at: i64,
) -> Option<Observation> {
    if s3_targets.is_empty() && entries.is_empty() {
        return None;
    }
    let mut faults = Vec::new();
    for t in s3_targets {
        let bare = bare_target(t);
        if let Some(region) = aws_region_abroad(t) {
            faults.push(format!("{bare}: AWS のリージョン {region} は国外です"));
        }
        match entries
            .iter()
            .find(|e| bare_target(e.get("target")) == bare)
        {
            None => faults.push(format!("{bare}: 外部保存の記録がありません")),
            Some(e) => {
                if e.get("in_japan") != "yes" {
                    faults.push(format!("{bare}: 国内保存が確認されていません"));
                }
                if e.get("japanese_law") != "yes" {
                    faults.push(format!(
                        "{bare}: 準拠法・裁判管轄が国内と確認されていません"
                    ));
                }
            }
        }
    }
    for e in entries {
        if e.get("in_japan") == "no"
            && !s3_targets
                .iter()
                .any(|t| bare_target(t) == bare_target(e.get("target")))
        {
            faults.push(format!("{}: データが国外に保存されます", e.get("provider")));
        }
    }
    Some(if faults.is_empty() {
        Observation::new(
            true,
            format!(
                "外部保存・委託の記録 {} 件。mamori の S3 バックアップ先 {} か所はすべて記録あり（国内保存・日本法・責任分界）",
                entries.len(),
                s3_targets.len()
            ),
            format!(
                "{} outside-storage entries; every S3 backup target is recorded as in Japan under Japanese law",
                entries.len()
            ),
            at,
        )
        .partly("契約内容（守秘・再委託・監査・終了時のデータ消去）と事業者の認証の確認")
    } else {
        Observation::new(
            false,
            faults.join("、"),
            format!("{} outside-storage problems", faults.len()),
            at,
        )
    })
}

/// Disposal and take-out: mamori can count what was recorded and find take-outs not yet
/// returned, but cannot see media that left or were thrown away without a record.
pub fn observe_take_out(entries: &[Entry], today: &str, at: i64) -> Observation {
    let today_days = days(today).unwrap_or(i64::MAX);
    let open: Vec<String> = entries
        .iter()
        .filter(|e| e.get("returned_on").is_empty())
        .filter(|e| days(e.get("taken_on")).is_some_and(|d| today_days - d > 30))
        .map(|e| format!("{}（{}）", e.get("what"), e.get("taken_on")))
        .collect();
    let plain = entries
        .iter()
        .filter(|e| e.get("encrypted") == "no" && e.get("medium") != "paper")
        .count();
    if !open.is_empty() || plain > 0 {
        let mut why = Vec::new();
        if !open.is_empty() {
            why.push(format!(
                "30日を過ぎても返却・消去の記録がない持ち出し: {}",
                open.join("、")
            ));
        }
        if plain > 0 {
            why.push(format!("暗号化せずに持ち出した電子媒体 {plain} 件"));
        }
        return Observation::new(
            false,
            why.join("。"),
            "Take-outs not returned or not encrypted",
            at,
        );
    }
    Observation::new(
        true,
        format!(
            "持ち出し記録 {} 件。電子媒体はすべて暗号化、30日を過ぎた未返却なし",
            entries.len()
        ),
        format!(
            "{} take-outs recorded, all encrypted and returned",
            entries.len()
        ),
        at,
    )
    .partly("記録のない持ち出しがないこと、持ち出しの手順と定期報告")
}

pub fn observe_disposal(entries: &[Entry], at: i64) -> Observation {
    let missing: Vec<String> = entries
        .iter()
        .filter(|e| e.get("personal") != "no" && e.get("confirmed_by").is_empty())
        .map(|e| format!("{}（{}）", e.get("what"), e.get("disposed_on")))
        .collect();
    if !missing.is_empty() {
        return Observation::new(
            false,
            format!("確認者のない破棄: {}", missing.join("、")),
            "Disposals without a confirming person",
            at,
        );
    }
    Observation::new(
        true,
        format!("破棄の記録 {} 件（すべて確認者あり）", entries.len()),
        format!("{} disposals recorded, each confirmed", entries.len()),
        at,
    )
    .partly("記録のない破棄がないこと、業者に委託した破棄の証明書の確認")
}

/// The AWS region a target names when it is outside Japan (Tokyo and Osaka are
/// ap-northeast-1 and -3). Targets with their own endpoint (other providers) are judged by
/// the register entry alone: their region names are the provider's own.
fn aws_region_abroad(t: &str) -> Option<String> {
    let query = t.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut region = None;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("endpoint", _)) => return None,
            Some(("region", r)) => region = Some(r.to_owned()),
            _ => {}
        }
    }
    region.filter(|r| !matches!(r.as_str(), "ap-northeast-1" | "ap-northeast-3"))
}

/// `s3://bucket/prefix` without its settings, the form entries name a target by.
pub fn bare_target(t: &str) -> String {
    t.trim()
        .split('?')
        .next()
        .unwrap_or("")
        .trim_end_matches('/')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pairs: &[(&str, &str)], people: &[&str]) -> Entry {
        Entry {
            fields: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            people: people.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    fn training(on: &str, people: &[&str]) -> Entry {
        entry(
            &[
                ("held_on", on),
                ("title", "個人情報保護研修"),
                ("kind", "periodic"),
                ("topics", "標的型メール、パスワード"),
            ],
            people,
        )
    }

    #[test]
    fn entries_are_checked_field_by_field() {
        let ok = training("2026-04-01", &[" b ", "a", "a"])
            .checked(Register::Training)
            .unwrap();
        assert_eq!(ok.people, ["a", "b"]);
        let e = |pairs: &[(&str, &str)]| entry(pairs, &[]).checked(Register::Training);
        assert_eq!(
            e(&[
                ("held_on", "2026-02-30"),
                ("title", "x"),
                ("kind", "periodic"),
                ("topics", "y")
            ])
            .unwrap_err()
            .0,
            "held_on"
        );
        assert_eq!(
            e(&[
                ("held_on", "2026-02-03"),
                ("title", "x"),
                ("kind", "fun"),
                ("topics", "y")
            ])
            .unwrap_err()
            .0,
            "kind"
        );
        assert_eq!(
            e(&[
                ("held_on", "2026-02-03"),
                ("title", " "),
                ("kind", "drill"),
                ("topics", "y")
            ])
            .unwrap_err()
            .0,
            "title"
        );
        assert_eq!(
            e(&[("held_on", "2026-02-03"), ("secret", "x")])
                .unwrap_err()
                .0,
            "fields"
        );
        let people_elsewhere = entry(&[("what", "x")], &["a"]).checked(Register::Disposal);
        assert_eq!(people_elsewhere.unwrap_err().0, "people");
        let back_before = entry(
            &[
                ("taken_on", "2026-05-02"),
                ("what", "紹介状"),
                ("medium", "usb"),
                ("encrypted", "yes"),
                ("purpose", "学会"),
                ("taken_by", "伊藤"),
                ("approved_by", "院長"),
                ("returned_on", "2026-05-01"),
            ],
            &[],
        )
        .checked(Register::TakeOut);
        assert_eq!(back_before.unwrap_err().0, "returned_on");
    }

    use proptest::prelude::Strategy;

    proptest::proptest! {
        /// Whatever arrives (known and unknown keys, any text, any people), checking never
        /// panics; what passes is trimmed, within its limits and unchanged by a second check;
        /// what fails names a field and says why in Japanese.
        #[test]
        fn checking_any_entry_is_total_and_stable(
            reg in 0usize..4,
            pairs in proptest::collection::vec(
                (
                    proptest::prop_oneof![
                        proptest::sample::select(vec![
                            "taken_on", "what", "medium", "encrypted", "purpose", "taken_by",
                            "approved_by", "returned_on", "held_on", "title", "kind", "topics",
                            "disposed_on", "personal", "method", "performed_by", "provider",
                            "service", "region", "in_japan", "japanese_law", "responsibility",
                        ]).prop_map(str::to_owned),
                        "[a-z_]{1,12}",
                    ],
                    proptest::prop_oneof![
                        "\\PC{0,40}",
                        "20[0-9]{2}-[01][0-9]-[0-3][0-9]",
                        proptest::sample::select(vec!["yes", "no", "usb", "periodic", "physical", " "]).prop_map(str::to_owned),
                    ],
                ),
                0..16,
            ),
            people in proptest::collection::vec("\\PC{0,12}", 0..4),
        ) {
            let reg = Register::ALL[reg];
            let entry = Entry { fields: pairs.into_iter().collect(), people };
            match entry.checked(reg) {
                Ok(ok) => {
                    for (k, v) in &ok.fields {
                        proptest::prop_assert!(reg.fields().iter().any(|f| f.key == k));
                        proptest::prop_assert!(!v.is_empty() && v.trim() == v);
                        proptest::prop_assert!(v.chars().count() <= MAX_FIELD_CHARS);
                    }
                    proptest::prop_assert_eq!(ok.clone().checked(reg), Ok(ok));
                }
                Err((field, message)) => {
                    proptest::prop_assert!(!field.is_empty());
                    proptest::prop_assert!(message.chars().any(|c| c as u32 > 0x3000), "{}", message);
                }
            }
        }
    }

    #[test]
    fn training_is_no_when_missing_or_someone_absent_and_never_a_full_yes() {
        let active = vec!["dr.sato".to_owned(), "ns.suzuki".to_owned()];
        let none = observe_training(&[], &active, "2026-12-04", 0);
        assert_eq!(none.answer, crate::Answer::No);
        let old = observe_training(
            &[training("2025-11-01", &["dr.sato", "ns.suzuki"])],
            &active,
            "2026-12-04",
            0,
        );
        assert_eq!(
            old.answer,
            crate::Answer::No,
            "a session over a year ago does not count"
        );
        let partial = observe_training(
            &[training("2026-06-01", &["dr.sato"])],
            &active,
            "2026-12-04",
            0,
        );
        assert_eq!(partial.answer, crate::Answer::No);
        assert!(partial.evidence_ja.contains("ns.suzuki"));
        let all = observe_training(
            &[
                training("2026-06-01", &["dr.sato"]),
                training("2026-09-01", &["ns.suzuki"]),
            ],
            &active,
            "2026-12-04",
            0,
        );
        assert!(all.is_partial_yes(), "attendance is only part of the item");
        assert!(all.evidence_ja.contains("2026-09-01"));
    }

    #[test]
    fn every_s3_target_needs_a_domestic_contract_on_record() {
        let target = "s3://clinic-backup/mamori?region=ap-northeast-1&lock_days=30".to_owned();
        assert!(observe_outsourcing(&[], &[], 0).is_none());
        let missing = observe_outsourcing(&[], std::slice::from_ref(&target), 0).unwrap();
        assert_eq!(missing.answer, crate::Answer::No);
        assert!(missing.evidence_ja.contains("s3://clinic-backup/mamori"));
        let mut e = entry(
            &[
                ("provider", "例クラウド"),
                ("service", "S3 互換ストレージ"),
                ("target", "s3://clinic-backup/mamori/"),
                ("region", "東京"),
                ("in_japan", "yes"),
                ("japanese_law", "unknown"),
                ("responsibility", "鍵の管理は医療機関、保管は事業者"),
            ],
            &[],
        );
        let unknown_law =
            observe_outsourcing(std::slice::from_ref(&e), std::slice::from_ref(&target), 0)
                .unwrap();
        assert_eq!(unknown_law.answer, crate::Answer::No);
        e.fields.insert("japanese_law".into(), "yes".into());
        let ok = observe_outsourcing(std::slice::from_ref(&e), std::slice::from_ref(&target), 0)
            .unwrap();
        assert!(ok.is_partial_yes());
        e.fields.insert("in_japan".into(), "no".into());
        e.fields.insert("target".into(), String::new());
        let abroad = observe_outsourcing(&[e], &[], 0).unwrap();
        assert_eq!(abroad.answer, crate::Answer::No);
        // An AWS region outside Japan is a fault whatever the register says.
        let mut e2 = entry(
            &[
                ("provider", "AWS"),
                ("service", "S3"),
                ("target", "s3://b/p"),
                ("region", "us-east-1"),
                ("in_japan", "yes"),
                ("japanese_law", "yes"),
                ("responsibility", "…"),
            ],
            &[],
        );
        let us = observe_outsourcing(
            std::slice::from_ref(&e2),
            &["s3://b/p?region=us-east-1".to_owned()],
            0,
        )
        .unwrap();
        assert_eq!(us.answer, crate::Answer::No);
        assert!(us.evidence_ja.contains("us-east-1"));
        e2.fields.insert("region".into(), "東京".into());
        let own_endpoint = observe_outsourcing(
            &[e2],
            &["s3://b/p?endpoint=https://s3.example.jp&region=jp-east".to_owned()],
            0,
        )
        .unwrap();
        assert!(own_endpoint.is_partial_yes());
    }

    #[test]
    fn take_outs_not_back_or_not_encrypted_are_faults() {
        let t = |on: &str, back: &str, enc: &str, medium: &str| {
            entry(
                &[
                    ("taken_on", on),
                    ("what", "検査結果"),
                    ("medium", medium),
                    ("encrypted", enc),
                    ("returned_on", back),
                ],
                &[],
            )
        };
        let ok = observe_take_out(
            &[
                t("2026-11-20", "", "yes", "usb"),
                t("2026-01-01", "2026-01-03", "yes", "laptop"),
            ],
            "2026-12-04",
            0,
        );
        assert!(ok.is_partial_yes());
        let late = observe_take_out(&[t("2026-10-01", "", "yes", "usb")], "2026-12-04", 0);
        assert_eq!(late.answer, crate::Answer::No);
        let plain = observe_take_out(
            &[t("2026-12-01", "2026-12-02", "no", "usb")],
            "2026-12-04",
            0,
        );
        assert_eq!(plain.answer, crate::Answer::No);
        let paper = observe_take_out(
            &[t("2026-12-01", "2026-12-02", "no", "paper")],
            "2026-12-04",
            0,
        );
        assert!(paper.is_partial_yes(), "paper cannot be encrypted");
    }

    #[test]
    fn disposals_of_personal_data_need_a_confirming_person() {
        let d = |confirmed: &str| {
            entry(
                &[
                    ("what", "旧サーバのディスク"),
                    ("personal", "yes"),
                    ("confirmed_by", confirmed),
                ],
                &[],
            )
        };
        assert_eq!(observe_disposal(&[d("")], 0).answer, crate::Answer::No);
        assert!(observe_disposal(&[d("事務長")], 0).is_partial_yes());
    }
}
