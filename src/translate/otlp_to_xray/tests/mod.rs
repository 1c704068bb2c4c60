//! Tests of the OTLP → X-Ray translation, one behaviour per test, grouped by rule. The
//! helpers build spans the way SDKs send them and read the documents back as JSON.

mod annotations;
mod aws;
mod cause;
mod http;
mod ids;
mod kinds;
mod metadata;
mod names;
mod robustness;
mod round_trip;
mod size;
mod speed;
mod sql;
mod stacks;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use super::{Translated, XrayTranslation};

/// `1-5f84c7a1-e7d1852db8c4fd35d88bf49a` as bytes.
pub(super) const TRACE_ID: [u8; 16] =
    [0x5f, 0x84, 0xc7, 0xa1, 0xe7, 0xd1, 0x85, 0x2d, 0xb8, 0xc4, 0xfd, 0x35, 0xd8, 0x8b, 0xf4, 0x9a];
pub(super) const TRACE_ID_TEXT: &str = "1-5f84c7a1-e7d1852db8c4fd35d88bf49a";
pub(super) const SPAN_ID: [u8; 8] = [0x62, 0x26, 0x46, 0x7e, 0x3f, 0x84, 0x55, 0x02];
pub(super) const SPAN_ID_TEXT: &str = "6226467e3f845502";
pub(super) const PARENT_ID: [u8; 8] = [0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0xd8];
pub(super) const PARENT_ID_TEXT: &str = "53995c3f42cd8ad8";
/// 2016-11-04T21:02:41.271Z, with a duration of 178 ms.
pub(super) const START_NANOS: u64 = 1_478_293_361_271_000_000;
pub(super) const END_NANOS: u64 = 1_478_293_361_449_000_000;

pub(super) fn string(text: &str) -> Value {
    Value::StringValue(text.to_owned())
}

pub(super) fn strings(texts: &[&str]) -> Value {
    Value::ArrayValue(ArrayValue { values: texts.iter().map(|text| any(string(text))).collect() })
}

pub(super) fn any(value: Value) -> AnyValue {
    AnyValue { value: Some(value) }
}

pub(super) fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(any(value)), ..Default::default() }
}

pub(super) fn kvlist(entries: Vec<KeyValue>) -> Value {
    Value::KvlistValue(KeyValueList { values: entries })
}

/// A root span of `kind` with `attributes`.
pub(super) fn span(kind: SpanKind, attributes: Vec<KeyValue>) -> Span {
    Span {
        trace_id: TRACE_ID.to_vec(),
        span_id: SPAN_ID.to_vec(),
        name: "GET /api/cart".to_owned(),
        kind: kind as i32,
        start_time_unix_nano: START_NANOS,
        end_time_unix_nano: END_NANOS,
        attributes,
        ..Default::default()
    }
}

/// A span of `kind` with a parent.
pub(super) fn child(kind: SpanKind, attributes: Vec<KeyValue>) -> Span {
    Span { parent_span_id: PARENT_ID.to_vec(), ..span(kind, attributes) }
}

pub(super) fn with_status(mut span: Span, code: StatusCode, message: &str) -> Span {
    span.status = Some(Status { code: code as i32, message: message.to_owned() });
    span
}

pub(super) fn exception_event(attributes: Vec<KeyValue>) -> Event {
    Event { time_unix_nano: END_NANOS, name: "exception".to_owned(), attributes, dropped_attributes_count: 0 }
}

pub(super) fn resource_spans(resource: Vec<KeyValue>, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource { attributes: resource, ..Default::default() }),
        scope_spans: vec![ScopeSpans { scope: None, spans, schema_url: String::new() }],
        schema_url: String::new(),
    }
}

/// "Now" for the tests: 2016-11-05, a day after the test trace id's epoch.
pub(super) fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_478_380_000)
}

pub(super) fn translate_with(translation: &XrayTranslation, resource: Vec<KeyValue>, spans: Vec<Span>) -> Translated {
    translation.translate(&[resource_spans(resource, spans)], now())
}

/// The one document made from `span` (default settings, no resource), as JSON.
pub(super) fn document(span: Span) -> serde_json::Value {
    document_with(&XrayTranslation::default(), vec![], span)
}

/// The one document made from `span` under `resource`, as JSON.
pub(super) fn document_in(resource: Vec<KeyValue>, span: Span) -> serde_json::Value {
    document_with(&XrayTranslation::default(), resource, span)
}

pub(super) fn document_with(translation: &XrayTranslation, resource: Vec<KeyValue>, span: Span) -> serde_json::Value {
    let translated = translate_with(translation, resource, vec![span]);
    assert!(translated.rejected.is_empty(), "rejected: {:?}", translated.rejected);
    assert_eq!(translated.documents.len(), 1);
    parse(&translated.documents[0].json)
}

pub(super) fn parse(json: &[u8]) -> serde_json::Value {
    match serde_json::from_slice(json) {
        Ok(value) => value,
        Err(error) => panic!("not JSON ({error}): {}", String::from_utf8_lossy(json)),
    }
}
