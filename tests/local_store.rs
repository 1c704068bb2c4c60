//! The embedded local store end to end: batches written through the exporter, read back through
//! `StoreReader` and the query API, eviction under the size bound, and start-up failures.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use serde_json::{Value, json};
use tower::ServiceExt;
use waggle::admin::store_api;
use waggle::destination::Exporter;
use waggle::destination::local::LocalStore;
use waggle::model::{Batch, Signal, XraySegment};
use waggle::store::{StoreError, StoreOptions, StoreReader, store_path};

// ---------------------------------------------------------------------------------------------
// Harness

/// A directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let unique = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("waggle-store-test-{}-{unique}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An open store in its own directory. Fields drop in order: the store closes before the
/// directory goes.
struct Harness {
    store: LocalStore,
    reader: StoreReader,
    dir: TempDir,
}

/// Options with small blocks, so a few writes make several blocks to evict.
fn small_blocks(max_bytes: u64, block_rows: usize) -> StoreOptions {
    StoreOptions { max_bytes, block_rows, ..StoreOptions::default() }
}

impl Harness {
    fn open(name: &str, max_size: u64) -> Harness {
        Harness::with_options(name, StoreOptions { max_bytes: max_size, ..StoreOptions::default() })
    }

    fn with_options(name: &str, options: StoreOptions) -> Harness {
        let dir = TempDir::new(name);
        let (store, reader) = LocalStore::open(&store_path(&dir.0), options).expect("store opens");
        Harness { store, reader, dir }
    }

    /// Builds and sends one batch; every item must be accepted.
    async fn write(&self, batch: Batch) {
        let signal = batch.signal();
        let built = self.store.build(signal, &[Arc::new(batch)]);
        assert!(built.rejected.is_empty(), "rejected: {:?}", built.rejected);
        for mut request in built.requests {
            let items = <LocalStore as Exporter>::items(&request);
            let sent = loop {
                match self.store.send(&mut request).await {
                    Ok(sent) => break sent,
                    // The store is behind: as the lane would, wait for it and try again.
                    Err(waggle::destination::ExportError::Retryable { .. }) => self.store.wait_for_writes(),
                    Err(error) => panic!("write fails: {error:?}"),
                }
            };
            assert_eq!(sent.accepted, items);
        }
    }

    fn api(&self) -> Router {
        store_api::routes(self.reader.clone())
    }

    /// Trace ids in the recent-traces list (up to 1000), newest first.
    async fn listed_traces(&self) -> Vec<String> {
        let traces = self.reader.recent_traces(None, 1000).await.expect("listing works");
        traces.into_iter().map(|trace| trace.trace_id).collect()
    }
}

async fn get(api: &Router, uri: &str) -> (StatusCode, Value) {
    let request = Request::get(uri).body(Body::empty()).expect("valid request");
    let response = api.clone().oneshot(request).await.expect("router answers");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body reads");
    let json = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
    (status, json)
}

// ---------------------------------------------------------------------------------------------
// Telemetry builders

/// 2023-11-14T22:13:20Z in unix nanos; test times are milliseconds after it.
const BASE_NANOS: u64 = 1_700_000_000_000_000_000;

fn at_ms(ms: u64) -> u64 {
    BASE_NANOS + ms * 1_000_000
}

fn trace_hex(trace: u8) -> String {
    format!("{trace:02x}").repeat(16)
}

fn span_hex(span: u8) -> String {
    format!("{span:02x}").repeat(8)
}

fn any(value: Any) -> AnyValue {
    AnyValue { value: Some(value) }
}

fn kv(key: &str, value: Any) -> KeyValue {
    KeyValue { key: key.into(), value: Some(any(value)), ..Default::default() }
}

fn resource(service: &str) -> Resource {
    Resource { attributes: vec![kv("service.name", Any::StringValue(service.into()))], ..Default::default() }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope { name: "test-scope".into(), version: "1.2.3".into(), ..Default::default() }
}

/// A server span of trace `[trace; 16]` with id `[id; 8]`, from `start_ms` to `end_ms`.
fn span(trace: u8, id: u8, parent: Option<u8>, name: &str, start_ms: u64, end_ms: u64) -> Span {
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

fn traces(service: &str, spans: Vec<Span>) -> Batch {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource(service)),
            scope_spans: vec![ScopeSpans { scope: Some(scope()), spans, schema_url: String::new() }],
            schema_url: String::new(),
        }],
    };
    Batch::traces(request, 0)
}

fn log_record(time_ms: u64, body: &str) -> LogRecord {
    LogRecord {
        time_unix_nano: at_ms(time_ms),
        observed_time_unix_nano: at_ms(time_ms + 1),
        severity_number: 9,
        severity_text: "INFO".into(),
        body: Some(any(Any::StringValue(body.into()))),
        ..Default::default()
    }
}

fn logs(service: &str, log_records: Vec<LogRecord>) -> Batch {
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource(service)),
            scope_logs: vec![ScopeLogs { scope: Some(scope()), log_records, schema_url: String::new() }],
            schema_url: String::new(),
        }],
    };
    Batch::logs(request, 0)
}

fn gauge(name: &str, time_ms: u64, value: i64) -> Metric {
    Metric {
        name: name.into(),
        description: format!("{name} description"),
        unit: "1".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                time_unix_nano: at_ms(time_ms),
                value: Some(number_data_point::Value::AsInt(value)),
                ..Default::default()
            }],
        })),
        ..Default::default()
    }
}

fn metrics(service: &str, metrics: Vec<Metric>) -> Batch {
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource(service)),
            scope_metrics: vec![ScopeMetrics { scope: Some(scope()), metrics, schema_url: String::new() }],
            schema_url: String::new(),
        }],
    };
    Batch::metrics(request, 0)
}

const ONE_MIB: u64 = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Spans

