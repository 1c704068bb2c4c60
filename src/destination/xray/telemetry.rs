//! The X-Ray daemon's own telemetry, which the X-Ray console shows per daemon: every minute
//! after the first segment arrived, one PutTelemetryRecords record with the segments
//! received, sent, spilled over and rejected in that minute, and backend connection errors.
//! Records that could not be sent are kept (at most 30) and sent with the next ones.
//!
//! The counts are read from where they are kept (the X-Ray lane's [`DestinationCounts`], the
//! UDP receiver's [`ReceiverCounts`], the exporter's [`BackendErrors`]), never back out of the
//! Prometheus registry.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, SystemTime};

use aws_sdk_xray::types::{BackendConnectionErrors, TelemetryRecord};
use aws_smithy_types::DateTime;
use tokio_util::sync::CancellationToken;

use super::client::{Identity, SdkXrayClient, XrayClient};
use crate::aws::AwsCallError;
use crate::model::{LossReason, Signal};
use crate::telemetry::counts::{DestinationCounts, ReceiverCounts};

/// Records kept while X-Ray cannot be reached.
const MAX_PENDING: usize = 30;
/// Records per call.
const RECORDS_PER_CALL: usize = 10;

/// Reasons a lane drops segments it could not hold (the daemon's "spillover").
const SPILLOVER_REASONS: [LossReason; 4] =
    [LossReason::QueueFull, LossReason::DestinationStalled, LossReason::RetriesExhausted, LossReason::Shutdown];
/// Reasons the X-Ray lane counts segments as refused. `Unauthorized` and `InvalidParameter`
/// are what the shared classifier calls refusals X-Ray's own classification counted as
/// `Rejected`, so the daemon's count stays the same.
const REJECTED_REASONS: [LossReason; 6] = [
    LossReason::TooLarge,
    LossReason::Invalid,
    LossReason::Unprocessed,
    LossReason::Rejected,
    LossReason::Unauthorized,
    LossReason::InvalidParameter,
];

/// Connection problems, as the daemon reports them in its telemetry.
#[derive(Debug, Default)]
pub(crate) struct BackendErrors {
    pub timeout: AtomicI32,
    pub connection_refused: AtomicI32,
    pub http_4xx: AtomicI32,
    pub http_5xx: AtomicI32,
    pub unknown_host: AtomicI32,
    pub other: AtomicI32,
}

impl BackendErrors {
    /// Counts a failed X-Ray call under the daemon's kind of connection problem. A request that
    /// could not be built is no connection problem and is not counted.
    pub(crate) fn record(&self, error: &AwsCallError) {
        let counter = match error {
            AwsCallError::Service { status, .. } if *status >= 500 => &self.http_5xx,
            AwsCallError::Service { .. } => &self.http_4xx,
            AwsCallError::Timeout(text) | AwsCallError::Network(text) if is_unknown_host(text) => &self.unknown_host,
            AwsCallError::Timeout(text) | AwsCallError::Network(text) if is_refused(text) => &self.connection_refused,
            AwsCallError::Timeout(_) => &self.timeout,
            AwsCallError::Network(_) | AwsCallError::BadResponse(_) => &self.other,
            AwsCallError::Construction(_) => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> [i32; 6] {
        [
            self.timeout.load(Ordering::Relaxed),
            self.connection_refused.load(Ordering::Relaxed),
            self.http_4xx.load(Ordering::Relaxed),
            self.http_5xx.load(Ordering::Relaxed),
            self.unknown_host.load(Ordering::Relaxed),
            self.other.load(Ordering::Relaxed),
        ]
    }
}

fn is_unknown_host(text: &str) -> bool {
    text.contains("dns error") || text.contains("failed to lookup")
}

fn is_refused(text: &str) -> bool {
    text.contains("Connection refused") || text.contains("connection refused")
}

/// Where the telemetry reads its counts.
#[derive(Debug, Clone)]
pub(crate) struct TelemetryCounts {
    /// The X-Ray lane's: sent, refused, dropped.
    pub lane: Arc<DestinationCounts>,
    /// The X-Ray UDP receiver's: segments received, datagrams rejected.
    pub receiver: Arc<ReceiverCounts>,
    /// The exporter's connection problems.
    pub errors: Arc<BackendErrors>,
}

/// Running totals since start; a record is the difference between two of these.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Totals {
    received: u64,
    sent: u64,
    spillover: u64,
    rejected: u64,
    errors: [i32; 6],
}

impl Totals {
    fn read(counts: &TelemetryCounts) -> Totals {
        let TelemetryCounts { lane, receiver, errors } = counts;
        let dropped: u64 = SPILLOVER_REASONS.iter().map(|reason| lane.dropped(Signal::Traces, *reason)).sum();
        let failed: u64 = REJECTED_REASONS.iter().map(|reason| lane.failed(Signal::Traces, *reason)).sum();
        // A datagram dropped for want of memory was read, then spilled over, as the daemon
        // counts a segment its full buffer could not take.
        let dropped_for_memory = receiver.dropped_for_memory();
        Totals {
            received: receiver.received() + receiver.rejected() + dropped_for_memory,
            sent: lane.sent(Signal::Traces),
            spillover: dropped + dropped_for_memory,
            rejected: receiver.rejected() + failed,
            errors: errors.snapshot(),
        }
    }

