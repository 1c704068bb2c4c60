//! The request log: one access-log event per server span, what users used to write by hand in
//! a web framework's after-request hook, now from the traces they already send.
//!
//! Each span of kind SERVER becomes one event at the span's end (else its start, else now).
//! Fields, reading current semantic-convention keys first and the older ones after:
//!
//! | field | attributes |
//! |---|---|
//! | `method` | `http.request.method`, `http.method` |
//! | `route` | `http.route`, else the path, else the span name |
//! | `path` | `url.path` (+ `?` `url.query`), `http.target` |
//! | `status` | `http.response.status_code`, `http.status_code` |
//! | `duration_ms` | end − start, in milliseconds to the microsecond |
//! | `trace_id`, `span_id` | the span's ids, lowercase hex |
//! | `client_address` | `client.address`, `http.client_ip`, `network.peer.address`, `net.sock.peer.addr`, `net.peer.ip` |
//!
//! `json` writes those as an object (missing ones left out), e.g.
//! `{"method":"GET","route":"/api/activities/home","path":"/api/activities/home","status":200,"duration_ms":12.345,"trace_id":"…","span_id":"…","client_address":"203.0.113.7"}`;
//! `raw` writes a common-log-style line with `-` for what is missing, e.g.
//! `203.0.113.7 "GET /api/activities/home" 200 12.345 ms trace_id=4bf92f3577b34da6a3ce929d0e0e4736`.

use std::fmt::Write as _;
use std::time::SystemTime;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span};

use super::batch::{Batcher, Prepared, ResourceDestination, nanos_to_ms};
use super::json;
use super::message::MessageFormat;
use super::template::Template;

const METHOD_KEYS: &[&str] = &["http.request.method", "http.method"];
const ROUTE_KEYS: &[&str] = &["http.route"];
const STATUS_KEYS: &[&str] = &["http.response.status_code", "http.status_code"];
const CLIENT_ADDRESS_KEYS: &[&str] =
    &["client.address", "http.client_ip", "network.peer.address", "net.sock.peer.addr", "net.peer.ip"];

/// Where and how the request log is written.
#[derive(Debug, Clone)]
pub(crate) struct RequestLog {
    pub format: MessageFormat,
    pub group: Template,
    pub stream: Template,
}

impl RequestLog {
    /// The request-log batches for these trace requests, judged against `now`.
    pub(crate) fn prepare(&self, requests: &[&ExportTraceServiceRequest], now: SystemTime) -> Prepared {
        let mut batcher = Batcher::new(now);
        for request in requests {
            self.add_to(&mut batcher, &request.resource_spans);
        }
        batcher.finish()
    }

    /// Adds one event per server span to `batcher`.
    pub(crate) fn add_to(&self, batcher: &mut Batcher, resource_spans: &[ResourceSpans]) {
        for resource_spans in resource_spans {
            let resource = resource_spans.resource.as_ref().map_or(&[][..], |resource| &resource.attributes[..]);
            let mut destination = ResourceDestination::new(&self.group, &self.stream, resource);
            let server_spans = resource_spans
                .scope_spans
                .iter()
                .flat_map(|scope_spans| &scope_spans.spans)
                .filter(|span| span.kind == SpanKind::Server as i32);
            for span in server_spans {
                let timestamp_ms = span_timestamp_ms(span, batcher.now_ms());
                let partition = destination.partition(batcher, timestamp_ms);
                batcher.push_with(partition, timestamp_ms, || request_line(span, self.format));
            }
        }
    }
}

/// When the request finished: the span's end, else its start, else `now_ms`.
pub(super) fn span_timestamp_ms(span: &Span, now_ms: i64) -> i64 {
    match (span.end_time_unix_nano, span.start_time_unix_nano) {
        (0, 0) => now_ms,
        (0, start) => nanos_to_ms(start),
        (end, _) => nanos_to_ms(end),
    }
}

/// The first of `keys` that the span has with a non-empty value.
fn first_attribute<'a>(attributes: &'a [KeyValue], keys: &[&str]) -> Option<&'a AnyValue> {
    keys.iter().filter_map(|key| json::attribute(attributes, key)).find(|value| match &value.value {
        Some(Value::StringValue(text)) => !text.is_empty(),
        Some(_) => true,
        None => false,
    })
}