#[tokio::test]
async fn spans_round_trip_with_parent_and_child() {
    let harness = Harness::open("parent-child", ONE_MIB);
    let mut child = span(1, 2, Some(1), "SELECT users", 10, 30);
    child.kind = 3;
    harness.write(traces("api", vec![child, span(1, 1, None, "GET /users", 0, 50)])).await;

    let trace = harness.reader.trace([1; 16]).await.expect("query works").expect("trace found");
    assert_eq!(trace.trace_id, trace_hex(1));
    let spans = &trace.spans;
    assert_eq!(spans.len(), 2);
    assert_eq!((spans[0].name.as_str(), spans[1].name.as_str()), ("GET /users", "SELECT users"));
    assert_eq!(spans[0].span_id, span_hex(1));
    assert_eq!(spans[0].parent_span_id, None);
    assert_eq!(spans[1].parent_span_id, Some(span_hex(1)));
    assert_eq!((spans[0].kind, spans[1].kind), ("server", "client"));
    assert_eq!(spans[1].start_time_unix_nano, at_ms(10));
    assert_eq!(spans[1].end_time_unix_nano, at_ms(30));
    assert_eq!(spans[1].duration_ms, 20.0);
    assert_eq!(spans[1].service.as_deref(), Some("api"));
    assert_eq!(spans[1].resource, json!({"service.name": "api"}));
    assert_eq!((spans[1].scope.name.as_str(), spans[1].scope.version.as_str()), ("test-scope", "1.2.3"));
}

#[tokio::test]
async fn attributes_of_every_type_come_back_as_natural_json() {
    let harness = Harness::open("attribute-types", ONE_MIB);
    let mut root = span(1, 1, None, "op", 0, 1);
    root.attributes = vec![
        kv("string", Any::StringValue("text".into())),
        kv("int", Any::IntValue(-9_007_199_254_740_993)),
        kv("double", Any::DoubleValue(2.5)),
        kv("bool", Any::BoolValue(true)),
        kv(
            "array",
            Any::ArrayValue(ArrayValue { values: vec![any(Any::IntValue(1)), any(Any::StringValue("two".into()))] }),
        ),
        kv(
            "kvlist",
            Any::KvlistValue(KeyValueList {
                values: vec![
                    kv("inner", Any::BoolValue(false)),
                    kv("deeper", Any::KvlistValue(KeyValueList::default())),
                ],
            }),
        ),
        kv("bytes", Any::BytesValue(vec![0xde, 0xad, 0xbe, 0xef, 0xff])),
        KeyValue { key: "empty".into(), value: None, ..Default::default() },
    ];
    harness.write(traces("api", vec![root])).await;

    let trace = harness.reader.trace([1; 16]).await.expect("query works").expect("trace found");
    assert_eq!(
        trace.spans[0].attributes,
        json!({
            "string": "text",
            "int": -9_007_199_254_740_993_i64,
            "double": 2.5,
            "bool": true,
            "array": [1, "two"],
            "kvlist": {"inner": false, "deeper": {}},
            "bytes": "3q2+7/8=",
            "empty": null,
        })
    );
}

#[tokio::test]
async fn events_links_and_status_round_trip() {
    let harness = Harness::open("events-status", ONE_MIB);
    let mut root = span(1, 1, None, "op", 0, 5);
    root.events = vec![Event {
        time_unix_nano: at_ms(2),
        name: "exception".into(),
        attributes: vec![kv("exception.message", Any::StringValue("boom".into()))],
        ..Default::default()
    }];
    root.links = vec![Link {
        trace_id: vec![9; 16],
        span_id: vec![8; 8],
        trace_state: "k=v".into(),
        attributes: vec![kv("link.kind", Any::StringValue("follows".into()))],
        ..Default::default()
    }];
    root.status = Some(Status { message: "it broke".into(), code: 2 });
    harness.write(traces("api", vec![root])).await;

    let trace = harness.reader.trace([1; 16]).await.expect("query works").expect("trace found");
    let stored = &trace.spans[0];
    assert_eq!(
        stored.events,
        json!([{"name": "exception", "time_unix_nano": at_ms(2), "attributes": {"exception.message": "boom"}}])
    );
    assert_eq!(
        stored.links,
        json!([{"trace_id": trace_hex(9), "span_id": span_hex(8), "trace_state": "k=v", "attributes": {"link.kind": "follows"}}])
    );
    assert_eq!((stored.status.code, stored.status.message.as_str()), ("error", "it broke"));
}

#[tokio::test]
async fn trace_split_over_requests_is_one_trace() {
    let harness = Harness::open("split-trace", ONE_MIB);
    harness.write(traces("db", vec![span(1, 2, Some(1), "query", 10, 20)])).await;
    harness.write(traces("api", vec![span(1, 1, None, "GET /", 0, 40)])).await;

    let listed = harness.reader.recent_traces(None, 10).await.expect("listing works");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].span_count, 2);
    assert_eq!(listed[0].root_name, "GET /");
    assert_eq!(listed[0].service.as_deref(), Some("api"));
    assert_eq!(listed[0].start_time_unix_nano, at_ms(0));
    assert_eq!(listed[0].duration_ms, 40.0);
    assert_eq!(harness.reader.stats().traces, 1);
}

#[tokio::test]
async fn trace_without_a_root_is_named_after_its_earliest_span() {
    let harness = Harness::open("no-root", ONE_MIB);
    harness
        .write(traces("api", vec![span(1, 3, Some(9), "later", 20, 30), span(1, 2, Some(9), "earliest", 5, 10)]))
        .await;

    let listed = harness.reader.recent_traces(None, 10).await.expect("listing works");
    assert_eq!(listed[0].root_name, "earliest");
}

#[tokio::test]
async fn spans_with_invalid_ids_are_rejected_and_the_rest_stored() {
    let harness = Harness::open("invalid-ids", ONE_MIB);
    let mut no_trace_id = span(1, 1, None, "no trace id", 0, 1);
    no_trace_id.trace_id.clear();
    let mut short_span_id = span(1, 2, None, "short span id", 0, 1);
    short_span_id.span_id = vec![1, 2, 3];
    let mut zero_trace_id = span(0, 3, None, "zero trace id", 0, 1);
    zero_trace_id.trace_id = vec![0; 16];
    let batch = traces("api", vec![no_trace_id, short_span_id, zero_trace_id, span(2, 4, None, "fine", 0, 1)]);

    let built = harness.store.build(Signal::Traces, &[Arc::new(batch)]);
    assert_eq!(built.requests.len(), 1);
    let mut request = built.requests.into_iter().next().expect("one request");
    let sent = harness.store.send(&mut request).await.expect("write succeeds");

    assert_eq!(sent.accepted, 1);
    assert_eq!(sent.rejected.len(), 1);
    assert_eq!((sent.rejected[0].items, sent.rejected[0].reason), (3, waggle::model::LossReason::Invalid));
    assert!(sent.rejected[0].detail.contains("no trace id"), "{}", sent.rejected[0].detail);
    assert_eq!(harness.listed_traces().await, [trace_hex(2)]);
}