    /// The record for what happened between `earlier` and `self`.
    fn record_since(&self, earlier: &Totals, at: SystemTime) -> TelemetryRecord {
        let count = |now: u64, then: u64| i32::try_from(now.saturating_sub(then)).unwrap_or(i32::MAX);
        let error = |i: usize| self.errors[i].saturating_sub(earlier.errors[i]);
        let backend = BackendConnectionErrors::builder()
            .timeout_count(error(0))
            .connection_refused_count(error(1))
            .http_code4_xx_count(error(2))
            .http_code5_xx_count(error(3))
            .unknown_host_count(error(4))
            .other_count(error(5))
            .build();
        TelemetryRecord::builder()
            .timestamp(DateTime::from(at))
            .segments_received_count(count(self.received, earlier.received))
            .segments_sent_count(count(self.sent, earlier.sent))
            .segments_spillover_count(count(self.spillover, earlier.spillover))
            .segments_rejected_count(count(self.rejected, earlier.rejected))
            .backend_connection_errors(backend)
            .build()
            .expect("timestamp is set")
    }
}

/// What the telemetry task reads and sends.
pub(crate) struct Telemetry<C: XrayClient = SdkXrayClient> {
    pub client: C,
    pub counts: TelemetryCounts,
    pub identity: Identity,
    /// One record per interval (the daemon: a minute).
    pub interval: Duration,
}

/// Sends a record every interval once the first segment arrived, until `stop`.
pub(crate) async fn run<C: XrayClient>(telemetry: Telemetry<C>, stop: CancellationToken) {
    let Telemetry { client, counts, identity, interval } = telemetry;
    let interval = interval.max(Duration::from_millis(100));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    let mut previous = Totals::default();
    let mut started = false;
    let mut pending: VecDeque<TelemetryRecord> = VecDeque::new();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = stop.cancelled() => return,
        }
        let now = Totals::read(&counts);
        started |= now.received > 0;
        if !started {
            continue;
        }
        pending.push_back(now.record_since(&previous, SystemTime::now()));
        previous = now;
        while pending.len() > MAX_PENDING {
            pending.pop_front();
        }
        send_pending(&client, &identity, &mut pending).await;
    }
}

