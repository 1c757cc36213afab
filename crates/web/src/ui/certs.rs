//! Client certificates in the browser (管理 › 証明書): issue for a device or a staff member
//! (the PKCS#12 file downloads once), list, revoke with a reason, and fetch the CA certificate
//! and CRL.

use mamori_service::ErrorCode;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use mamori_service::Service;
use mamori_service::access::ca::{CertRequest, REASONS};
use mamori_service::access::server_cert::ServerCertInfo;
use mamori_service::ledger::audit::jst;
use mamori_service::{Principal, ServiceError};
use mamori_store::CertificateRow;

use crate::error::status_of;
use crate::ui::admin::FormError;
use crate::ui::form::{SignedForm, SignedIn};
use crate::ui::{Layout, Tr, error_page, lang_of, layout, render};

type Svc = State<Arc<Service>>;

pub fn routes() -> axum::Router<Arc<Service>> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/admin/certificates", get(list_page).post(issue))
        .route("/admin/certificates/revoke", post(revoke))
        .route("/admin/certificates/server", post(reissue_server))
}

pub struct CertRow {
    pub c: CertificateRow,
    pub expires: String,
    pub revoked: String,
    /// The revocation reason as people read it.
    pub reason: String,
}

#[derive(Default)]
pub struct IssueForm {
    pub kind: String,
    pub name: String,
    pub device_id: String,
    pub days: String,
}

#[derive(Template)]
#[template(path = "admin_certificates.html")]
struct ListPage {
    layout: Layout,
    tab: &'static str,
    rows: Vec<CertRow>,
    reasons: Vec<(&'static str, &'static str)>,
    form: IssueForm,
    error: Option<FormError>,
    server: Option<ServerCertInfo>,
    server_expires: String,
    hosts_text: String,
    notice: Option<String>,
}

/// What `show` draws besides the list: the server certificate's form and a notice.
#[derive(Default)]
struct ServerForm {
    hosts: Option<String>,
    notice: Option<String>,
}

async fn show(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    status: StatusCode,
    form: IssueForm,
    error: Option<&ServiceError>,
    sf: ServerForm,
) -> Response {
    let list = match svc.certificates(Some(p)).await {
        Ok(l) => l,
        Err(e) => return error_page(svc, headers, Some(p), &e),
    };
    let server = match svc.server_certificate().await {
        Ok(s) => s,
        Err(e) => return error_page(svc, headers, Some(p), &e),
    };
    let hosts_text = sf.hosts.unwrap_or_else(|| {
        server
            .as_ref()
            .map(|s| s.hosts.join("\n"))
            .unwrap_or_default()
    });
    let rows = list
        .into_iter()
        .map(|c| CertRow {
            expires: jst(c.not_after),
            revoked: c.revoked_at.map(jst).unwrap_or_default(),
            reason: c
                .revoke_reason
                .as_deref()
                .map(|r| {
                    REASONS
                        .iter()
                        .find(|(code, _)| *code == r)
                        .map_or(r, |(_, label)| *label)
                        .to_owned()
                })
                .unwrap_or_default(),
            c,
        })
        .collect();
    render(
        status,
        ListPage {
            layout: layout(svc, headers, Some(p), p.csrf.clone()),
            tab: "certificates",
            rows,
            reasons: REASONS.to_vec(),
            form,
            error: error.and_then(|e| FormError::of(headers, e)),
            server_expires: server
                .as_ref()
                .map(|s| jst(s.not_after))
                .unwrap_or_default(),
            server,
            hosts_text,
            notice: sf.notice,
        },
    )
}

#[derive(serde::Deserialize)]
struct ListQuery {
    #[serde(default)]
    server: String,
}

async fn list_page(
    State(svc): Svc,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
    SignedIn(p): SignedIn,
) -> Response {
    let form = IssueForm {
        kind: "device".into(),
        days: "397".into(),
        ..Default::default()
    };
    let sf = ServerForm {
        hosts: None,
        notice: (q.server == "issued").then(|| {
            Tr::of(lang_of(&headers))
                .get("tls.issued_notice")
                .to_owned()
        }),
    };
    show(&svc, &headers, &p, StatusCode::OK, form, None, sf).await
}

fn fresh_issue_form() -> IssueForm {
    IssueForm {
        kind: "device".into(),
        days: "397".into(),
        ..Default::default()
    }
}

/// Issues the server's certificate for the names typed (one per line); it is used from the
/// next start, which the notice says.
async fn reissue_server(
    State(svc): Svc,
    headers: HeaderMap,
    SignedForm { p, fields }: SignedForm,
) -> Response {
    let text = fields.get("hosts");
    let hosts: Vec<String> = text
        .split(['\n', ',', ' '])
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .collect();
    let days = mamori_service::access::server_cert::DEFAULT_DAYS;
    match svc.issue_server_certificate(Some(&p), &hosts, days).await {
        Ok(_) => Redirect::to("/admin/certificates?server=issued").into_response(),
        Err(e) => {
            let sf = ServerForm {
                hosts: Some(text),
                notice: None,
            };
            refused(&svc, &headers, &p, &e, fresh_issue_form(), sf).await
        }
    }
}

/// Issues and answers with the PKCS#12 file itself (a download); on refusal, the form again.
async fn issue(
    State(svc): Svc,
    headers: HeaderMap,
    SignedForm { p, fields: f }: SignedForm,
) -> Response {
    let form = IssueForm {
        kind: f.get("kind"),
        name: f.get("name"),
        device_id: f.get("device_id"),
        days: f.get("days"),
    };
    let req = CertRequest {
        kind: form.kind.clone(),
        name: form.name.clone(),
        device_id: Some(form.device_id.clone()),
        days: form.days.trim().parse().unwrap_or(0),
    };
    match svc
        .issue_certificate(Some(&p), req, &f.get("password"))
        .await
    {
        Ok(issued) => {
            let mut res = issued.p12.into_response();
            let h = res.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-pkcs12"),
            );
            let file = format!("mamori-{}-{}.p12", form.name.trim(), &issued.serial[..8]);
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            res
        }
        Err(e) => refused(&svc, &headers, &p, &e, form, ServerForm::default()).await,
    }
}

/// A refusal: the error page when the role may not, otherwise the page again with the error
/// beside what was typed.
async fn refused(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    e: &ServiceError,
    form: IssueForm,
    sf: ServerForm,
) -> Response {
    if e.code == ErrorCode::Forbidden {
        return error_page(svc, headers, Some(p), e);
    }
    show(svc, headers, p, status_of(e.code), form, Some(e), sf).await
}

async fn revoke(
    State(svc): Svc,
    headers: HeaderMap,
    SignedForm { p, fields }: SignedForm,
) -> Response {
    match svc
        .revoke_certificate(Some(&p), &fields.get("serial"), &fields.get("reason"))
        .await
    {
        Ok(()) => Redirect::to("/admin/certificates").into_response(),
        Err(e) => {
            let sf = ServerForm::default();
            refused(&svc, &headers, &p, &e, fresh_issue_form(), sf).await
        }
    }
}
