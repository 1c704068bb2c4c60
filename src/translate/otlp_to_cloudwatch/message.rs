//! One OTLP log record → one CloudWatch Logs message (`json` or `raw`) and timestamp.

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use serde::{Deserialize, Serialize};

use super::batch::nanos_to_ms;
use super::json;

/// How a log record becomes a CloudWatch Logs message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageFormat {
    /// A JSON object with the record's non-empty fields, its resource and its scope, which
    /// CloudWatch Logs Insights splits into fields.
    #[default]
    Json,
    /// The body alone, as text: a string as is, bytes as base64, anything else as JSON.
    Raw,
}

impl MessageFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageFormat::Json => "json",
            MessageFormat::Raw => "raw",
        }
    }
}

/// The record's time in Unix milliseconds: `time_unix_nano`, else `observed_time_unix_nano`,
/// else `now_ms`.
pub(crate) fn record_timestamp_ms(record: &LogRecord, now_ms: i64) -> i64 {
    match (record.time_unix_nano, record.observed_time_unix_nano) {
        (0, 0) => now_ms,
        (0, observed) => nanos_to_ms(observed),
        (time, _) => nanos_to_ms(time),
    }
}

/// The JSON text every record of one resource and scope shares: `"resource":{…}` and
/// `"scope":{…}` members, each empty when there is nothing to say. Built once per scope.
#[derive(Debug, Default)]
pub(super) struct SharedMembers {
    resource: String,
    scope: String,
}

impl SharedMembers {
    pub(super) fn new(resource: &[KeyValue], scope: Option<&InstrumentationScope>) -> SharedMembers {
        let mut members = SharedMembers::default();
        if !resource.is_empty() {
            members.resource.push_str("\"resource\":");
            json::push_object(&mut members.resource, resource);
        }
        if let Some(scope) = scope.filter(|scope| !scope.name.is_empty()) {
            let out = &mut members.scope;
            out.push_str("\"scope\":{\"name\":");
            json::push_string(out, &scope.name);
            if !scope.version.is_empty() {
                out.push_str(",\"version\":");
                json::push_string(out, &scope.version);
            }
            if !scope.attributes.is_empty() {
                out.push_str(",\"attributes\":");
                json::push_object(out, &scope.attributes);
            }
            out.push('}');
        }
        members
    }
}

/// The message for `record` in `format`. May be empty (a `raw` record without a body).
pub(super) fn record_message(record: &LogRecord, format: MessageFormat, shared: &SharedMembers) -> String {
    match format {
        MessageFormat::Json => json_message(record, shared),
        MessageFormat::Raw => {
            let mut message = String::new();
            json::push_text(&mut message, record.body.as_ref());
            message
        }
    }
}

/// `{"body":…,"severity_number":…,"severity_text":…,"event_name":…,"trace_id":…,"span_id":…,
/// "attributes":{…},"resource":{…},"scope":{…},"flags":…,"dropped_attributes_count":…}` with
/// empty members left out.
fn json_message(record: &LogRecord, shared: &SharedMembers) -> String {
    use std::fmt::Write as _;

    let mut out = String::with_capacity(128 + shared.resource.len() + shared.scope.len());
    let mut first = true;
    out.push('{');
    if let Some(body) = record.body.as_ref().filter(|body| body.value.is_some()) {
        json::push_key(&mut out, &mut first, "body");
        json::push_value(&mut out, Some(body));
    }
    if record.severity_number != 0 {
        json::push_key(&mut out, &mut first, "severity_number");
        let _ = write!(out, "{}", record.severity_number);
    }
    if !record.severity_text.is_empty() {
        json::push_key(&mut out, &mut first, "severity_text");
        json::push_string(&mut out, &record.severity_text);
    }
    if !record.event_name.is_empty() {
        json::push_key(&mut out, &mut first, "event_name");
        json::push_string(&mut out, &record.event_name);
    }
    if json::is_valid_id(&record.trace_id) {
        json::push_key(&mut out, &mut first, "trace_id");
        out.push('"');
        json::push_hex(&mut out, &record.trace_id);
        out.push('"');
    }
    if json::is_valid_id(&record.span_id) {
        json::push_key(&mut out, &mut first, "span_id");
        out.push('"');
        json::push_hex(&mut out, &record.span_id);
        out.push('"');
    }
    if !record.attributes.is_empty() {
        json::push_key(&mut out, &mut first, "attributes");
        json::push_object(&mut out, &record.attributes);
    }
    for member in [&shared.resource, &shared.scope] {
        if !member.is_empty() {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(member);
        }
    }
    if record.flags != 0 {
        json::push_key(&mut out, &mut first, "flags");
        let _ = write!(out, "{}", record.flags);
    }
    if record.dropped_attributes_count != 0 {
        json::push_key(&mut out, &mut first, "dropped_attributes_count");
        let _ = write!(out, "{}", record.dropped_attributes_count);
    }
    out.push('}');
    out
}
