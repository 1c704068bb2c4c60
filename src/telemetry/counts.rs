//! Counts kept where the events happen. Each destination's lane records what it sent, what
//! its destination refused and what it dropped through one [`DestinationCounts`], which bumps
//! the Prometheus counter and keeps its own running totals, so `/status`, `waggle status` and
//! the X-Ray daemon telemetry read the totals here instead of reading them back out of the
//! registry by label text.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::model::{Destination, LossReason, Signal};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::recent::{RecentCounts, RecentKind, RecentTotals};

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
    recent: RecentCounts,
    /// Bytes the lane's disk spool holds (0 without a spool).
    spool_bytes: AtomicU64,
}

impl DestinationCounts {
    pub fn new(destination: Destination, metrics: Arc<Metrics>) -> Self {
        DestinationCounts {
            destination,
            metrics,
            by_signal: Default::default(),
            recent: RecentCounts::default(),
            spool_bytes: AtomicU64::new(0),
        }
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
        self.recent.record(signal, RecentKind::Sent, items);
    }

    /// Items the destination refused for good (or would have: refused before sending).
    pub fn record_failed(&self, signal: Signal, reason: LossReason, items: u64) {
        self.metrics.failed.get_or_create(&Metrics::loss(self.destination, signal, reason)).inc_by(items);
        self.by_signal[signal.index()].failed[reason.index()].fetch_add(items, Ordering::Relaxed);
        self.recent.record(signal, RecentKind::Failed, items);
    }

    /// Items the lane could not hold or deliver.
    pub fn record_dropped(&self, signal: Signal, reason: LossReason, items: u64) {
        self.metrics.dropped.get_or_create(&Metrics::loss(self.destination, signal, reason)).inc_by(items);
        self.by_signal[signal.index()].dropped[reason.index()].fetch_add(items, Ordering::Relaxed);
        self.recent.record(signal, RecentKind::Dropped, items);
    }

    /// What the lane's disk spool holds now, in bytes (also the `spool_bytes` gauge).
    pub fn record_spool_bytes(&self, bytes: u64) {
        self.metrics
            .spool_bytes
            .get_or_create(&Metrics::destination(self.destination))
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.spool_bytes.store(bytes, Ordering::Relaxed);
    }

    pub fn spool_bytes(&self) -> u64 {
        self.spool_bytes.load(Ordering::Relaxed)
    }

    /// Items of `signal` sent, refused and dropped in the last minute.
    pub fn last_minute(&self, signal: Signal) -> RecentTotals {
        self.recent.last_minute(signal)
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

    /// The totals of one signal, as `/status` shows them: reasons with no items left out.
    pub fn totals(&self, signal: Signal) -> SignalTotals {
        let by_reason = |counts: &[AtomicU64; LossReason::ALL.len()]| {
            LossReason::ALL
                .into_iter()
                .filter_map(|reason| {
                    let items = counts[reason.index()].load(Ordering::Relaxed);
                    (items > 0).then_some((reason.as_str(), items))
                })
                .collect()
        };
        let counts = &self.by_signal[signal.index()];
        SignalTotals {
            sent: counts.sent.load(Ordering::Relaxed),
            failed: by_reason(&counts.failed),
            dropped: by_reason(&counts.dropped),
        }
    }
}

/// What a destination did with one signal's items since start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SignalTotals {
    /// Items the destination acknowledged.
    pub sent: u64,
    /// Items the destination refused (or would have), by reason.
    pub failed: BTreeMap<&'static str, u64>,
    /// Items the lane could not hold or deliver, by reason.
    pub dropped: BTreeMap<&'static str, u64>,
}

/// What one receiver took in and turned away, since start, for readers other than Prometheus
/// (the X-Ray daemon telemetry reports segments received, rejected and spilled over).
#[derive(Debug, Default)]
pub struct ReceiverCounts {
    received: AtomicU64,
    rejected: AtomicU64,
    dropped_for_memory: AtomicU64,
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

    /// Well-formed datagrams dropped because the memory budget had no room for them.
    pub fn record_dropped_for_memory(&self, datagrams: u64) {
        self.dropped_for_memory.fetch_add(datagrams, Ordering::Relaxed);
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    pub fn dropped_for_memory(&self) -> u64 {
        self.dropped_for_memory.load(Ordering::Relaxed)
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

    #[test]
    fn totals_name_only_the_reasons_that_happened() {
        let counts = DestinationCounts::new(Destination::Honeycomb, Arc::new(Metrics::new()));
        counts.record_sent(Signal::Logs, 7);
        counts.record_dropped(Signal::Logs, LossReason::RetriesExhausted, 2);
        let totals = counts.totals(Signal::Logs);
        assert_eq!(totals.sent, 7);
        assert!(totals.failed.is_empty());
        assert_eq!(totals.dropped, BTreeMap::from([("retries_exhausted", 2)]));
        assert_eq!(counts.totals(Signal::Traces), SignalTotals::default());
    }
}