#[tokio::test]
async fn a_huge_attribute_is_stored_whole() {
    let harness = Harness::open("huge-attribute", 64 * ONE_MIB);
    let huge = "x".repeat(4 * ONE_MIB as usize);
    let mut root = span(1, 1, None, "op", 0, 1);
    root.attributes = vec![kv("huge", Any::StringValue(huge.clone()))];
    harness.write(traces("api", vec![root])).await;

    let trace = harness.reader.trace([1; 16]).await.expect("query works").expect("trace found");
    assert_eq!(trace.spans[0].attributes["huge"].as_str().map(str::len), Some(huge.len()));
}

#[tokio::test]
async fn an_xray_segment_is_stored_as_a_span_with_its_ids_name_and_annotations() {
    let harness = Harness::open("xray-segment", ONE_MIB);
    let body = r#"{"name":"checkout","id":"70de5b6f19ff9a0a","trace_id":"1-581cf771-a006649127e371903a2de979","start_time":1478293361.25,"end_time":1478293361.5,"annotations":{"customer":"alice","items":3}}"#;
    let segment = XraySegment {
        body: body.as_bytes().to_vec().into(),
        trace_id: "1-581cf771-a006649127e371903a2de979".into(),
        id: "70de5b6f19ff9a0a".into(),
    };
    harness.write(Batch::xray(vec![segment])).await;

    let (status, trace) = get(&harness.api(), "/api/traces/581cf771a006649127e371903a2de979").await;
    assert_eq!(status, StatusCode::OK, "{trace}");
    assert_eq!(trace["trace_id"], "581cf771a006649127e371903a2de979");
    let spans = trace["spans"].as_array().expect("spans");
    assert_eq!(spans.len(), 1);
    let span = &spans[0];
    assert_eq!(span["span_id"], "70de5b6f19ff9a0a");
    assert_eq!(span["name"], "checkout");
    assert_eq!(span["start_time_unix_nano"], 1_478_293_361_250_000_000_u64);
    assert_eq!(span["end_time_unix_nano"], 1_478_293_361_500_000_000_u64);
    assert_eq!(span["attributes"]["customer"], "alice");
    assert_eq!(span["attributes"]["items"], 3);
}

// ---------------------------------------------------------------------------------------------
// Trace listing

#[tokio::test]
async fn trace_listing_is_newest_first() {
    let harness = Harness::open("listing-order", ONE_MIB);
    harness.write(traces("api", vec![span(2, 1, None, "middle", 200, 210)])).await;
    harness.write(traces("api", vec![span(3, 1, None, "newest", 300, 310)])).await;
    harness.write(traces("api", vec![span(1, 1, None, "oldest", 100, 110)])).await;

    assert_eq!(harness.listed_traces().await, [trace_hex(3), trace_hex(2), trace_hex(1)]);
}

#[tokio::test]
async fn trace_listing_respects_the_limit() {
    let harness = Harness::open("listing-limit", ONE_MIB);
    for trace in 1..=5u8 {
        harness.write(traces("api", vec![span(trace, 1, None, "op", u64::from(trace) * 10, 1000)])).await;
    }

    let listed = harness.reader.recent_traces(None, 2).await.expect("listing works");
    let ids: Vec<String> = listed.into_iter().map(|trace| trace.trace_id).collect();
    assert_eq!(ids, [trace_hex(5), trace_hex(4)]);
}

#[tokio::test]
async fn trace_listing_filters_on_any_span_of_the_service() {
    let harness = Harness::open("listing-service", ONE_MIB);
    harness.write(traces("api", vec![span(1, 1, None, "GET /a", 0, 10)])).await;
    harness.write(traces("api", vec![span(2, 1, None, "GET /b", 20, 30)])).await;
    harness.write(traces("db", vec![span(2, 2, Some(1), "query", 21, 25)])).await;
    harness.write(traces("db", vec![span(3, 1, None, "vacuum", 40, 50)])).await;

    let listed = harness.reader.recent_traces(Some("db".into()), 10).await.expect("listing works");
    let ids: Vec<&str> = listed.iter().map(|trace| trace.trace_id.as_str()).collect();
    assert_eq!(ids, [trace_hex(3), trace_hex(2)]);
    // The listing names the root's service, not the filter's.
    assert_eq!(listed[1].service.as_deref(), Some("api"));
}

#[tokio::test]
async fn trace_listing_names_every_service_of_a_trace_once() {
    let harness = Harness::open("listing-services", ONE_MIB);
    harness.write(traces("web", vec![span(1, 1, None, "GET /", 0, 10)])).await;
    harness.write(traces("db", vec![span(1, 2, Some(1), "query", 1, 3), span(1, 3, Some(1), "query", 4, 6)])).await;
    harness.write(traces("api", vec![span(1, 4, Some(1), "call", 6, 8)])).await;

    let listed = harness.reader.recent_traces(None, 10).await.expect("listing works");

    assert_eq!(listed[0].services, ["api", "db", "web"]);
}

// ---------------------------------------------------------------------------------------------
// Logs and metrics

#[tokio::test]
async fn logs_round_trip() {
    let harness = Harness::open("logs", ONE_MIB);
    let mut record = log_record(5, "unused");
    record.body =
        Some(any(Any::KvlistValue(KeyValueList { values: vec![kv("event", Any::StringValue("login".into()))] })));
    record.attributes = vec![kv("user.id", Any::IntValue(42))];
    record.trace_id = vec![7; 16];
    record.span_id = vec![6; 8];
    harness.write(logs("auth", vec![record])).await;

    let stored = harness.reader.recent_logs(None, 10).await.expect("query works");
    assert_eq!(stored.len(), 1);
    let log = &stored[0];
    assert_eq!((log.time_unix_nano, log.observed_time_unix_nano), (at_ms(5), at_ms(6)));
    assert_eq!((log.severity_number, log.severity_text.as_str()), (9, "INFO"));
    assert_eq!(log.body, json!({"event": "login"}));
    assert_eq!(log.attributes, json!({"user.id": 42}));
    assert_eq!(log.resource, json!({"service.name": "auth"}));
    assert_eq!(log.service.as_deref(), Some("auth"));
    assert_eq!(log.trace_id.as_deref(), Some(trace_hex(7).as_str()));
    assert_eq!(log.span_id.as_deref(), Some(span_hex(6).as_str()));
}

