//! The asset ledger (機器台帳: サーバ・端末PC・ネットワーク機器・医療機器) and its CSV format,
//! and what the checklist items about devices can be answered from it.
//!
//! CSV: UTF-8 (a BOM is accepted, as Excel writes one), a header row with the column names of
//! [`COLUMNS`] in any order; `name` identifies a device, so importing a row whose name exists
//! replaces that device. A file with any bad row imports nothing and names every bad row.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::answer::Observation;

pub const COLUMNS: &[&str] = &[
    "kind",
    "name",
    "location",
    "owner",
    "os",
    "patched_on",
    "remote_maintenance",
    "maintainer",
    "vendor",
    "mds_sds",
    "connection_restriction",
    "note",
];

/// Largest CSV accepted (a clinic has tens of devices, a hospital thousands).
pub const MAX_ROWS: usize = 20_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    /// server | pc | network | medical
    pub kind: String,
    pub name: String,
    pub location: String,
    pub owner: String,
    pub os: String,
    /// Date the last security patch / firmware was applied (YYYY-MM-DD), if known.
    pub patched_on: Option<String>,
    /// yes | no | unknown
    pub remote_maintenance: String,
    pub maintainer: String,
    pub vendor: String,
    /// received | not_received | na
    pub mds_sds: String,
    pub connection_restriction: String,
    pub note: String,
}

pub const KINDS: &[(&str, &str, &str)] = &[
    ("server", "サーバ", "Server"),
    ("pc", "端末PC", "PC"),
    ("network", "ネットワーク機器", "Network device"),
    ("medical", "医療機器", "Medical device"),
];

pub fn kind_ja(code: &str) -> &str {
    KINDS.iter().find(|k| k.0 == code).map_or(code, |k| k.1)
}

fn norm_kind(s: &str) -> Option<&'static str> {
    let s = s.trim();
    KINDS
        .iter()
        .find(|k| k.0.eq_ignore_ascii_case(s) || k.1 == s || k.2.eq_ignore_ascii_case(s))
        .map(|k| k.0)
        .or(match s {
            "サーバー" => Some("server"),
            "端末" | "PC" | "パソコン" => Some("pc"),
            _ => None,
        })
}

fn norm_yes_no(s: &str) -> Option<&'static str> {
    match s.trim() {
        "yes" | "はい" | "あり" | "有" => Some("yes"),
        "no" | "いいえ" | "なし" | "無" => Some("no"),
        "" | "unknown" | "不明" | "未確認" => Some("unknown"),
        _ => None,
    }
}

fn norm_mds(s: &str) -> Option<&'static str> {
    match s.trim() {
        "received" | "受領" | "受領済" | "はい" => Some("received"),
        "" | "not_received" | "未受領" | "いいえ" => Some("not_received"),
        "na" | "該当なし" | "対象外" => Some("na"),
        _ => None,
    }
}

pub use mamori_domain::date::{days, valid as valid_date};

/// One refused row: its line in the file (1 = header) and what is wrong, in Japanese.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub line: u64,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}行目: {}", self.line, self.message)
    }
}

impl Asset {
    /// Checks and normalises one device (from a form or a CSV row).
    #[allow(clippy::too_many_arguments)]
    pub fn checked(mut self) -> Result<Self, String> {
        self.kind = norm_kind(&self.kind)
            .ok_or("kind は server・pc・network・medical（サーバ・端末PC・ネットワーク機器・医療機器）のいずれかです")?
            .to_owned();
        self.name = self.name.trim().to_owned();
        if self.name.is_empty() {
            return Err("name（機器名）は必須です".into());
        }
        if self.name.chars().count() > 200 {
            return Err("name（機器名）は200文字以内にしてください".into());
        }
        self.remote_maintenance = norm_yes_no(&self.remote_maintenance)
            .ok_or("remote_maintenance は yes・no・unknown（はい・いいえ・不明）のいずれかです")?
            .to_owned();
        self.mds_sds = norm_mds(&self.mds_sds)
            .ok_or("mds_sds は received・not_received・na（受領・未受領・該当なし）のいずれかです")?
            .to_owned();
        self.patched_on = match self.patched_on.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(d) if valid_date(d) => Some(d.to_owned()),
            Some(d) => {
                return Err(format!(
                    "patched_on「{d}」は YYYY-MM-DD の日付にしてください"
                ));
            }
        };
        for (field, v) in [
            ("location", &mut self.location),
            ("owner", &mut self.owner),
            ("os", &mut self.os),
            ("maintainer", &mut self.maintainer),
            ("vendor", &mut self.vendor),
            ("connection_restriction", &mut self.connection_restriction),
            ("note", &mut self.note),
        ] {
            *v = v.trim().to_owned();
            if v.chars().count() > 1000 {
                return Err(format!("{field} は1000文字以内にしてください"));
            }
        }
        if self.remote_maintenance == "yes" && self.maintainer.is_empty() {
            return Err(
                "remote_maintenance が yes のときは maintainer（保守を行う者）を書いてください"
                    .into(),
            );
        }
        Ok(self)
    }
}

