//! DocumentReference: a mamori record as FHIR sees a document — one resource per record, one
//! resource version per record version (`meta.versionId`), the body inline (UTF-8 text) and each
//! uploaded file by URL. A record marked 誤記入 is `entered-in-error`; a version not finalised yet
//! is `preliminary`, an amendment `amended`.

use base64::Engine;
use serde_json::{Value, json};

use crate::outcome::{IssueType, Refusal, refuse};

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

/// A record to write, from a DocumentReference an EHR sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentIn {
    pub patient_id: String,
    pub kind: String,
    pub title: String,
    pub body: String,
    /// (file name, bytes) of each uploaded file, sent inline.
    pub files: Vec<(String, Vec<u8>)>,
    /// The responsible author's login (`author.identifier`, system [`LOGINS`]) when the
    /// sender enters it on their behalf.
    pub author_login: Option<String>,
    /// `docStatus = final`: finalised at once (by its author), or sent for the author's
    /// approval (entered on their behalf).
    pub finalise: bool,
    /// The sender's identifier of the document (system, value).
    pub identifier: Option<(String, String)>,
}

/// The identifier system of mamori's logins (an author named by the sender).
pub const LOGINS: &str = "urn:mamori:login";

/// The elements of a DocumentReference mamori reads. `date` is taken as said and replaced by
/// the time mamori records the version (the ledger's clock is the one that counts).
const KEPT: &[&str] = &[
    "resourceType",
    "meta",
    "text",
    "masterIdentifier",
    "identifier",
    "status",
    "docStatus",
    "type",
    "subject",
    "date",
    "author",
    "description",
    "content",
];

