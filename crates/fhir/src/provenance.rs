//! Provenance: who is responsible for each version of a record — the author, the person who
//! typed it for them (代行入力), when it was finalised, why it was changed — and the author's
//! electronic signature itself (the detached CAdES `.p7s` with its time-stamp inside), so a
//! FHIR client can check it without asking mamori.

use base64::Engine;
use serde_json::{Value, json};

/// The author's signature of a version.
#[derive(Clone, Debug)]
pub struct SignatureFacts {
    /// When the signature time-stamp says it existed, else when it was made.
    pub when: i64,
    pub signer: String,
    pub p7s: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct ProvenanceFacts {
    pub record_id: i64,
    pub version_no: i64,
    /// `original`, `amendment` or `entered_in_error`.
    pub version_kind: String,
    pub author: String,
    pub enterer: Option<String>,
    /// Finalised (or written, while not finalised).
    pub recorded: i64,
    pub reason: Option<String>,
    pub signature: Option<SignatureFacts>,
}

/// The id of a version's Provenance: `{record}-{version}`.
pub fn id(record_id: i64, version_no: i64) -> String {
    format!("{record_id}-{version_no}")
}

fn participant(code: &str, display: &str, who: &str) -> Value {
    json!({
        "type": { "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
            "code": code,
            "display": display,
        }] },
        "who": { "display": who },
    })
}

pub fn to_fhir(p: &ProvenanceFacts) -> Value {
    let mut agents = vec![participant("author", "Author", &p.author)];
    if let Some(e) = &p.enterer {
        agents.push(participant("enterer", "Enterer", e));
    }
    let activity = match p.version_kind.as_str() {
        "amendment" => "UPDATE",
        "entered_in_error" => "NULLIFY",
        _ => "CREATE",
    };
    let mut v = json!({
        "resourceType": "Provenance",
        "id": id(p.record_id, p.version_no),
        "target": [{ "reference": format!("DocumentReference/{}/_history/{}", p.record_id, p.version_no) }],
        "recorded": crate::instant(p.recorded),
        "activity": { "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
            "code": activity,
        }] },
        "agent": agents,
    });
    if let Some(r) = &p.reason {
        v["reason"] = json!([{ "text": r }]);
    }
    if let Some(s) = &p.signature {
        v["signature"] = json!([{
            "type": [{
                "system": "urn:iso-astm:E1762-95:2013",
                "code": "1.2.840.10065.1.12.1.1",
                "display": "Author's Signature",
            }],
            "when": crate::instant(s.when),
            "who": { "display": s.signer },
            // What was signed is mamori's statement of the version (its facts and exact
            // content, JSON; in the record's evidence bundle), not this resource.
            "targetFormat": "application/json",
            "sigFormat": "application/pkcs7-signature",
            "data": base64::engine::general_purpose::STANDARD.encode(&s.p7s),
        }]);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_names_its_author_enterer_reason_and_carries_the_signature() {
        let p = to_fhir(&ProvenanceFacts {
            record_id: 5,
            version_no: 2,
            version_kind: "amendment".into(),
            author: "田中 一郎".into(),
            enterer: Some("中村 花子".into()),
            recorded: 1_796_000_000_000,
            reason: Some("検査値の転記誤り".into()),
            signature: Some(SignatureFacts {
                when: 1_796_000_001_000,
                signer: "CN=田中 一郎".into(),
                p7s: vec![0x30, 0x03, 0x02, 0x01, 0x01],
            }),
        });
        assert_eq!(p["id"], "5-2");
        assert_eq!(
            p["target"][0]["reference"],
            "DocumentReference/5/_history/2"
        );
        assert_eq!(p["activity"]["coding"][0]["code"], "UPDATE");
        assert_eq!(p["agent"][1]["type"]["coding"][0]["code"], "enterer");
        assert_eq!(p["reason"][0]["text"], "検査値の転記誤り");
        assert_eq!(p["signature"][0]["data"], "MAMCAQE=");
    }
}
