//! OperationOutcome: every refusal of the FHIR interface, with the issue type a FHIR client
//! acts on, mamori's stable English code, and the Japanese explanation for the person reading.

use serde::Serialize;
use serde_json::{Value, json};

/// The FHIR issue types mamori uses (value set `issue-type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IssueType {
    Invalid,
    Structure,
    Required,
    Value,
    Security,
    Login,
    Forbidden,
    NotSupported,
    NotFound,
    Duplicate,
    Conflict,
    TooCostly,
    Processing,
    Transient,
    Exception,
}

/// The code system of mamori's own error codes in `issue.details`.
pub const ERROR_CODES: &str = "urn:mamori:error-code";

/// One error as an OperationOutcome: `code` is mamori's English error code, `diagnostics`
/// the Japanese message, `expression` the FHIRPath of the element at fault, if one is (several
/// separated by commas).
pub fn error(
    issue: IssueType,
    code: &str,
    english: &str,
    diagnostics: &str,
    expression: Option<&str>,
) -> Value {
    let mut i = json!({
        "severity": "error",
        "code": issue,
        "details": {
            "coding": [{ "system": ERROR_CODES, "code": code }],
            "text": english,
        },
        "diagnostics": diagnostics,
    });
    if let Some(e) = expression {
        i["expression"] = json!(e.split(',').collect::<Vec<_>>());
    }
    json!({ "resourceType": "OperationOutcome", "issue": [i] })
}

/// Why a resource cannot be taken as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub issue: IssueType,
    /// mamori's English error code.
    pub code: &'static str,
    pub message: String,
    /// FHIRPath of the element at fault (several separated by commas).
    pub expression: Option<String>,
}

pub(crate) fn refuse(issue: IssueType, message: impl Into<String>, at: &str) -> Refusal {
    Refusal {
        issue,
        code: if issue == IssueType::NotSupported {
            "not_supported"
        } else {
            "invalid_input"
        },
        message: message.into(),
        expression: (!at.is_empty()).then(|| at.to_owned()),
    }
}

/// Refuses the top-level elements of `body` outside `kept`, all named at once, so the sender
/// fixes them in one go.
pub(crate) fn only_kept(body: &Value, resource: &str, kept: &[&str]) -> Result<(), Refusal> {
    let unknown: Vec<&str> = body
        .as_object()
        .map(|o| {
            o.keys()
                .map(String::as_str)
                .filter(|k| !kept.contains(k))
                .collect()
        })
        .unwrap_or_default();
    if unknown.is_empty() {
        return Ok(());
    }
    let mut r = refuse(
        IssueType::NotSupported,
        format!(
            "mamori が保存できない要素 {} があります（保存できない内容を含むリソースは受け付けません）",
            unknown.join(", ")
        ),
        "",
    );
    r.expression = Some(
        unknown
            .iter()
            .map(|k| format!("{resource}.{k}"))
            .collect::<Vec<_>>()
            .join(","),
    );
    Err(r)
}

/// The issue type of one of mamori's error codes (and the HTTP status it travels with).
pub fn issue_type(code: &str) -> IssueType {
    match code {
        "unauthenticated"
        | "session_expired"
        | "invalid_credentials"
        | "second_factor_required"
        | "session_locked" => IssueType::Login,
        "forbidden"
        | "password_change_required"
        | "account_disabled"
        | "client_certificate_required"
        | "maintenance_window_required" => IssueType::Forbidden,
        "account_locked" => IssueType::Security,
        "not_found" => IssueType::NotFound,
        "invalid_input" => IssueType::Invalid,
        "malformed" => IssueType::Structure,
        "too_large" => IssueType::TooCostly,
        "unsupported_type" | "not_supported" => IssueType::NotSupported,
        "exists" | "login_taken" => IssueType::Duplicate,
        "conflict" | "invalid_state" | "signing_window_closed" | "signing_key_missing" => {
            IssueType::Conflict
        }
        "busy" | "locked_instance" => IssueType::Transient,
        _ => IssueType::Exception,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_carries_the_type_the_code_and_the_japanese_words() {
        let o = error(
            issue_type("not_found"),
            "not_found",
            "Not found.",
            "患者が見つかりません",
            Some("Patient.id"),
        );
        assert_eq!(o["resourceType"], "OperationOutcome");
        assert_eq!(o["issue"][0]["code"], "not-found");
        assert_eq!(o["issue"][0]["details"]["coding"][0]["code"], "not_found");
        assert_eq!(o["issue"][0]["diagnostics"], "患者が見つかりません");
        assert_eq!(o["issue"][0]["expression"][0], "Patient.id");
        assert_eq!(issue_type("too_large"), IssueType::TooCostly);
        assert_eq!(issue_type("exists"), IssueType::Duplicate);
        assert_eq!(issue_type("something_new"), IssueType::Exception);
    }
}
