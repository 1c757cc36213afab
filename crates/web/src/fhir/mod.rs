//! `/fhir/r4`: HL7 FHIR R4 (JP Core) for the systems around mamori — EHRs that already write
//! FHIR, security tools that read standard resources. The resources and their mapping are
//! `mamori_fhir`'s; who may do what, and the ledger entry of every request, are the service's,
//! exactly as for the JSON API. Every answer is `application/fhir+json`; every refusal an
//! OperationOutcome with the status the same refusal has in the JSON API.

mod audit;
mod clins;
mod document;
mod oauth;
mod patient;
mod provenance;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mamori_fhir::capability::ResourceSupport;
use mamori_fhir::outcome::{self, IssueType};
use mamori_service::{ErrorCode, Principal, Service, ServiceError};
use serde_json::Value;

use crate::error::status_of;

type Svc = State<Arc<Service>>;

/// Every operation of the interface: (method, path under `/fhir/r4`, name), for the
/// authorisation matrix and the documentation.
pub const OPERATIONS: &[(&str, &str, &str)] = &[
    ("GET", "/metadata", "fhirCapabilities"),
    ("POST", "/", "fhirTransaction"),
    ("POST", "/Binary", "fhirCreateBinary"),
    (
        "GET",
        "/.well-known/smart-configuration",
        "fhirSmartConfiguration",
    ),
    ("POST", "/auth/token", "fhirOAuthToken"),
    ("GET", "/Patient/{id}", "fhirReadPatient"),
    ("GET", "/Patient", "fhirSearchPatient"),
    ("POST", "/Patient", "fhirCreatePatient"),
    ("GET", "/DocumentReference/{id}", "fhirReadDocument"),
    ("PUT", "/DocumentReference/{id}", "fhirUpdateDocument"),
    (
        "GET",
        "/DocumentReference/{id}/_history/{n}",
        "fhirReadDocumentVersion",
    ),
    (
        "GET",
        "/DocumentReference/{id}/_history",
        "fhirDocumentHistory",
    ),
    ("GET", "/DocumentReference", "fhirSearchDocument"),
    ("POST", "/DocumentReference", "fhirCreateDocument"),
    (
        "POST",
        "/DocumentReference/{id}/$jp-clins-document",
        "fhirSignReferralDocument",
    ),
    ("GET", "/Bundle/{id}", "fhirReadReferralDocument"),
    ("GET", "/AuditEvent/{id}", "fhirReadAuditEvent"),
    ("GET", "/AuditEvent", "fhirSearchAuditEvent"),
    ("GET", "/Provenance/{id}", "fhirReadProvenance"),
    ("GET", "/Provenance", "fhirSearchProvenance"),
];

/// What the CapabilityStatement says: built from the same facts the routes below serve.
const RESOURCES: &[ResourceSupport] = &[
    ResourceSupport {
        resource_type: "Patient",
        profile: Some(mamori_fhir::patient::PROFILE),
        interactions: &["read", "search-type", "create"],
        conditional_create: true,
        search: patient::SEARCH,
        versioned_update: false,
        operations: &[],
    },
    ResourceSupport {
        resource_type: "DocumentReference",
        profile: None,
        interactions: &[
            "read",
            "vread",
            "update",
            "history-instance",
            "search-type",
            "create",
        ],
        conditional_create: true,
        search: document::SEARCH,
        versioned_update: true,
        operations: &[(
            "jp-clins-document",
            "POST DocumentReference/{id}/$jp-clins-document (Parameters: referralToOrganization, referralToDepartment, referralToPractitioner, purpose, problem, version): the author of a finalised 紹介状 signs its JP-CLINS 診療情報提供書 document Bundle in their signing window",
        )],
    },
    ResourceSupport {
        resource_type: "Bundle",
        profile: Some(mamori_fhir::clins::BUNDLE_PROFILE),
        interactions: &["read"],
        conditional_create: false,
        search: &[],
        versioned_update: false,
        operations: &[],
    },
    ResourceSupport {
        resource_type: "AuditEvent",
        profile: None,
        interactions: &["read", "search-type"],
        conditional_create: false,
        search: audit::SEARCH,
        versioned_update: false,
        operations: &[],
    },
    ResourceSupport {
        resource_type: "Provenance",
        profile: None,
        interactions: &["read", "search-type"],
        conditional_create: false,
        search: provenance::SEARCH,
        versioned_update: false,
        operations: &[],
    },
];

