//! JP-CLINS 診療情報提供書 (eReferral, JP_Bundle_eReferral / JP_Composition_eReferral) as a FHIR
//! document Bundle made from a finalised 紹介状: the Composition with the sections the profile
//! requires, the patient (JP_Patient), the author (Practitioner) and the facility
//! (Organization with its 保険医療機関番号), the referral's destination, and the author's signed
//! PDF of the same version in the PDF section. mamori keeps a 紹介状 as free text, so the
//! structured sections carry narrative only — the guide allows that (`entry 0..*` with the
//! narrative, or `emptyReason`) — and nothing is coded that the author did not code.
//!
//! The author signs the Bundle (`Bundle.signature`, type 1.2.840.10065.1.12.1.1 作成者の署名):
//! a detached CAdES signature (`sigFormat` `application/pkcs7-signature`) over the Bundle's
//! canonical JSON — keys sorted, no whitespace, `id`, `meta` and `signature` left out, as FHIR
//! R4's JSON canonicalisation for signatures (§2.6.3) says — so that anyone can check it with
//! OpenSSL after re-serialising the Bundle.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::Context;
use crate::outcome::{IssueType, Refusal};
use crate::patient::{NAME_REPRESENTATION, PatientFacts};

pub const BUNDLE_PROFILE: &str =
    "http://jpfhir.jp/fhir/eReferral/StructureDefinition/JP_Bundle_eReferral";
pub const COMPOSITION_PROFILE: &str =
    "http://jpfhir.jp/fhir/eReferral/StructureDefinition/JP_Composition_eReferral";
const PATIENT_PROFILE: &str = "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_Patient_eCS";
const PRACTITIONER_PROFILE: &str =
    "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_Practitioner_eCS";
const ORGANIZATION_PROFILE: &str =
    "http://jpfhir.jp/fhir/eCS/StructureDefinition/JP_Organization_eCS";
const DOC_TYPES: &str = "http://jpfhir.jp/fhir/Common/CodeSystem/doc-typecodes";
const SECTIONS: &str = "http://jpfhir.jp/fhir/eReferral/CodeSystem/document-section";
const DOCUMENT_ID: &str = "http://jpfhir.jp/fhir/core/IdSystem/documentInstance-identifier";
const RESOURCE_ID: &str = "http://jpfhir.jp/fhir/core/IdSystem/resourceInstance-identifier";
const INSTITUTION_NO: &str = "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no";
const VERSION_EXT: &str =
    "http://hl7.org/fhir/StructureDefinition/composition-clinicaldocument-versionNumber";
/// ASTM E1762 signature type "Author's Signature" (作成者の署名).
pub const AUTHOR_SIGNATURE: &str = "1.2.840.10065.1.12.1.1";
/// The record kind a 紹介状 is kept as.
pub const REFERRAL_KIND: &str = "referral";

/// Where the letter goes (紹介先), as the author names it when preparing the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    pub organization: String,
    pub department: Option<String>,
    pub doctor: Option<String>,
}

/// What the document is made from.
#[derive(Clone, Debug)]
pub struct ReferralFacts {
    /// The facility's 10-digit 保険医療機関コード.
    pub institution_code: String,
    pub facility: String,
    pub record_id: i64,
    pub version_no: i64,
    /// Which document of this version (1 for the first; each sending is one).
    pub serial: i64,
    /// When the version was finalised (ms since the epoch).
    pub finalised_at: i64,
    /// When the document is made (the Bundle's timestamp).
    pub made_at: i64,
    pub patient: PatientFacts,
    pub author: String,
    pub to: Destination,
    /// 紹介目的.
    pub purpose: String,
    /// 傷病名・主訴, when the author names them.
    pub problem: Option<String>,
    /// The letter's text (臨床経過 and the rest, as written).
    pub body: String,
    /// The author's signed PDF of the same version (PAdES), when there is one.
    pub pdf: Option<Vec<u8>>,
}

/// A `YYYY-MM-DDThh:mm:ss.sss+09:00` instant (the guide asks for the time zone; Japan's).
pub fn jst_instant(ms: i64) -> String {
    let jst = ms + 9 * 3_600_000;
    let utc = crate::instant(jst);
    format!("{}+09:00", utc.trim_end_matches('Z'))
}

fn jst_date(ms: i64) -> String {
    jst_instant(ms)[..10].to_owned()
}

