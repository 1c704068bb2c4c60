//! The request log: server spans as access-log lines, from current and older attribute keys.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message as _;

use super::super::request_log::{request_line, span_timestamp_ms};
use super::super::{MessageFormat, NameKind, RequestLog, Template};
use super::{NOW_MS, any, at_ms, attribute, ms_to_nanos, now, service, text_attribute};

const TRACE_ID: [u8; 16] =
    [0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36];
const SPAN_ID: [u8; 8] = [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7];

/// A SERVER span that took 12.345678 ms and ended at NOW_MS.
fn server_span(attributes: Vec<KeyValue>) -> Span {
    let end = ms_to_nanos(NOW_MS);
    Span {
        name: "GET /api/activities/home".to_owned(),
        kind: SpanKind::Server as i32,
        trace_id: TRACE_ID.to_vec(),
        span_id: SPAN_ID.to_vec(),
        start_time_unix_nano: end - 12_345_678,
        end_time_unix_nano: end,
        attributes,
        ..Default::default()
    }
}

/// What the Flask instrumentation writes (older semantic conventions).
fn old_key_attributes() -> Vec<KeyValue> {
    vec![
        text_attribute("http.method", "GET"),
        text_attribute("http.target", "/api/activities/home?page=2"),
        text_attribute("http.route", "/api/activities/home"),
        attribute("http.status_code", any(Value::IntValue(200))),
        text_attribute("net.peer.ip", "203.0.113.7"),
    ]
}

/// The current semantic conventions.
fn new_key_attributes() -> Vec<KeyValue> {
    vec![
        text_attribute("http.request.method", "POST"),
        text_attribute("url.path", "/api/activities"),
        text_attribute("url.query", "draft=1"),
        text_attribute("http.route", "/api/activities"),
        attribute("http.response.status_code", any(Value::IntValue(201))),
        text_attribute("client.address", "198.51.100.4"),
    ]
}

fn traces(resource: Vec<KeyValue>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: resource, ..Default::default() }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn request_log(format: MessageFormat) -> RequestLog {
    RequestLog {
        format,
        group: Template::parse("/waggle/requests", NameKind::LogGroup).expect("valid group template"),
        stream: Template::parse("{service.name}", NameKind::LogStream).expect("valid stream template"),
    }
}

#[test]
fn a_server_span_with_older_keys_becomes_a_json_line() {
    assert_eq!(
        request_line(&server_span(old_key_attributes()), MessageFormat::Json),
        concat!(
            r#"{"method":"GET","route":"/api/activities/home","path":"/api/activities/home?page=2","status":200,"#,
            r#""duration_ms":12.345,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","#,
            r#""client_address":"203.0.113.7"}"#
        )
    );
}

#[test]
fn a_server_span_with_current_keys_becomes_a_json_line() {
    assert_eq!(
        request_line(&server_span(new_key_attributes()), MessageFormat::Json),
        concat!(
            r#"{"method":"POST","route":"/api/activities","path":"/api/activities?draft=1","status":201,"#,
            r#""duration_ms":12.345,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","#,
            r#""client_address":"198.51.100.4"}"#
        )
    );
}

