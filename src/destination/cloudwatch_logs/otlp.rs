//! `protocol = "otlp"`: log records to CloudWatch Logs' OTLP endpoint (`<endpoint>/v1/logs`,
//! SigV4 service `logs`), which takes OTLP as it is and names the log group and stream in the
//! `x-aws-log-group` / `x-aws-log-stream` headers; both must exist.
//!
//! Each record's group and stream come from the same templates as with PutLogEvents, so the
//! records of one lane batch are partitioned by (group, stream) into one OTLP request each
//! (resource and scope kept), split at 1 MiB and 10,000 records, and gzipped. Before the first
//! request for a stream, the stream (and its group, with tags and retention) is created as with
//! PutLogEvents ([`CloudWatchLogs::ensure_stream`]). An answer saying the group or stream does
//! not exist makes the next attempt create it again. The request log (server spans as access
//! log events) still goes through PutLogEvents. Answers are settled by
//! [`crate::destination::aws_otlp`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use prost::Message;

use super::client::{LogsClient, SdkLogsClient};
use super::exporter::CloudWatchLogs;
use super::request::LogBatchRequest;
use crate::destination::aws_otlp::{AwsOtlpClient, Settler, SignedOtlpClient, unanswered};
use crate::destination::compress::{self, Compression};
use crate::destination::otlp_body::{self, BodyLimits};
use crate::destination::{Built, ExportError, Exporter, Rejected, Sent, decoded_requests};
use crate::model::{Batch, Destination, LossReason, Payload, SharedBatch, Signal};
use crate::telemetry::status::DestinationStatus;
use crate::translate::otlp_to_cloudwatch::{CloudWatchTranslation, record_timestamp_ms, unix_ms};

/// Most bytes in one request before compression (PutLogEvents' 1 MiB).
pub(crate) const MAX_REQUEST_BYTES: usize = 1_048_576;
/// Most log records in one request.
pub(crate) const MAX_RECORDS_PER_REQUEST: usize = 10_000;

/// The header naming the log group.
const GROUP_HEADER: &str = "x-aws-log-group";
/// The header naming the log stream.
const STREAM_HEADER: &str = "x-aws-log-stream";

/// One request of the lane: OTLP log records for one group and stream, or (request log) a
/// PutLogEvents call.
#[derive(Debug)]
pub(crate) enum CloudWatchOtlpRequest {
    Otlp(OtlpLogsRequest),
    Events(LogBatchRequest),
}

/// Gzip OTLP log records for one group and stream.
#[derive(Debug)]
pub(crate) struct OtlpLogsRequest {
    group: String,
    stream: String,
    body: Bytes,
    records: usize,
}

/// Sends log records to CloudWatch Logs' OTLP endpoint; creates groups and streams, and sends
/// the request log, through the PutLogEvents exporter it wraps.
pub(crate) struct CloudWatchLogsOtlp<C: AwsOtlpClient = SignedOtlpClient, A: LogsClient = SdkLogsClient> {
    client: C,
    put_log_events: CloudWatchLogs<A>,
    translation: CloudWatchTranslation,
    limits: BodyLimits,
    settler: Settler,
}

impl<C: AwsOtlpClient, A: LogsClient> CloudWatchLogsOtlp<C, A> {
    pub(crate) fn new(
        client: C,
        put_log_events: CloudWatchLogs<A>,
        translation: CloudWatchTranslation,
        status: Arc<DestinationStatus>,
    ) -> Self {
        CloudWatchLogsOtlp {
            client,
            put_log_events,
            translation,
            limits: BodyLimits { max_bytes: MAX_REQUEST_BYTES, max_items: MAX_RECORDS_PER_REQUEST },
            settler: Settler::new(Destination::CloudWatchLogs, "log records", status),
        }
    }

