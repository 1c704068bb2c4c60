//! OTLP log records (and, optionally, server spans as a request log) → CloudWatch Logs
//! PutLogEvents batches. Pure: the CloudWatch lane sends what this returns.
//!
//! The flow for one lane batch: [`CloudWatchTranslation::prepare`] (or
//! [`RequestLog::prepare`], or both into one [`Batcher`]) renders each resource's log group and
//! log stream from [`Template`]s, drops events CloudWatch Logs would reject for their time,
//! builds each message, truncates the oversized, then sorts and splits per (group, stream) into
//! [`EventBatch`]es that each fit one PutLogEvents call. [`explain_rejected`] turns the call's
//! `rejectedLogEventsInfo` into counts and a WARN sentence.
//!
//! **Messages** ([`MessageFormat`]):
//! - `json` (default): `{"body", "severity_number", "severity_text", "event_name", "trace_id",
//!   "span_id", "attributes", "resource", "scope", "flags", "dropped_attributes_count"}`, each
//!   only when set (non-zero, non-empty; ids not all zero). `body` is the value as natural JSON
//!   (string, number, bool, array, object; bytes as a base64 string; NaN and infinities as the
//!   strings `"NaN"`, `"Infinity"`, `"-Infinity"`). Ids are lowercase hex. `resource` holds the
//!   resource attributes; `scope` is `{name, version, attributes}` when the scope has a name.
//!   These are the OpenTelemetry Collector's `awscloudwatchlogsexporter` fields, plus
//!   `event_name`.
//! - `raw`: the body as text: a string as is, bytes as base64, anything else as its JSON. A
//!   record without a body would be an empty message, which the API refuses: it is dropped and
//!   counted in [`Prepared::dropped_empty`].
//!
//! **Timestamp**: `time_unix_nano`, else `observed_time_unix_nano` (the collector uses only the
//! first), else now; nanoseconds are floored to milliseconds.
//!
//! **Limits**, each at the API's documented boundary (the side that is allowed is the side the
//! wording allows):
//!
//! | limit | allowed | cut or dropped |
//! |---|---|---|
//! | events per request | 10,000 | the 10,001st starts a new batch |
//! | bytes per request (message UTF-8 bytes + 26 per event) | exactly 1,048,576 | one more byte starts a new batch |
//! | first to last event of a request | exactly 24 h | 24 h + 1 ms starts a new batch |
//! | message size | 1,048,550 bytes (1 MiB − 26: one event fills a batch) | longer: cut on a character boundary, `…[truncated by waggle]` appended, counted (a cut `json` message is no longer valid JSON) |
//! | age | exactly 14 days before now | older: dropped, counted ([`Prepared::dropped_too_old`]) |
//! | lead | exactly 2 hours after now | later: dropped, counted ([`Prepared::dropped_too_new`]) |
//! | order | sorted by timestamp, stable (equal timestamps keep arrival order) | |
//!
//! "Now" is the `now` passed to `prepare`: call it just before the first attempt. An event can
//! still cross the 14-day line while a batch is retried; CloudWatch Logs then rejects it and
//! [`explain_rejected`] reports it. The log group's retention period is not known here.
//!
//! Not done here: EMF (`raw` messages that are Embedded Metric Format JSON keep the configured
//! group and stream; the collector overrides them from `_aws.LogGroupName`).

pub(crate) mod batch;
mod json;
mod message;
mod rejected;
mod request_log;
mod template;
#[cfg(test)]
mod tests;

use std::time::SystemTime;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::ResourceLogs;

pub(crate) use batch::{Batcher, EventBatch, LogEvent, MAX_EVENT_AGE, Prepared, unix_ms};
pub(crate) use message::{MessageFormat, record_timestamp_ms};
pub(crate) use rejected::explain_rejected;
pub(crate) use request_log::RequestLog;
pub(crate) use template::{NameKind, Template, TemplateError};

use batch::ResourceDestination;
use message::{SharedMembers, record_message};

/// How OTLP log records become CloudWatch Logs events: the message format and the templates
/// naming each resource's log group and stream.
#[derive(Debug, Clone)]
pub(crate) struct CloudWatchTranslation {
    pub format: MessageFormat,
    pub group: Template,
    pub stream: Template,
}

impl CloudWatchTranslation {
    /// The PutLogEvents batches for these requests' log records, judged against `now`.
    pub(crate) fn prepare(&self, requests: &[&ExportLogsServiceRequest], now: SystemTime) -> Prepared {
        let mut batcher = Batcher::new(now);
        for request in requests {
            self.add_to(&mut batcher, &request.resource_logs);
        }
        batcher.finish()
    }

    /// Adds one event per log record to `batcher`.
    pub(crate) fn add_to(&self, batcher: &mut Batcher, resource_logs: &[ResourceLogs]) {
        for resource_logs in resource_logs {
            let resource = resource_logs.resource.as_ref().map_or(&[][..], |resource| &resource.attributes[..]);
            let mut destination = ResourceDestination::new(&self.group, &self.stream, resource);
            for scope_logs in &resource_logs.scope_logs {
                let shared = match self.format {
                    MessageFormat::Json => SharedMembers::new(resource, scope_logs.scope.as_ref()),
                    MessageFormat::Raw => SharedMembers::default(),
                };
                for record in &scope_logs.log_records {
                    let timestamp_ms = record_timestamp_ms(record, batcher.now_ms());
                    let partition = destination.partition(batcher, timestamp_ms);
                    batcher.push_with(partition, timestamp_ms, || record_message(record, self.format, &shared));
                }
            }
        }
    }
}
