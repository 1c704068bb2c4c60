//! The AWS CloudWatch Logs destination: PutLogEvents, with log groups and streams created on
//! demand.
//!
//! OTLP log records become events on the lane's task ([`crate::translate::otlp_to_cloudwatch`]:
//! `json` or `raw` messages, group and stream names from templates, sorted batches within every
//! PutLogEvents limit). With the request log on, the lane also takes traces and writes one
//! access-log event per OpenTelemetry server span (X-Ray SDK segments are left out, so an app
//! instrumented both ways is not logged twice). Each request is one PutLogEvents call for one
//! group and stream.
//!
//! **Creating groups and streams.** The first request for a stream calls `CreateLogStream`;
//! if the group is missing (`ResourceNotFoundException`) it calls `CreateLogGroup` with the
//! configured tags, then `PutRetentionPolicy` when `retention_days` is set, then
//! `CreateLogStream` again. `ResourceAlreadyExistsException` counts as success, and a group
//! that already existed keeps its own retention and tags. Streams that exist are remembered
//! (see [`resources`]) so later requests go straight to PutLogEvents. Only the permissions a
//! call needs are used: with groups made beforehand, `logs:CreateLogGroup` is never called.
//!
//! **Retries are the lane's**: the SDK's own retries are off, so every attempt is counted in
//! `waggle_destination_retries_total`, backs off with the lane's policy and ends at its time
//! budget or shutdown. What each outcome does:
//!
//! | outcome | what waggle does |
//! |---|---|
//! | success | counted as sent; one INFO line per call: group, stream, events, seconds |
//! | success with `rejectedLogEventsInfo` | the refused events counted as failed (`reason="rejected_by_cloudwatch"`), WARN with their index ranges and what they mean; not retried |
//! | `ResourceNotFoundException` on PutLogEvents (group or stream deleted) | forgotten, created again, the batch sent again at once; a second one is retried with backoff |
//! | `ThrottlingException`, `ServiceUnavailableException`, `OperationAbortedException`, `InternalFailure`, HTTP 429 or 5xx | retried with backoff |
//! | network error, timeout (`timeout` per call), unreadable answer | retried with backoff |
//! | `InvalidParameterException` | failed for good (`reason="invalid_parameter"`), WARN with CloudWatch's message |
//! | `AccessDeniedException`, `UnrecognizedClientException`, other signature/credential codes, HTTP 403 | failed for good (`reason="unauthorized"`), shown as a problem on `/status` |
//! | any other error | failed for good (`reason="rejected"`) with CloudWatch's code and message |
//! | `DataAlreadyAcceptedException` | counted as sent |
//! | `PutRetentionPolicy` refused for good | WARN; the group stays without retention, events still flow |
//!
//! **Dropped before sending**, counted as failed with their reason and logged at WARN by the
//! lane: events more than 14 days old (`too_old`) or more than 2 hours ahead (`too_new`) of
//! this host's clock, and `raw` records without a body (`empty`). An event that crosses the
//! 14-day line while its batch waits for a retry is taken out of the batch before the next
//! attempt (CloudWatch would refuse it) and counted as `too_old` with that attempt's success.
//! Messages over 1,048,550 bytes are cut (ending `…[truncated by waggle]`) and sent; each
//! cut is reported in a WARN line (at most one every 10 s, with the count).
//!
//! For the traces signal the lane counts request-log events, not spans: spans that are not
//! server spans make no event and are not counted.

mod api;
mod classify;
mod resources;
mod setup;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_cloudwatchlogs::types::RejectedLogEventsInfo;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

pub use api::{ApiError, LogsApi, SdkLogsApi};
pub use classify::classify;
pub use resources::{KnownResources, MAX_KNOWN_STREAMS};
pub use setup::{
    CloudWatchLogsConfigError, LOG_GROUP_KEY, LaneConfig, MAX_TAGS, RETENTION_DAYS, aws_access, has_log_group,
    same_access, wants_aws,
};