    /// The log records of `requests`, one request per (group, stream), resource and scope kept.
    fn partition(&self, requests: &[&ExportLogsServiceRequest]) -> Vec<((String, String), ExportLogsServiceRequest)> {
        let now_ms = unix_ms(SystemTime::now());
        let dated = self.translation.group.uses_date() || self.translation.stream.uses_date();
        let mut index: HashMap<(String, String), usize> = HashMap::new();
        let mut partitions: Vec<((String, String), ExportLogsServiceRequest)> = Vec::new();
        for resource_logs in requests.iter().flat_map(|request| &request.resource_logs) {
            let resource = resource_logs.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
            // Without `{date}` the names depend on the resource only: rendered once.
            let undated = (!dated).then(|| {
                (self.translation.group.render(resource, now_ms), self.translation.stream.render(resource, now_ms))
            });
            for scope_logs in &resource_logs.scope_logs {
                for record in &scope_logs.log_records {
                    let names = match &undated {
                        Some(names) => names.clone(),
                        None => {
                            let at = record_timestamp_ms(record, now_ms);
                            (self.translation.group.render(resource, at), self.translation.stream.render(resource, at))
                        }
                    };
                    let slot = *index.entry(names.clone()).or_insert_with(|| {
                        partitions.push((names, ExportLogsServiceRequest::default()));
                        partitions.len() - 1
                    });
                    let request = &mut partitions[slot].1;
                    let same_resource = request.resource_logs.last().is_some_and(|last| {
                        last.resource == resource_logs.resource && last.schema_url == resource_logs.schema_url
                    });
                    if !same_resource {
                        request.resource_logs.push(ResourceLogs {
                            resource: resource_logs.resource.clone(),
                            schema_url: resource_logs.schema_url.clone(),
                            scope_logs: Vec::new(),
                        });
                    }
                    let resource_entry = request.resource_logs.last_mut().expect("pushed above");
                    let same_scope = resource_entry
                        .scope_logs
                        .last()
                        .is_some_and(|last| last.scope == scope_logs.scope && last.schema_url == scope_logs.schema_url);
                    if !same_scope {
                        resource_entry.scope_logs.push(ScopeLogs {
                            scope: scope_logs.scope.clone(),
                            schema_url: scope_logs.schema_url.clone(),
                            log_records: Vec::new(),
                        });
                    }
                    resource_entry.scope_logs.last_mut().expect("pushed above").log_records.push(record.clone());
                }
            }
        }
        partitions
    }

    fn build_logs(&self, batches: &[SharedBatch]) -> Built<CloudWatchOtlpRequest> {
        let mut rejected = Vec::new();
        let requests: Vec<&ExportLogsServiceRequest> = decoded_requests(batches, Payload::otlp_logs, &mut rejected);
        let mut built = Vec::new();
        for ((group, stream), request) in self.partition(&requests) {
            let len = request.encoded_len();
            let partition = [Arc::new(Batch::logs(request, len))];
            let (bodies, refused) = otlp_body::logs_within(&partition, self.limits);
            rejected.extend(refused);
            for body in bodies {
                match compress::compress(Compression::Gzip, body.bytes) {
                    Ok(gzip) => built.push(CloudWatchOtlpRequest::Otlp(OtlpLogsRequest {
                        group: group.clone(),
                        stream: stream.clone(),
                        body: gzip.into(),
                        records: body.items,
                    })),
                    Err(error) => rejected.push(Rejected {
                        items: body.items,
                        reason: LossReason::CompressionFailed,
                        detail: error.to_string(),
                    }),
                }
            }
        }
        Built { requests: built, rejected }
    }

    async fn send_otlp(&self, request: &OtlpLogsRequest) -> Result<Sent, ExportError> {
        let (group, stream) = (request.group.as_str(), request.stream.as_str());
        self.put_log_events.ensure_stream(group, stream).await?;
        let headers = [(GROUP_HEADER, group), (STREAM_HEADER, stream)];
        let started = Instant::now();
        let answer = self.client.post(&headers, request.body.clone()).await.map_err(unanswered)?;
        let error_type = answer.headers.get("x-amzn-errortype").and_then(|v| v.to_str().ok()).unwrap_or("");
        if error_type.starts_with("ResourceNotFoundException") {
            self.put_log_events.forget_stream(group, stream);
            return Err(ExportError::retryable(format!(
                "log group {group} / stream {stream} does not exist (HTTP {}); creating it again",
                answer.status.as_u16()
            )));
        }
        let target = format!(" to {group} / {stream}");
        self.settler.settle(Signal::Logs, request.records, &target, &answer, started.elapsed())
    }
}

impl<C: AwsOtlpClient, A: LogsClient> Exporter for CloudWatchLogsOtlp<C, A> {
    type Request = CloudWatchOtlpRequest;

    fn build(&self, signal: Signal, batches: &[SharedBatch]) -> Built<CloudWatchOtlpRequest> {
        match signal {
            Signal::Logs => self.build_logs(batches),
            // The request log: access-log events through PutLogEvents.
            _ => {
                let built = self.put_log_events.build(signal, batches);
                Built {
                    requests: built.requests.into_iter().map(CloudWatchOtlpRequest::Events).collect(),
                    rejected: built.rejected,
                }
            }
        }
    }

    fn items(request: &CloudWatchOtlpRequest) -> usize {
        match request {
            CloudWatchOtlpRequest::Otlp(request) => request.records,
            CloudWatchOtlpRequest::Events(request) => CloudWatchLogs::<A>::items(request),
        }
    }

    async fn send(&self, request: &mut CloudWatchOtlpRequest) -> Result<Sent, ExportError> {
        match request {
            CloudWatchOtlpRequest::Otlp(request) => self.send_otlp(request).await,
            CloudWatchOtlpRequest::Events(request) => self.put_log_events.send(request).await,
        }
    }
}
