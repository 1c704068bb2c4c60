//! waggle's own counters, exposed in Prometheus text format on the admin port.
//!
//! Every count names the receiver or destination and the signal, so "is telemetry flowing?"
//! has one place to look. Counters are bumped per request or per batch, never per item.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::limits::MemoryBudget;
use crate::model::{Destination, LossReason, Receiver, Signal, SpoolReason};
use crate::store::StoreStats;

/// Labels of a receiver-side count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReceiverLabels {
    pub receiver: Receiver,
    pub signal: Signal,
}

/// Labels of a refused or malformed request at a receiver.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    pub receiver: Receiver,
    /// A signal's name, or `unknown` when the request named none.
    pub signal: &'static str,
    pub reason: &'static str,
}

/// Labels of a destination-side count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LaneLabels {
    pub destination: Destination,
    pub signal: Signal,
}

/// Labels of items a destination lost, with why.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LossLabels {
    pub destination: Destination,
    pub signal: Signal,
    pub reason: LossReason,
}

/// Labels of items written to a lane's disk spool, with why.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SpoolLabels {
    pub destination: Destination,
    pub signal: Signal,
    pub reason: SpoolReason,
}

/// Labels naming only a destination.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestinationLabels {
    pub destination: Destination,
}

/// All of waggle's metrics, registered once at start-up and shared by reference.
pub struct Metrics {
    registry: Registry,
    /// Items (spans, log records, data points, X-Ray documents) that arrived in a well-formed request.
    pub received: Family<ReceiverLabels, Counter>,
    /// Items accepted into every target lane.
    pub accepted: Family<ReceiverLabels, Counter>,
    /// Items the receiver turned away because a lane was full (OTLP callers are asked to retry).
    pub refused: Family<RefusalLabels, Counter>,
    /// Requests or datagrams rejected as malformed, too large or of the wrong type.
    pub rejected_requests: Family<RefusalLabels, Counter>,
    /// Items a lane could not take or gave up on (queue full for UDP, retries exhausted, shutdown).
    pub dropped: Family<LossLabels, Counter>,
    /// Items a destination acknowledged.
    pub sent: Family<LaneLabels, Counter>,
    /// Items a destination permanently rejected.
    pub failed: Family<LossLabels, Counter>,
    /// Bytes held by each lane: queued, batching or being sent.
    pub queue_bytes: Family<DestinationLabels, Gauge>,
    /// Send attempts that failed and will be retried.
    pub retries: Family<DestinationLabels, Counter>,
    /// Time from the first send attempt of a request to its final outcome.
    pub export_duration: Family<DestinationLabels, Histogram>,
    /// Items written to a lane's disk spool, by why (`overflow`, `shutdown`, `retries_exhausted`).
    pub spooled: Family<SpoolLabels, Counter>,
    /// Bytes a lane's disk spool holds on disk.
    pub spool_bytes: Family<DestinationLabels, Gauge>,
    /// Records appended to a lane's disk spool.
    pub spool_written_records: Family<DestinationLabels, Counter>,
    /// Records read back from a lane's disk spool into its memory queue.
    pub spool_replayed_records: Family<DestinationLabels, Counter>,
    /// Spool records, segment tails or segment files found unreadable and skipped.
    pub spool_corrupt_records: Family<DestinationLabels, Counter>,
    /// The local store's counted size, and the data it evicted to stay under its bound.
    local_store_bytes: Gauge,
    local_store_evicted_bytes: Gauge,
    /// The memory budget's bytes held now, and its limit.
    memory_budget_used_bytes: Gauge,
    memory_budget_limit_bytes: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("waggle");
        let received = Family::<ReceiverLabels, Counter>::default();
        let accepted = Family::<ReceiverLabels, Counter>::default();
        let refused = Family::<RefusalLabels, Counter>::default();
        let rejected_requests = Family::<RefusalLabels, Counter>::default();
        let dropped = Family::<LossLabels, Counter>::default();
        let sent = Family::<LaneLabels, Counter>::default();
        let failed = Family::<LossLabels, Counter>::default();
        let queue_bytes = Family::<DestinationLabels, Gauge>::default();
        let retries = Family::<DestinationLabels, Counter>::default();
        let export_duration =
            Family::<DestinationLabels, Histogram>::new_with_constructor(export_histogram as fn() -> Histogram);
        let spooled = Family::<SpoolLabels, Counter>::default();
        let spool_bytes = Family::<DestinationLabels, Gauge>::default();
        let spool_written_records = Family::<DestinationLabels, Counter>::default();
        let spool_replayed_records = Family::<DestinationLabels, Counter>::default();
        let spool_corrupt_records = Family::<DestinationLabels, Counter>::default();
        registry.register("receiver_received_items", "Items received in well-formed requests", received.clone());
        registry.register("receiver_accepted_items", "Items accepted into every target lane", accepted.clone());
        registry.register(
            "receiver_refused_items",
            "Items refused because a lane was full (the caller was asked to retry)",
            refused.clone(),
        );
        registry.register(
            "receiver_rejected_requests",
            "Requests or datagrams rejected as malformed, too large or of an unsupported type",
            rejected_requests.clone(),
        );
        registry.register("destination_dropped_items", "Items a lane dropped, by reason", dropped.clone());
        registry.register("destination_sent_items", "Items a destination acknowledged", sent.clone());
        registry.register("destination_failed_items", "Items a destination permanently rejected", failed.clone());
        registry.register("destination_queue_bytes", "Bytes held by a lane", queue_bytes.clone());
        registry.register("destination_retries", "Send attempts that will be retried", retries.clone());
        registry.register(
            "destination_export_duration_seconds",
            "Time from the first send attempt of a request to its outcome",
            export_duration.clone(),
        );
        registry.register(
            "destination_spooled_items",
            "Items written to a lane's disk spool, by reason",
            spooled.clone(),
        );
        registry.register("destination_spool_bytes", "Bytes a lane's disk spool holds", spool_bytes.clone());
        registry.register(
            "destination_spool_written_records",
            "Records appended to a lane's disk spool",
            spool_written_records.clone(),
        );
        registry.register(
            "destination_spool_replayed_records",
            "Records read back from a lane's disk spool into its queue",
            spool_replayed_records.clone(),
        );
        registry.register(
            "destination_spool_corrupt_records",
            "Spool records, torn segment tails or unreadable segment files skipped",
            spool_corrupt_records.clone(),
        );
        let local_store_bytes = Gauge::default();
        let local_store_evicted_bytes = Gauge::default();
        registry.register("local_store_bytes", "Bytes the local store holds", local_store_bytes.clone());
        registry.register(
            "local_store_evicted_bytes",
            "Bytes the local store evicted (oldest first) since start to stay under its bound",
            local_store_evicted_bytes.clone(),
        );
        let memory_budget_used_bytes = Gauge::default();
        let memory_budget_limit_bytes = Gauge::default();
        registry.register(
            "memory_budget_used_bytes",
            "Bytes of the memory budget held by request bodies and queued batches",
            memory_budget_used_bytes.clone(),
        );
        registry.register(
            "memory_budget_limit_bytes",
            "The memory budget (limits.memory_limit)",
            memory_budget_limit_bytes.clone(),
        );
        Metrics {
            registry,
            memory_budget_used_bytes,
            memory_budget_limit_bytes,
            local_store_bytes,
            local_store_evicted_bytes,
            received,
            accepted,
            refused,
            rejected_requests,
            dropped,
            sent,
            failed,
            queue_bytes,
            retries,
            export_duration,
            spooled,
            spool_bytes,
            spool_written_records,
            spool_replayed_records,
            spool_corrupt_records,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Shows the memory budget's use and limit (read at scrape time).
    pub fn set_memory_budget(&self, budget: &MemoryBudget) {
        self.memory_budget_used_bytes.set(i64::try_from(budget.in_use()).unwrap_or(i64::MAX));
        self.memory_budget_limit_bytes.set(i64::try_from(budget.limit()).unwrap_or(i64::MAX));
    }

    /// Updates the local store's figures (read at scrape time). Rows the store lost to damage
    /// from outside (its files deleted, writes that never succeeded) are dropped items of the
    /// local destination with reason `store_error`; only the store counts under that label.
    pub fn set_store_stats(&self, stats: &StoreStats) {
        self.local_store_bytes.set(i64::try_from(stats.bytes).unwrap_or(i64::MAX));
        self.local_store_evicted_bytes.set(i64::try_from(stats.evicted_bytes).unwrap_or(i64::MAX));
        let lost = [
            (Signal::Traces, stats.lost_spans),
            (Signal::Logs, stats.lost_logs),
            (Signal::Metrics, stats.lost_metrics),
        ];
        for (signal, lost) in lost.into_iter().filter(|(_, lost)| *lost > 0) {
            let counter = self.dropped.get_or_create(&Self::loss(Destination::Local, signal, LossReason::StoreError));
            counter.inc_by(lost.saturating_sub(counter.get()));
        }
    }

    /// Shows a receiver's counters at zero from the start, so "nothing arrived" is visible.
    pub fn show_receiver(&self, receiver: Receiver, signals: &[Signal]) {
        for &signal in signals {
            let labels = Self::receiver(receiver, signal);
            let _ = self.received.get_or_create(&labels);
            let _ = self.accepted.get_or_create(&labels);
        }
    }

    /// Shows a destination's counters at zero from the start.
    pub fn show_destination(&self, destination: Destination, signals: &[Signal]) {
        for &signal in signals {
            let _ = self.sent.get_or_create(&Self::lane(destination, signal));
        }
        let _ = self.queue_bytes.get_or_create(&Self::destination(destination));
    }

    pub fn receiver(receiver: Receiver, signal: Signal) -> ReceiverLabels {
        ReceiverLabels { receiver, signal }
    }

    pub fn refusal(receiver: Receiver, signal: Signal, reason: &'static str) -> RefusalLabels {
        RefusalLabels { receiver, signal: signal.as_str(), reason }
    }

    pub fn lane(destination: Destination, signal: Signal) -> LaneLabels {
        LaneLabels { destination, signal }
    }

    pub fn loss(destination: Destination, signal: Signal, reason: LossReason) -> LossLabels {
        LossLabels { destination, signal, reason }
    }

    pub fn spooled(destination: Destination, signal: Signal, reason: SpoolReason) -> SpoolLabels {
        SpoolLabels { destination, signal, reason }
    }

    pub fn destination(destination: Destination) -> DestinationLabels {
        DestinationLabels { destination }
    }
}

fn export_histogram() -> Histogram {
    // 1 ms .. ~32 s
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}
