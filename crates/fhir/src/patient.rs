//! JP Core's JP_Patient: the facility's patient ID as the identifier, the name in kanji
//! (`IDE`) and in kana (`SYL`) told apart by the ISO 21090 representation extension, sex and
//! date of birth — what mamori keeps of a patient, and nothing it cannot keep: a resource with
//! more (an address, a telephone number…) is refused rather than stored in part.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::Context;
use crate::outcome::IssueType;

pub const PROFILE: &str = "http://jpfhir.jp/fhir/core/StructureDefinition/JP_Patient";
/// ISO 21090 EN representation: `IDE` ideographic (漢字), `SYL` syllabic (カナ).
pub const NAME_REPRESENTATION: &str =
    "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation";

/// A patient as mamori keeps one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatientFacts {
    pub id: String,
    pub name_kanji: String,
    pub name_kana: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// `male`, `female`, `other` or `unknown` (FHIR's AdministrativeGender).
    pub sex: String,
    pub created_at: i64,
}

pub use crate::outcome::Refusal;
use crate::outcome::refuse;

/// Family name and the rest, split at the first space (ASCII or full-width).
fn split_name(full: &str) -> (String, Vec<String>) {
    let full = full.trim();
    match full.find([' ', '\u{3000}']) {
        Some(at) => {
            let given = full[at..].trim_matches([' ', '\u{3000}']);
            (
                full[..at].to_owned(),
                if given.is_empty() {
                    Vec::new()
                } else {
                    vec![given.to_owned()]
                },
            )
        }
        None => (full.to_owned(), Vec::new()),
    }
}

/// JP Core writes kana names in full-width katakana; mamori keeps what was registered.
fn katakana(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{3041}'..='\u{3096}' => char::from_u32(c as u32 + 0x60).unwrap_or(c),
            other => other,
        })
        .collect()
}

fn human_name(representation: &str, full: &str) -> Value {
    let (family, given) = split_name(full);
    let mut n = json!({
        "extension": [{ "url": NAME_REPRESENTATION, "valueCode": representation }],
        "use": "official",
        "text": full,
        "family": family,
    });
    if !given.is_empty() {
        n["given"] = json!(given);
    }
    n
}

/// The JP_Patient of a patient mamori keeps.
pub fn to_fhir(p: &PatientFacts, ctx: &Context) -> Value {
    json!({
        "resourceType": "Patient",
        "id": p.id,
        "meta": {
            "versionId": "1",
            "lastUpdated": crate::instant(p.created_at),
            "profile": [PROFILE],
        },
        "identifier": [{ "system": ctx.patient_id_system, "value": p.id }],
        "active": true,
        "name": [
            human_name("IDE", &p.name_kanji),
            human_name("SYL", &katakana(&p.name_kana)),
        ],
        "gender": p.sex,
        "birthDate": p.birth_date,
    })
}

/// The top-level elements of a Patient mamori reads (`text`, the narrative, is generated from
/// the rest and not kept).
const KEPT: &[&str] = &[
    "resourceType",
    "id",
    "meta",
    "text",
    "identifier",
    "active",
    "name",
    "gender",
    "birthDate",
];

