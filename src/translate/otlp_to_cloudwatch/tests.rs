//! Tests for the CloudWatch Logs translation, one behaviour each, grouped by concern.

mod batch;
mod message;
mod rejected;
mod request_log;
mod template;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::{CloudWatchTranslation, MessageFormat, NameKind, Template};

/// 2026-08-01T12:00:00Z in Unix milliseconds: "now" in these tests.
const NOW_MS: i64 = 1_785_585_600_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

fn now() -> SystemTime {
    at_ms(NOW_MS)
}

fn at_ms(unix_ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(unix_ms).expect("test times are after 1970"))
}

fn ms_to_nanos(unix_ms: i64) -> u64 {
    u64::try_from(unix_ms).expect("test times are after 1970") * 1_000_000
}

fn any(value: Value) -> AnyValue {
    AnyValue { value: Some(value) }
}

fn text(value: &str) -> AnyValue {
    any(Value::StringValue(value.to_owned()))
}

fn attribute(key: &str, value: AnyValue) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(value), ..Default::default() }
}

fn text_attribute(key: &str, value: &str) -> KeyValue {
    attribute(key, text(value))
}

fn service(name: &str) -> Vec<KeyValue> {
    vec![text_attribute("service.name", name)]
}

/// A log record at `unix_ms` with a string body.
fn record_at(unix_ms: i64, body: &str) -> LogRecord {
    LogRecord { time_unix_nano: ms_to_nanos(unix_ms), body: Some(text(body)), ..Default::default() }
}

fn resource_logs(resource: Vec<KeyValue>, records: Vec<LogRecord>) -> ResourceLogs {
    ResourceLogs {
        resource: Some(Resource { attributes: resource, ..Default::default() }),
        scope_logs: vec![ScopeLogs { log_records: records, ..Default::default() }],
        ..Default::default()
    }
}

fn logs_request(resources: Vec<ResourceLogs>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest { resource_logs: resources }
}

/// `raw` messages into group `/waggle/{service.name}`, stream `app`.
fn raw_translation() -> CloudWatchTranslation {
    CloudWatchTranslation {
        format: MessageFormat::Raw,
        group: Template::parse("/waggle/{service.name}", NameKind::LogGroup).expect("valid group template"),
        stream: Template::parse("app", NameKind::LogStream).expect("valid stream template"),
    }
}