async fn send_pending<C: XrayClient>(client: &C, identity: &Identity, pending: &mut VecDeque<TelemetryRecord>) {
    while !pending.is_empty() {
        let chunk: Vec<TelemetryRecord> = pending.iter().take(RECORDS_PER_CALL).cloned().collect();
        let sent = chunk.len();
        match client.put_telemetry_records(chunk, identity).await {
            Ok(()) => {
                pending.drain(..sent);
            }
            Err(error) => {
                tracing::debug!(%error, records = pending.len(), "Failed to send telemetry; keeping the records for the next minute");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aws_sdk_xray::types::UnprocessedTraceSegment;

    use super::*;
    use crate::model::Destination;
    use crate::telemetry::metrics::Metrics;

    fn counts() -> TelemetryCounts {
        TelemetryCounts {
            lane: Arc::new(DestinationCounts::new(Destination::Xray, Arc::new(Metrics::new()))),
            receiver: Arc::new(ReceiverCounts::default()),
            errors: Arc::new(BackendErrors::default()),
        }
    }

    /// Records every PutTelemetryRecords call; fails the first `failures` of them.
    #[derive(Default)]
    struct RecordingClient {
        calls: Mutex<Vec<Vec<TelemetryRecord>>>,
        failures: Mutex<usize>,
    }

    impl XrayClient for Arc<RecordingClient> {
        async fn put_trace_segments(&self, _: Vec<String>) -> Result<Vec<UnprocessedTraceSegment>, AwsCallError> {
            Ok(Vec::new())
        }

        async fn put_telemetry_records(&self, records: Vec<TelemetryRecord>, _: &Identity) -> Result<(), AwsCallError> {
            self.calls.lock().unwrap().push(records);
            let mut failures = self.failures.lock().unwrap();
            if *failures > 0 {
                *failures -= 1;
                return Err(AwsCallError::Network("connection refused".into()));
            }
            Ok(())
        }
    }

    #[test]
    fn a_record_holds_the_counts_of_its_minute() {
        let counts = counts();
        counts.receiver.record_received(5);
        counts.lane.record_sent(Signal::Traces, 3);
        let first = Totals::read(&counts);
        counts.receiver.record_received(7);
        counts.receiver.record_rejected(1);
        counts.lane.record_dropped(Signal::Traces, LossReason::QueueFull, 2);
        counts.lane.record_failed(Signal::Traces, LossReason::Unprocessed, 1);
        counts.errors.timeout.fetch_add(4, Ordering::Relaxed);
        let record = Totals::read(&counts).record_since(&first, SystemTime::UNIX_EPOCH);
        assert_eq!(record.segments_received_count(), Some(8), "7 parsed + 1 malformed");
        assert_eq!(record.segments_sent_count(), Some(0));
        assert_eq!(record.segments_spillover_count(), Some(2));
        assert_eq!(record.segments_rejected_count(), Some(2), "1 malformed + 1 unprocessed");
        assert_eq!(record.backend_connection_errors().and_then(|e| e.timeout_count()), Some(4));
    }

    #[test]
    fn every_spillover_reason_counts_as_spillover() {
        let counts = counts();
        for reason in SPILLOVER_REASONS {
            counts.lane.record_dropped(Signal::Traces, reason, 1);
        }
        let record = Totals::read(&counts).record_since(&Totals::default(), SystemTime::UNIX_EPOCH);
        assert_eq!(record.segments_spillover_count(), Some(4));
    }

    #[test]
    fn datagrams_dropped_for_memory_are_received_and_spilled_over() {
        let counts = counts();
        counts.receiver.record_received(4);
        counts.receiver.record_dropped_for_memory(3);
        let record = Totals::read(&counts).record_since(&Totals::default(), SystemTime::UNIX_EPOCH);
        assert_eq!(record.segments_received_count(), Some(7));
        assert_eq!(record.segments_spillover_count(), Some(3));
        assert_eq!(record.segments_rejected_count(), Some(0));
    }

    #[test]
    fn every_refusal_reason_counts_as_rejected() {
        let counts = counts();
        for reason in REJECTED_REASONS {
            counts.lane.record_failed(Signal::Traces, reason, 1);
        }
        let record = Totals::read(&counts).record_since(&Totals::default(), SystemTime::UNIX_EPOCH);
        assert_eq!(record.segments_rejected_count(), Some(6));
    }

    #[test]
    fn other_signals_and_reasons_are_left_out() {
        let counts = counts();
        counts.lane.record_sent(Signal::Logs, 9);
        counts.lane.record_failed(Signal::Traces, LossReason::InvalidRequest, 3);
        let record = Totals::read(&counts).record_since(&Totals::default(), SystemTime::UNIX_EPOCH);
        assert_eq!(record.segments_sent_count(), Some(0));
        assert_eq!(record.segments_rejected_count(), Some(0));
    }

    #[test]
    fn connection_problems_are_counted_by_kind() {
        let errors = BackendErrors::default();
        errors.record(&AwsCallError::Service { code: "X".into(), message: String::new(), status: 503 });
        errors.record(&AwsCallError::Service { code: "X".into(), message: String::new(), status: 400 });
        errors.record(&AwsCallError::Network("dns error: failed to lookup address".into()));
        errors.record(&AwsCallError::Network("tcp connect error: Connection refused".into()));
        errors.record(&AwsCallError::Timeout("PutTraceSegments: no answer within 5s".into()));
        errors.record(&AwsCallError::BadResponse("truncated".into()));
        errors.record(&AwsCallError::Construction("bug".into()));
        assert_eq!(errors.snapshot(), [1, 1, 1, 1, 1, 1]);
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_sent_before_the_first_segment_then_a_record_every_interval() {
        let client = Arc::new(RecordingClient::default());
        let counts = counts();
        let stop = CancellationToken::new();
        let telemetry = Telemetry {
            client: Arc::clone(&client),
            counts: counts.clone(),
            identity: Identity::default(),
            interval: Duration::from_secs(60),
        };
        let task = tokio::spawn(run(telemetry, stop.clone()));
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert!(client.calls.lock().unwrap().is_empty(), "no segment yet");
        counts.receiver.record_received(3);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let calls = client.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0][0].segments_received_count(), Some(3));
        stop.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn records_that_failed_are_sent_with_the_next_ones() {
        let client = Arc::new(RecordingClient { failures: Mutex::new(1), ..RecordingClient::default() });
        let counts = counts();
        counts.receiver.record_received(1);
        let stop = CancellationToken::new();
        let telemetry = Telemetry {
            client: Arc::clone(&client),
            counts,
            identity: Identity::default(),
            interval: Duration::from_secs(60),
        };
        let task = tokio::spawn(run(telemetry, stop.clone()));
        tokio::time::sleep(Duration::from_secs(121)).await;
        let sizes: Vec<usize> = client.calls.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![1, 2], "the failed record is kept and sent with the next");
        stop.cancel();
        task.await.unwrap();
    }

    #[test]
    fn the_host_name_comes_from_the_environment_first() {
        let env = [("AWS_HOSTNAME".to_string(), "box-1".to_string())].into_iter().collect();
        assert_eq!(Identity::from_env(&env, None).hostname.as_deref(), Some("box-1"));
    }
}
