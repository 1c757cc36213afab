//! DocumentReference: a mamori record as FHIR sees a document — one resource per record, one
//! resource version per record version (`meta.versionId`), the body inline (UTF-8 text) and each
//! uploaded file by URL. A record marked 誤記入 is `entered-in-error`; a version not finalised yet
//! is `preliminary`, an amendment `amended`.

use base64::Engine;
use serde_json::{Value, json};

/// The code system of mamori's record kinds (`referral`, `medical_record` …).
pub const RECORD_KINDS: &str = "urn:mamori:record-kind";

/// One uploaded file of a version.
#[derive(Clone, Debug)]
pub struct FileFacts {
    pub name: String,
    pub media_type: String,
    pub size: u64,
    /// Where an authorised client downloads it.
    pub url: String,
}

/// One version of a record, as mamori keeps it.
#[derive(Clone, Debug)]
pub struct DocumentFacts {
    pub record_id: i64,
    pub patient_id: String,
    pub kind: String,
    pub kind_name: String,
    pub version_no: i64,
    /// `draft`, `pending_approval` or `finalised`.
    pub state: String,
    /// `original`, `amendment` or `entered_in_error`.
    pub version_kind: String,
    pub author: String,
    /// Who typed it, when not the author (代行入力).
    pub enterer: Option<String>,
    pub created_at: i64,
    pub finalised_at: Option<i64>,
    pub title: String,
    pub body: String,
    pub files: Vec<FileFacts>,
}

/// FHIR's `docStatus` of a version.
pub fn doc_status(state: &str, version_kind: &str) -> &'static str {
    match (state, version_kind) {
        ("finalised", "amendment") => "amended",
        ("finalised", _) => "final",
        _ => "preliminary",
    }
}

/// The DocumentReference of one version of a record.
pub fn to_fhir(d: &DocumentFacts) -> Value {
    let when = d.finalised_at.unwrap_or(d.created_at);
    let mut content = vec![json!({
        "attachment": {
            "contentType": "text/plain; charset=utf-8",
            "language": "ja",
            "data": base64::engine::general_purpose::STANDARD.encode(d.body.as_bytes()),
            "title": d.title,
            "creation": crate::instant(d.created_at),
        }
    })];
    content.extend(d.files.iter().map(|f| {
        json!({
            "attachment": {
                "contentType": f.media_type,
                "url": f.url,
                "size": f.size,
                "title": f.name,
            }
        })
    }));
    let mut doc = json!({
        "resourceType": "DocumentReference",
        "id": d.record_id.to_string(),
        "meta": {
            "versionId": d.version_no.to_string(),
            "lastUpdated": crate::instant(when),
        },
        "status": if d.version_kind == "entered_in_error" { "entered-in-error" } else { "current" },
        "docStatus": doc_status(&d.state, &d.version_kind),
        "type": {
            "coding": [{ "system": RECORD_KINDS, "code": d.kind, "display": d.kind_name }],
            "text": d.kind_name,
        },
        "subject": { "reference": format!("Patient/{}", d.patient_id) },
        "date": crate::instant(when),
        "author": [{ "display": d.author }],
        "description": d.title,
        "content": content,
    });
    if d.state == "finalised" {
        doc["authenticator"] = json!({ "display": d.author });
    }
    if let Some(e) = &d.enterer {
        // 代行入力: who typed it, beside who is responsible.
        doc["author"]
            .as_array_mut()
            .expect("author is an array")
            .push(json!({ "display": format!("{e}（代行入力）") }));
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> DocumentFacts {
        DocumentFacts {
            record_id: 12,
            patient_id: "P01001".into(),
            kind: "referral".into(),
            kind_name: "紹介状".into(),
            version_no: 2,
            state: "finalised".into(),
            version_kind: "amendment".into(),
            author: "田中 一郎".into(),
            enterer: Some("中村 花子".into()),
            created_at: 1_796_000_000_000,
            finalised_at: Some(1_796_000_060_000),
            title: "紹介状".into(),
            body: "ご高診をお願いします。".into(),
            files: vec![FileFacts {
                name: "検査.pdf".into(),
                media_type: "application/pdf".into(),
                size: 1234,
                url: "https://x/api/v1/records/12/attachments/ab".into(),
            }],
        }
    }

    #[test]
    fn a_version_is_a_document_with_its_body_inline_and_its_files_by_url() {
        let d = to_fhir(&facts());
        assert_eq!(d["id"], "12");
        assert_eq!(d["meta"]["versionId"], "2");
        assert_eq!(d["status"], "current");
        assert_eq!(d["docStatus"], "amended");
        assert_eq!(d["subject"]["reference"], "Patient/P01001");
        assert_eq!(d["type"]["coding"][0]["code"], "referral");
        assert_eq!(d["author"][1]["display"], "中村 花子（代行入力）");
        let body = base64::engine::general_purpose::STANDARD
            .decode(d["content"][0]["attachment"]["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(String::from_utf8(body).unwrap(), "ご高診をお願いします。");
        assert_eq!(d["content"][1]["attachment"]["size"], 1234);
        let mut e = facts();
        e.version_kind = "entered_in_error".into();
        assert_eq!(to_fhir(&e)["status"], "entered-in-error");
        let mut draft = facts();
        draft.state = "draft".into();
        draft.finalised_at = None;
        assert_eq!(to_fhir(&draft)["docStatus"], "preliminary");
        assert!(to_fhir(&draft).get("authenticator").is_none());
    }
}
