//! Limits that keep one caller from exhausting the server: password hashing is bounded to a
//! few at once (each argon2id hash holds 19 MiB), with a short queue and a clear "busy" past
//! it. (Attempts on one account take turns through the store, on every node: `auth.rs`.)

use crate::ErrorCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

use crate::error::{Result, ServiceError};

/// How many pieces of heavy work (password hashes, version comparisons) may run at once and
/// how many may wait for a turn.
pub struct Gate {
    permits: Semaphore,
    waiting: AtomicUsize,
    max_waiting: usize,
    running: AtomicUsize,
    /// The most hashes ever seen running at once (for tests and the status page).
    peak: AtomicUsize,
}

/// The refusal when the queue is full: HTTP 503 with `Retry-After`.
pub fn busy() -> ServiceError {
    ServiceError::new(
        ErrorCode::Busy,
        "ただいま混み合っています。少し待ってからもう一度お試しください",
    )
}

impl Gate {
    pub fn new(concurrent: usize, max_waiting: usize) -> Self {
        Self {
            permits: Semaphore::new(concurrent.max(1)),
            waiting: AtomicUsize::new(0),
            max_waiting,
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// Sized to the machine: one hash per core, sixteen waiting per core.
    pub fn for_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(cores, cores * 16)
    }

    /// Runs `f` (a hash or verification) on the blocking pool once a permit is free; refuses
    /// at once when too many already wait.
    pub async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(busy());
        }
        let permit = self.permits.acquire().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let _permit = permit.map_err(ServiceError::internal)?;
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let r = tokio::task::spawn_blocking(move || {
            let r = f();
            release_freed_memory();
            r
        })
        .await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        r.map_err(ServiceError::internal)
    }

    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// Hands freed heap back to the system. An argon2id hash allocates 19 MiB and frees it; glibc
/// keeps such blocks in per-thread arenas (its mmap threshold rises after the first free), so
/// without this a burst of sign-ins leaves hundreds of MiB resident for good. (The `mamori`
/// binary allocates with mimalloc, which returns such blocks itself; SQLite still uses glibc,
/// and libraries linking this crate may too.)
#[allow(unsafe_code)] // malloc_trim is glibc-only; no crate wraps it.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the kernel; it touches no live block.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// One more failed attempt on account `id` (password, code or passkey), counted from the
/// stored count in the caller's transaction — the same commit that records it — so parallel
/// attempts cannot overwrite each other's count. The lock's end if this attempt locks.
pub(crate) fn count_failure(
    tx: &mut mamori_store::WriteTx<'_>,
    id: i64,
    lockout: &mamori_domain::password::LockoutPolicy,
    now: mamori_domain::Millis,
) -> Result<Option<mamori_domain::Millis>> {
    let before = tx.read().account(id)?.map_or(0, |a| a.failed_logins);
    let (failures, lock) = lockout.after_failure(before, now);
    tx.set_login_failures(id, failures, lock)?;
    Ok(lock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gate_bounds_concurrency_and_sheds() {
        let gate = Arc::new(Gate::new(2, 4));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let g = gate.clone();
            tasks.push(tokio::spawn(async move {
                g.run(|| std::thread::sleep(std::time::Duration::from_millis(30)))
                    .await
            }));
        }
        let mut ok = 0;
        let mut shed = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => ok += 1,
                Err(e) => {
                    assert_eq!(e.code, "busy");
                    shed += 1
                }
            }
        }
        assert!(gate.peak() <= 2, "peak {}", gate.peak());
        assert!(shed > 0 && ok >= 2, "ok {ok}, shed {shed}");
    }
}
