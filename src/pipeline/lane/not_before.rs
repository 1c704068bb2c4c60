//! A destination's own wait (`Retry-After`, a `RateLimit` reset) as a not-before time for the
//! whole lane: every sender waits for it before its next attempt, so a batch that goes back
//! to the spool and is replayed at once still waits, instead of replaying in a loop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// When the lane may send again, shared by its senders.
#[derive(Debug)]
pub(super) struct NotBefore {
    origin: Instant,
    /// Milliseconds since `origin` before which nothing is sent; 0: no wait.
    until_millis: AtomicU64,
}

impl NotBefore {
    pub(super) fn new() -> Self {
        NotBefore { origin: Instant::now(), until_millis: AtomicU64::new(0) }
    }

    /// The destination asked to wait `delay` from now; a later time already set stands.
    pub(super) fn extend(&self, delay: Duration) {
        let until = self.origin.elapsed().saturating_add(delay);
        let until = u64::try_from(until.as_millis()).unwrap_or(u64::MAX);
        self.until_millis.fetch_max(until, Ordering::AcqRel);
    }

    /// How long is left to wait; zero when nothing is.
    pub(super) fn remaining(&self) -> Duration {
        let until = Duration::from_millis(self.until_millis.load(Ordering::Acquire));
        until.saturating_sub(self.origin.elapsed())
    }

    /// Waits until the lane may send (returns at once when it may).
    pub(super) async fn wait(&self) {
        loop {
            let left = self.remaining();
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_wait_lasts_until_the_latest_time_asked() {
        let not_before = NotBefore::new();
        not_before.extend(Duration::from_secs(600));
        not_before.extend(Duration::from_secs(5));
        let started = Instant::now();
        not_before.wait().await;
        assert_eq!(started.elapsed().as_secs(), 600);
        assert_eq!(not_before.remaining(), Duration::ZERO);
    }
}