pub fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/", axum::routing::post(document::transaction))
        .route("/Binary", axum::routing::post(document::binary_alone))
        .route("/metadata", get(metadata))
        .route("/auth/token", axum::routing::post(oauth::token))
        .route(
            "/.well-known/smart-configuration",
            get(oauth::smart_configuration),
        )
        .route("/Patient", get(patient::search).post(patient::create))
        .route("/Patient/{id}", get(patient::read))
        .route("/Provenance", get(provenance::search))
        .route("/Provenance/{id}", get(provenance::read))
        .route("/AuditEvent", get(audit::search))
        .route("/AuditEvent/{id}", get(audit::read))
        .route(
            "/DocumentReference",
            get(document::search).post(document::create),
        )
        .route(
            "/DocumentReference/{id}",
            get(document::read).put(document::update),
        )
        .route("/DocumentReference/{id}/_history", get(document::history))
        .route(
            "/DocumentReference/{id}/$jp-clins-document",
            axum::routing::post(clins::prepare),
        )
        .route("/Bundle/{id}", get(clins::read))
        .route("/DocumentReference/{id}/_history/{n}", get(document::vread))
        .fallback(unknown)
}

/// A FHIR answer: the resource as `application/fhir+json`, with `extra` headers.
pub(crate) fn resource(
    status: StatusCode,
    body: &Value,
    extra: &[(header::HeaderName, String)],
) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json; charset=utf-8"),
    );
    for (k, v) in extra {
        if let Ok(v) = HeaderValue::from_str(v) {
            headers.insert(k.clone(), v);
        }
    }
    (status, headers, body.to_string()).into_response()
}

/// A refusal as an OperationOutcome.
pub struct FhirError {
    status: StatusCode,
    outcome: Value,
}

impl FhirError {
    pub fn new(
        status: StatusCode,
        issue: IssueType,
        code: &str,
        message: &str,
        expression: Option<&str>,
    ) -> Self {
        let english = match code {
            "not_supported" => "mamori does not support this.",
            _ => ErrorCode::ALL
                .iter()
                .find(|c| c.as_str() == code)
                .map_or("The request was refused.", |c| c.en()),
        };
        Self {
            status,
            outcome: outcome::error(issue, code, english, message, expression),
        }
    }

    pub(crate) fn malformed(message: impl AsRef<str>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            IssueType::Structure,
            "malformed",
            message.as_ref(),
            None,
        )
    }

    pub(crate) fn not_supported(message: impl AsRef<str>, expression: Option<&str>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            IssueType::NotSupported,
            "not_supported",
            message.as_ref(),
            expression,
        )
    }
}

impl From<ServiceError> for FhirError {
    fn from(e: ServiceError) -> Self {
        let code = e.code.as_str();
        // The FHIR element a field of the service's input stands for (a path the service
        // named itself is kept).
        let expression = e.field.map(|f| match f {
            "reason" => "Provenance.reason".to_owned(),
            "patient_id" => "DocumentReference.subject".to_owned(),
            "title" => "DocumentReference.description".to_owned(),
            "attachments" => "DocumentReference.content".to_owned(),
            "author_id" => "DocumentReference.author".to_owned(),
            f if f.contains('.') => f.to_owned(),
            f => format!("Patient.{f}"),
        });
        Self::new(
            status_of(e.code),
            outcome::issue_type(code),
            code,
            &e.message,
            expression.as_deref(),
        )
    }
}

impl From<mamori_fhir::outcome::Refusal> for FhirError {
    fn from(r: mamori_fhir::outcome::Refusal) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            r.issue,
            r.code,
            &r.message,
            r.expression.as_deref(),
        )
    }
}

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        resource(self.status, &self.outcome, &[])
    }
}

pub(crate) type FhirResult = Result<Response, FhirError>;

/// The caller, as for the JSON API (a bearer token; a session cookie with its CSRF token);
/// a refusal is an OperationOutcome.
pub(crate) struct FhirAuth(pub Principal);

impl FromRequestParts<Arc<Service>> for FhirAuth {
    type Rejection = FhirError;

    async fn from_request_parts(
        parts: &mut Parts,
        svc: &Arc<Service>,
    ) -> Result<Self, Self::Rejection> {
        let p = crate::extract::caller(parts, svc, true)
            .await
            .and_then(crate::extract::fully_signed_in)
            .map_err(|crate::error::ApiError(e)| FhirError::from(e))?;
        if p.is_oauth() {
            oauth::require_scope(&p, parts)?;
        }
        Ok(FhirAuth(p))
    }
}

/// `https://host/fhir/r4` as the client reached it (the host was checked against
/// `server.allowed_hosts` before any handler runs).
pub(crate) struct Base(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Base {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let scheme = match parts.extensions.get::<crate::conn::Encrypted>() {
            Some(crate::conn::Encrypted(false)) => "http",
            _ => "https",
        };
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        Ok(Base(format!("{scheme}://{host}/fhir/r4")))
    }
}

