//! mamori's rules, free of I/O so that every decision can be tested exhaustively.
#![forbid(unsafe_code)]

pub mod audit;
pub mod bookkeeping;
pub mod content;
pub mod date;
pub mod error;
pub mod html;
pub mod kinds;
pub mod net;
pub mod password;
pub mod patient;
pub mod permission;
pub mod timesync;
pub mod totp;
pub mod version;

pub use error::DomainError;

/// Milliseconds since the Unix epoch, UTC. One representation everywhere avoids time-zone
/// mistakes; rendering to JST happens at the edges.
pub type Millis = i64;

/// A source of the current time, injected so tests can travel in time.
pub trait Clock: Send + Sync {
    fn now(&self) -> Millis;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or(0)
    }
}
