//! AuditEvent (IHE Basic Audit Log Patterns, as far as a ledger entry can say): every entry of
//! mamori's ledger as a standard resource a security team's tools read. The entry's ledger
//! index is its id, and the inclusion proof that the entry is in the signed ledger is linked
//! from it, so an auditor can prove any AuditEvent was recorded and not changed.

use serde_json::{Value, json};

/// The code system of mamori's audit actions (`record.read`, `auth.login` …).
pub const ACTIONS: &str = "urn:mamori:audit-action";
/// The identifier system of ledger positions.
pub const LEDGER: &str = "urn:mamori:ledger-index";

/// One ledger entry, as the audit search returns it.
#[derive(Clone, Debug)]
pub struct AuditFacts {
    pub index: i64,
    pub ts: i64,
    pub action: String,
    /// `ok`, `denied` or `failed`.
    pub outcome: String,
    pub actor_id: Option<i64>,
    pub actor_login: Option<String>,
    pub actor_role: Option<String>,
    pub patient_id: Option<String>,
    pub record_id: Option<i64>,
    pub version: Option<i64>,
    /// Where the request came from (address, client certificate).
    pub client: Option<String>,
    /// The URL of the entry's inclusion proof.
    pub proof_url: String,
    pub facility: String,
}

/// FHIR's action code (C, R, U, D, E) of a mamori action.
pub fn action_code(action: &str) -> &'static str {
    let verb = action.rsplit('.').next().unwrap_or(action);
    match verb {
        "created" | "create" | "registered" | "uploaded" | "signed" | "pdf_signed" => "C",
        "read" | "search" | "list" | "history" | "print_export" | "export" | "query"
        | "verified" | "diff" => "R",
        "amended" | "updated" | "changed" | "finalised" | "approved" | "rejected"
        | "entered_in_error" | "timestamped" | "pdf_renewed" => "U",
        "deleted" | "erased" | "purged" => "D",
        _ => "E",
    }
}

/// The AuditEvent of one ledger entry.
pub fn to_fhir(a: &AuditFacts) -> Value {
    let mut agent = json!({
        "type": {
            "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
                "code": "humanuser",
                "display": "human user",
            }]
        },
        "requestor": true,
    });
    match (&a.actor_login, a.actor_id) {
        (Some(login), Some(id)) => {
            agent["who"] = json!({
                "identifier": { "system": "urn:mamori:account", "value": id.to_string() },
                "display": login,
            });
            agent["altId"] = json!(login);
        }
        _ => {
            // An entry the server made on its own (a sweep, a checkpoint).
            agent["type"]["coding"][0] = json!({
                "system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
                "code": "dataprocessor",
                "display": "data processor",
            });
            agent["who"] = json!({ "display": "mamori" });
        }
    }
    if let Some(role) = &a.actor_role {
        agent["role"] = json!([{ "text": role }]);
    }
    if let Some(c) = &a.client {
        let address = c.split_whitespace().next().unwrap_or(c);
        agent["network"] = json!({ "address": address, "type": "2" });
    }
    let mut entity = vec![json!({
        "what": { "identifier": { "system": LEDGER, "value": a.index.to_string() } },
        "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object" },
        "description": "台帳の項目（包含証明あり）",
        "detail": [{ "type": "inclusion-proof", "valueString": a.proof_url }],
    })];
    if let Some(p) = &a.patient_id {
        entity.push(json!({
            "what": { "reference": format!("Patient/{p}") },
            "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person" },
            "role": { "system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient" },
        }));
    }
    if let Some(r) = a.record_id {
        let what = match a.version {
            Some(v) => format!("DocumentReference/{r}/_history/{v}"),
            None => format!("DocumentReference/{r}"),
        };
        entity.push(json!({
            "what": { "reference": what },
            "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object" },
            "role": { "system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "3", "display": "Report" },
        }));
    }
    json!({
        "resourceType": "AuditEvent",
        "id": a.index.to_string(),
        "type": { "system": ACTIONS, "code": a.action },
        "action": action_code(&a.action),
        "recorded": crate::instant(a.ts),
        "outcome": match a.outcome.as_str() { "ok" => "0", "denied" => "4", _ => "8" },
        "outcomeDesc": match a.outcome.as_str() { "ok" => "成功", "denied" => "権限により拒否", _ => "失敗" },
        "agent": [agent],
        "source": { "observer": { "display": format!("mamori（{}）", a.facility) } },
        "entity": entity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> AuditFacts {
        AuditFacts {
            index: 42,
            ts: 1_796_000_000_000,
            action: "record.read".into(),
            outcome: "denied".into(),
            actor_id: Some(7),
            actor_login: Some("ns.kato".into()),
            actor_role: Some("看護師".into()),
            patient_id: Some("P01001".into()),
            record_id: Some(3),
            version: None,
            client: Some("192.0.2.10 cert 0a1b".into()),
            proof_url: "https://x/api/v1/ledger/proof/42".into(),
            facility: "守りクリニック".into(),
        }
    }

    #[test]
    fn a_ledger_entry_is_an_audit_event_that_links_its_proof() {
        let e = to_fhir(&facts());
        assert_eq!(e["id"], "42");
        assert_eq!(e["action"], "R");
        assert_eq!(e["outcome"], "4");
        assert_eq!(e["agent"][0]["who"]["display"], "ns.kato");
        assert_eq!(e["agent"][0]["network"]["address"], "192.0.2.10");
        assert_eq!(
            e["entity"][0]["detail"][0]["valueString"],
            "https://x/api/v1/ledger/proof/42"
        );
        assert_eq!(e["entity"][1]["what"]["reference"], "Patient/P01001");
        assert_eq!(e["entity"][2]["what"]["reference"], "DocumentReference/3");
        let mut system = facts();
        system.actor_id = None;
        system.actor_login = None;
        system.action = "evidence.sealed".into();
        let e = to_fhir(&system);
        assert_eq!(e["agent"][0]["who"]["display"], "mamori");
        assert_eq!(e["action"], "E");
        assert_eq!(action_code("record.amended"), "U");
        assert_eq!(action_code("patient.created"), "C");
    }
}
