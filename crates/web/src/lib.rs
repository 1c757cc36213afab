//! mamori's HTTP adapter: the JSON API under `/api/v1`, security headers, and the server loop.
#![forbid(unsafe_code)]

pub mod api;
pub mod conn;
pub mod error;
pub mod extract;
pub mod fhir;
pub mod headers;
#[doc(hidden)]
pub mod hostile;
pub mod i18n;
pub mod metrics;
pub mod openapi;
pub mod panic_guard;
pub mod routes;
pub mod tls;
pub mod ui;

use routes::UPLOAD_OPS;
pub use routes::{ROUTES, Route};

use mamori_service::ErrorCode;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::MethodRouter;
use mamori_service::Service;

/// Largest body of a request that carries no file: forms, JSON, credentials.
pub const SMALL_BODY: usize = 64 * 1024;

/// Largest body of an upload: the attachment limit, grown by base64 and the JSON or form
/// around it (a record may carry several attachments).
pub fn upload_body_limit(svc: &Service) -> usize {
    (svc.config().records.max_attachment_bytes as usize).saturating_mul(4) / 3 * 5 + (1 << 20)
}

/// The pages' bodies are bounded before any handler reads them: uploads (multipart forms)
/// to the upload limit, every other form to `SMALL_BODY`. A declared length past the limit is
/// refused at once; an undeclared one is cut off when it passes it.
async fn bounded_body(
    axum::extract::State(svc): axum::extract::State<Arc<Service>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    // The API's routes carry their own limits (uploads large, everything else small, read no
    // further than that); a body declared larger than any of them is refused unread.
    if req.uri().path().starts_with("/api/") {
        if declared.is_some_and(|n| n > upload_body_limit(&svc)) {
            return error::ApiError(mamori_service::ServiceError::new(
                ErrorCode::TooLarge,
                "送信されたデータが大きすぎます",
            ))
            .into_response();
        }
        return next.run(req).await;
    }
    // FHIR resources are JSON within the small limit, a DocumentReference (its files inline)
    // within the upload limit (the handlers read no further); a larger declared body is refused
    // unread, as an OperationOutcome.
    if req.uri().path().starts_with("/fhir/") {
        let limit = if req.uri().path() == "/fhir/r4/DocumentReference" {
            upload_body_limit(&svc)
        } else {
            SMALL_BODY
        };
        if declared.is_some_and(|n| n > limit) {
            return fhir::FhirError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                mamori_fhir::outcome::IssueType::TooCostly,
                "too_large",
                "送信されたリソースが大きすぎます",
                None,
            )
            .into_response();
        }
        return next.run(req).await;
    }
    let multipart = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    let limit = if multipart {
        upload_body_limit(&svc)
    } else {
        SMALL_BODY
    };
    if declared.is_some_and(|n| n > limit) {
        return (
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            [(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "送信されたデータが大きすぎます（ファイルは1件あたりの上限以内にしてください）\nThe request is too large.\n",
        )
            .into_response();
    }
    let req = req.map(|b| axum::body::Body::new(http_body_util::Limited::new(b, limit)));
    next.run(req).await
}

pub fn router(svc: Arc<Service>) -> Router {
    let mut api: Router<Arc<Service>> = Router::new();
    let mut by_path: std::collections::BTreeMap<&str, MethodRouter<Arc<Service>>> =
        Default::default();
    let upload = upload_body_limit(&svc);
    for route in ROUTES {
        let limit = if UPLOAD_OPS.contains(&route.op) {
            upload
        } else {
            SMALL_BODY
        };
        let h = route.method_router().layer(DefaultBodyLimit::max(limit));
        let merged = match by_path.remove(route.path) {
            Some(existing) => existing.merge(h),
            None => h,
        };
        by_path.insert(route.path, merged);
    }
    for (path, mr) in by_path {
        api = api.route(path, mr);
    }
    let api = api
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn(metrics::track));
    let pages = Router::new()
        .merge(ui::routes())
        .merge(ui::admin::routes())
        .merge(ui::account::routes())
        .merge(ui::signing::routes())
        .merge(ui::emergency::routes())
        .merge(ui::maintenance::routes())
        .merge(ui::lock::routes())
        .merge(ui::certs::routes())
        .merge(ui::audit::routes())
        .merge(ui::backup::routes())
        .merge(ui::evidence::routes())
        .merge(ui::compliance::routes())
        .merge(ui::registers::routes())
        .merge(ui::transactions::routes())
        // Pages' forms: multipart (file uploads) up to the upload limit, checked with the
        // rest in `bounded_body`; the extractor's own limit is lifted to match.
        .layer(DefaultBodyLimit::max(upload))
        .layer(axum::middleware::from_fn(metrics::track));
    Router::new()
        .nest("/api/v1", api)
        .nest(
            "/fhir/r4",
            fhir::routes().layer(axum::middleware::from_fn(metrics::track)),
        )
        .route(
            "/tsa",
            axum::routing::post(api::dev_tsa).layer(DefaultBodyLimit::max(16 * 1024)),
        )
        .route(
            "/ca.crt",
            axum::routing::get(api::access::ca_certificate_der),
        )
        .route(
            "/ocsp",
            axum::routing::post(api::ocsp).layer(DefaultBodyLimit::max(16 * 1024)),
        )
        .merge(pages)
        .layer(axum::middleware::from_fn_with_state(
            svc.clone(),
            bounded_body,
        ))
        .layer(axum::middleware::from_fn_with_state(
            svc.clone(),
            headers::allowed_host,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(svc.config().server.trusted_proxy_list().unwrap_or_default()),
            extract::forwarded,
        ))
        .layer(axum::middleware::from_fn(panic_guard::guard))
        .layer(axum::middleware::from_fn(headers::security_headers))
        .with_state(svc)
}

/// Serves until `shutdown` resolves, signing a checkpoint periodically and at the end.
pub async fn serve(
    svc: Arc<Service>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(svc, listener, None, shutdown).await
}

/// `serve`, over HTTPS (and with client certificates) when `tls` is given.
pub async fn serve_with(
    svc: Arc<Service>,
    listener: tokio::net::TcpListener,
    tls: Option<tls::TlsOptions>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Before anything is started: a bad certificate or key stops here, with nothing to undo.
    let acceptor = match &tls {
        Some(t) => Some(tls::TlsAcceptor::new(&svc, t).await?),
        None => None,
    };
    let reachable = !listener.local_addr()?.ip().is_loopback();
    svc.set_unencrypted_network(tls.is_none() && reachable);
    if svc.unencrypted_network() {
        tracing::warn!(
            "serving plain HTTP to the network: passwords and patient data cross it unencrypted"
        );
    }
    let background = mamori_service::scheduler::Background::start(&svc);
    let result = conn::accept_loop(svc.clone(), listener, acceptor, shutdown).await;
    drop(background);
    if let Err(e) = svc.checkpoint_now().await {
        tracing::warn!(error = %e, "final checkpoint failed");
    }
    svc.store().close();
    result
}
