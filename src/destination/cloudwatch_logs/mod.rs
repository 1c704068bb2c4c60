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
//!
//! With `protocol = "otlp"` log records go to CloudWatch Logs' OTLP endpoint instead, as they
//! are (see [`otlp`]); groups and streams are created the same way, and the request log still
//! uses PutLogEvents.

mod client;
mod exporter;
mod lane_config;
mod otlp;
mod request;
mod resources;
mod settings;
mod setup;
#[cfg(test)]
mod tests;

pub(crate) use lane_config::CloudWatchLogsConfigError;
pub use settings::{CloudWatchLogsProtocol, CloudWatchLogsSettings, RequestLogSettings};
pub(crate) use setup::{CloudWatchLogsExporter, NotStarted, lane_settings, set_up};
pub(crate) use setup::{aws_access, same_access, wants_aws};