fn text_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// A record to write, from a DocumentReference: its patient (`subject`), kind (`type` in
/// [`RECORD_KINDS`]), title (`description`), body (the `text/plain` content, inline) and files
/// (every other content, inline), the responsible author, and whether it is final.
pub fn from_fhir(body: &Value) -> Result<DocumentIn, Refusal> {
    if body.get("resourceType").and_then(Value::as_str) != Some("DocumentReference") {
        return Err(refuse(
            IssueType::Invalid,
            "DocumentReference リソースを送ってください（resourceType が違います）",
            "resourceType",
        ));
    }
    crate::outcome::only_kept(body, "DocumentReference", KEPT)?;
    match text_of(body, "status") {
        Some("current") => {}
        Some(other) => {
            return Err(refuse(
                IssueType::Value,
                format!("status {other} の文書は登録できません（current のみ）"),
                "DocumentReference.status",
            ));
        }
        None => {
            return Err(refuse(
                IssueType::Required,
                "status (current) がありません",
                "DocumentReference.status",
            ));
        }
    }
    let finalise = match text_of(body, "docStatus") {
        None | Some("preliminary") => false,
        Some("final") => true,
        Some(other) => {
            return Err(refuse(
                IssueType::Value,
                format!("docStatus {other} は扱いません（preliminary または final）"),
                "DocumentReference.docStatus",
            ));
        }
    };
    let patient_id = body
        .get("subject")
        .and_then(|s| text_of(s, "reference"))
        .and_then(|r| r.strip_prefix("Patient/"))
        .ok_or_else(|| {
            refuse(
                IssueType::Required,
                "subject に患者 (Patient/患者ID) を指定してください",
                "DocumentReference.subject",
            )
        })?
        .to_owned();
    let kind = body
        .get("type")
        .and_then(|t| t.get("coding"))
        .and_then(Value::as_array)
        .and_then(|c| {
            c.iter()
                .find(|x| text_of(x, "system") == Some(RECORD_KINDS))
                .and_then(|x| text_of(x, "code"))
        })
        .ok_or_else(|| {
            refuse(
                IssueType::Required,
                format!("type に記録の種別（system {RECORD_KINDS}）を指定してください"),
                "DocumentReference.type",
            )
        })?
        .to_owned();
    let identifier = body
        .get("masterIdentifier")
        .or_else(|| body.get("identifier").and_then(|i| i.get(0)))
        .and_then(|i| {
            Some((
                text_of(i, "system")?.to_owned(),
                text_of(i, "value")?.to_owned(),
            ))
        });
    let authors = body
        .get("author")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let author_login = match authors.as_slice() {
        [] => None,
        [one] => Some(
            one.get("identifier")
                .filter(|i| text_of(i, "system") == Some(LOGINS))
                .and_then(|i| text_of(i, "value"))
                .ok_or_else(|| {
                    refuse(
                        IssueType::Value,
                        format!("author は identifier（system {LOGINS}、値はログインID）で指定してください"),
                        "DocumentReference.author",
                    )
                })?
                .to_owned(),
        ),
        _ => {
            return Err(refuse(
                IssueType::Value,
                "責任者 (author) は 1 人だけ指定してください",
                "DocumentReference.author",
            ));
        }
    };
    let contents = body
        .get("content")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            refuse(
                IssueType::Required,
                "content がありません",
                "DocumentReference.content",
            )
        })?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut text: Option<(String, Option<String>)> = None;
    let mut files = Vec::new();
    for (i, c) in contents.iter().enumerate() {
        let at = format!("DocumentReference.content[{i}].attachment");
        let a = c
            .get("attachment")
            .ok_or_else(|| refuse(IssueType::Required, "attachment がありません", &at))?;
        if a.get("url").is_some() {
            return Err(refuse(
                IssueType::NotSupported,
                "参照 (url) による内容は扱いません。data に base64 で入れてください",
                &format!("{at}.url"),
            ));
        }
        let data = text_of(a, "data").ok_or_else(|| {
            refuse(
                IssueType::Required,
                "data（base64）がありません",
                &format!("{at}.data"),
            )
        })?;
        let bytes = b64.decode(data).map_err(|_| {
            refuse(
                IssueType::Structure,
                "data が base64 ではありません",
                &format!("{at}.data"),
            )
        })?;
        let ctype = text_of(a, "contentType").unwrap_or("");
        if ctype.starts_with("text/plain") && text.is_none() {
            let s = String::from_utf8(bytes).map_err(|_| {
                refuse(
                    IssueType::Value,
                    "本文は UTF-8 のテキストにしてください",
                    &format!("{at}.data"),
                )
            })?;
            text = Some((s, text_of(a, "title").map(str::to_owned)));
        } else {
            let name = text_of(a, "title").ok_or_else(|| {
                refuse(
                    IssueType::Required,
                    "添付ファイルの名前 (title) がありません",
                    &format!("{at}.title"),
                )
            })?;
            files.push((name.to_owned(), bytes));
        }
    }
    let (body_text, text_title) = text.unwrap_or_default();
    let title = text_of(body, "description")
        .map(str::to_owned)
        .or(text_title)
        .ok_or_else(|| {
            refuse(
                IssueType::Required,
                "表題 (description) がありません",
                "DocumentReference.description",
            )
        })?;
    Ok(DocumentIn {
        patient_id,
        kind,
        title,
        body: body_text,
        files,
        author_login,
        finalise,
        identifier,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_from_an_ehr_becomes_a_record_to_write_and_what_cannot_be_kept_is_refused() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let doc = json!({
            "resourceType": "DocumentReference",
            "masterIdentifier": { "system": "urn:ehr:doc", "value": "D-1" },
            "status": "current",
            "docStatus": "final",
            "type": { "coding": [{ "system": RECORD_KINDS, "code": "referral" }] },
            "subject": { "reference": "Patient/P01001" },
            "date": "2026-12-01T10:00:00+09:00",
            "author": [{ "identifier": { "system": LOGINS, "value": "dr.tanaka" } }],
            "description": "紹介状",
            "content": [
                { "attachment": { "contentType": "text/plain; charset=utf-8", "data": b64.encode("ご高診ください。") } },
                { "attachment": { "contentType": "application/pdf", "title": "検査.pdf", "data": b64.encode(b"%PDF-1.4") } }
            ]
        });
        let d = from_fhir(&doc).unwrap();
        assert_eq!(
            (d.patient_id.as_str(), d.kind.as_str(), d.title.as_str()),
            ("P01001", "referral", "紹介状")
        );
        assert_eq!(d.body, "ご高診ください。");
        assert_eq!(d.files, vec![("検査.pdf".to_owned(), b"%PDF-1.4".to_vec())]);
        assert_eq!(d.author_login.as_deref(), Some("dr.tanaka"));
        assert!(d.finalise);
        assert_eq!(d.identifier, Some(("urn:ehr:doc".into(), "D-1".into())));

        let with = |k: &str, v: Value| {
            let mut x = doc.clone();
            x[k] = v;
            from_fhir(&x).unwrap_err()
        };
        assert_eq!(with("relatesTo", json!([])).issue, IssueType::NotSupported);
        assert_eq!(with("status", json!("superseded")).issue, IssueType::Value);
        assert_eq!(
            with("subject", json!({ "display": "誰か" })).issue,
            IssueType::Required
        );
        assert_eq!(
            with("type", json!({ "text": "紹介状" })).issue,
            IssueType::Required
        );
        assert_eq!(
            with("author", json!([{ "display": "田中" }])).issue,
            IssueType::Value
        );
        assert_eq!(
            with("content", json!([{ "attachment": { "url": "Binary/1" } }])).issue,
            IssueType::NotSupported
        );
        assert_eq!(
            with(
                "content",
                json!([{ "attachment": { "contentType": "text/plain", "data": "%%%" } }])
            )
            .issue,
            IssueType::Structure
        );
        assert_eq!(
            with("resourceType", json!("Patient")).issue,
            IssueType::Invalid
        );
    }

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
