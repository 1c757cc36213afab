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
    /// Whether updates need `If-Match` with the version read (`versioned-update`).
    pub versioned_update: bool,
    /// Operations on an instance (`$name`), each with what it does.
    pub operations: &'static [(&'static str, &'static str)],
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
                "extension": [{
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [{ "url": "token", "valueUri": format!("{base}/auth/token") }],
                }],
                "service": [{
                    "coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }],
                    "text": "SMART Backend Services (client credentials with a signed JWT, system/ scopes), or the bearer token of a mamori account or service account",
                }],
                "description": "Authorization: Bearer <token>. What each role may do is mamori's own access control, narrowed by an OAuth token's scopes; every request is written to the ledger.",
            },
            "interaction": [{
                "code": "transaction",
                "documentation": "One DocumentReference (POST) with the Binary resources its attachment.url names by fullUrl (urn:uuid): one record, all or nothing.",
            }],
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
                if r.versioned_update {
                    v["versioning"] = json!("versioned-update");
                    v["readHistory"] = json!(true);
                    v["updateCreate"] = json!(false);
                }
                if !r.operations.is_empty() {
                    v["operation"] = json!(r.operations.iter().map(|(name, doc)| json!({
                        "name": name,
                        "definition": format!("urn:mamori:fhir:OperationDefinition:{name}"),
                        "documentation": doc,
                    })).collect::<Vec<_>>());
                }
                v
            }).collect::<Vec<_>>(),
        }],
    })
}

/// `.well-known/smart-configuration` (SMART App Launch 2.x) for backend services.
pub fn smart_configuration(base: &str) -> Value {
    json!({
        "token_endpoint": format!("{base}/auth/token"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": crate::smart::ALGORITHMS,
        "scopes_supported": [
            "system/*.read", "system/Patient.read", "system/Patient.write",
            "system/DocumentReference.read", "system/DocumentReference.write",
            "system/Provenance.read", "system/AuditEvent.read"
        ],
        "capabilities": ["client-confidential-asymmetric", "permission-v1", "permission-v2"],
    })
}
