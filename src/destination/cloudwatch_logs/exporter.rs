//! The CloudWatch Logs exporter: creates log groups and streams on demand, sends each request
//! with PutLogEvents and settles what CloudWatch Logs answered (see the module's table).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_cloudwatchlogs::types::RejectedLogEventsInfo;

use super::client::{LogsClient, SdkLogsClient};
use super::lane_config::LaneConfig;
use super::request::{LogBatchRequest, dropped_before_sending, prepare};
use super::resources::KnownResources;
use crate::aws::AwsCallError;
use crate::aws::classify::classify_and_report;
use crate::destination::{Built, ExportError, Exporter, Rejected, Sent};
use crate::model::{Destination, LossReason, SharedBatch, Signal};
use crate::telemetry::ratelimit::LogLimiter;
use crate::telemetry::status::DestinationStatus;
use crate::translate::otlp_to_cloudwatch::{EventBatch, explain_rejected, unix_ms};

const RESOURCE_NOT_FOUND: &str = "ResourceNotFoundException";
const RESOURCE_ALREADY_EXISTS: &str = "ResourceAlreadyExistsException";
const DATA_ALREADY_ACCEPTED: &str = "DataAlreadyAcceptedException";

/// Sends log events to CloudWatch Logs.
pub(crate) struct CloudWatchLogs<A: LogsClient = SdkLogsClient> {
    api: A,
    config: LaneConfig,
    resources: KnownResources,
    status: Arc<DestinationStatus>,
    rejected_log: LogLimiter,
    truncated_log: LogLimiter,
}

impl<A: LogsClient> CloudWatchLogs<A> {
    pub(crate) fn new(api: A, config: LaneConfig, status: Arc<DestinationStatus>) -> Self {
        CloudWatchLogs {
            api,
            config,
            resources: KnownResources::default(),
            status,
            rejected_log: LogLimiter::new(Duration::from_secs(10)),
            truncated_log: LogLimiter::new(Duration::from_secs(10)),
        }
    }

    #[cfg(test)]
    /// What the lane knows exists.
    pub(crate) fn resources(&self) -> &KnownResources {
        &self.resources
    }

    /// Forgets a stream the OTLP endpoint says does not exist, so the next attempt creates it.
    pub(super) fn forget_stream(&self, group: &str, stream: &str) {
        self.resources.forget_stream(group, stream);
    }

    /// Classifies a failed call; a credentials problem is also shown on `/status`.
    fn failure(&self, operation: &str, target: &str, error: &AwsCallError) -> ExportError {
        classify_and_report(operation, target, error, &self.status)
    }

    /// Makes sure the stream exists (creating it, and its group, if need be) and that a group
    /// waggle created has its retention policy.
    pub(super) async fn ensure_stream(&self, group: &str, stream: &str) -> Result<(), ExportError> {
        if let Some(days) = self.resources.retention_owed(group) {
            self.set_retention(group, days).await?;
        }
        if self.resources.has_stream(group, stream) {
            return Ok(());
        }
        let target = format!("{group} / {stream}");
        match self.api.create_log_stream(group, stream).await {
            Ok(()) => {
                tracing::info!(destination = %Destination::CloudWatchLogs, log_group = group, log_stream = stream, "created log stream");
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
                // Without the right to set retention the group is kept as it is.
                ExportError::Permanent { reason, .. } | ExportError::Blocked { reason } => {
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
}

impl<A: LogsClient> Exporter for CloudWatchLogs<A> {
    type Request = LogBatchRequest;

    fn build(&self, signal: Signal, batches: &[SharedBatch]) -> Built<LogBatchRequest> {
        let mut rejected = Vec::new();
        let Some(prepared) = prepare(&self.config, signal, batches, SystemTime::now(), &mut rejected) else {
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
