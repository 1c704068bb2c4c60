//! Counts kept where the events happen. Each destination's lane records what it sent, what
//! its destination refused and what it dropped through one [`DestinationCounts`], which bumps
//! the Prometheus counter and keeps its own running totals, so `/status`, `waggle status` and
//! the X-Ray daemon telemetry read the totals here instead of reading them back out of the
//! registry by label text.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::{Destination, LossReason, Signal};
use crate::telemetry::metrics::Metrics;

/// Running totals of one signal at one destination.
#[derive(Debug, Default)]
struct SignalCounts {
    sent: AtomicU64,
    failed: [AtomicU64; LossReason::ALL.len()],
    dropped: [AtomicU64; LossReason::ALL.len()],
}

/// What one destination sent, had refused and dropped, since start.
#[derive(Debug)]
pub struct DestinationCounts {
    destination: Destination,
    metrics: Arc<Metrics>,
    by_signal: [SignalCounts; Signal::ALL.len()],
}

impl DestinationCounts {
    pub fn new(destination: Destination, metrics: Arc<Metrics>) -> Self {
        DestinationCounts { destination, metrics, by_signal: Default::default() }
    }

    pub fn destination(&self) -> Destination {
        self.destination
    }

    /// The registry these counts are exported through.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Items the destination acknowledged.
    pub fn record_sent(&self, signal: Signal, items: u64) {
        self.metrics.sent.get_or_create(&Metrics::lane(self.destination, signal)).inc_by(items);
        self.by_signal[signal.index()].sent.fetch_add(items, Ordering::Relaxed);
    }

    /// Items the destination refused for good (or would have: refused before sending).
    pub fn record_failed(&self, signal: Signal, reason: LossReason, items: u64) {
        self.metrics.failed.get_or_create(&Metrics::loss(self.destination, signal, reason)).inc_by(items);
        self.by_signal[signal.index()].failed[reason.index()].fetch_add(items, Ordering::Relaxed);
    }

    /// Items the lane could not hold or deliver.
    pub fn record_dropped(&self, signal: Signal, reason: LossReason, items: u64) {
        self.metrics.dropped.get_or_create(&Metrics::loss(self.destination, signal, reason)).inc_by(items);
        self.by_signal[signal.index()].dropped[reason.index()].fetch_add(items, Ordering::Relaxed);
    }

    pub fn sent(&self, signal: Signal) -> u64 {
        self.by_signal[signal.index()].sent.load(Ordering::Relaxed)
    }

    pub fn failed(&self, signal: Signal, reason: LossReason) -> u64 {
        self.by_signal[signal.index()].failed[reason.index()].load(Ordering::Relaxed)
    }

    pub fn dropped(&self, signal: Signal, reason: LossReason) -> u64 {
        self.by_signal[signal.index()].dropped[reason.index()].load(Ordering::Relaxed)
    }

    /// Every item of `signal` refused, whatever the reason.
    pub fn failed_total(&self, signal: Signal) -> u64 {
        self.by_signal[signal.index()].failed.iter().map(|count| count.load(Ordering::Relaxed)).sum()
    }

    /// Every item of `signal` dropped, whatever the reason.
    pub fn dropped_total(&self, signal: Signal) -> u64 {
        self.by_signal[signal.index()].dropped.iter().map(|count| count.load(Ordering::Relaxed)).sum()
    }
}

/// What one receiver took in and turned away, since start, for readers other than Prometheus
/// (the X-Ray daemon telemetry reports segments received and rejected).
#[derive(Debug, Default)]
pub struct ReceiverCounts {
    received: AtomicU64,
    rejected: AtomicU64,
}

impl ReceiverCounts {
    /// Items that arrived well-formed.
    pub fn record_received(&self, items: u64) {
        self.received.fetch_add(items, Ordering::Relaxed);
    }

    /// Requests or datagrams turned away as malformed.
    pub fn record_rejected(&self, requests: u64) {
        self.rejected.fetch_add(requests, Ordering::Relaxed);
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_reaches_both_the_registry_and_the_totals() {
        let metrics = Arc::new(Metrics::new());
        let counts = DestinationCounts::new(Destination::Xray, Arc::clone(&metrics));
        counts.record_sent(Signal::Traces, 5);
        counts.record_failed(Signal::Traces, LossReason::TooLarge, 2);
        counts.record_dropped(Signal::Traces, LossReason::QueueFull, 3);
        counts.record_dropped(Signal::Traces, LossReason::Shutdown, 1);
        assert_eq!(counts.sent(Signal::Traces), 5);
        assert_eq!(counts.failed(Signal::Traces, LossReason::TooLarge), 2);
        assert_eq!(counts.dropped_total(Signal::Traces), 4);
        assert_eq!(counts.dropped_total(Signal::Logs), 0);
        let exported = metrics.encode();
        assert!(exported.contains(r#"waggle_destination_sent_items_total{destination="xray",signal="traces"} 5"#));
        assert!(exported.contains(
            r#"waggle_destination_failed_items_total{destination="xray",signal="traces",reason="too_large"} 2"#
        ));
    }
}
