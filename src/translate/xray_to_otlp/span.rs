//! One segment or subsegment → one OTLP span, recursing into embedded subsegments.

use std::fmt::Write as _;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link as OtlpLink, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use serde_json::Value;

use super::attributes::{Attributes, scalar_value};
use super::document::{Cause, Exception, Segment, lenient_int};
use super::ids::{IdError, decode_span_id, decode_trace_id, seconds_to_unix_nanos};

/// Why a document could not be converted. The whole document is rejected.
#[derive(Debug, thiserror::Error)]
pub(super) enum ConvertError {
    #[error("not a segment document: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{what} has no \"{field}\"")]
    MissingField { what: String, field: &'static str },
    #[error("{what}: {error}")]
    BadId { what: String, error: IdError },
    #[error("{what} has an invalid \"{field}\" ({value})")]
    BadTime { what: String, field: &'static str, value: f64 },
}

/// Whether a span comes from a segment (a service's handling of a request) or a subsegment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SpanRole {
    /// A top-level segment document.
    Segment,
    /// An embedded subsegment, or a streamed subsegment document.
    Subsegment,
}

/// Appends the span of `segment`, then those of its embedded subsegments (depth first).
/// `inherited_trace_id` is the enclosing segment's; `parent` the enclosing span's id.
pub(super) fn push_spans(
    segment: &Segment,
    inherited_trace_id: Option<[u8; 16]>,
    parent: Option<[u8; 8]>,
    role: SpanRole,
    spans: &mut Vec<Span>,
) -> Result<(), ConvertError> {
    let what = describe(segment, role);
    let id = segment.id.as_deref().ok_or_else(|| ConvertError::MissingField { what: what.clone(), field: "id" })?;
    let span_id = decode_span_id("id", id).map_err(|error| ConvertError::BadId { what: what.clone(), error })?;
    let trace_id = match (&segment.trace_id, inherited_trace_id) {
        (Some(trace_id), _) => {
            decode_trace_id(trace_id).map_err(|error| ConvertError::BadId { what: what.clone(), error })?
        }
        (None, Some(inherited)) => inherited,
        (None, None) => return Err(ConvertError::MissingField { what, field: "trace_id" }),
    };
    // An embedded subsegment's parent is the enclosing span, whatever its own `parent_id` says;
    // a segment's `parent_id` is its upstream caller, a streamed subsegment's its parent.
    let parent = match (parent, &segment.parent_id) {
        (Some(enclosing), _) => Some(enclosing),
        (None, Some(parent_id)) => Some(
            decode_span_id("parent_id", parent_id)
                .map_err(|error| ConvertError::BadId { what: what.clone(), error })?,
        ),
        (None, None) => None,
    };
    let name = segment.name.clone().ok_or_else(|| ConvertError::MissingField { what: what.clone(), field: "name" })?;
    let start =
        segment.start_time.ok_or_else(|| ConvertError::MissingField { what: what.clone(), field: "start_time" })?;
    let start_time_unix_nano = seconds_to_unix_nanos(start).ok_or_else(|| ConvertError::BadTime {
        what: what.clone(),
        field: "start_time",
        value: start,
    })?;
    // In-progress documents have no end yet; a zero-length span beats an end in 1970.
    let end_time_unix_nano = match segment.end_time {
        Some(end) => seconds_to_unix_nanos(end).ok_or(ConvertError::BadTime { what, field: "end_time", value: end })?,
        None => start_time_unix_nano,
    };

    let kind = span_kind(segment);
    let span = Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        parent_span_id: parent.map(|p| p.to_vec()).unwrap_or_default(),
        name,
        kind: kind as i32,
        start_time_unix_nano,
        end_time_unix_nano,
        attributes: span_attributes(segment, kind),
        events: exception_events(segment, end_time_unix_nano),
        links: links(segment),
        status: Some(status(segment)),
        ..Default::default()
    };
    spans.push(span);
    for subsegment in segment.subsegments() {
        push_spans(subsegment, Some(trace_id), Some(span_id), SpanRole::Subsegment, spans)?;
    }
    Ok(())
}

/// Names a (sub)segment in errors.
fn describe(segment: &Segment, role: SpanRole) -> String {
    let kind = match role {
        SpanRole::Segment => "segment",
        SpanRole::Subsegment => "subsegment",
    };
    match &segment.id {
        Some(id) => format!("{kind} {}", id.chars().take(40).collect::<String>()),
        None => kind.to_owned(),
    }
}

/// The awsxrayreceiver's rule, for segments and subsegments alike: `aws` or `remote`
/// namespace → CLIENT; else an `http.request.client_ip` (a request the service received) →
/// SERVER; else (`local`, no namespace, a segment of a background job) INTERNAL.
pub(super) fn span_kind(segment: &Segment) -> SpanKind {
    match segment.namespace.as_deref() {
        Some("aws" | "remote") => SpanKind::Client,
        _ if client_ip(segment).is_some() => SpanKind::Server,
        _ => SpanKind::Internal,
    }
}

