//! Every request gets an ID, sent back as `X-Request-Id` and named in the log when something
//! goes wrong. A handler that panics is answered 500 with that ID, in Japanese, instead of the
//! connection being dropped mid-answer; the server keeps serving.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mamori_service::{ErrorCode, ServiceError};

pub const REQUEST_ID: &str = "x-request-id";

/// Unique per process and not guessable across restarts: a random start, then a counter (a
/// system call for randomness on every request cost a tenth of `/health`'s rate).
fn request_id() -> String {
    static START: LazyLock<u64> = LazyLock::new(|| {
        u64::from_str_radix(&mamori_service::crypto::random_hex(8), 16).unwrap_or(0)
    });
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:016x}",
        START.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))
    )
}

/// A future whose panic is returned as an error instead of unwinding into the connection.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

pub async fn guard(req: Request, next: Next) -> Response {
    let id = request_id();
    let method = req.method().clone();
    let mut response = match CatchUnwind(Box::pin(next.run(req))).await {
        Ok(r) => r,
        Err(()) => {
            // The path is not logged: it can carry a patient's ID. The panic's own message went
            // to standard error through the panic hook.
            tracing::error!(request_id = %id, %method, "a request panicked inside the server; answered 500");
            crate::error::ApiError(ServiceError::new(
                ErrorCode::Internal,
                format!(
                    "サーバー内部で問題が起きました。要求ID {id} を管理者にお伝えください（記録は失われていません）。"
                ),
            ))
            .into_response()
        }
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    async fn boom() -> &'static str {
        panic!("a bug in a handler")
    }

    #[tokio::test]
    async fn a_panic_is_answered_500_with_the_request_id_and_the_next_request_is_served() {
        let app = Router::new()
            .route("/boom", get(boom))
            .route("/fine", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(guard));
        let r = app
            .clone()
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), 500);
        let id = r.headers()[REQUEST_ID].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 16);
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains(&id) && text.contains("要求ID"), "{text}");
        let r = app
            .oneshot(Request::get("/fine").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_ne!(r.headers()[REQUEST_ID].to_str().unwrap(), id);
    }
}