#[tokio::test]
async fn logs_without_ids_have_null_ids() {
    let harness = Harness::open("logs-no-ids", ONE_MIB);
    harness.write(logs("auth", vec![log_record(5, "plain")])).await;

    let stored = harness.reader.recent_logs(None, 10).await.expect("query works");
    assert_eq!((stored[0].trace_id.as_deref(), stored[0].span_id.as_deref()), (None, None));
    assert_eq!(stored[0].body, json!("plain"));
}

#[tokio::test]
async fn log_listing_is_newest_first_and_filters_by_service() {
    let harness = Harness::open("logs-listing", ONE_MIB);
    harness.write(logs("a", vec![log_record(10, "a-10"), log_record(30, "a-30")])).await;
    harness.write(logs("b", vec![log_record(20, "b-20")])).await;

    let all = harness.reader.recent_logs(None, 10).await.expect("query works");
    let bodies: Vec<&Value> = all.iter().map(|log| &log.body).collect();
    assert_eq!(bodies, [&json!("a-30"), &json!("b-20"), &json!("a-10")]);
    let only_a = harness.reader.recent_logs(Some("a".into()), 1).await.expect("query works");
    assert_eq!(only_a.iter().map(|log| &log.body).collect::<Vec<_>>(), [&json!("a-30")]);
}

#[tokio::test]
async fn metrics_round_trip() {
    let harness = Harness::open("metrics", ONE_MIB);
    let sum = Metric {
        name: "requests".into(),
        unit: "{request}".into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![NumberDataPoint {
                attributes: vec![kv("route", Any::StringValue("/".into()))],
                start_time_unix_nano: at_ms(0),
                time_unix_nano: at_ms(10),
                value: Some(number_data_point::Value::AsDouble(3.5)),
                ..Default::default()
            }],
            aggregation_temporality: 2,
            is_monotonic: true,
        })),
        ..Default::default()
    };
    let histogram = Metric {
        name: "latency".into(),
        unit: "ms".into(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                time_unix_nano: at_ms(20),
                count: 3,
                sum: Some(12.0),
                bucket_counts: vec![1, 2, 0],
                explicit_bounds: vec![5.0, 10.0],
                min: Some(1.0),
                max: None,
                ..Default::default()
            }],
            aggregation_temporality: 1,
        })),
        ..Default::default()
    };
    harness.write(metrics("api", vec![sum, histogram, gauge("queue.depth", 15, 7)])).await;

    let stored = harness.reader.recent_metrics(None, 10).await.expect("query works");
    let shapes: Vec<(&str, &str, Option<&str>, Option<bool>)> = stored
        .iter()
        .map(|m| (m.name.as_str(), m.metric_type.as_str(), m.aggregation_temporality.as_deref(), m.is_monotonic))
        .collect();
    assert_eq!(
        shapes,
        [
            ("latency", "histogram", Some("delta"), None),
            ("queue.depth", "gauge", None, None),
            ("requests", "sum", Some("cumulative"), Some(true)),
        ]
    );
    assert_eq!(
        stored[0].data_points,
        json!([{
            "attributes": {}, "start_time_unix_nano": 0, "time_unix_nano": at_ms(20), "count": 3, "sum": 12.0,
            "min": 1.0, "max": null, "bucket_counts": [1, 2, 0], "explicit_bounds": [5.0, 10.0],
        }])
    );
    assert_eq!(
        stored[2].data_points,
        json!([{"attributes": {"route": "/"}, "start_time_unix_nano": at_ms(0), "time_unix_nano": at_ms(10), "value": 3.5}])
    );
    assert_eq!(stored[1].data_points[0]["value"], json!(7));
    assert_eq!(stored[2].service.as_deref(), Some("api"));
    assert_eq!(stored[2].unit, "{request}");
}

#[tokio::test]
async fn metric_listing_filters_by_name() {
    let harness = Harness::open("metrics-name", ONE_MIB);
    harness.write(metrics("api", vec![gauge("a", 10, 1), gauge("b", 20, 2), gauge("a", 30, 3)])).await;

    let only_a = harness.reader.recent_metrics(Some("a".into()), 10).await.expect("query works");
    let values: Vec<&Value> = only_a.iter().map(|m| &m.data_points[0]["value"]).collect();
    assert_eq!(values, [&json!(3), &json!(1)]);
}

// ---------------------------------------------------------------------------------------------
// Size bound and eviction

/// The id of [`padded_trace`] number `trace`.
fn padded_trace_id(trace: u16) -> [u8; 16] {
    let mut id = [0xab; 16];
    id[14..].copy_from_slice(&trace.to_be_bytes());
    id
}

/// 300 characters that do not compress away: each write adds real bytes to the store.
fn noise(seed: u64) -> String {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..300)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'a' + (state % 26) as u8)
        })
        .collect()
}

/// A one-span trace with a padding attribute of incompressible text.
fn padded_trace(trace: u16, start_ms: u64) -> Batch {
    let mut root = span(0, 1, None, "op", start_ms, start_ms + 1);
    root.trace_id = padded_trace_id(trace).to_vec();
    root.attributes = vec![kv("padding", Any::StringValue(noise(u64::from(trace))))];
    traces("api", vec![root])
}

fn padded_trace_hex(trace: u16) -> String {
    format!("{}{trace:04x}", "ab".repeat(14))
}

fn padded_log(index: u16) -> Batch {
    logs("api", vec![log_record(u64::from(index), &format!("log-{index:05}-{}", noise(u64::from(index))))])
}

fn padded_metric(index: u16) -> Batch {
    let mut metric = gauge(&format!("metric-{index:05}"), u64::from(index), 1);
    metric.description = noise(u64::from(index));
    metrics("api", vec![metric])
}