fn client_ip(segment: &Segment) -> Option<&String> {
    segment.http.as_ref()?.request.as_ref()?.client_ip.as_ref()
}

fn http_status(segment: &Segment) -> Option<i64> {
    segment.http.as_ref()?.response.as_ref()?.status.as_ref().and_then(lenient_int)
}

/// ERROR when the HTTP status is outside 100–399 (so 4xx, 429 and 5xx, whatever the kind,
/// as in the awsxrayreceiver), when X-Ray flagged `error` (4xx), `throttle` (429) or `fault`
/// (5xx), or when there is a `cause`. A cause that is only an exception id (the exception is
/// recorded on another subsegment) becomes the status message. Otherwise UNSET.
pub(super) fn status(segment: &Segment) -> Status {
    let http_failed = http_status(segment).is_some_and(|code| !(100..400).contains(&code));
    let flagged = [segment.error, segment.throttle, segment.fault].contains(&Some(true));
    let failed = http_failed || flagged || segment.cause.is_some();
    let message = match &segment.cause {
        Some(Cause::ExceptionId(id)) => id.clone(),
        _ => String::new(),
    };
    let code = if failed { StatusCode::Error } else { StatusCode::Unset };
    Status { message, code: code as i32 }
}

fn span_attributes(segment: &Segment, kind: SpanKind) -> Vec<KeyValue> {
    let mut attributes = Attributes::default();
    if segment.namespace.as_deref() == Some("aws") && kind == SpanKind::Client {
        attributes.opt_string("aws.service", segment.name.as_ref());
    }
    attributes.opt_bool("aws.xray.inprogress", segment.in_progress);
    attributes.opt_string("enduser.id", segment.user.as_ref());
    add_http(segment, &mut attributes);
    add_aws(segment, &mut attributes);
    add_sql(segment, &mut attributes);
    attributes.opt_bool("aws.xray.traced", segment.traced);
    add_annotations(segment, &mut attributes);
    add_metadata(segment, &mut attributes);
    attributes.into_vec()
}

fn add_http(segment: &Segment, attributes: &mut Attributes) {
    let Some(http) = &segment.http else { return };
    if let Some(request) = &http.request {
        attributes.opt_string("http.method", request.method.as_ref());
        attributes.opt_string("http.client_ip", request.client_ip.as_ref());
        attributes.opt_string("http.user_agent", request.user_agent.as_ref());
        attributes.opt_string("http.url", request.url.as_ref());
        attributes.opt_bool("aws.xray.x_forwarded_for", request.x_forwarded_for);
    }
    if let Some(response) = &http.response {
        attributes.opt_int("http.status_code", http_status(segment));
        match &response.content_length {
            Some(Value::String(length)) => attributes.string("http.response_content_length", length),
            Some(length) => attributes.opt_int("http.response_content_length", lenient_int(length)),
            None => {}
        }
    }
}

fn add_aws(segment: &Segment, attributes: &mut Attributes) {
    let Some(aws) = &segment.aws else { return };
    attributes.opt_string("aws.account_id", aws.account_id.as_ref());
    attributes.opt_string("aws.operation", aws.operation.as_ref());
    attributes.opt_string("aws.region", aws.region.as_ref());
    attributes.opt_string("aws.request_id", aws.request_id.as_ref());
    attributes.opt_string("aws.queue_url", aws.queue_url.as_ref());
    attributes.opt_string("aws.table_name", aws.table_name.as_ref());
    if let Some(table_names) = &aws.table_names {
        attributes.strings("aws.table_names", table_names.iter().cloned());
    }
    attributes.opt_int("aws.xray.retries", aws.retries.as_ref().and_then(lenient_int));
    let sampling_rule = aws.xray.as_ref().and_then(|xray| xray.sampling_rule_name.as_ref());
    attributes.opt_string("aws.xray.sampling_rule_name", sampling_rule);
}

/// `sql.url` `protocol://host:port/dbname?params` → `db.connection_string` (without the
/// database) and `db.name`; a URL without a database path is kept whole (the receiver
/// rejected the document instead).
fn add_sql(segment: &Segment, attributes: &mut Attributes) {
    let Some(sql) = &segment.sql else { return };
    match sql.url.as_deref().map(split_sql_url) {
        Some((connection, Some(database))) => {
            attributes.string("db.connection_string", connection);
            attributes.string("db.name", database);
        }
        Some((connection, None)) => attributes.string("db.connection_string", connection),
        None => attributes.opt_string("db.connection_string", sql.connection_string.as_ref()),
    }
    attributes.opt_string("db.system", sql.database_type.as_ref());
    attributes.opt_string("db.statement", sql.sanitized_query.as_ref());
    attributes.opt_string("db.user", sql.user.as_ref());
}

/// Splits `scheme://host[:port]/database[?query]` into (`scheme://host[:port]`, `database`).
pub(super) fn split_sql_url(url: &str) -> (&str, Option<&str>) {
    let without_query = url.split('?').next().unwrap_or(url);
    let Some(scheme_end) = without_query.find("//").map(|i| i + 2) else { return (url, None) };
    match without_query[scheme_end..].rfind('/') {
        Some(slash) if slash > 0 && scheme_end + slash + 1 < without_query.len() => {
            let slash = scheme_end + slash;
            (&url[..slash], Some(&without_query[slash + 1..]))
        }
        _ => (url, None),
    }
}

