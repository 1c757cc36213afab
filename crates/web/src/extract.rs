use mamori_service::ErrorCode;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, header};
use mamori_service::{Principal, Service, ServiceError};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub const SESSION_COOKIE: &str = "mamori_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Where a request came from, for the ledger: the address, and the client certificate
/// (serial and name) when the connection presented one.
pub fn client_of(parts: &Parts) -> Option<String> {
    let ip = match parts.extensions.get::<Forwarded>() {
        Some(Forwarded { client, via }) => Some(format!("{client} via {via}")),
        None => parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string()),
    };
    let cert = parts.extensions.get::<crate::tls::PeerCert>();
    mamori_service::access::auth::client_label(
        ip,
        cert.map(|c| (c.serial.as_str(), c.subject.as_str())),
    )
}

/// A request that came through a trusted reverse proxy: the client's address and the proxy's.
#[derive(Clone, Copy, Debug)]
pub struct Forwarded {
    pub client: std::net::IpAddr,
    pub via: std::net::IpAddr,
}

/// Middleware: for a connection from a trusted proxy (`server.trusted_proxies`), the client
/// named in `X-Forwarded-For` as far as trusted proxies wrote it.
pub async fn forwarded(
    axum::extract::State(trusted): axum::extract::State<Arc<Vec<mamori_domain::net::Cidr>>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if !trusted.is_empty()
        && let Some(peer) = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
    {
        let values: Vec<&str> = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if let (client, Some(via)) = mamori_domain::net::client_address(peer, &values, &trusted) {
            req.extensions_mut().insert(Forwarded { client, via });
        }
    }
    next.run(req).await
}

fn cookie(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
}

/// The authenticated caller. A bearer token (integrations) needs no CSRF token; a session
/// cookie (browsers) does on every request that changes something.
pub struct Auth(pub Principal);

impl FromRequestParts<Arc<Service>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        svc: &Arc<Service>,
    ) -> Result<Self, Self::Rejection> {
        let p = caller(parts, svc, false).await?;
        Ok(Auth(fully_signed_in(p)?))
    }
}

/// The caller, once the second factor is done.
pub(crate) fn fully_signed_in(p: Principal) -> Result<Principal, ApiError> {
    if p.second_factor_pending {
        return Err(ServiceError::new(
            ErrorCode::SecondFactorRequired,
            "2要素認証の確認コードを入力してください",
        )
        .into());
    }
    Ok(p)
}

/// Like `Auth`, but also a session that waits for its second factor (for the endpoints that
/// complete it, or enrol the first one where the role requires it). Never a locked screen.
pub struct PendingAuth(pub Principal);

impl FromRequestParts<Arc<Service>> for PendingAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        svc: &Arc<Service>,
    ) -> Result<Self, Self::Rejection> {
        Ok(PendingAuth(caller(parts, svc, false).await?))
    }
}

/// The caller of a request, second factor possibly still due; `fhir`: on the FHIR interface,
/// where OAuth access tokens are good too.
pub(crate) async fn caller(
    parts: &Parts,
    svc: &Arc<Service>,
    fhir: bool,
) -> Result<Principal, ApiError> {
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|s| s.trim().to_owned());
    let (token, via_cookie) = match bearer {
        Some(t) => (t, false),
        None => (
            cookie(parts, SESSION_COOKIE).ok_or_else(ServiceError::unauthenticated)?,
            true,
        ),
    };
    let p = if fhir {
        svc.authenticate_fhir_pending(&token, client_of(parts))
            .await?
    } else {
        svc.authenticate_pending(&token, client_of(parts)).await?
    };
    // A locked screen opens nothing but the unlock page (which takes the password).
    if p.locked {
        return Err(ServiceError::new(
            ErrorCode::SessionLocked,
            "画面がロックされています。パスワードを入力して再開してください",
        )
        .into());
    }
    if via_cookie && !matches!(parts.method, Method::GET | Method::HEAD) {
        let presented = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        svc.check_csrf(&p, presented)?;
    }
    Ok(p)
}

/// The caller if the request carries a fully signed-in session or token, else nobody (for the
/// public endpoints where a session, when there is one, proves more).
pub struct MaybeAuth(pub Option<Principal>);

impl FromRequestParts<Arc<Service>> for MaybeAuth {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        svc: &Arc<Service>,
    ) -> Result<Self, Self::Rejection> {
        Ok(MaybeAuth(
            Auth::from_request_parts(parts, svc)
                .await
                .ok()
                .map(|Auth(p)| p),
        ))
    }
}

/// JSON body whose rejections are API errors with Japanese messages.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rej) => Err(ApiError(match rej {
                JsonRejection::JsonDataError(e) => ServiceError::new(
                    ErrorCode::InvalidInput,
                    format!(
                        "入力項目の型や必須項目が正しくありません: {}",
                        e.body_text()
                    ),
                ),
                JsonRejection::JsonSyntaxError(_) => {
                    ServiceError::new(ErrorCode::Malformed, "JSON の書式が正しくありません")
                }
                JsonRejection::MissingJsonContentType(_) => ServiceError::new(
                    ErrorCode::Malformed,
                    "Content-Type: application/json で送信してください",
                ),
                JsonRejection::BytesRejection(e)
                    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
                {
                    ServiceError::new(ErrorCode::TooLarge, "送信されたデータが大きすぎます")
                }
                other => ServiceError::new(
                    ErrorCode::Malformed,
                    format!("リクエストを読めません: {}", other.body_text()),
                ),
            })),
        }
    }
}

/// The peer address, when the server was started with connection info.
pub struct ClientAddr(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_of(parts)))
    }
}