/// A request body as JSON: `application/fhir+json` (or `application/json`), within the limit.
pub(crate) async fn json_body(req: Request, limit: usize) -> Result<Value, FhirError> {
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !(ctype.starts_with("application/fhir+json") || ctype.starts_with("application/json")) {
        return Err(FhirError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IssueType::NotSupported,
            "unsupported_type",
            "Content-Type は application/fhir+json にしてください",
            None,
        ));
    }
    let bytes: Bytes = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| {
            FhirError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                IssueType::TooCostly,
                "too_large",
                "送信されたリソースが大きすぎます",
                None,
            )
        })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| FhirError::malformed(format!("JSON として読めません: {e}")))
}

/// The identifier token of a conditional create (`If-None-Exist: identifier=…`), if the
/// request makes one; any other condition is refused.
pub(crate) fn if_none_exist(headers: &HeaderMap) -> Result<Option<String>, FhirError> {
    headers
        .get("if-none-exist")
        .and_then(|v| v.to_str().ok())
        .map(condition)
        .transpose()
}

/// The identifier token of one conditional-create condition (`identifier=system|value`), as
/// `If-None-Exist` or a transaction entry's `request.ifNoneExist` says it.
pub(crate) fn condition(cond: &str) -> Result<String, FhirError> {
    cond.split('&')
        .find_map(|kv| kv.strip_prefix("identifier="))
        .map(str::to_owned)
        .ok_or_else(|| {
            FhirError::not_supported(
                "If-None-Exist は identifier=system|value の形で指定してください",
                None,
            )
        })
}

/// A conditional create whose identifier is not the resource's own.
pub(crate) fn condition_mismatch(expression: &str) -> FhirError {
    FhirError::new(
        StatusCode::PRECONDITION_FAILED,
        IssueType::Invalid,
        "invalid_input",
        "If-None-Exist の identifier がリソースの識別子と一致しません",
        Some(expression),
    )
}

/// `_count` and `_offset` of a search, and the URLs of its pages.
pub(crate) struct Paging {
    pub count: usize,
    pub offset: usize,
}

impl Default for Paging {
    fn default() -> Self {
        Self {
            count: 20,
            offset: 0,
        }
    }
}

impl Paging {
    /// Takes `_count` or `_offset`; false for any other parameter.
    pub(crate) fn take(&mut self, k: &str, v: &str) -> Result<bool, FhirError> {
        let n = || {
            v.parse::<usize>()
                .map_err(|_| FhirError::malformed(format!("{k} は数で指定してください")))
        };
        match k {
            "_count" => self.count = n()?.clamp(1, 50),
            "_offset" => self.offset = n()?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The refusal of a parameter the search does not serve: ignoring a criterion would answer
    /// with more than was asked for.
    pub(crate) fn unserved(k: &str) -> FhirError {
        FhirError::not_supported(
            format!("検索条件 {k} は扱いません（GET /fhir/r4/metadata を参照）"),
            Some(k),
        )
    }

    /// A page of `total` matches as a searchset Bundle, with its `self` and `next` links
    /// (`url` is the search without its query; `params` as asked).
    pub(crate) fn bundle(
        &self,
        url: &str,
        params: &[(String, String)],
        total: usize,
        entries: Vec<(String, Value)>,
    ) -> Value {
        let query: Vec<String> = params
            .iter()
            .filter(|(k, _)| k != "_offset")
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect();
        let page_url = |from: usize| {
            let mut q = query.clone();
            if from > 0 {
                q.push(format!("_offset={from}"));
            }
            format!("{url}?{}", q.join("&"))
        };
        let next = (total > self.offset + self.count).then(|| page_url(self.offset + self.count));
        mamori_fhir::bundle::searchset(
            entries,
            Some(total),
            &page_url(self.offset),
            next.as_deref(),
        )
    }
}

pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'|' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn metadata(State(svc): Svc, Base(base): Base) -> Response {
    let statement = mamori_fhir::capability::statement(
        &base,
        env!("CARGO_PKG_VERSION"),
        &mamori_fhir::instant(svc.now()),
        RESOURCES,
    );
    resource(StatusCode::OK, &statement, &[])
}

async fn unknown(req: Request) -> FhirError {
    FhirError::new(
        StatusCode::NOT_FOUND,
        IssueType::NotSupported,
        "not_found",
        &format!(
            "{} {} は mamori の FHIR インターフェースにありません（GET /fhir/r4/metadata に使えるものの一覧があります）",
            req.method(),
            req.uri().path()
        ),
        None,
    )
}