/// A deterministic `urn:uuid:` for one resource of one document (UUID version 8: made from the
/// document's identity, so the same version and role always give the same reference).
fn uuid(document: &str, role: &str) -> String {
    let d = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{document}/{role}").as_bytes(),
    );
    let mut b = [0u8; 16];
    b.copy_from_slice(&d.as_ref()[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// XHTML narrative: one paragraph per line.
fn narrative(text: &str) -> Value {
    let lines: String = text
        .lines()
        .map(|l| format!("<p>{}</p>", escape(l)))
        .collect();
    let lines = if lines.is_empty() {
        "<p>（記載なし）</p>".to_owned()
    } else {
        lines
    };
    json!({
        "status": "additional",
        "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{lines}</div>"),
    })
}

fn section(code: &str, title: &str, display: &str) -> Value {
    json!({
        "title": title,
        "code": { "coding": [{ "system": SECTIONS, "code": code, "display": display }] },
    })
}

fn reference(full_url: &str, kind: &str, display: &str) -> Value {
    json!({ "reference": full_url, "type": kind, "display": display })
}

fn name(representation: &str, full: &str) -> Value {
    let full = full.trim();
    let (family, given) = match full.find([' ', '\u{3000}']) {
        Some(at) => (
            &full[..at],
            Some(full[at..].trim_matches([' ', '\u{3000}'])),
        ),
        None => (full, None),
    };
    let mut n = json!({
        "extension": [{ "url": NAME_REPRESENTATION, "valueCode": representation }],
        "use": "official",
        "text": full,
        "family": family,
    });
    if let Some(g) = given.filter(|g| !g.is_empty()) {
        n["given"] = json!([g]);
    }
    n
}

fn refused(message: &str, expression: &str) -> Refusal {
    Refusal {
        issue: IssueType::Required,
        code: "invalid_input",
        message: message.to_owned(),
        expression: Some(expression.to_owned()),
    }
}

/// The document Bundle, unsigned. Refused when what the profile requires is missing: the
/// facility's 保険医療機関コード, the destination, the purpose.
pub fn referral(f: &ReferralFacts, ctx: &Context) -> Result<Value, Refusal> {
    let code = f.institution_code.trim();
    if code.len() != 10 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refused(
            "JP-CLINS の文書には保険医療機関コード（10桁、facility.institution_code）が必要です",
            "Organization.identifier",
        ));
    }
    if f.to.organization.trim().is_empty() || f.to.organization.chars().count() > 200 {
        return Err(refused(
            "紹介先の医療機関名を200文字以内で指定してください",
            "referralToOrganization",
        ));
    }
    if f.purpose.trim().is_empty() {
        return Err(refused("紹介目的を指定してください", "purpose"));
    }
    let document = format!("{code}-{}-{}-{}", f.record_id, f.version_no, f.serial);
    let [composition, patient, author, issuer, to_org, to_doctor, pdf] = [
        "composition",
        "patient",
        "author",
        "issuer",
        "to-organization",
        "to-doctor",
        "pdf",
    ]
    .map(|role| uuid(&document, role));
    let year = &jst_date(f.finalised_at)[..4];

    let from_entries = vec![
        reference(&issuer, "Organization", "紹介元医療機関"),
        reference(&author, "Practitioner", "紹介元医師"),
    ];
    let mut to_entries = vec![reference(&to_org, "Organization", "紹介先医療機関")];
    let mut to_text = f.to.organization.trim().to_owned();
    if let Some(d) = f.to.department.as_deref().filter(|d| !d.trim().is_empty()) {
        to_text.push_str(&format!(" {}", d.trim()));
    }
    if let Some(d) = f.to.doctor.as_deref().filter(|d| !d.trim().is_empty()) {
        to_text.push_str(&format!(" {} 先生", d.trim()));
        to_entries.push(reference(&to_doctor, "Practitioner", "紹介先医師"));
    }

    let mut purpose = section("950", "紹介目的", "紹介目的セクション");
    purpose["text"] = narrative(&f.purpose);
    let mut problem = section("340", "傷病名・主訴", "傷病名・主訴セクション");
    match f.problem.as_deref().filter(|p| !p.trim().is_empty()) {
        Some(p) => problem["text"] = narrative(p),
        None => {
            problem["text"] = narrative("本文を参照してください");
            problem["emptyReason"] = json!({ "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
                "code": "unavailable",
            }] });
        }
    }
    let mut present = section("360", "現病歴", "現病歴セクション");
    present["text"] = narrative("臨床経過（紹介状の本文）を参照してください");
    present["emptyReason"] = json!({ "coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
        "code": "unavailable",
    }] });
    let mut course = section("330", "臨床経過", "臨床経過セクション");
    course["text"] = narrative(&f.body);
    let mut structure = section("300", "構造情報", "構造情報セクション");
    structure["section"] = json!([purpose, problem, present, course]);

    let mut from = section("920", "紹介元情報", "紹介元情報セクション");
    from["text"] = narrative(&format!("{} {}", f.facility, f.author));
    from["entry"] = json!(from_entries);
    let mut to = section("910", "紹介先情報", "紹介先情報セクション");
    to["text"] = narrative(&to_text);
    to["entry"] = json!(to_entries);
    let mut sections = vec![from, to, structure];
    if f.pdf.is_some() {
        let mut s = section("230", "PDF", "PDFセクション");
        s["entry"] = json!([reference(
            &pdf,
            "Binary",
            "作成者の電子署名付き PDF（PAdES）"
        )]);
        sections.push(s);
    }

    let made = jst_instant(f.made_at);
    let comp = json!({
        "resourceType": "Composition",
        "meta": { "profile": [COMPOSITION_PROFILE] },
        "extension": [{ "url": VERSION_EXT, "valueString": f.version_no.to_string() }],
        "identifier": {
            "system": RESOURCE_ID,
            "value": format!("{code}-{year}-{:08}", f.record_id),
        },
        "status": "final",
        "type": { "coding": [{ "system": DOC_TYPES, "code": "57133-1", "display": "診療情報提供書" }] },
        "category": [{ "coding": [{ "system": DOC_TYPES, "code": "57133-1", "display": "診療情報提供書" }] }],
        "subject": reference(&patient, "Patient", "患者"),
        "date": jst_instant(f.finalised_at).replacen(".000+", "+", 1),
        "author": [
            reference(&author, "Practitioner", "紹介状作成者"),
            reference(&issuer, "Organization", "紹介状作成機関"),
        ],
        "title": "診療情報提供書",
        "custodian": reference(&issuer, "Organization", "紹介状交付責任機関"),
        "event": [{
            "code": [{ "text": "診療情報提供書発行" }],
            "period": { "start": jst_date(f.finalised_at) },
        }],
        "section": sections,
    });
    let mut pat = crate::patient::to_fhir(&f.patient, ctx);
    pat.as_object_mut().map(|o| o.remove("id"));
    pat["meta"] = json!({ "profile": [PATIENT_PROFILE] });
    let practitioner = json!({
        "resourceType": "Practitioner",
        "meta": { "profile": [PRACTITIONER_PROFILE] },
        "name": [name("IDE", &f.author)],
    });
    let issuer_org = json!({
        "resourceType": "Organization",
        "meta": { "profile": [ORGANIZATION_PROFILE] },
        "extension": [
            {
                "url": "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/JP_Organization_PrefectureNo",
                "valueCoding": { "system": "urn:oid:1.2.392.100495.20.3.21", "code": &code[..2] },
            },
            {
                "url": "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/JP_Organization_InsuranceOrganizationCategory",
                "valueCoding": { "system": "urn:oid:1.2.392.100495.20.3.22", "code": &code[2..3] },
            },
            {
                "url": "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/JP_Organization_InsuranceOrganizationNo",
                "valueIdentifier": { "system": "urn:oid:1.2.392.100495.20.3.23", "value": &code[3..] },
            },
        ],
        "identifier": [{ "system": INSTITUTION_NO, "value": code }],
        "type": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov" }] }],
        "name": f.facility,
    });
    let to_organization = json!({
        "resourceType": "Organization",
        "meta": { "profile": [ORGANIZATION_PROFILE] },
        "type": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov" }] }],
        "name": f.to.organization.trim(),
    });
    let mut entries = vec![
        (composition, comp),
        (patient, pat),
        (author, practitioner),
        (issuer, issuer_org),
        (to_org, to_organization),
    ];
    if let Some(d) = f.to.doctor.as_deref().filter(|d| !d.trim().is_empty()) {
        entries.push((
            to_doctor,
            json!({
                "resourceType": "Practitioner",
                "meta": { "profile": [PRACTITIONER_PROFILE] },
                "name": [name("IDE", d)],
            }),
        ));
    }
    if let Some(bytes) = &f.pdf {
        entries.push((
            pdf,
            json!({
                "resourceType": "Binary",
                "contentType": "application/pdf",
                "data": STANDARD.encode(bytes),
            }),
        ));
    }
    Ok(json!({
        "resourceType": "Bundle",
        "meta": { "profile": [BUNDLE_PROFILE] },
        "identifier": { "system": DOCUMENT_ID, "value": document },
        "type": "document",
        "timestamp": made,
        "entry": entries.into_iter().map(|(url, resource)| json!({ "fullUrl": url, "resource": resource })).collect::<Vec<_>>(),
    }))
}