/// Bytes of the store's block files.
fn block_file_bytes(directory: &Path) -> u64 {
    std::fs::read_dir(directory)
        .expect("store directory lists")
        .flatten()
        .filter(|entry| entry.path().extension().is_some_and(|extension| extension == "block"))
        .map(|entry| entry.metadata().expect("block file has metadata").len())
        .sum()
}

#[tokio::test]
async fn eviction_keeps_the_store_under_its_bound() {
    let harness = Harness::with_options("bound", small_blocks(ONE_MIB, 100));
    for trace in 0..6000u16 {
        harness.write(padded_trace(trace, u64::from(trace))).await;
    }
    harness.store.flush();

    let stats = harness.reader.stats();
    assert!(stats.evicted_spans > 0, "{stats:?}");
    assert!(stats.bytes <= ONE_MIB, "{stats:?}");
    assert_eq!(block_file_bytes(&store_path(&harness.dir.0)), stats.bytes);
    assert_eq!(stats.spans + stats.evicted_spans, 6000);
}

#[tokio::test]
async fn eviction_removes_the_oldest_traces_first() {
    const WRITES: u16 = 6000;
    let harness = Harness::with_options("evict-oldest", small_blocks(ONE_MIB, 100));
    for trace in 0..WRITES {
        harness.write(padded_trace(trace, u64::from(trace))).await;
    }
    harness.store.flush();

    let stats = harness.reader.stats();
    // Whole blocks of 100 went, oldest first: what is left is the newest traces.
    let survivors = stats.spans as u16;
    assert_eq!(survivors % 100, 0, "{stats:?}");
    let oldest_survivor = WRITES - survivors;
    assert!(harness.reader.trace(padded_trace_id(oldest_survivor)).await.expect("query works").is_some());
    assert!(harness.reader.trace(padded_trace_id(oldest_survivor - 1)).await.expect("query works").is_none());
    let newest: Vec<String> = (oldest_survivor..WRITES).rev().take(1000).map(padded_trace_hex).collect();
    assert_eq!(harness.listed_traces().await, newest);
}

#[tokio::test]
async fn eviction_takes_the_oldest_blocks_of_every_signal() {
    let harness = Harness::with_options("evict-across", small_blocks(ONE_MIB, 50));
    for index in 0..9000u16 {
        match index % 3 {
            0 => harness.write(padded_trace(index, u64::from(index))).await,
            1 => harness.write(padded_log(index)).await,
            _ => harness.write(padded_metric(index)).await,
        }
    }
    harness.store.flush();

    let stats = harness.reader.stats();
    assert!(stats.evicted_spans > 0 && stats.evicted_logs > 0 && stats.evicted_metrics > 0, "{stats:?}");
    // Each signal keeps its newest rows, with no gaps.
    let newest_traces: Vec<String> =
        (0..9000u16).rev().filter(|index| index % 3 == 0).take(stats.spans as usize).map(padded_trace_hex).collect();
    let mut listed = harness.listed_traces().await;
    listed.truncate(newest_traces.len());
    assert_eq!(listed, newest_traces.into_iter().take(1000).collect::<Vec<_>>());
    let logs = harness.reader.recent_logs(None, 10_000).await.expect("query works");
    let expected_logs: Vec<Value> = (0..9000u16)
        .rev()
        .filter(|index| index % 3 == 1)
        .take(stats.logs as usize)
        .map(|index| json!(format!("log-{index:05}-{}", noise(u64::from(index)))))
        .collect();
    assert_eq!(logs.into_iter().map(|log| log.body).collect::<Vec<_>>(), expected_logs);
    let metrics = harness.reader.recent_metrics(None, 10_000).await.expect("query works");
    let expected_metrics: Vec<String> = (0..9000u16)
        .rev()
        .filter(|index| index % 3 == 2)
        .take(stats.metrics as usize)
        .map(|index| format!("metric-{index:05}"))
        .collect();
    assert_eq!(metrics.into_iter().map(|metric| metric.name).collect::<Vec<_>>(), expected_metrics);
}

#[tokio::test]
async fn eviction_takes_a_trace_whole_with_its_later_spans() {
    let harness = Harness::with_options("evict-whole", small_blocks(ONE_MIB, 2));
    harness.write(padded_trace(0, 0)).await;
    harness.write(padded_trace(1, 1)).await;
    // A late span of the first trace, in the next block.
    let mut late = span(0, 2, Some(1), "late child", 5, 6);
    late.trace_id = padded_trace_id(0).to_vec();
    harness.write(traces("api", vec![late])).await;
    let mut trace = 2u16;
    while harness.reader.stats().evicted_spans == 0 {
        harness.write(padded_trace(trace, u64::from(trace))).await;
        trace += 1;
        harness.store.flush();
    }

    // The first block held traces 0 and 1; trace 0's late span, in a block still stored, is
    // hidden with it.
    assert_eq!(harness.reader.trace(padded_trace_id(0)).await.expect("query works"), None);
    assert_eq!(harness.reader.trace(padded_trace_id(1)).await.expect("query works"), None);
    let listed = harness.listed_traces().await;
    assert!(!listed.contains(&padded_trace_hex(0)), "{listed:?}");
    assert!(listed.contains(&padded_trace_hex(2)), "{listed:?}");
}

#[tokio::test]
async fn stats_count_what_is_stored() {
    let harness = Harness::open("stats", ONE_MIB);
    harness.write(traces("api", vec![span(1, 1, None, "a", 0, 1), span(1, 2, Some(1), "b", 0, 1)])).await;
    harness.write(logs("api", vec![log_record(1, "x"), log_record(2, "y")])).await;
    harness.write(metrics("api", vec![gauge("g", 1, 1)])).await;

    let open = harness.reader.stats();
    assert_eq!((open.traces, open.spans, open.logs, open.metrics), (1, 2, 2, 1));
    assert_eq!((open.max_bytes, open.evicted_bytes, open.bytes, open.blocks), (ONE_MIB, 0, 0, 0));
    assert!(open.buffered_bytes > 0);

    harness.store.flush();
    let sealed = harness.reader.stats();
    assert_eq!((sealed.traces, sealed.spans, sealed.logs, sealed.metrics), (1, 2, 2, 1));
    assert_eq!((sealed.blocks, sealed.buffered_bytes), (3, 0));
    assert_eq!(sealed.bytes, block_file_bytes(&store_path(&harness.dir.0)));
}

