//! The connection loop for HTTP and HTTPS alike. A slow or silent client must not hold the
//! server: a connection has `header_timeout_secs` to finish a TLS handshake and each request's
//! headers, is closed when idle for `idle_timeout_secs` (no request in progress, no byte either
//! way), and past `max_connections` (kept below the open-file limit) new ones are closed at once,
//! so that the server never runs out of file descriptors for its database and its own work.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use mamori_service::Service;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Semaphore, watch};
use tower::Service as _;

use crate::tls::{PeerCert, TlsAcceptor};

/// Descriptors kept free for the database, the blob store, logs and outbound calls.
const RESERVED_FDS: u64 = 64;

/// Connections past the cap being answered "busy" at once; beyond these they are dropped.
const REFUSING_AT_ONCE: usize = 32;

/// What a connection past the cap is told before it is closed.
fn over_capacity() -> Vec<u8> {
    let body = "ただいま混み合っています。少し待ってから再度お試しください\n";
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Tells a connection past the cap to come back later, without reading its request.
async fn refuse_over_capacity(mut tcp: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        tcp.write_all(&over_capacity()).await?;
        tcp.shutdown().await
    })
    .await;
}

/// The connection cap: the configured one, below the process's open-file limit.
pub fn connection_cap(configured: usize) -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    let by_fds = soft.saturating_sub(RESERVED_FDS).max(8);
    configured.clamp(1, usize::try_from(by_fds).unwrap_or(usize::MAX))
}

/// When a connection last moved a byte, and how many of its requests are being answered.
struct Activity {
    start: Instant,
    last_ms: AtomicI64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn touch(&self) {
        self.last_ms
            .store(self.start.elapsed().as_millis() as i64, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let now = self.start.elapsed().as_millis() as i64;
        Duration::from_millis((now - self.last_ms.load(Ordering::Relaxed)).max(0) as u64)
    }
}

/// A stream that notes every byte read or written.
struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Counts a request as in flight until its response (headers) is ready.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(a: &Arc<Activity>) -> Self {
        a.in_flight.fetch_add(1, Ordering::SeqCst);
        Self(a.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.touch();
    }
}

/// Accepts connections until `shutdown`, then lets open ones finish (at most 10 s).
pub async fn accept_loop(
    svc: Arc<Service>,
    listener: tokio::net::TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let cfg = svc.config().server.clone();
    let cap = connection_cap(cfg.max_connections);
    let slots = Arc::new(Semaphore::new(cap));
    let refusals = Arc::new(Semaphore::new(REFUSING_AT_ONCE));
    let header_timeout = Duration::from_secs(cfg.header_timeout_secs.max(1));
    let idle_timeout = Duration::from_secs(cfg.idle_timeout_secs.max(1));
    let timeouts = (header_timeout, idle_timeout);
    let app = crate::router(svc.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut refused_since_log = 0u64;
    loop {
        let (tcp, addr) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors (or another transient error): wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refused_since_log += 1;
            if refused_since_log == 1 || refused_since_log.is_multiple_of(1000) {
                tracing::warn!(cap, refused = refused_since_log, "connection limit reached");
            }
            // Over plain HTTP the client is told to come back (503, Retry-After) rather than
            // seeing a reset; over TLS there is no way to say it without a handshake.
            if tls.is_none()
                && let Ok(refusing) = refusals.clone().try_acquire_owned()
            {
                tokio::spawn(async move {
                    let _refusing = refusing;
                    refuse_over_capacity(tcp).await;
                });
            }
            continue;
        };
        refused_since_log = 0;
        let _ = tcp.set_nodelay(true);
        let (app, svc, tls, mut stop) = (app.clone(), svc.clone(), tls.clone(), stop_rx.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let activity = Arc::new(Activity {
                start: Instant::now(),
                last_ms: AtomicI64::new(0),
                in_flight: AtomicUsize::new(0),
            });
            match tls {
                None => {
                    serve_connection(tcp, (addr, false), None, app, activity, timeouts, &mut stop)
                        .await;
                }
                Some(acceptor) => {
                    let Some((stream, peer)) =
                        acceptor.handshake(&svc, tcp, addr, header_timeout).await
                    else {
                        return;
                    };
                    serve_connection(
                        stream,
                        (addr, true),
                        peer,
                        app,
                        activity,
                        timeouts,
                        &mut stop,
                    )
                    .await;
                }
            }
        });
    }
    let _ = stop_tx.send(true);
    // Let answers in progress finish; a connection that does not is cut at the end.
    let deadline = Instant::now() + Duration::from_secs(10);
    while slots.available_permits() < cap && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Whether the request came over TLS (for the absolute URLs some answers carry).
#[derive(Clone, Copy, Debug)]
pub struct Encrypted(pub bool);

/// Serves one connection until it ends, idles out (`timeouts`: headers, idle) or the server
/// stops.
async fn serve_connection<S>(
    stream: S,
    (addr, encrypted): (SocketAddr, bool),
    peer: Option<PeerCert>,
    app: Router,
    activity: Arc<Activity>,
    (header_timeout, idle_timeout): (Duration, Duration),
    stop: &mut watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = Watched {
        inner: stream,
        activity: activity.clone(),
    };
    let act = activity.clone();
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(addr));
            req.extensions_mut().insert(Encrypted(encrypted));
            if let Some(p) = &peer {
                req.extensions_mut().insert(p.clone());
            }
            let mut app = app.clone();
            let guard = InFlight::new(&act);
            async move {
                let res = app.call(req.map(axum::body::Body::new)).await;
                drop(guard);
                res
            }
        });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder.http2().timer(TokioTimer::new());
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = tokio::time::sleep(idle_timeout / 4) => {
                if activity.in_flight.load(Ordering::SeqCst) == 0 && activity.idle_for() >= idle_timeout {
                    return;
                }
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