/// The bytes a document's signature covers: the Bundle without `id`, `meta` and `signature`,
/// as canonical JSON (object keys sorted, no insignificant whitespace, strings as JSON writes
/// them without escaping non-ASCII).
pub fn signed_bytes(bundle: &Value) -> Vec<u8> {
    let mut b = bundle.clone();
    if let Some(o) = b.as_object_mut() {
        for k in ["id", "meta", "signature"] {
            o.remove(k);
        }
    }
    let mut out = Vec::new();
    canonical(&b, &mut out);
    out
}

fn canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(Value::String(k.clone()).to_string().as_bytes());
                out.push(b':');
                canonical(&m[k], out);
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(x, out);
            }
            out.push(b']');
        }
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

/// Puts the author's signature into the Bundle.
pub fn with_signature(mut bundle: Value, when: i64, cms: &[u8]) -> Value {
    let who = bundle["entry"]
        .as_array()
        .and_then(|e| {
            e.iter()
                .find(|x| x["resource"]["resourceType"] == "Practitioner")
        })
        .map(|x| x["fullUrl"].clone())
        .unwrap_or(Value::Null);
    bundle["signature"] = json!({
        "type": [{ "system": "urn:iso-astm:E1762-95:2013", "code": AUTHOR_SIGNATURE, "display": "作成者の署名" }],
        "when": jst_instant(when),
        "who": { "reference": who },
        "targetFormat": crate::MEDIA_TYPE,
        "sigFormat": "application/pkcs7-signature",
        "data": STANDARD.encode(cms),
    });
    bundle
}