#[tokio::test]
async fn reopening_keeps_data_and_stats() {
    let dir = TempDir::new("reopen");
    let path = store_path(&dir.0);
    let (store, reader) = LocalStore::open(&path, StoreOptions::default()).expect("store opens");
    let harness = Harness { store, reader, dir };
    harness.write(traces("api", vec![span(1, 1, None, "a", 0, 1)])).await;
    let Harness { store, reader, dir } = harness;
    drop((store, reader));

    let (_store, reader) = LocalStore::open(&path, StoreOptions::default()).expect("store reopens");
    let stats = reader.stats();
    assert_eq!((stats.spans, stats.traces, stats.blocks), (1, 1, 1), "{stats:?}");
    assert!(reader.trace([1; 16]).await.expect("query works").is_some());
    drop(dir);
}

#[tokio::test]
async fn reopening_with_a_smaller_bound_evicts_at_start() {
    let dir = TempDir::new("reopen-smaller");
    let path = store_path(&dir.0);
    {
        let (store, reader) = LocalStore::open(&path, small_blocks(4 * ONE_MIB, 100)).expect("store opens");
        let harness = Harness { store, reader, dir: TempDir::new("unused") };
        for trace in 0..6000u16 {
            harness.write(padded_trace(trace, u64::from(trace))).await;
        }
    }
    assert!(block_file_bytes(&path) > ONE_MIB);

    let (_store, reader) = LocalStore::open(&path, small_blocks(ONE_MIB, 100)).expect("store reopens");
    let stats = reader.stats();
    assert!(stats.bytes <= ONE_MIB && stats.evicted_spans > 0, "{stats:?}");
    assert!(block_file_bytes(&path) <= ONE_MIB);
}

// ---------------------------------------------------------------------------------------------
// Concurrency and start-up failures

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_run_while_writes_are_in_progress() {
    let harness = Arc::new(Harness::with_options("concurrent", small_blocks(8 * ONE_MIB, 64)));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (harness, stop) = (Arc::clone(&harness), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut written = 0u16;
            while !stop.load(Ordering::Relaxed) && written < 20_000 {
                harness.write(padded_trace(written, u64::from(written))).await;
                written += 1;
            }
            written
        })
    };
    let mut seen = Vec::new();
    for _ in 0..20 {
        let listed = harness.reader.recent_traces(None, 50_000).await.expect("read succeeds during writes");
        assert!(listed.len() >= seen.last().copied().unwrap_or(0), "a read went backwards");
        seen.push(listed.len());
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.expect("writer finishes");
    // The writes went on between the reads, and every one of them is readable at the end.
    assert!(seen[19] > seen[0], "{seen:?}");
    assert_eq!(harness.reader.recent_traces(None, 50_000).await.expect("read works").len(), usize::from(written));
}

#[tokio::test]
async fn a_second_open_of_the_same_store_is_refused() {
    let harness = Harness::open("in-use", ONE_MIB);

    let second = LocalStore::open(&store_path(&harness.dir.0), StoreOptions::default());
    assert!(matches!(second, Err(StoreError::InUse { .. })), "{:?}", second.err());
}

#[tokio::test]
async fn an_unreadable_block_is_set_aside_and_the_rest_served() {
    let dir = TempDir::new("corrupt");
    let path = store_path(&dir.0);
    {
        let (store, reader) = LocalStore::open(&path, StoreOptions::default()).expect("store opens");
        let harness = Harness { store, reader, dir: TempDir::new("unused") };
        harness.write(traces("api", vec![span(1, 1, None, "kept", 0, 1)])).await;
    }
    let garbage = path.join("00000000000000000009.block");
    std::fs::write(&garbage, vec![0x5a; 8192]).expect("garbage written");

    let (_store, reader) = LocalStore::open(&path, StoreOptions::default()).expect("store opens");
    assert!(reader.trace([1; 16]).await.expect("query works").is_some());
    assert!(!garbage.exists());
    assert!(path.join("00000000000000000009.block.corrupt").exists());
}

#[tokio::test]
async fn a_missing_data_directory_is_created() {
    let dir = TempDir::new("nested");
    let path = store_path(&dir.0.join("a").join("b"));

    let opened = LocalStore::open(&path, StoreOptions::default());
    assert!(opened.is_ok(), "{:?}", opened.err());
    assert!(path.exists());
}

// ---------------------------------------------------------------------------------------------
// Query API

#[tokio::test]
async fn api_lists_traces() {
    let harness = Harness::open("api-list", ONE_MIB);
    harness.write(traces("api", vec![span(1, 1, None, "GET /", 0, 25), span(1, 2, Some(1), "db", 5, 10)])).await;

    let (status, body) = get(&harness.api(), "/api/traces?service=api&limit=5").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"traces": [{
            "trace_id": trace_hex(1), "root_name": "GET /", "service": "api", "services": ["api"],
            "start_time_unix_nano": at_ms(0), "duration_ms": 25.0, "span_count": 2,
        }]})
    );
}

#[tokio::test]
async fn api_returns_a_trace_in_the_documented_shape() {
    let harness = Harness::open("api-trace", ONE_MIB);
    let mut root = span(1, 1, None, "GET /", 0, 25);
    root.attributes = vec![kv("http.status_code", Any::IntValue(200))];
    root.status = Some(Status { message: String::new(), code: 1 });
    harness.write(traces("api", vec![root])).await;

    let (status, body) = get(&harness.api(), &format!("/api/traces/{}", trace_hex(1))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"trace_id": trace_hex(1), "spans": [{
            "trace_id": trace_hex(1), "span_id": span_hex(1), "parent_span_id": null, "name": "GET /",
            "kind": "server", "start_time_unix_nano": at_ms(0), "end_time_unix_nano": at_ms(25),
            "duration_ms": 25.0, "service": "api", "attributes": {"http.status_code": 200},
            "resource": {"service.name": "api"}, "scope": {"name": "test-scope", "version": "1.2.3"},
            "status": {"code": "ok", "message": ""}, "events": [], "links": [],
        }], "logs": []})
    );
}