use crate::destination::{Built, ExportError, Exporter, Rejected, Sent, decoded_requests};
use crate::model::{Destination, LossReason};
use crate::model::{Payload, SharedBatch, Signal};
use crate::telemetry::ratelimit::LogLimiter;
use crate::telemetry::status::DestinationStatus;
use crate::translate::otlp_to_cloudwatch::{EventBatch, MAX_EVENT_AGE, Prepared, explain_rejected, unix_ms};

const RESOURCE_NOT_FOUND: &str = "ResourceNotFoundException";
const RESOURCE_ALREADY_EXISTS: &str = "ResourceAlreadyExistsException";
const DATA_ALREADY_ACCEPTED: &str = "DataAlreadyAcceptedException";

/// One PutLogEvents call: one group and stream, sorted events within every limit.
#[derive(Debug)]
pub struct LogBatchRequest {
    batch: EventBatch,
    /// Events taken out before a retry because they had become too old to send; reported as
    /// `too_old` with the next success (until then counted among the request's items).
    expired: usize,
}

impl LogBatchRequest {
    pub fn new(batch: EventBatch) -> Self {
        LogBatchRequest { batch, expired: 0 }
    }

    pub fn batch(&self) -> &EventBatch {
        &self.batch
    }

    /// Takes out the events more than 14 days older than `now_ms` (they are at the front: the
    /// batch is sorted). Returns how many.
    fn drop_expired(&mut self, now_ms: i64) -> usize {
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

/// Sends log events to CloudWatch Logs.
pub struct CloudWatchLogs<A: LogsApi = SdkLogsApi> {
    api: A,
    config: LaneConfig,
    resources: KnownResources,
    status: Arc<DestinationStatus>,
    rejected_log: LogLimiter,
    truncated_log: LogLimiter,
}

impl<A: LogsApi> CloudWatchLogs<A> {
    pub fn new(api: A, config: LaneConfig, status: Arc<DestinationStatus>) -> Self {
        CloudWatchLogs {
            api,
            config,
            resources: KnownResources::default(),
            status,
            rejected_log: LogLimiter::new(Duration::from_secs(10)),
            truncated_log: LogLimiter::new(Duration::from_secs(10)),
        }
    }

    /// What the lane knows exists.
    pub fn resources(&self) -> &KnownResources {
        &self.resources
    }

    /// Classifies a failed call; a credentials problem is also shown on `/status`.
    fn failure(&self, operation: &str, target: &str, error: &ApiError) -> ExportError {
        let failure = classify(operation, target, error);
        if let ExportError::Permanent { reason, label: LossReason::Unauthorized } = &failure {
            self.status.record_problem(reason.clone());
        }
        failure
    }

    /// Makes sure the stream exists (creating it, and its group, if need be) and that a group
    /// waggle created has its retention policy.
    async fn ensure_stream(&self, group: &str, stream: &str) -> Result<(), ExportError> {
        if let Some(days) = self.resources.retention_owed(group) {
            self.set_retention(group, days).await?;
        }
        if self.resources.has_stream(group, stream) {
            return Ok(());
        }
        let target = format!("{group} / {stream}");
        match self.api.create_log_stream(group, stream).await {
            Ok(()) => {
                tracing::info!(destination = %Destination::CloudWatchLogs, log_group = group, log_stream = stream, "created log stream")
            }
            Err(error) if error.is_code(RESOURCE_ALREADY_EXISTS) => {}
            Err(error) if error.is_code(RESOURCE_NOT_FOUND) => {
                self.create_group(group).await?;
                match self.api.create_log_stream(group, stream).await {
                    Ok(()) => tracing::info!(
                        destination = %Destination::CloudWatchLogs,
                        log_group = group,
                        log_stream = stream,
                        "created log stream"
                    ),
                    Err(error) if error.is_code(RESOURCE_ALREADY_EXISTS) => {}
                    Err(error) => return Err(self.failure("CreateLogStream", &target, &error)),
                }
            }
            Err(error) => return Err(self.failure("CreateLogStream", &target, &error)),
        }
        self.resources.remember_stream(group, stream);
        Ok(())
    }

    /// CreateLogGroup with the tags, then the retention policy when one is configured. A group
    /// that already exists is left as it is.
    async fn create_group(&self, group: &str) -> Result<(), ExportError> {
        match self.api.create_log_group(group, &self.config.tags).await {
            Ok(()) => {
                tracing::info!(
                    destination = %Destination::CloudWatchLogs,
                    log_group = group,
                    tags = self.config.tags.len(),
                    "created log group"
                );
                if let Some(days) = self.config.retention_days {
                    self.resources.owe_retention(group, days);
                    self.set_retention(group, days).await?;
                }
                Ok(())
            }
            Err(error) if error.is_code(RESOURCE_ALREADY_EXISTS) => Ok(()),
            Err(error) => Err(self.failure("CreateLogGroup", group, &error)),
        }
    }

    /// PutRetentionPolicy on a group waggle created. A retryable failure keeps it owed (the
    /// next attempt sets it first); a permanent one is logged and given up on.
    async fn set_retention(&self, group: &str, days: i32) -> Result<(), ExportError> {
        match self.api.put_retention_policy(group, days).await {
            Ok(()) => {
                self.resources.settle_retention(group);
                tracing::info!(
                    destination = %Destination::CloudWatchLogs,
                    log_group = group,
                    retention_days = days,
                    "set log group retention"
                );
                Ok(())
            }
            Err(error) => match self.failure("PutRetentionPolicy", group, &error) {
                retryable @ ExportError::Retryable { .. } => Err(retryable),
                ExportError::Permanent { reason, .. } => {
                    self.resources.settle_retention(group);
                    tracing::warn!(
                        destination = %Destination::CloudWatchLogs,
                        log_group = group,
                        retention_days = days,
                        error = %reason,
                        "log group kept without a retention policy"
                    );
                    Ok(())
                }
            },
        }
    }

    /// PutLogEvents, recreating the group and stream once if CloudWatch Logs says they are gone.
    async fn put(
        &self,
        group: &str,
        stream: &str,
        batch: &EventBatch,
    ) -> Result<Option<RejectedLogEventsInfo>, ExportError> {
        let target = format!("{group} / {stream}");
        match self.api.put_log_events(group, stream, &batch.events).await {
            Ok(info) => Ok(info),
            Err(error) if error.is_code(RESOURCE_NOT_FOUND) => {
                tracing::warn!(
                    destination = %Destination::CloudWatchLogs,
                    log_group = group,
                    log_stream = stream,
                    error = %error,
                    "log group or stream is gone; creating it again"
                );
                self.resources.forget_stream(group, stream);
                self.ensure_stream(group, stream).await?;
                match self.api.put_log_events(group, stream, &batch.events).await {
                    Ok(info) => Ok(info),
                    Err(error) if error.is_code(RESOURCE_NOT_FOUND) => {
                        self.resources.forget_stream(group, stream);
                        Err(ExportError::retryable(format!(
                            "PutLogEvents {target} failed: {error}, right after the stream was created"
                        )))
                    }
                    Err(error) if error.is_code(DATA_ALREADY_ACCEPTED) => Ok(None),
                    Err(error) => Err(self.failure("PutLogEvents", &target, &error)),
                }
            }
            Err(error) if error.is_code(DATA_ALREADY_ACCEPTED) => Ok(None),
            Err(error) => Err(self.failure("PutLogEvents", &target, &error)),
        }
    }

    /// The outcome of a successful call: what was stored, what was refused, one INFO line.
    fn settle(&self, request: &mut LogBatchRequest, info: Option<&RejectedLogEventsInfo>, elapsed: Duration) -> Sent {
        let batch = &request.batch;
        let events = batch.events.len();
        let mut sent = Sent::all(events);
        if request.expired > 0 {
            let detail = format!(
                "{} events for {} / {} became more than 14 days old while waiting to be retried",
                request.expired, batch.group, batch.stream
            );
            sent.rejected.push(Rejected { items: request.expired, reason: LossReason::TooOld, detail });
            request.expired = 0;
        }
        let summary = info.map(|info| explain_rejected(info, events)).filter(|summary| !summary.all_accepted());
        let seconds = elapsed.as_secs_f64();
        match summary {
            None if events == 0 => {}
            None => tracing::info!(
                destination = %Destination::CloudWatchLogs,
                log_group = %batch.group,
                log_stream = %batch.stream,
                events,
                "Successfully sent batch of {events} events to {} / {} ({seconds:.3} seconds)",
                batch.group,
                batch.stream,
            ),
            Some(summary) => {
                sent.accepted = summary.accepted();
                tracing::info!(
                    destination = %Destination::CloudWatchLogs,
                    log_group = %batch.group,
                    log_stream = %batch.stream,
                    events,
                    rejected = summary.rejected,
                    "Sent batch of {events} events to {} / {} but CloudWatch Logs rejected {} ({seconds:.3} seconds)",
                    batch.group,
                    batch.stream,
                    summary.rejected,
                );
                if let Some(suppressed) = self.rejected_log.check() {
                    tracing::warn!(
                        destination = %Destination::CloudWatchLogs,
                        log_group = %batch.group,
                        log_stream = %batch.stream,
                        too_old = summary.too_old,
                        too_new = summary.too_new,
                        expired = summary.expired,
                        suppressed,
                        "{}",
                        summary.message
                    );
                }
                sent.rejected.push(Rejected {
                    items: summary.rejected,
                    reason: LossReason::RejectedByCloudWatch,
                    detail: format!("{} / {}: {}", batch.group, batch.stream, summary.message),
                });
            }
        }
        sent
    }

    /// The events of one lane batch: log records, or (request log) server spans. Batches that
    /// do not decode are added to `rejected`.
    fn prepare(
        &self,
        signal: Signal,
        batches: &[SharedBatch],
        now: SystemTime,
        rejected: &mut Vec<Rejected>,
    ) -> Option<Prepared> {
        match signal {
            Signal::Logs => {
                let requests: Vec<&ExportLogsServiceRequest> = decoded_requests(batches, Payload::otlp_logs, rejected);
                Some(self.config.translation.prepare(&requests, now))
            }
            Signal::Traces => {
                let request_log = self.config.request_log.as_ref()?;
                let requests: Vec<&ExportTraceServiceRequest> =
                    decoded_requests(batches, Payload::otlp_traces, rejected);
                Some(request_log.prepare(&requests, now))
            }
            Signal::Metrics => None,
        }
    }
}

/// What the translation dropped, as the lane counts it.
fn dropped_before_sending(prepared: &Prepared) -> Vec<Rejected> {
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

impl<A: LogsApi> Exporter for CloudWatchLogs<A> {
    type Request = LogBatchRequest;

    fn build(&self, signal: Signal, batches: &[SharedBatch]) -> Built<LogBatchRequest> {
        let mut rejected = Vec::new();
        let Some(prepared) = self.prepare(signal, batches, SystemTime::now(), &mut rejected) else {
            return Built { requests: Vec::new(), rejected };
        };
        if prepared.truncated > 0
            && let Some(suppressed) = self.truncated_log.check()
        {
            tracing::warn!(
                destination = %Destination::CloudWatchLogs,
                %signal,
                events = prepared.truncated,
                suppressed,
                "messages longer than CloudWatch Logs takes were cut and marked …[truncated by waggle]"
            );
        }
        rejected.extend(dropped_before_sending(&prepared));
        Built { requests: prepared.batches.into_iter().map(LogBatchRequest::new).collect(), rejected }
    }

    fn items(request: &LogBatchRequest) -> usize {
        request.batch.events.len() + request.expired
    }

    async fn send(&self, request: &mut LogBatchRequest) -> Result<Sent, ExportError> {
        request.drop_expired(unix_ms(SystemTime::now()));
        if request.batch.events.is_empty() {
            return Ok(self.settle(request, None, Duration::ZERO));
        }
        let (group, stream) = (request.batch.group.clone(), request.batch.stream.clone());
        self.ensure_stream(&group, &stream).await?;
        let started = Instant::now();
        let info = self.put(&group, &stream, &request.batch).await?;
        Ok(self.settle(request, info.as_ref(), started.elapsed()))
    }
}
