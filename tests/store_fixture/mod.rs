//! A local store in a temporary directory for the search and Jaeger API tests: OTLP batches
//! written through the real `LocalStore` exporter, read back through the admin routes.

#![allow(dead_code)] // each test file uses its own subset

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use serde_json::Value;
use tower::ServiceExt;
use waggle::destination::Exporter;
use waggle::destination::local::LocalStore;
use waggle::model::Batch;
use waggle::store::{StoreOptions, StoreReader, store_path};

const ONE_MIB: u64 = 1024 * 1024;

/// An open store in its own temporary directory (removed after the store closes).
pub(crate) struct Store {
    store: LocalStore,
    pub reader: StoreReader,
    _dir: tempfile::TempDir,
}

impl Store {
    pub(crate) fn open() -> Store {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = StoreOptions { max_bytes: 16 * ONE_MIB, ..StoreOptions::default() };
        let (store, reader) = LocalStore::open(&store_path(dir.path()), options).expect("store opens");
        Store { store, reader, _dir: dir }
    }

    /// Builds and writes one batch; every item must be accepted.
    pub(crate) async fn write(&self, batch: Batch) {
        let built = self.store.build(batch.signal(), &[Arc::new(batch)]);
        assert!(built.rejected.is_empty(), "rejected: {:?}", built.rejected);
        for mut request in built.requests {
            let items = <LocalStore as Exporter>::items(&request);
            let sent = self.store.send(&mut request).await.expect("write succeeds");
            assert_eq!(sent.accepted, items);
        }
    }

    /// The admin port's store routes (`/api/...` and `/jaeger/api/...`).
    pub(crate) fn api(&self) -> Router {
        waggle::admin::store_routes(self.reader.clone())
    }

    /// `GET uri` on the store routes: the status and the body as JSON.
    pub(crate) async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let request = Request::get(uri).body(Body::empty()).expect("valid request");
        let response = self.api().oneshot(request).await.expect("router answers");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body reads");
        let json =
            serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
        (status, json)
    }

    /// `GET uri` that must answer 200; its body.
    pub(crate) async fn get_ok(&self, uri: &str) -> Value {
        let (status, body) = self.get(uri).await;
        assert_eq!(status, StatusCode::OK, "GET {uri}: {body}");
        body
    }
}

/// 2023-11-14T22:13:20Z in unix nanos; test times are milliseconds after it.
pub(crate) const BASE_NANOS: u64 = 1_700_000_000_000_000_000;

pub(crate) fn at_ms(ms: u64) -> u64 {
    BASE_NANOS + ms * 1_000_000
}

pub(crate) fn trace_hex(trace: u8) -> String {
    format!("{trace:02x}").repeat(16)
}

pub(crate) fn span_hex(span: u8) -> String {
    format!("{span:02x}").repeat(8)
}

pub(crate) fn any(value: Any) -> AnyValue {
    AnyValue { value: Some(value) }
}

pub(crate) fn kv(key: &str, value: Any) -> KeyValue {
    KeyValue { key: key.into(), value: Some(any(value)), ..Default::default() }
}

pub(crate) fn text(key: &str, value: &str) -> KeyValue {
    kv(key, Any::StringValue(value.into()))
}

pub(crate) fn resource(service: &str) -> Resource {
    Resource { attributes: vec![text("service.name", service)], ..Default::default() }
}

/// A server span of trace `[trace; 16]` with id `[id; 8]`, from `start_ms` to `end_ms`.
pub(crate) fn span(trace: u8, id: u8, parent: Option<u8>, name: &str, start_ms: u64, end_ms: u64) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|parent| vec![parent; 8]).unwrap_or_default(),
        name: name.into(),
        kind: 2,
        start_time_unix_nano: at_ms(start_ms),
        end_time_unix_nano: at_ms(end_ms),
        ..Default::default()
    }
}

/// `span` with an error status.
pub(crate) fn failed(mut span: Span) -> Span {
    span.status = Some(Status { message: "it broke".into(), code: 2 });
    span
}

/// `span` with these attributes.
pub(crate) fn with_attributes(mut span: Span, attributes: Vec<KeyValue>) -> Span {
    span.attributes = attributes;
    span
}

/// One batch of `spans` under one resource.
pub(crate) fn traces_of(resource: Resource, spans: Vec<Span>) -> Batch {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "test-scope".into(),
                    version: "1.2.3".into(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    Batch::traces(request, 0)
}

pub(crate) fn traces(service: &str, spans: Vec<Span>) -> Batch {
    traces_of(resource(service), spans)
}

/// An INFO log record at `time_ms` with a string body.
pub(crate) fn log_record(time_ms: u64, body: &str) -> LogRecord {
    LogRecord {
        time_unix_nano: at_ms(time_ms),
        observed_time_unix_nano: at_ms(time_ms),
        severity_number: 9,
        severity_text: "INFO".into(),
        body: Some(any(Any::StringValue(body.into()))),
        ..Default::default()
    }
}

/// `record` with this severity.
pub(crate) fn severity(mut record: LogRecord, number: i32, text: &str) -> LogRecord {
    record.severity_number = number;
    record.severity_text = text.into();
    record
}

/// `record` in trace `[trace; 16]`, span `[span; 8]`.
pub(crate) fn in_trace(mut record: LogRecord, trace: u8, span: u8) -> LogRecord {
    record.trace_id = vec![trace; 16];
    record.span_id = vec![span; 8];
    record
}

pub(crate) fn logs(service: &str, log_records: Vec<LogRecord>) -> Batch {
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource(service)),
            scope_logs: vec![ScopeLogs { scope: None, log_records, schema_url: String::new() }],
            schema_url: String::new(),
        }],
    };
    Batch::logs(request, 0)
}

/// The `trace_id`s of an `/api/traces` answer, in order.
pub(crate) fn listed_ids(body: &Value) -> Vec<String> {
    body["traces"].as_array().expect("a traces list").iter().map(|t| t["trace_id"].as_str().unwrap().into()).collect()
}

/// The bodies of an `/api/logs` answer, in order.
pub(crate) fn listed_bodies(body: &Value) -> Vec<String> {
    body["logs"].as_array().expect("a logs list").iter().map(|l| l["body"].as_str().unwrap().into()).collect()
}