#[tokio::test]
async fn api_finds_a_trace_by_its_xray_id() {
    let harness = Harness::open("api-xray-id", ONE_MIB);
    let mut root = span(0, 1, None, "segment", 0, 1);
    root.trace_id = hex::decode("581cf771a006649127e371903a2de979").expect("hex");
    harness.write(traces("api", vec![root])).await;

    let (status, body) = get(&harness.api(), "/api/traces/1-581CF771-A006649127E371903A2DE979").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["trace_id"], json!("581cf771a006649127e371903a2de979"));
}

#[tokio::test]
async fn api_answers_400_for_a_malformed_trace_id() {
    let harness = Harness::open("api-400-id", ONE_MIB);

    let (status, body) = get(&harness.api(), "/api/traces/not-a-trace-id").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().is_some_and(|error| error.contains("malformed trace id")), "{body}");
}

#[tokio::test]
async fn api_answers_404_for_an_unknown_trace() {
    let harness = Harness::open("api-404", ONE_MIB);

    let (status, body) = get(&harness.api(), &format!("/api/traces/{}", trace_hex(1))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().is_some_and(|error| error.contains("not found")), "{body}");
}

#[tokio::test]
async fn api_answers_400_for_a_bad_limit() {
    let harness = Harness::open("api-400-limit", ONE_MIB);
    let api = harness.api();

    for uri in ["/api/traces?limit=abc", "/api/traces?limit=0", "/api/logs?limit=1001", "/api/metrics?limit=-1"] {
        let (status, body) = get(&api, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(body["error"].as_str().is_some_and(|error| error.contains("limit")), "{uri}: {body}");
    }
}

#[tokio::test]
async fn api_lists_logs() {
    let harness = Harness::open("api-logs", ONE_MIB);
    harness.write(logs("auth", vec![log_record(5, "hello")])).await;

    let (status, body) = get(&harness.api(), "/api/logs?service=auth").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"logs": [{
            "time_unix_nano": at_ms(5), "observed_time_unix_nano": at_ms(6), "severity_number": 9,
            "severity_text": "INFO", "body": "hello", "attributes": {}, "resource": {"service.name": "auth"},
            "service": "auth", "scope": {"name": "test-scope", "version": "1.2.3"}, "trace_id": null, "span_id": null,
        }]})
    );
}

#[tokio::test]
async fn api_lists_metrics() {
    let harness = Harness::open("api-metrics", ONE_MIB);
    harness.write(metrics("api", vec![gauge("queue.depth", 15, 7)])).await;

    let (status, body) = get(&harness.api(), "/api/metrics?name=queue.depth&limit=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"metrics": [{
            "name": "queue.depth", "description": "queue.depth description", "unit": "1", "type": "gauge",
            "aggregation_temporality": null, "is_monotonic": null, "time_unix_nano": at_ms(15), "service": "api",
            "resource": {"service.name": "api"}, "scope": {"name": "test-scope", "version": "1.2.3"},
            "data_points": [{"attributes": {}, "start_time_unix_nano": 0, "time_unix_nano": at_ms(15), "value": 7}],
        }]})
    );
}

