//! The X-Ray daemon's own telemetry, which the X-Ray console shows per daemon: every minute
//! after the first segment arrived, one PutTelemetryRecords record with the segments
//! received, sent, spilled over and rejected in that minute, and backend connection errors.
//! Records that could not be sent are kept (at most 30) and sent with the next ones.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use aws_sdk_xray::types::{BackendConnectionErrors, TelemetryRecord};
use aws_smithy_types::DateTime;
use tokio_util::sync::CancellationToken;

use crate::destination::xray::BackendErrors;
use crate::model::{Destination, LossReason, Signal};
use crate::receiver::xray_udp::DatagramError;
use crate::telemetry::metrics::Metrics;

/// Records kept while X-Ray cannot be reached.
const MAX_PENDING: usize = 30;
/// Records per call.
const RECORDS_PER_CALL: usize = 10;

/// Reasons a lane drops segments it could not hold (the daemon's "spillover").
const SPILLOVER_REASONS: [LossReason; 4] =
    [LossReason::QueueFull, LossReason::DestinationStalled, LossReason::RetriesExhausted, LossReason::Shutdown];
/// Reasons the X-Ray lane counts segments as refused.
const REJECTED_REASONS: [LossReason; 4] =
    [LossReason::TooLarge, LossReason::Invalid, LossReason::Unprocessed, LossReason::Rejected];

/// Who is reporting: sent with every call.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub hostname: Option<String>,
    pub instance_id: Option<String>,
    pub resource_arn: Option<String>,
}

impl Identity {
    /// `AWS_HOSTNAME` / `AWS_INSTANCE_ID` as the daemon reads them, else the kernel's host name.
    pub fn from_env(env: &std::collections::BTreeMap<String, String>, resource_arn: Option<String>) -> Self {
        let hostname = env
            .get("AWS_HOSTNAME")
            .cloned()
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string()));
        Identity { hostname, instance_id: env.get("AWS_INSTANCE_ID").cloned(), resource_arn }
    }
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
    fn read(metrics: &Metrics, errors: &BackendErrors) -> Totals {
        let lane = |reason| Metrics::loss(Destination::Xray, Signal::Traces, reason);
        let receiver_rejects: u64 = DatagramError::REASONS
            .iter()
            .map(|reason| {
                metrics.rejected_requests.get_or_create(&Metrics::refusal("xray_udp", Signal::Traces, reason)).get()
            })
            .sum();
        Totals {
            received: metrics.received.get_or_create(&Metrics::receiver("xray_udp", Signal::Traces)).get()
                + receiver_rejects,
            sent: metrics.sent.get_or_create(&Metrics::lane(Destination::Xray, Signal::Traces)).get(),
            spillover: SPILLOVER_REASONS.iter().map(|r| metrics.dropped.get_or_create(&lane(*r)).get()).sum(),
            rejected: receiver_rejects
                + REJECTED_REASONS.iter().map(|r| metrics.failed.get_or_create(&lane(*r)).get()).sum::<u64>(),
            errors: [
                errors.timeout.load(Ordering::Relaxed),
                errors.connection_refused.load(Ordering::Relaxed),
                errors.http_4xx.load(Ordering::Relaxed),
                errors.http_5xx.load(Ordering::Relaxed),
                errors.unknown_host.load(Ordering::Relaxed),
                errors.other.load(Ordering::Relaxed),
            ],
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
pub struct Telemetry {
    pub client: aws_sdk_xray::Client,
    pub metrics: Arc<Metrics>,
    pub errors: Arc<BackendErrors>,
    pub identity: Identity,
    /// One record per interval (the daemon: a minute).
    pub interval: Duration,
}

/// Sends a record every interval once the first segment arrived, until `stop`.
pub async fn run(telemetry: Telemetry, stop: CancellationToken) {
    let Telemetry { client, metrics, errors, identity, interval } = telemetry;
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
        let now = Totals::read(&metrics, &errors);
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

async fn send_pending(client: &aws_sdk_xray::Client, identity: &Identity, pending: &mut VecDeque<TelemetryRecord>) {
    while !pending.is_empty() {
        let chunk: Vec<TelemetryRecord> = pending.iter().take(RECORDS_PER_CALL).cloned().collect();
        let sent = client
            .put_telemetry_records()
            .set_telemetry_records(Some(chunk.clone()))
            .set_hostname(identity.hostname.clone())
            .set_ec2_instance_id(identity.instance_id.clone())
            .set_resource_arn(identity.resource_arn.clone())
            .send()
            .await;
        match sent {
            Ok(_) => {
                pending.drain(..chunk.len());
            }
            Err(error) => {
                tracing::debug!(error = %crate::telemetry::error_text::chain(&error), records = pending.len(), "Failed to send telemetry; keeping the records for the next minute");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_holds_the_counts_of_its_minute() {
        let metrics = Metrics::new();
        let errors = BackendErrors::default();
        metrics.received.get_or_create(&Metrics::receiver("xray_udp", Signal::Traces)).inc_by(5);
        metrics.sent.get_or_create(&Metrics::lane(Destination::Xray, Signal::Traces)).inc_by(3);
        let first = Totals::read(&metrics, &errors);
        metrics.received.get_or_create(&Metrics::receiver("xray_udp", Signal::Traces)).inc_by(7);
        metrics.rejected_requests.get_or_create(&Metrics::refusal("xray_udp", Signal::Traces, "no_newline")).inc();
        metrics
            .dropped
            .get_or_create(&Metrics::loss(Destination::Xray, Signal::Traces, LossReason::QueueFull))
            .inc_by(2);
        metrics.failed.get_or_create(&Metrics::loss(Destination::Xray, Signal::Traces, LossReason::Unprocessed)).inc();
        errors.timeout.fetch_add(4, Ordering::Relaxed);
        let record = Totals::read(&metrics, &errors).record_since(&first, SystemTime::UNIX_EPOCH);
        assert_eq!(record.segments_received_count(), Some(8), "7 parsed + 1 malformed");
        assert_eq!(record.segments_sent_count(), Some(0));
        assert_eq!(record.segments_spillover_count(), Some(2));
        assert_eq!(record.segments_rejected_count(), Some(2), "1 malformed + 1 unprocessed");
        assert_eq!(record.backend_connection_errors().and_then(|e| e.timeout_count()), Some(4));
    }

    #[test]
    fn the_host_name_comes_from_the_environment_first() {
        let env = [("AWS_HOSTNAME".to_string(), "box-1".to_string())].into_iter().collect();
        assert_eq!(Identity::from_env(&env, None).hostname.as_deref(), Some("box-1"));
    }
}