/// The elements of a Patient mamori can keep; anything else is refused by name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PatientIn {
    resource_type: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    meta: Option<Value>,
    #[serde(default)]
    text: Option<Value>,
    #[serde(default)]
    identifier: Vec<IdentifierIn>,
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    name: Vec<NameIn>,
    #[serde(default)]
    gender: Option<String>,
    #[serde(default)]
    birth_date: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentifierIn {
    #[serde(default)]
    system: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NameIn {
    #[serde(default)]
    extension: Vec<ExtensionIn>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    family: Option<String>,
    #[serde(default)]
    given: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExtensionIn {
    url: String,
    #[serde(default)]
    value_code: Option<String>,
}

impl NameIn {
    fn representation(&self) -> Option<&str> {
        self.extension
            .iter()
            .find(|e| e.url == NAME_REPRESENTATION)
            .and_then(|e| e.value_code.as_deref())
    }

    fn full(&self) -> String {
        match (&self.text, &self.family) {
            (Some(t), _) if !t.trim().is_empty() => t.trim().to_owned(),
            (_, family) => {
                let mut parts: Vec<&str> = family.iter().map(String::as_str).collect();
                parts.extend(self.given.iter().map(String::as_str));
                parts.join(" ")
            }
        }
    }
}

/// A patient to register, from a JP_Patient resource: the facility's patient ID is the
/// identifier in this facility's system (or the only identifier), the kanji and kana names
/// the `IDE` and `SYL` names.
pub fn from_fhir(body: &Value, ctx: &Context) -> Result<PatientFacts, Refusal> {
    if body.get("resourceType").and_then(Value::as_str) != Some("Patient") {
        return Err(refuse(
            IssueType::Invalid,
            "Patient リソースを送ってください（resourceType が Patient ではありません）",
            "resourceType",
        ));
    }
    crate::outcome::only_kept(body, "Patient", KEPT)?;
    let p: PatientIn = serde_json::from_value(body.clone()).map_err(|e| {
        let text = e.to_string();
        match text.split('`').nth(1).filter(|_| text.starts_with("unknown field")) {
            Some(field) => refuse(
                IssueType::NotSupported,
                format!(
                    "mamori が保存できない要素 {field} があります（保存できない内容を含むリソースは受け付けません）"
                ),
                &format!("Patient.{field}"),
            ),
            None => refuse(
                IssueType::Structure,
                format!("Patient の形式が正しくありません: {text}"),
                "Patient",
            ),
        }
    })?;
    let _ = (&p.resource_type, &p.id, &p.meta, &p.text);
    if p.active == Some(false) {
        return Err(refuse(
            IssueType::NotSupported,
            "無効 (active = false) の患者は登録できません",
            "Patient.active",
        ));
    }
    let ours: Vec<&IdentifierIn> = p
        .identifier
        .iter()
        .filter(|i| i.system.as_deref() == Some(ctx.patient_id_system.as_str()))
        .collect();
    let id = match (ours.as_slice(), p.identifier.as_slice()) {
        ([one], _) => one.value.clone(),
        ([], [only]) => only.value.clone(),
        _ => None,
    }
    .filter(|v| !v.trim().is_empty())
    .ok_or_else(|| {
        refuse(
            IssueType::Required,
            format!(
                "患者IDを identifier に 1 つだけ入れてください（system {}）",
                ctx.patient_id_system
            ),
            "Patient.identifier",
        )
    })?;
    let mut kanji = None;
    let mut kana = None;
    for n in &p.name {
        match n.representation() {
            Some("SYL") => kana = kana.or(Some(n.full())),
            Some("IDE") | None => kanji = kanji.or(Some(n.full())),
            Some(other) => {
                return Err(refuse(
                    IssueType::Value,
                    format!("氏名の表記 {other} は扱いません（IDE: 漢字、SYL: カナ）"),
                    "Patient.name.extension",
                ));
            }
        }
    }
    let name_kanji = kanji.filter(|k| !k.is_empty()).ok_or_else(|| {
        refuse(
            IssueType::Required,
            "漢字氏名（iso21090-EN-representation = IDE）がありません",
            "Patient.name",
        )
    })?;
    let name_kana = kana.filter(|k| !k.is_empty()).ok_or_else(|| {
        refuse(
            IssueType::Required,
            "カナ氏名（iso21090-EN-representation = SYL）がありません",
            "Patient.name",
        )
    })?;
    let birth_date = p.birth_date.ok_or_else(|| {
        refuse(
            IssueType::Required,
            "生年月日 (birthDate) がありません",
            "Patient.birthDate",
        )
    })?;
    let sex = p.gender.ok_or_else(|| {
        refuse(
            IssueType::Required,
            "性別 (gender) がありません",
            "Patient.gender",
        )
    })?;
    // FHIR's AdministrativeGender codes exactly (mamori's own forms also take 男・女, M, F).
    if !["male", "female", "other", "unknown"].contains(&sex.as_str()) {
        return Err(refuse(
            IssueType::Value,
            "gender は male / female / other / unknown のいずれかです",
            "Patient.gender",
        ));
    }
    Ok(PatientFacts {
        id,
        name_kanji,
        name_kana,
        birth_date,
        sex,
        created_at: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context::new("1311234567")
    }

    fn yamada() -> PatientFacts {
        PatientFacts {
            id: "P01001".into(),
            name_kanji: "山田 太郎".into(),
            name_kana: "やまだ たろう".into(),
            birth_date: "1980-04-01".into(),
            sex: "male".into(),
            created_at: 1_796_000_000_000,
        }
    }

    #[test]
    fn a_patient_goes_out_as_jp_patient_and_comes_back_the_same() {
        let out = to_fhir(&yamada(), &ctx());
        assert_eq!(out["meta"]["profile"][0], PROFILE);
        assert_eq!(
            out["identifier"][0]["system"],
            "urn:oid:1.2.392.100495.20.3.51.11311234567"
        );
        assert_eq!(out["name"][0]["extension"][0]["valueCode"], "IDE");
        assert_eq!(out["name"][0]["family"], "山田");
        assert_eq!(out["name"][0]["given"][0], "太郎");
        assert_eq!(out["name"][1]["extension"][0]["valueCode"], "SYL");
        assert_eq!(out["name"][1]["text"], "ヤマダ タロウ", "kana as katakana");
        let back = from_fhir(&out, &ctx()).unwrap();
        assert_eq!(back.id, "P01001");
        assert_eq!(back.name_kanji, "山田 太郎");
        assert_eq!(back.name_kana, "ヤマダ タロウ");
        assert_eq!(
            (back.birth_date.as_str(), back.sex.as_str()),
            ("1980-04-01", "male")
        );
    }

    #[test]
    fn what_mamori_cannot_keep_is_refused_by_name() {
        let mut p = to_fhir(&yamada(), &ctx());
        p["telecom"] = json!([{ "system": "phone", "value": "03-0000-0000" }]);
        let e = from_fhir(&p, &ctx()).unwrap_err();
        assert_eq!(e.issue, IssueType::NotSupported);
        assert_eq!(e.expression.as_deref(), Some("Patient.telecom"));
        assert!(e.message.contains("telecom"), "{e:?}");

        let mut p = to_fhir(&yamada(), &ctx());
        p["resourceType"] = json!("Practitioner");
        assert_eq!(
            from_fhir(&p, &ctx()).unwrap_err().expression.as_deref(),
            Some("resourceType")
        );

        let mut p = to_fhir(&yamada(), &ctx());
        p["name"].as_array_mut().unwrap().remove(1);
        let e = from_fhir(&p, &ctx()).unwrap_err();
        assert_eq!(e.issue, IssueType::Required);
        assert!(e.message.contains("カナ"), "{e:?}");

        let mut p = to_fhir(&yamada(), &ctx());
        p["gender"] = json!("M");
        assert_eq!(from_fhir(&p, &ctx()).unwrap_err().issue, IssueType::Value);

        let mut p = to_fhir(&yamada(), &ctx());
        p["identifier"] = json!([
            { "system": "urn:other", "value": "1" },
            { "system": "urn:another", "value": "2" }
        ]);
        assert_eq!(
            from_fhir(&p, &ctx()).unwrap_err().issue,
            IssueType::Required
        );

        let mut p = to_fhir(&yamada(), &ctx());
        p["birthDate"] = json!(19800401);
        assert_eq!(
            from_fhir(&p, &ctx()).unwrap_err().issue,
            IssueType::Structure
        );
    }

    #[test]
    fn names_given_as_parts_are_joined_and_a_name_without_extension_is_kanji() {
        let p = json!({
            "resourceType": "Patient",
            "identifier": [{ "value": "P9" }],
            "name": [
                { "family": "佐藤", "given": ["花子"] },
                { "extension": [{ "url": NAME_REPRESENTATION, "valueCode": "SYL" }], "family": "サトウ", "given": ["ハナコ"] }
            ],
            "gender": "female",
            "birthDate": "1990-05-05"
        });
        let f = from_fhir(&p, &Context::new("")).unwrap();
        assert_eq!(
            (f.id.as_str(), f.name_kanji.as_str(), f.name_kana.as_str()),
            ("P9", "佐藤 花子", "サトウ ハナコ")
        );
    }
}