/// A trace of five spans shaped like a Python SDK's HTTP server spans.
fn realistic_trace(trace: u16) -> Batch {
    let spans = (0..5u8)
        .map(|index| {
            let mut span = span(0, index + 1, (index > 0).then_some(1), "GET /api/users/{id}", 0, 10);
            // Spread like real (random) trace ids.
            let spread = (u128::from(trace) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
            span.trace_id = spread.to_be_bytes().to_vec();
            span.attributes = vec![
                kv("http.method", Any::StringValue("GET".into())),
                kv("http.route", Any::StringValue("/api/users/{id}".into())),
                kv("http.status_code", Any::IntValue(200)),
                kv("net.peer.ip", Any::StringValue("10.0.0.12".into())),
            ];
            span
        })
        .collect();
    let batch = traces("users-api", spans);
    let waggle::model::Payload::Traces(request) = batch.payload else { unreachable!("a traces batch") };
    let mut request = request.into_decoded().expect("built decoded");
    if let Some(resource) = request.resource_spans[0].resource.as_mut() {
        for (key, value) in [
            ("telemetry.sdk.name", "opentelemetry"),
            ("telemetry.sdk.language", "python"),
            ("telemetry.sdk.version", "1.27.0"),
            ("host.name", "ip-10-0-0-12.ec2.internal"),
        ] {
            resource.attributes.push(kv(key, Any::StringValue(value.into())));
        }
    }
    let encoded_len = prost::Message::encoded_len(&request);
    Batch::traces(request, encoded_len)
}

#[tokio::test]
async fn a_typical_span_takes_well_under_300_bytes_on_disk() {
    let harness = Harness::open("bytes-per-span", 256 * ONE_MIB);
    for trace in 0..2000u16 {
        harness.write(realistic_trace(trace)).await;
    }
    harness.store.flush();

    let stats = harness.reader.stats();
    let per_span = stats.bytes_per_span.expect("a sealed span block");
    assert!(per_span < 150, "{per_span} bytes per span: {stats:?}");
    assert_eq!(per_span, stats.bytes / stats.spans);
}

/// `cargo test --release --test local_store -- --ignored --nocapture write_throughput`
#[tokio::test]
#[ignore]
async fn write_throughput() {
    let harness = Harness::open("throughput", 256 * ONE_MIB);
    let batches: Vec<Vec<Arc<Batch>>> = (0..100u16)
        .map(|chunk| (chunk * 200..chunk * 200 + 200).map(|t| Arc::new(realistic_trace(t))).collect())
        .collect();
    let started = std::time::Instant::now();
    let mut building = std::time::Duration::ZERO;
    for shared in &batches {
        let build_started = std::time::Instant::now();
        let built = harness.store.build(Signal::Traces, shared);
        building += build_started.elapsed();
        for mut request in built.requests {
            harness.store.send(&mut request).await.expect("write succeeds");
        }
    }
    let spans = harness.reader.stats().spans;
    let elapsed = started.elapsed();
    println!(
        "{spans} spans in {elapsed:?} ({building:?} building): {:.0} spans/s",
        spans as f64 / elapsed.as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------
// A store written by the previous release

/// Copies the previous release's store (tests/data/store-v1/waggle.db) into a data directory.
fn data_dir_with_v1_store(name: &str) -> TempDir {
    let dir = TempDir::new(name);
    std::fs::create_dir_all(&dir.0).expect("data dir");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/store-v1/waggle.db");
    std::fs::copy(fixture, dir.0.join("waggle.db")).expect("fixture copied");
    dir
}

#[tokio::test]
async fn a_store_from_the_previous_release_is_imported_at_start() {
    let data_dir = data_dir_with_v1_store("v1-import");
    let (store, reader) = LocalStore::open(&store_path(&data_dir.0), StoreOptions::default()).expect("store opens");
    store.import_previous(&data_dir.0);

    let stats = reader.stats();
    assert_eq!((stats.spans, stats.logs, stats.metrics, stats.traces), (9, 6, 6, 3), "{stats:?}");
    let checkout = reader.trace([1; 16]).await.expect("query works").expect("trace 01…01 imported");
    let services: Vec<Option<&str>> = checkout.spans.iter().map(|span| span.service.as_deref()).collect();
    assert!(services.contains(&Some("checkout")) && services.contains(&Some("card-gateway")), "{services:?}");
    assert!(reader.trace([2; 16]).await.expect("query works").is_some());
    let logs = reader.recent_logs(None, 100).await.expect("query works");
    assert_eq!(logs.len(), 6);
}

#[tokio::test]
async fn the_previous_release_store_is_renamed_not_deleted() {
    let data_dir = data_dir_with_v1_store("v1-renamed");
    let (store, _reader) = LocalStore::open(&store_path(&data_dir.0), StoreOptions::default()).expect("store opens");
    store.import_previous(&data_dir.0);

    assert!(!data_dir.0.join("waggle.db").exists());
    assert!(data_dir.0.join("waggle.db.migrated-v1").exists());
}

#[tokio::test]
async fn an_unreadable_previous_store_is_set_aside_and_the_store_starts_empty() {
    let dir = TempDir::new("v1-garbage");
    std::fs::create_dir_all(&dir.0).expect("data dir");
    std::fs::write(dir.0.join("waggle.db"), vec![0x5a; 8192]).expect("garbage written");
    let (store, reader) = LocalStore::open(&store_path(&dir.0), StoreOptions::default()).expect("store opens");
    store.import_previous(&dir.0);

    assert_eq!(reader.stats().spans, 0);
    assert!(dir.0.join("waggle.db.corrupt").exists());
}

// ---------------------------------------------------------------------------------------------
// Trace requests read from their protobuf

/// The batch a receiver makes of a checked protobuf body: the store reads the bytes.
fn as_checked_protobuf(batch: Batch) -> Batch {
    let waggle::model::Payload::Traces(request) = batch.payload else { unreachable!("a traces batch") };
    let request = request.into_decoded().expect("built decoded");
    let body = bytes::Bytes::from(prost::Message::encode_to_vec(&request));
    let spans = waggle::model::count::spans(&request);
    Batch::otlp_traces(waggle::model::OtlpRequest::from_checked_protobuf(body.clone()), spans, body.len())
}

/// A span with every kind of field: each attribute type, events, links, status, trace state.
fn every_field_span() -> Span {
    let mut root = span(1, 1, Some(7), "GET /users/{id}", 0, 25);
    root.trace_state = "vendor=abc".into();
    root.kind = 3;
    root.attributes = vec![
        kv("string", Any::StringValue("text é".into())),
        kv("int", Any::IntValue(-42)),
        kv("double", Any::DoubleValue(2.5)),
        kv("bool", Any::BoolValue(false)),
        kv(
            "array",
            Any::ArrayValue(ArrayValue { values: vec![any(Any::IntValue(1)), any(Any::StringValue("two".into()))] }),
        ),
        kv("kvlist", Any::KvlistValue(KeyValueList { values: vec![kv("inner", Any::BoolValue(true))] })),
        kv("bytes", Any::BytesValue(vec![0xde, 0xad])),
        KeyValue { key: "empty".into(), value: None, ..Default::default() },
    ];
    root.events = vec![Event {
        time_unix_nano: at_ms(3),
        name: "exception".into(),
        attributes: vec![kv("exception.type", Any::StringValue("ValueError".into()))],
        ..Default::default()
    }];
    root.links =
        vec![Link { trace_id: vec![9; 16], span_id: vec![9; 8], trace_state: "a=b".into(), ..Default::default() }];
    root.status = Some(Status { code: 2, message: "boom".into() });
    root
}

#[tokio::test]
async fn a_span_read_from_protobuf_is_stored_as_the_decoded_one() {
    let decoded = Harness::open("from-decoded", ONE_MIB);
    let protobuf = Harness::open("from-protobuf", ONE_MIB);
    decoded.write(traces("api", vec![every_field_span()])).await;
    protobuf.write(as_checked_protobuf(traces("api", vec![every_field_span()]))).await;

    let from_decoded = decoded.reader.trace([1; 16]).await.expect("query works").expect("trace found");
    let from_protobuf = protobuf.reader.trace([1; 16]).await.expect("query works").expect("trace found");
    assert_eq!(from_protobuf, from_decoded);
    assert_eq!(from_protobuf.spans[0].attributes["double"], json!(2.5));
    assert_eq!(from_protobuf.spans[0].events[0]["name"], json!("exception"));
}

#[tokio::test]
async fn spans_with_invalid_ids_in_protobuf_are_counted_and_the_rest_stored() {
    let harness = Harness::open("invalid-protobuf", ONE_MIB);
    let mut zero_trace_id = span(0, 3, None, "zero trace id", 0, 1);
    zero_trace_id.trace_id = vec![0; 16];
    let batch = as_checked_protobuf(traces("api", vec![zero_trace_id, span(2, 4, None, "fine", 0, 1)]));

    let built = harness.store.build(Signal::Traces, &[Arc::new(batch)]);
    let mut request = built.requests.into_iter().next().expect("one request");
    let sent = harness.store.send(&mut request).await.expect("write succeeds");
    assert_eq!((sent.accepted, sent.rejected[0].items), (1, 1));
    assert_eq!(harness.listed_traces().await, [trace_hex(2)]);
}