/// The signature of a signed Bundle (its CMS), if it has one.
pub fn signature_of(bundle: &Value) -> Option<Vec<u8>> {
    bundle["signature"]["data"]
        .as_str()
        .and_then(|d| STANDARD.decode(d).ok())
}

/// What `$jp-clins-document` is asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asked {
    pub to: Destination,
    pub purpose: Option<String>,
    pub problem: Option<String>,
    pub version: Option<i64>,
}

/// Reads `$jp-clins-document`'s Parameters: the destination, purpose and problem.
pub fn parameters(body: &Value) -> Result<Asked, Refusal> {
    if body["resourceType"] != "Parameters" {
        return Err(Refusal {
            issue: IssueType::Invalid,
            code: "invalid_input",
            message: "Parameters リソースを送ってください".into(),
            expression: Some("resourceType".into()),
        });
    }
    let mut got: Map<String, Value> = Map::new();
    for p in body["parameter"].as_array().into_iter().flatten() {
        let Some(n) = p["name"].as_str() else {
            continue;
        };
        let v = p
            .get("valueString")
            .or_else(|| p.get("valueInteger"))
            .or_else(|| p.get("valuePositiveInt"))
            .cloned()
            .unwrap_or(Value::Null);
        if !matches!(
            n,
            "referralToOrganization"
                | "referralToDepartment"
                | "referralToPractitioner"
                | "purpose"
                | "problem"
                | "version"
        ) {
            return Err(Refusal {
                issue: IssueType::NotSupported,
                code: "not_supported",
                message: format!(
                    "パラメータ「{}」には対応していません",
                    crate::smart::clip(n)
                ),
                expression: Some(format!("Parameters.parameter.{}", crate::smart::clip(n))),
            });
        }
        got.insert(n.to_owned(), v);
    }
    let text = |k: &str| {
        got.get(k)
            .and_then(Value::as_str)
            .map(|s| s.trim().chars().take(2000).collect::<String>())
            .filter(|s| !s.is_empty())
    };
    let Some(organization) = text("referralToOrganization") else {
        return Err(refused(
            "紹介先の医療機関名（referralToOrganization）を指定してください",
            "Parameters.parameter.referralToOrganization",
        ));
    };
    Ok(Asked {
        to: Destination {
            organization,
            department: text("referralToDepartment"),
            doctor: text("referralToPractitioner"),
        },
        purpose: text("purpose"),
        problem: text("problem"),
        version: got.get("version").and_then(Value::as_i64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> ReferralFacts {
        ReferralFacts {
            institution_code: "1311234567".into(),
            facility: "守りクリニック".into(),
            record_id: 42,
            version_no: 2,
            serial: 1,
            finalised_at: 1_796_000_000_000,
            made_at: 1_796_000_100_000,
            patient: PatientFacts {
                id: "P01001".into(),
                name_kanji: "井上 花子".into(),
                name_kana: "イノウエ ハナコ".into(),
                birth_date: "1950-01-02".into(),
                sex: "female".into(),
                created_at: 0,
            },
            author: "田中 一郎".into(),
            to: Destination {
                organization: "東京第一病院".into(),
                department: Some("消化器内科".into()),
                doctor: Some("野口 英世".into()),
            },
            purpose: "精査のお願い".into(),
            problem: None,
            body: "腹痛が続く。\n<script>".into(),
            pdf: Some(b"%PDF-1.7".to_vec()),
        }
    }

    #[test]
    fn the_referral_has_the_sections_the_profile_requires_and_escapes_text() {
        let b = referral(&facts(), &Context::new("1311234567")).unwrap();
        assert_eq!(b["type"], "document");
        assert_eq!(b["identifier"]["value"], "1311234567-42-2-1");
        let comp = &b["entry"][0]["resource"];
        assert_eq!(comp["resourceType"], "Composition");
        assert_eq!(comp["type"]["coding"][0]["code"], "57133-1");
        assert_eq!(comp["identifier"]["value"], "1311234567-2026-00000042");
        assert_eq!(comp["extension"][0]["valueString"], "2");
        let codes: Vec<&str> = comp["section"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["code"]["coding"][0]["code"].as_str().unwrap())
            .collect();
        assert_eq!(codes, ["920", "910", "300", "230"]);
        let sub: Vec<&str> = comp["section"][2]["section"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["code"]["coding"][0]["code"].as_str().unwrap())
            .collect();
        assert_eq!(sub, ["950", "340", "360", "330"]);
        let course = comp["section"][2]["section"][3]["text"]["div"]
            .as_str()
            .unwrap();
        assert!(course.contains("&lt;script&gt;") && !course.contains("<script>"));
        // Every reference resolves inside the Bundle.
        let urls: Vec<&str> = b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["fullUrl"].as_str().unwrap())
            .collect();
        let text = b.to_string();
        for r in text.split("\"reference\":\"").skip(1) {
            let r = &r[..r.find('"').unwrap()];
            assert!(urls.contains(&r), "{r} dangles");
        }
        assert_eq!(jst_instant(0), "1970-01-01T09:00:00.000+09:00");
    }

    #[test]
    fn what_the_profile_requires_is_refused_when_missing() {
        let mut f = facts();
        f.institution_code = "".into();
        assert!(referral(&f, &Context::new("")).is_err());
        let mut f = facts();
        f.to.organization = " ".into();
        assert!(referral(&f, &Context::new("1311234567")).is_err());
        let mut f = facts();
        f.purpose = "".into();
        assert!(referral(&f, &Context::new("1311234567")).is_err());
    }

    #[test]
    fn the_signed_bytes_leave_out_id_meta_and_signature_and_sort_keys() {
        let b = referral(&facts(), &Context::new("1311234567")).unwrap();
        let before = signed_bytes(&b);
        let signed = with_signature(b.clone(), 5, b"cms");
        assert_eq!(signed_bytes(&signed), before);
        assert_eq!(signature_of(&signed).unwrap(), b"cms");
        assert_eq!(
            signed["signature"]["who"]["reference"],
            b["entry"][2]["fullUrl"]
        );
        let mut out = Vec::new();
        canonical(
            &json!({ "b": [1, "é\n"], "a": { "d": null, "c": true } }),
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"a\":{\"c\":true,\"d\":null},\"b\":[1,\"é\\n\"]}"
        );
    }

    #[test]
    fn parameters_name_the_destination_and_refuse_the_unknown() {
        let p = json!({ "resourceType": "Parameters", "parameter": [
            { "name": "referralToOrganization", "valueString": "東京第一病院" },
            { "name": "purpose", "valueString": "精査" },
            { "name": "version", "valueInteger": 2 },
        ] });
        let a = parameters(&p).unwrap();
        assert_eq!(a.to.organization, "東京第一病院");
        assert_eq!(
            (a.purpose.as_deref(), a.problem, a.version),
            (Some("精査"), None, Some(2))
        );
        assert!(parameters(&json!({ "resourceType": "Parameters", "parameter": [] })).is_err());
        assert!(parameters(&json!({ "resourceType": "Parameters", "parameter": [{ "name": "x", "valueString": "y" }] })).is_err());
        assert!(parameters(&json!({ "resourceType": "Bundle" })).is_err());
    }
}