#[test]
fn current_keys_win_over_older_ones() {
    // `http.route` is the same key in both; leave the older one out.
    let mut attributes: Vec<KeyValue> =
        old_key_attributes().into_iter().filter(|attribute| attribute.key != "http.route").collect();
    attributes.extend(new_key_attributes());

    let line = request_line(&server_span(attributes), MessageFormat::Raw);

    assert_eq!(line, r#"198.51.100.4 "POST /api/activities" 201 12.345 ms trace_id=4bf92f3577b34da6a3ce929d0e0e4736"#);
}

#[test]
fn a_raw_line_reads_like_an_access_log() {
    assert_eq!(
        request_line(&server_span(old_key_attributes()), MessageFormat::Raw),
        r#"203.0.113.7 "GET /api/activities/home" 200 12.345 ms trace_id=4bf92f3577b34da6a3ce929d0e0e4736"#
    );
}

#[test]
fn a_raw_line_marks_missing_fields_with_dashes() {
    let span = Span { name: String::new(), trace_id: Vec::new(), ..server_span(Vec::new()) };

    assert_eq!(request_line(&span, MessageFormat::Raw), r#"- "- -" - 12.345 ms trace_id=-"#);
}

#[test]
fn the_route_falls_back_to_the_url_path_and_query() {
    let attributes = vec![text_attribute("url.path", "/users/42"), text_attribute("url.query", "tab=posts")];

    let line = request_line(&server_span(attributes), MessageFormat::Raw);

    assert!(line.contains(r#""- /users/42?tab=posts""#), "{line}");
}

#[test]
fn the_route_falls_back_to_the_http_target() {
    let line = request_line(&server_span(vec![text_attribute("http.target", "/users/42")]), MessageFormat::Raw);

    assert!(line.contains(r#""- /users/42""#), "{line}");
}

#[test]
fn the_route_falls_back_to_the_span_name() {
    let line = request_line(&server_span(Vec::new()), MessageFormat::Json);

    assert!(line.starts_with(r#"{"route":"GET /api/activities/home","duration_ms":"#), "{line}");
}

#[test]
fn a_status_code_sent_as_a_string_is_a_json_number() {
    let line = request_line(&server_span(vec![text_attribute("http.status_code", "404")]), MessageFormat::Json);

    assert!(line.contains(r#""status":404,"#), "{line}");
}

#[test]
fn the_client_address_falls_back_to_the_socket_peer() {
    let line = request_line(&server_span(vec![text_attribute("network.peer.address", "10.0.0.9")]), MessageFormat::Raw);

    assert!(line.starts_with("10.0.0.9 "), "{line}");
}

#[test]
fn a_span_that_ends_before_it_starts_lasts_zero_ms() {
    let span = Span { start_time_unix_nano: ms_to_nanos(NOW_MS) + 5, ..server_span(Vec::new()) };

    assert!(request_line(&span, MessageFormat::Raw).contains(" 0.000 ms "));
}

#[test]
fn the_event_time_is_the_spans_end() {
    let span = server_span(Vec::new());

    assert_eq!(span_timestamp_ms(&span, NOW_MS + 999), NOW_MS);
}

#[test]
fn only_server_spans_are_logged() {
    let client = Span { kind: SpanKind::Client as i32, ..server_span(Vec::new()) };
    let internal = Span { kind: SpanKind::Internal as i32, ..server_span(Vec::new()) };
    let request = traces(service("backend-flask"), vec![client, server_span(old_key_attributes()), internal]);

    let prepared = request_log(MessageFormat::Raw).prepare(&[&request], now());

    assert_eq!(prepared.event_count(), 1);
}

#[test]
fn request_log_events_go_to_its_own_group_and_stream_at_the_spans_end() {
    let request = traces(service("backend-flask"), vec![server_span(old_key_attributes())]);

    let prepared = request_log(MessageFormat::Json).prepare(&[&request], now());

    let batch = &prepared.batches[0];
    assert_eq!((batch.group.as_str(), batch.stream.as_str()), ("/waggle/requests", "backend-flask"));
    assert_eq!(batch.events[0].timestamp_ms, NOW_MS);
}

#[test]
fn each_captured_flask_request_becomes_one_access_line() {
    // The OTLP/HTTP body the Python SDK with the Flask instrumentation sent after four
    // `curl /api/activities/home` (from testdata/captured).
    let body = include_bytes!("../../../../tests/data/run1_004_otlp_http_v1_traces.bin");
    let request = ExportTraceServiceRequest::decode(body.as_slice()).expect("the capture is a trace request");
    let span_end = request
        .resource_spans
        .iter()
        .flat_map(|resource| &resource.scope_spans)
        .flat_map(|scope| &scope.spans)
        .filter(|span| span.kind == SpanKind::Server as i32)
        .map(|span| span_timestamp_ms(span, 0))
        .max()
        .expect("the capture has a server span");

    let prepared = request_log(MessageFormat::Raw).prepare(&[&request], at_ms(span_end));

    let batch = &prepared.batches[0];
    assert_eq!(batch.stream, "backend-flask");
    assert_eq!(batch.events.len(), 4);
    assert_eq!(
        batch.events[0].message,
        r#"127.0.0.1 "GET /api/activities/home" 200 8.036 ms trace_id=1345943d5fea8ba44f244114526400aa"#
    );
}