/// Parses a whole CSV file: every device, or every bad row.
pub fn parse_csv(bytes: &[u8]) -> Result<Vec<Asset>, Vec<RowError>> {
    let one = |line: u64, m: &str| {
        vec![RowError {
            line,
            message: m.to_owned(),
        }]
    };
    let text = std::str::from_utf8(bytes).map_err(|_| {
        one(
            1,
            "UTF-8 ではありません。Excel では「CSV UTF-8（コンマ区切り）」で保存してください",
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| one(1, &format!("見出し行を読めません: {e}")))?
        .clone();
    let pos = |c: &str| headers.iter().position(|h| h.trim() == c);
    let unknown: Vec<&str> = headers
        .iter()
        .filter(|h| !COLUMNS.contains(&h.trim()))
        .collect();
    if !unknown.is_empty() {
        return Err(one(
            1,
            &format!(
                "知らない列があります: {}（使える列: {}）",
                unknown.join(", "),
                COLUMNS.join(", ")
            ),
        ));
    }
    for required in ["kind", "name"] {
        if pos(required).is_none() {
            return Err(one(1, &format!("{required} 列がありません")));
        }
    }
    let cols: Vec<Option<usize>> = COLUMNS.iter().map(|c| pos(c)).collect();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut names = HashSet::new();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(RowError {
                    line,
                    message: format!("行を読めません（列の数や引用符を確かめてください）: {e}"),
                });
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        if out.len() + errors.len() >= MAX_ROWS {
            return Err(one(
                line,
                &format!("{MAX_ROWS} 行を超えています。分けて取り込んでください"),
            ));
        }
        let get = |i: usize| {
            let cell = cols[i].and_then(|c| rec.get(c)).unwrap_or("");
            crate::spreadsheet::unguarded(cell).to_owned()
        };
        let a = Asset {
            kind: get(0),
            name: get(1),
            location: get(2),
            owner: get(3),
            os: get(4),
            patched_on: Some(get(5)),
            remote_maintenance: get(6),
            maintainer: get(7),
            vendor: get(8),
            mds_sds: get(9),
            connection_restriction: get(10),
            note: get(11),
        };
        match a.checked() {
            Ok(a) if !names.insert(a.name.clone()) => errors.push(RowError {
                line,
                message: format!("機器名「{}」が同じファイルの前の行にもあります", a.name),
            }),
            Ok(a) => out.push(a),
            Err(m) => errors.push(RowError { line, message: m }),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The ledger as CSV in the import format (UTF-8 with BOM so Excel reads it).
pub fn to_csv(assets: &[Asset]) -> Vec<u8> {
    crate::spreadsheet::csv(
        COLUMNS,
        assets.iter().map(|a| {
            [
                a.kind.as_str(),
                &a.name,
                &a.location,
                &a.owner,
                &a.os,
                a.patched_on.as_deref().unwrap_or(""),
                &a.remote_maintenance,
                &a.maintainer,
                &a.vendor,
                &a.mds_sds,
                &a.connection_restriction,
                &a.note,
            ]
        }),
    )
}

fn count(assets: &[Asset], kind: &str) -> usize {
    assets.iter().filter(|a| a.kind == kind).count()
}

/// 2-① 台帳管理: the ledger lists devices, each with where it is and who is responsible.
pub fn observe_ledger(assets: &[Asset], at: i64) -> Observation {
    let summary = format!(
        "台帳に {} 台（サーバ {}、端末PC {}、ネットワーク機器 {}、医療機器 {}）",
        assets.len(),
        count(assets, "server"),
        count(assets, "pc"),
        count(assets, "network"),
        count(assets, "medical")
    );
    let summary_en = format!("{} devices in the ledger", assets.len());
    let missing: Vec<&str> = assets
        .iter()
        .filter(|a| a.location.is_empty() || a.owner.is_empty())
        .map(|a| a.name.as_str())
        .collect();
    if assets.is_empty() {
        Observation::new(
            false,
            "機器台帳に機器が登録されていません",
            "The asset ledger is empty",
            at,
        )
    } else if count(assets, "pc") + count(assets, "server") == 0 {
        Observation::new(
            false,
            format!("{summary}。サーバも端末PCも登録されていません"),
            format!("{summary_en}; no server or PC"),
            at,
        )
    } else if !missing.is_empty() {
        Observation::new(
            false,
            format!(
                "{summary}。設置場所か管理者が空の機器: {}",
                missing.join("、")
            ),
            format!(
                "{summary_en}; location or owner missing: {}",
                missing.join(", ")
            ),
            at,
        )
    } else {
        Observation::new(true, summary, summary_en, at)
    }
}

/// 2-② リモートメンテナンス: every device's remote maintenance is confirmed (yes or no), and
/// for each that has it, who maintains it.
pub fn observe_remote_maintenance(assets: &[Asset], at: i64) -> Option<Observation> {
    if assets.is_empty() {
        return None;
    }
    let unknown: Vec<&str> = assets
        .iter()
        .filter(|a| a.remote_maintenance == "unknown")
        .map(|a| a.name.as_str())
        .collect();
    let remote: Vec<String> = assets
        .iter()
        .filter(|a| a.remote_maintenance == "yes")
        .map(|a| format!("{}（{}）", a.name, a.maintainer))
        .collect();
    Some(if unknown.is_empty() {
        Observation::new(
            true,
            format!(
                "全 {} 台で確認済み。リモート保守あり: {}",
                assets.len(),
                if remote.is_empty() {
                    "なし".into()
                } else {
                    remote.join("、")
                }
            ),
            format!(
                "Confirmed for all {} devices; {} with remote maintenance",
                assets.len(),
                remote.len()
            ),
            at,
        )
    } else {
        Observation::new(
            false,
            format!("リモート保守の有無が未確認の機器: {}", unknown.join("、")),
            format!("Remote maintenance not confirmed: {}", unknown.join(", ")),
            at,
        )
    })
}

/// 2-③ MDS/SDS: every device supplied by a vendor has its disclosure sheet on file.
/// `with_document` names devices whose sheet is attached in mamori.
pub fn observe_mds(
    assets: &[Asset],
    with_document: &HashSet<String>,
    at: i64,
) -> Option<Observation> {
    let vendor: Vec<&Asset> = assets
        .iter()
        .filter(|a| !a.vendor.is_empty() && a.mds_sds != "na")
        .collect();
    if vendor.is_empty() {
        return None;
    }
    let missing: Vec<&str> = vendor
        .iter()
        .filter(|a| a.mds_sds != "received")
        .map(|a| a.name.as_str())
        .collect();
    let attached = vendor
        .iter()
        .filter(|a| with_document.contains(&a.name))
        .count();
    Some(if missing.is_empty() {
        Observation::new(
            true,
            format!(
                "事業者の機器 {} 台すべて受領済み（うち {} 台は文書を添付）",
                vendor.len(),
                attached
            ),
            format!(
                "Received for all {} vendor devices ({attached} attached)",
                vendor.len()
            ),
            at,
        )
    } else {
        Observation::new(
            false,
            format!("MDS/SDS 未受領: {}", missing.join("、")),
            format!("MDS/SDS not received: {}", missing.join(", ")),
            at,
        )
    })
}

/// Patches: every device of the kinds has a patch date within `max_days` of `today`.
pub fn observe_patches(
    assets: &[Asset],
    kinds: &[&str],
    today: &str,
    max_days: i64,
    at: i64,
) -> Option<Observation> {
    let now = days(today)?;
    let these: Vec<&Asset> = assets
        .iter()
        .filter(|a| kinds.contains(&a.kind.as_str()))
        .collect();
    if these.is_empty() {
        return None;
    }
    let stale: Vec<String> = these
        .iter()
        .filter(|a| {
            a.patched_on
                .as_deref()
                .and_then(days)
                .is_none_or(|d| now - d > max_days)
        })
        .map(|a| {
            format!(
                "{}（{}）",
                a.name,
                a.patched_on.as_deref().unwrap_or("未記入")
            )
        })
        .collect();
    Some(if stale.is_empty() {
        Observation::new(
            true,
            format!("対象 {} 台すべて {max_days} 日以内に適用", these.len()),
            format!("All {} devices patched within {max_days} days", these.len()),
            at,
        )
    } else {
        Observation::new(
            false,
            format!(
                "{max_days} 日以上パッチ適用の記録がない機器: {}",
                stale.join("、")
            ),
            format!("Not patched within {max_days} days: {}", stale.len()),
            at,
        )
    })
}

/// Connection-source restriction: every network device records how it restricts connections.
pub fn observe_connection_restriction(assets: &[Asset], at: i64) -> Option<Observation> {
    let net: Vec<&Asset> = assets.iter().filter(|a| a.kind == "network").collect();
    if net.is_empty() {
        return None;
    }
    let open: Vec<&str> = net
        .iter()
        .filter(|a| a.connection_restriction.is_empty())
        .map(|a| a.name.as_str())
        .collect();
    Some(if open.is_empty() {
        Observation::new(
            true,
            format!("ネットワーク機器 {} 台すべてに接続元制限を記録", net.len()),
            format!("All {} network devices restrict connections", net.len()),
            at,
        )
    } else {
        Observation::new(
            false,
            format!(
                "接続元制限の記録がないネットワーク機器: {}",
                open.join("、")
            ),
            format!("No restriction recorded: {}", open.join(", ")),
            at,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "kind,name,location,owner,os,patched_on,remote_maintenance,maintainer,vendor,mds_sds,connection_restriction,note\n\
server,電子カルテサーバ,サーバ室,院長,Ubuntu 24.04,2026-11-01,yes,〇〇メディカル,〇〇メディカル,received,,\n\
サーバ,NAS,事務室,事務長,DSM 7.2,2026-10-01,いいえ,,,該当なし,,\n\
network,UTM,サーバ室,院長,FortiOS 7.4,2026-09-15,no,,△△ネット,受領,\"院内LANと保守VPNのみ, 管理画面は院内から\",\n";

    #[test]
    fn a_good_file_imports_with_japanese_values_normalised() {
        let mut bytes = vec![0xEF, 0xBB, 0xBF];
        bytes.extend_from_slice(GOOD.as_bytes());
        let v = parse_csv(&bytes).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[1].kind, "server");
        assert_eq!(v[1].remote_maintenance, "no");
        assert_eq!(v[1].mds_sds, "na");
        assert_eq!(v[2].mds_sds, "received");
        assert!(v[2].connection_restriction.contains(", 管理画面"));
        // Round trip through the export format.
        assert_eq!(parse_csv(&to_csv(&v)).unwrap(), v);
    }

    #[test]
    fn bad_rows_are_all_named_and_nothing_is_returned() {
        let bad = format!(
            "{GOOD}router,X,,,,,,,,,,\npc,PC1,,,,2026-02-30,,,,,,\npc,NAS,,,,,,,,,,\npc,PC2,,,,,yes,,,,,\npc,PC3,,,\n"
        );
        let e = parse_csv(bad.as_bytes()).unwrap_err();
        let lines: Vec<u64> = e.iter().map(|r| r.line).collect();
        assert_eq!(lines, [5, 6, 7, 8, 9], "{e:?}");
        assert!(e[0].message.contains("kind"));
        assert!(e[1].message.contains("2026-02-30"));
        assert!(e[2].message.contains("NAS"));
        assert!(e[3].message.contains("maintainer"));
        assert!(e[4].to_string().starts_with("9行目"));
    }

    #[test]
    fn broken_files_get_one_clear_error() {
        assert!(
            parse_csv(b"\xff\xfe k").unwrap_err()[0]
                .message
                .contains("UTF-8")
        );
        assert!(
            parse_csv(b"name,colour\nA,red\n").unwrap_err()[0]
                .message
                .contains("colour")
        );
        assert!(
            parse_csv(b"name\nA\n").unwrap_err()[0]
                .message
                .contains("kind")
        );
    }

    #[test]
    fn exported_cells_cannot_run_as_formulas() {
        let a = Asset {
            kind: "pc".into(),
            name: "=HYPERLINK(\"x\")".into(),
            location: String::new(),
            owner: String::new(),
            os: String::new(),
            patched_on: None,
            remote_maintenance: "unknown".into(),
            maintainer: String::new(),
            vendor: String::new(),
            mds_sds: "na".into(),
            connection_restriction: String::new(),
            note: String::new(),
        };
        let out = String::from_utf8(to_csv(&[a])).unwrap();
        assert!(out.contains("'=HYPERLINK"));
    }

    #[test]
    fn observations_from_the_ledger_go_both_ways() {
        let v = parse_csv(GOOD.as_bytes()).unwrap();
        assert_eq!(observe_ledger(&v, 0).answer, crate::Answer::Yes);
        assert_eq!(observe_ledger(&v[2..], 0).answer, crate::Answer::No); // network only
        let mut with_pc = v.clone();
        with_pc.push(Asset {
            kind: "pc".into(),
            name: "受付PC".into(),
            location: "受付".into(),
            owner: "事務長".into(),
            ..v[1].clone()
        });
        assert_eq!(observe_ledger(&with_pc, 0).answer, crate::Answer::Yes);
        with_pc[3].owner.clear();
        assert_eq!(observe_ledger(&with_pc, 0).answer, crate::Answer::No);
        assert_eq!(observe_ledger(&[], 0).answer, crate::Answer::No);

        assert_eq!(
            observe_remote_maintenance(&v, 0).unwrap().answer,
            crate::Answer::Yes
        );
        let mut unk = v.clone();
        unk[1].remote_maintenance = "unknown".into();
        assert_eq!(
            observe_remote_maintenance(&unk, 0).unwrap().answer,
            crate::Answer::No
        );

        assert_eq!(
            observe_mds(&v, &HashSet::new(), 0).unwrap().answer,
            crate::Answer::Yes
        );
        let mut miss = v.clone();
        miss[2].mds_sds = "not_received".into();
        assert_eq!(
            observe_mds(&miss, &HashSet::new(), 0).unwrap().answer,
            crate::Answer::No
        );

        let p = observe_patches(&v, &["server"], "2026-11-26", 90, 0).unwrap();
        assert_eq!(p.answer, crate::Answer::Yes);
        let p = observe_patches(&v, &["network"], "2026-12-20", 90, 0).unwrap();
        assert_eq!(p.answer, crate::Answer::No, "{p:?}");
        assert!(observe_patches(&v, &["pc"], "2026-11-26", 90, 0).is_none());

        assert_eq!(
            observe_connection_restriction(&v, 0).unwrap().answer,
            crate::Answer::Yes
        );
        let mut open = v;
        open[2].connection_restriction.clear();
        assert_eq!(
            observe_connection_restriction(&open, 0).unwrap().answer,
            crate::Answer::No
        );
    }

    #[test]
    fn day_numbers() {
        assert_eq!(days("1970-01-01"), Some(0));
        assert_eq!(days("2024-02-29"), Some(19_782));
        assert_eq!(days("2023-02-29"), None);
        assert_eq!(
            days("2026-11-26").unwrap() - days("2026-08-28").unwrap(),
            90
        );
    }
}