/// Annotations → attributes of the same type, plus `aws.xray.annotations` listing their keys
/// (so the OTel X-Ray exporter makes them annotations again). Null, array and object values
/// (which X-Ray does not allow) are left out.
fn add_annotations(segment: &Segment, attributes: &mut Attributes) {
    let Some(annotations) = &segment.annotations else { return };
    let mut keys = Vec::with_capacity(annotations.len());
    for (key, value) in annotations {
        if let Some(value) = scalar_value(value) {
            attributes.put(key.clone(), value);
            keys.push(key.clone());
        }
    }
    if !keys.is_empty() {
        attributes.strings("aws.xray.annotations", keys);
    }
}

/// Sample-rate keys Honeycomb reads from span attributes.
const SAMPLE_RATE_KEYS: [&str; 2] = ["SampleRate", "sampleRate"];

/// Each metadata namespace → `aws.xray.metadata.<namespace>`, its value as a JSON string.
/// A numeric `SampleRate`/`sampleRate` in a namespace is also passed through as an attribute
/// of that name (unless an annotation already set it), so Honeycomb sees the sample rate.
fn add_metadata(segment: &Segment, attributes: &mut Attributes) {
    let Some(metadata) = &segment.metadata else { return };
    for (namespace, value) in metadata {
        attributes.string(&format!("aws.xray.metadata.{namespace}"), &value.to_string());
    }
    for value in metadata.values() {
        let Value::Object(fields) = value else { continue };
        for key in SAMPLE_RATE_KEYS {
            if let Some(rate @ Value::Number(_)) = fields.get(key)
                && !attributes.contains(key)
                && let Some(rate) = scalar_value(rate)
            {
                attributes.put(key, rate);
            }
        }
    }
}

/// `cause.exceptions` → `exception` events at the span's end.
fn exception_events(segment: &Segment, time_unix_nano: u64) -> Vec<Event> {
    let Some(Cause::Exceptions(cause)) = &segment.cause else { return Vec::new() };
    let exceptions = cause.exceptions.as_deref().unwrap_or_default();
    exceptions.iter().map(|exception| exception_event(exception, time_unix_nano)).collect()
}

fn exception_event(exception: &Exception, time_unix_nano: u64) -> Event {
    let mut attributes = Attributes::default();
    attributes.opt_string("aws.xray.exception.id", exception.id.as_ref());
    attributes.opt_string("exception.message", exception.message.as_ref());
    attributes.opt_string("exception.type", exception.exception_type.as_ref());
    attributes.opt_bool("aws.xray.exception.remote", exception.remote);
    attributes.opt_int("aws.xray.exception.truncated", exception.truncated.as_ref().and_then(lenient_int));
    attributes.opt_int("aws.xray.exception.skipped", exception.skipped.as_ref().and_then(lenient_int));
    attributes.opt_string("aws.xray.exception.cause", exception.cause.as_ref());
    if exception.stack.as_ref().is_some_and(|stack| !stack.is_empty()) {
        attributes.string("exception.stacktrace", &stacktrace(exception));
    }
    Event {
        time_unix_nano,
        name: "exception".to_owned(),
        attributes: attributes.into_vec(),
        dropped_attributes_count: 0,
    }
}

/// The awsxrayreceiver's rendering: `Type: message` then `\tat label(path: line)` per frame.
pub(super) fn stacktrace(exception: &Exception) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{}: {}",
        exception.exception_type.as_deref().unwrap_or_default(),
        exception.message.as_deref().unwrap_or_default()
    );
    for frame in exception.stack.as_deref().unwrap_or_default() {
        let line = match frame.line.as_ref().and_then(lenient_int) {
            Some(line) => line.to_string(),
            None => "<unknown>".to_owned(),
        };
        let _ = writeln!(
            text,
            "\tat {}({}: {line})",
            frame.label.as_deref().unwrap_or_default(),
            frame.path.as_deref().unwrap_or_default()
        );
    }
    text
}

/// Span links whose ids decode; others are left out.
fn links(segment: &Segment) -> Vec<OtlpLink> {
    let Some(links) = &segment.links else { return Vec::new() };
    links
        .iter()
        .filter_map(|link| {
            let trace_id = decode_trace_id(link.trace_id.as_deref()?).ok()?;
            let span_id = decode_span_id("link id", link.id.as_deref()?).ok()?;
            let mut attributes = Attributes::default();
            for (key, value) in link.attributes.iter().flatten() {
                if let Some(value) = scalar_value(value) {
                    attributes.put(key.clone(), value);
                }
            }
            Some(OtlpLink {
                trace_id: trace_id.to_vec(),
                span_id: span_id.to_vec(),
                attributes: attributes.into_vec(),
                ..Default::default()
            })
        })
        .collect()
}
