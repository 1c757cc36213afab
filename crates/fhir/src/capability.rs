//! The CapabilityStatement: exactly what this server does, built from the same table the
//! adapter routes by, so the two cannot disagree.

use serde_json::{Value, json};

/// One resource type the server speaks.
pub struct ResourceSupport {
    pub resource_type: &'static str,
    pub profile: Option<&'static str>,
    /// `read`, `search-type`, `create`, `history-instance` …
    pub interactions: &'static [&'static str],
    /// Whether `create` honours `If-None-Exist`.
    pub conditional_create: bool,
    /// (name, type, what it matches)
    pub search: &'static [(&'static str, &'static str, &'static str)],
}

/// The statement for a server at `base` (its software version and the time it was asked).
pub fn statement(base: &str, version: &str, date: &str, resources: &[ResourceSupport]) -> Value {
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "mamori",
        "kind": "instance",
        "software": { "name": "mamori", "version": version },
        "implementation": { "description": "mamori (守り) FHIR R4 interface", "url": base },
        "fhirVersion": crate::FHIR_VERSION,
        "format": [crate::MEDIA_TYPE, "json"],
        "rest": [{
            "mode": "server",
            "security": {
                "service": [{
                    "coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "OAuth",
                    }],
                    "text": "Bearer token of a mamori account or service account",
                }],
                "description": "Authorization: Bearer <token>. What each role may do is mamori's own access control; every request is written to the ledger.",
            },
            "resource": resources.iter().map(|r| {
                let mut v = json!({
                    "type": r.resource_type,
                    "interaction": r.interactions.iter().map(|i| json!({ "code": i })).collect::<Vec<_>>(),
                    "searchParam": r.search.iter().map(|(name, kind, doc)| json!({
                        "name": name, "type": kind, "documentation": doc,
                    })).collect::<Vec<_>>(),
                    "conditionalCreate": r.conditional_create,
                });
                if let Some(p) = r.profile {
                    v["supportedProfile"] = json!([p]);
                }
                v
            }).collect::<Vec<_>>(),
        }],
    })
}
