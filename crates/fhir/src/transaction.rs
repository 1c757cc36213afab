//! A transaction Bundle that sends a document with its files as Binary resources: the
//! DocumentReference's `attachment.url` names a Binary of the same Bundle by its `fullUrl`
//! (`urn:uuid:…`), as FHIR R4 §3.1.0.11 resolves references inside a transaction. mamori keeps
//! the files as the record's attachments, so the Binaries are folded into the document here and
//! the whole is one create, all or nothing.

use serde_json::Value;

use crate::outcome::{IssueType, Refusal, refuse};

/// What a transaction asks for: the document with its Binary content put inline, its
/// conditional-create condition, and the position of each entry (for the response).
#[derive(Clone, Debug, PartialEq)]
pub struct TransactionIn {
    pub document: Value,
    pub if_none_exist: Option<String>,
    /// For each entry in order: `None` for the DocumentReference, the Binary's bytes (base64,
    /// as sent) for a Binary.
    pub entries: Vec<Option<String>>,
}

fn entry_at(i: usize) -> String {
    format!("Bundle.entry[{i}]")
}

/// Reads a transaction of one DocumentReference (`POST DocumentReference`) and the Binaries
/// (`POST Binary`, `fullUrl` `urn:uuid:…`) its content refers to. Anything else, a Binary no
/// content refers to, or a reference to a Binary that is not there, is refused by entry.
pub fn read(bundle: &Value) -> Result<TransactionIn, Refusal> {
    if bundle["resourceType"] != "Bundle" {
        return Err(refuse(
            IssueType::Invalid,
            "Bundle（type transaction）を送ってください",
            "resourceType",
        ));
    }
    if bundle["type"] != "transaction" {
        return Err(refuse(
            IssueType::NotSupported,
            "扱える Bundle は type transaction だけです",
            "Bundle.type",
        ));
    }
    let entries = bundle["entry"]
        .as_array()
        .filter(|e| !e.is_empty())
        .ok_or_else(|| refuse(IssueType::Required, "entry がありません", "Bundle.entry"))?;
    let mut document: Option<(Value, Option<String>)> = None;
    let mut binaries: Vec<(String, Option<String>, String)> = Vec::new();
    let mut order = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let at = entry_at(i);
        let resource = &e["resource"];
        let method = e["request"]["method"].as_str().unwrap_or("");
        let url = e["request"]["url"].as_str().unwrap_or("");
        match (resource["resourceType"].as_str(), method, url) {
            (Some("DocumentReference"), "POST", "DocumentReference") => {
                if document.is_some() {
                    return Err(refuse(
                        IssueType::NotSupported,
                        "1つの transaction で送れる DocumentReference は1件です",
                        &at,
                    ));
                }
                let cond = e["request"]["ifNoneExist"].as_str().map(str::to_owned);
                document = Some((resource.clone(), cond));
                order.push(None);
            }
            (Some("Binary"), "POST", "Binary") => {
                let full = e["fullUrl"]
                    .as_str()
                    .filter(|u| u.starts_with("urn:uuid:"))
                    .ok_or_else(|| {
                        refuse(
                            IssueType::Required,
                            "Binary には fullUrl（urn:uuid:…）を付けてください（DocumentReference から参照します）",
                            &format!("{at}.fullUrl"),
                        )
                    })?;
                let data = resource["data"].as_str().ok_or_else(|| {
                    refuse(
                        IssueType::Required,
                        "Binary.data（base64）がありません",
                        &format!("{at}.resource.data"),
                    )
                })?;
                binaries.push((
                    full.to_owned(),
                    resource["contentType"].as_str().map(str::to_owned),
                    data.to_owned(),
                ));
                order.push(Some(data.to_owned()));
            }
            _ => {
                return Err(refuse(
                    IssueType::NotSupported,
                    "transaction で扱えるのは POST DocumentReference と POST Binary だけです",
                    &at,
                ));
            }
        }
    }
    let (mut doc, if_none_exist) = document.ok_or_else(|| {
        refuse(
            IssueType::Required,
            "DocumentReference の entry がありません",
            "Bundle.entry",
        )
    })?;
    let mut used = vec![false; binaries.len()];
    if let Some(contents) = doc["content"].as_array_mut() {
        for c in contents {
            let a = &mut c["attachment"];
            let Some(url) = a["url"].as_str().map(str::to_owned) else {
                continue;
            };
            if !url.starts_with("urn:uuid:") {
                continue;
            }
            let Some(k) = binaries.iter().position(|(f, _, _)| *f == url) else {
                return Err(refuse(
                    IssueType::Invalid,
                    format!("attachment.url {url} の Binary がこの Bundle にありません"),
                    "DocumentReference.content.attachment.url",
                ));
            };
            used[k] = true;
            let (_, ctype, data) = &binaries[k];
            if let Some(o) = a.as_object_mut() {
                o.remove("url");
                o.insert("data".into(), Value::String(data.clone()));
                if !o.contains_key("contentType")
                    && let Some(t) = ctype
                {
                    o.insert("contentType".into(), Value::String(t.clone()));
                }
            }
        }
    }
    if let Some(k) = used.iter().position(|u| !u) {
        return Err(refuse(
            IssueType::Invalid,
            format!(
                "Binary {} はどの attachment.url からも参照されていません（記録の添付として保存するものだけを送ってください）",
                binaries[k].0
            ),
            "Bundle.entry",
        ));
    }
    Ok(TransactionIn {
        document: doc,
        if_none_exist,
        entries: order,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tx(doc_url: &str, binary_url: &str) -> Value {
        json!({
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111",
                    "resource": {
                        "resourceType": "DocumentReference",
                        "content": [
                            { "attachment": { "contentType": "text/plain", "data": "5pys5paH" } },
                            { "attachment": { "title": "所見.pdf", "url": doc_url } }
                        ]
                    },
                    "request": { "method": "POST", "url": "DocumentReference", "ifNoneExist": "identifier=urn:ehr|D-1" }
                },
                {
                    "fullUrl": binary_url,
                    "resource": { "resourceType": "Binary", "contentType": "application/pdf", "data": "JVBERi0=" },
                    "request": { "method": "POST", "url": "Binary" }
                }
            ]
        })
    }

    #[test]
    fn a_binary_the_document_names_is_put_inline() {
        let u = "urn:uuid:22222222-2222-4222-8222-222222222222";
        let t = read(&tx(u, u)).unwrap();
        let a = &t.document["content"][1]["attachment"];
        assert_eq!(a["data"], "JVBERi0=");
        assert_eq!(a["contentType"], "application/pdf");
        assert!(a.get("url").is_none());
        assert_eq!(t.if_none_exist.as_deref(), Some("identifier=urn:ehr|D-1"));
        assert_eq!(t.entries, [None, Some("JVBERi0=".to_owned())]);
    }

    #[test]
    fn dangling_unused_or_foreign_entries_are_refused_by_place() {
        let u = "urn:uuid:22222222-2222-4222-8222-222222222222";
        let other = "urn:uuid:33333333-3333-4333-8333-333333333333";
        // The document names a Binary that is not sent; a Binary no one names.
        assert!(read(&tx(other, u)).is_err());
        let mut unused = tx(u, u);
        unused["entry"][0]["resource"]["content"][1]["attachment"]["url"] = json!(null);
        unused["entry"][0]["resource"]["content"][1]["attachment"]["data"] = json!("JVBERi0=");
        assert!(read(&unused).is_err());
        let mut patient = tx(u, u);
        patient["entry"][1]["resource"] = json!({ "resourceType": "Patient" });
        patient["entry"][1]["request"]["url"] = json!("Patient");
        assert_eq!(
            read(&patient).unwrap_err().expression.as_deref(),
            Some("Bundle.entry[1]")
        );
        let mut batch = tx(u, u);
        batch["type"] = json!("batch");
        assert!(read(&batch).is_err());
        let mut no_full_url = tx(u, u);
        no_full_url["entry"][1]["fullUrl"] = json!("Binary/1");
        assert!(read(&no_full_url).is_err());
    }
}
