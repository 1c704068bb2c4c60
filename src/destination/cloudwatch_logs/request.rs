//! How a lane batch becomes PutLogEvents requests: log records (or, with the request log,
//! server spans) translated into sorted event batches, one per group and stream, and what the
//! translation dropped, counted with its reason.

use std::time::SystemTime;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::lane_config::LaneConfig;
use crate::destination::{Rejected, decoded_requests};
use crate::model::{LossReason, Payload, SharedBatch, Signal};
use crate::translate::otlp_to_cloudwatch::{EventBatch, MAX_EVENT_AGE, Prepared};

/// One PutLogEvents call: one group and stream, sorted events within every limit.
#[derive(Debug)]
pub(crate) struct LogBatchRequest {
    pub(super) batch: EventBatch,
    /// Events taken out before a retry because they had become too old to send; reported as
    /// `too_old` with the next success (until then counted among the request's items).
    pub(super) expired: usize,
}

impl LogBatchRequest {
    pub(crate) fn new(batch: EventBatch) -> Self {
        LogBatchRequest { batch, expired: 0 }
    }

    #[cfg(test)]
    pub(crate) fn batch(&self) -> &EventBatch {
        &self.batch
    }

    /// Takes out the events more than 14 days older than `now_ms` (they are at the front: the
    /// batch is sorted). Returns how many.
    pub(crate) fn drop_expired(&mut self, now_ms: i64) -> usize {
        let oldest_allowed = now_ms.saturating_sub(i64::try_from(MAX_EVENT_AGE.as_millis()).unwrap_or(i64::MAX));
        let expired = self.batch.events.partition_point(|event| event.timestamp_ms < oldest_allowed);
        if expired > 0 {
            let removed: usize = self.batch.events.drain(..expired).map(|event| event.batch_bytes()).sum();
            self.batch.bytes -= removed;
            self.expired += expired;
        }
        expired
    }
}

/// The events of one lane batch: log records, or (request log) server spans. Batches that
/// do not decode are added to `rejected`.
pub(super) fn prepare(
    config: &LaneConfig,
    signal: Signal,
    batches: &[SharedBatch],
    now: SystemTime,
    rejected: &mut Vec<Rejected>,
) -> Option<Prepared> {
    match signal {
        Signal::Logs => {
            let requests: Vec<&ExportLogsServiceRequest> = decoded_requests(batches, Payload::otlp_logs, rejected);
            Some(config.translation.prepare(&requests, now))
        }
        Signal::Traces => {
            let request_log = config.request_log.as_ref()?;
            let requests: Vec<&ExportTraceServiceRequest> = decoded_requests(batches, Payload::otlp_traces, rejected);
            Some(request_log.prepare(&requests, now))
        }
        Signal::Metrics => None,
    }
}

/// What the translation dropped, as the lane counts it.
pub(super) fn dropped_before_sending(prepared: &Prepared) -> Vec<Rejected> {
    let reasons = [
        (prepared.dropped_too_old, LossReason::TooOld, "more than 14 days in the past (CloudWatch Logs refuses them)"),
        (
            prepared.dropped_too_new,
            LossReason::TooNew,
            "more than 2 hours in the future (CloudWatch Logs refuses them)",
        ),
        (prepared.dropped_empty, LossReason::Empty, "empty messages (a raw record without a body)"),
    ];
    reasons
        .into_iter()
        .filter(|(items, _, _)| *items > 0)
        .map(|(items, reason, why)| Rejected { items, reason, detail: format!("{items} events {why}, not sent") })
        .collect()
}
