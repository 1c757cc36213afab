//! Prometheus metrics: requests by route and status with their latencies (counted here, for
//! every request), and the service's vitals (ledger, writer, backups, evidence, clock, failed
//! sign-ins), read when scraped. `GET /api/v1/metrics` with the administrator's token.

use std::sync::LazyLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use mamori_service::monitoring::Vitals;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The route's pattern (`/api/v1/records/{id}`), never the path itself: ids and whatever
    /// an attacker sends must not become label values.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

struct Http {
    requests: Family<RequestLabels, Counter>,
    seconds: Family<RouteLabels, Histogram>,
}

static HTTP: LazyLock<Http> = LazyLock::new(|| Http {
    requests: Family::default(),
    // 0.5 ms to about 8 s.
    seconds: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 15))),
});

/// Counts every request under its route pattern; unmatched paths share one label.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let response = next.run(req).await;
    HTTP.requests
        .get_or_create(&RequestLabels {
            method: method.clone(),
            route: route.clone(),
            status: response.status().as_u16(),
        })
        .inc();
    HTTP.seconds
        .get_or_create(&RouteLabels { method, route })
        .observe(started.elapsed().as_secs_f64());
    response
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    target: String,
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: f64) {
    let g = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    g.set(value);
    registry.register(name, help, g);
}

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let c = Counter::<u64>::default();
    c.inc_by(value);
    registry.register(name, help, c);
}

/// The OpenMetrics text of everything above.
pub fn render(v: &Vitals) -> String {
    let mut r = Registry::with_prefix("mamori");
    r.register(
        "http_requests",
        "HTTP requests by method, route pattern and status",
        HTTP.requests.clone(),
    );
    r.register(
        "http_request_duration_seconds",
        "HTTP request latency by method and route pattern",
        HTTP.seconds.clone(),
    );
    gauge(
        &mut r,
        "ledger_entries",
        "Entries in the ledger",
        v.ledger_entries as f64,
    );
    counter(
        &mut r,
        "writer_jobs",
        "Writes run by the ledger writer since start",
        v.writer_jobs,
    );
    counter(
        &mut r,
        "writer_commits",
        "Group commits since start",
        v.writer_commits,
    );
    let commit = Counter::<f64, std::sync::atomic::AtomicU64>::default();
    commit.inc_by(v.writer_commit_seconds);
    r.register(
        "writer_commit_seconds",
        "Time spent committing since start",
        commit,
    );
    gauge(
        &mut r,
        "writer_slowest_commit_seconds",
        "The slowest commit since start",
        v.writer_slowest_commit_seconds,
    );
    gauge(
        &mut r,
        "reader_connections",
        "Read-only database connections open",
        v.reader_connections as f64,
    );
    gauge(
        &mut r,
        "backup_running",
        "1 while a backup or restore drill runs",
        f64::from(u8::from(v.backup_running)),
    );
    let age = Family::<TargetLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let never = Family::<TargetLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let failing = Family::<TargetLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    for b in &v.backups {
        let l = TargetLabels {
            target: b.target.clone(),
        };
        match b.age_seconds {
            Some(a) => {
                age.get_or_create(&l).set(a);
                never.get_or_create(&l).set(0.0);
            }
            None => {
                never.get_or_create(&l).set(1.0);
            }
        }
        failing
            .get_or_create(&l)
            .set(f64::from(u8::from(b.failing)));
    }
    r.register(
        "backup_age_seconds",
        "Seconds since the last successful backup to each configured target",
        age,
    );
    r.register(
        "backup_never_succeeded",
        "1 for a configured target with no successful backup yet",
        never,
    );
    r.register(
        "backup_failing",
        "1 when a target's newest backup attempt failed",
        failing,
    );
    gauge(
        &mut r,
        "evidence_unsealed_signatures",
        "Signatures not yet in an evidence record",
        v.evidence_unsealed as f64,
    );
    gauge(
        &mut r,
        "timestamps_pending",
        "Signatures still waiting for their time-stamp",
        v.timestamps_pending as f64,
    );
    if let Some(trusted) = v.clock_trusted {
        gauge(
            &mut r,
            "clock_trusted",
            "1 when the clock was last found synchronised",
            f64::from(u8::from(trusted)),
        );
    }
    if let Some(offset) = v.clock_offset_seconds {
        gauge(
            &mut r,
            "clock_offset_seconds",
            "The clock's offset from the NTP server at the last check",
            offset,
        );
    }
    if let (Some(ok), Some(age)) = (v.verify_ok, v.verify_age_seconds) {
        gauge(
            &mut r,
            "verify_ok",
            "1 when the newest full verification of ledger, records and files passed",
            f64::from(u8::from(ok)),
        );
        gauge(
            &mut r,
            "verify_age_seconds",
            "Seconds since the newest full verification",
            age,
        );
    }
    gauge(
        &mut r,
        "failed_logins_24h",
        "Failed sign-ins in the last 24 hours",
        v.failed_logins_24h as f64,
    );
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &r).expect("writing to a String");
    out
}