fn text_of(value: Option<&AnyValue>) -> Option<String> {
    let mut text = String::new();
    json::push_text(&mut text, value);
    (!text.is_empty()).then_some(text)
}

/// The HTTP status as a number when it is one (some SDKs send it as a string).
fn status_code(value: &AnyValue) -> Option<i64> {
    match &value.value {
        Some(Value::IntValue(code)) => Some(*code),
        Some(Value::StringValue(text)) => text.trim().parse().ok(),
        _ => None,
    }
}

/// The request's path and query: `url.path` + `?url.query`, else `http.target`.
fn request_path(attributes: &[KeyValue]) -> Option<String> {
    match text_of(first_attribute(attributes, &["url.path"])) {
        Some(mut path) => {
            if let Some(query) = text_of(first_attribute(attributes, &["url.query"])) {
                path.push('?');
                path.push_str(&query);
            }
            Some(path)
        }
        None => text_of(first_attribute(attributes, &["http.target"])),
    }
}

/// Milliseconds to the microsecond, e.g. `12.345`.
fn push_duration_ms(out: &mut String, span: &Span) {
    let micros = span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano) / 1_000;
    let _ = write!(out, "{}.{:03}", micros / 1_000, micros % 1_000);
}

/// The access-log message for one server span.
pub(super) fn request_line(span: &Span, format: MessageFormat) -> String {
    let attributes = &span.attributes[..];
    let method = text_of(first_attribute(attributes, METHOD_KEYS));
    let path = request_path(attributes);
    let route = text_of(first_attribute(attributes, ROUTE_KEYS)).or_else(|| path.clone());
    let route = route.as_deref().unwrap_or(&span.name);
    let status = first_attribute(attributes, STATUS_KEYS);
    let client_address = text_of(first_attribute(attributes, CLIENT_ADDRESS_KEYS));
    let mut out = String::with_capacity(192);
    match format {
        MessageFormat::Json => {
            let mut first = true;
            out.push('{');
            if let Some(method) = &method {
                json::push_key(&mut out, &mut first, "method");
                json::push_string(&mut out, method);
            }
            if !route.is_empty() {
                json::push_key(&mut out, &mut first, "route");
                json::push_string(&mut out, route);
            }
            if let Some(path) = &path {
                json::push_key(&mut out, &mut first, "path");
                json::push_string(&mut out, path);
            }
            if let Some(status) = status {
                json::push_key(&mut out, &mut first, "status");
                match status_code(status) {
                    Some(code) => {
                        let _ = write!(out, "{code}");
                    }
                    None => json::push_value(&mut out, Some(status)),
                }
            }
            json::push_key(&mut out, &mut first, "duration_ms");
            push_duration_ms(&mut out, span);
            if json::is_valid_id(&span.trace_id) {
                json::push_key(&mut out, &mut first, "trace_id");
                out.push('"');
                json::push_hex(&mut out, &span.trace_id);
                out.push('"');
            }
            if json::is_valid_id(&span.span_id) {
                json::push_key(&mut out, &mut first, "span_id");
                out.push('"');
                json::push_hex(&mut out, &span.span_id);
                out.push('"');
            }
            if let Some(client_address) = &client_address {
                json::push_key(&mut out, &mut first, "client_address");
                json::push_string(&mut out, client_address);
            }
            out.push('}');
        }
        MessageFormat::Raw => {
            out.push_str(client_address.as_deref().unwrap_or("-"));
            out.push_str(" \"");
            out.push_str(method.as_deref().unwrap_or("-"));
            out.push(' ');
            out.push_str(if route.is_empty() { "-" } else { route });
            out.push_str("\" ");
            match status.and_then(|status| text_of(Some(status))) {
                Some(status) => out.push_str(&status),
                None => out.push('-'),
            }
            out.push(' ');
            push_duration_ms(&mut out, span);
            out.push_str(" ms trace_id=");
            if json::is_valid_id(&span.trace_id) {
                json::push_hex(&mut out, &span.trace_id);
            } else {
                out.push('-');
            }
        }
    }
    out
}
