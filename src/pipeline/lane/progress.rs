//! Whether a lane is getting anywhere: how long its senders have been busy without finishing
//! a request, which tells a busy lane (refuse; the caller retries) from a stalled one (stop
//! waiting for it).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// The lane's senders' progress, shared by its handle (which reads it) and its deliveries.
#[derive(Debug)]
pub(super) struct Progress {
    origin: Instant,
    /// Deliveries running now.
    in_flight: AtomicUsize,
    /// Milliseconds since `origin` when a request last finished, or when the lane got busy.
    since_millis: AtomicU64,
}

/// Held while a delivery runs.
pub(super) struct Busy<'a>(&'a Progress);

impl Progress {
    pub(super) fn new() -> Self {
        Progress { origin: Instant::now(), in_flight: AtomicUsize::new(0), since_millis: AtomicU64::new(0) }
    }

    fn now_millis(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A delivery starts; it counts as running until the returned guard is dropped.
    pub(super) fn busy(&self) -> Busy<'_> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) == 0 {
            self.mark();
        }
        Busy(self)
    }

    /// A request finished.
    pub(super) fn mark(&self) {
        self.since_millis.store(self.now_millis(), Ordering::Relaxed);
    }

    /// How long the lane has been busy without finishing anything; zero when idle.
    pub(super) fn stuck_for(&self) -> Duration {
        if self.in_flight.load(Ordering::Acquire) == 0 {
            return Duration::ZERO;
        }
        let since = self.since_millis.load(Ordering::Relaxed);
        Duration::from_millis(self.now_millis().saturating_sub(since))
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}
