//! Writes `tests/data/store-v1/`: a store made by the SQLite engine (schema version 1) through its
//! real write path, and `written.json`, the OTLP/JSON of every request written, in order.
//! Kept for the record, not compiled: it needs the SQLite engine. It ran as
//! `tests/gen_store_v1.rs` with `cargo test --test gen_store_v1 -- --ignored` (see README.md).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint, exemplar, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use serde_json::{Value, json};
use waggle::destination::Exporter;
use waggle::destination::local::LocalStore;
use waggle::model::{Batch, XraySegment};
use waggle::store::db_path;

/// 2023-11-14T22:13:20Z in unix nanos; times are milliseconds after it.
const BASE_NANOS: u64 = 1_700_000_000_000_000_000;

fn at_ms(ms: u64) -> u64 {
    BASE_NANOS + ms * 1_000_000
}

fn any(value: Any) -> AnyValue {
    AnyValue { value: Some(value) }
}

fn kv(key: &str, value: Any) -> KeyValue {
    KeyValue { key: key.into(), value: Some(any(value)), ..Default::default() }
}

fn text(key: &str, value: &str) -> KeyValue {
    kv(key, Any::StringValue(value.into()))
}

fn resource(service: &str, extra: Vec<KeyValue>) -> Resource {
    let mut attributes = vec![text("service.name", service)];
    attributes.extend(extra);
    Resource { attributes, ..Default::default() }
}

fn scope(name: &str, version: &str) -> InstrumentationScope {
    InstrumentationScope { name: name.into(), version: version.into(), ..Default::default() }
}

fn span(trace: u8, id: u8, parent: Option<u8>, name: &str, kind: i32, start_ms: u64, end_ms: u64) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|parent| vec![parent; 8]).unwrap_or_default(),
        name: name.into(),
        kind,
        start_time_unix_nano: at_ms(start_ms),
        end_time_unix_nano: at_ms(end_ms),
        ..Default::default()
    }
}

/// Every attribute value type, nested ones included, and the doubles JSON makes hard.
fn every_type() -> Vec<KeyValue> {
    vec![
        text("string", "text with \"quotes\", a tab\t, é and 🐝"),
        kv("int", Any::IntValue(-9_007_199_254_740_993)),
        kv("int.max", Any::IntValue(i64::MAX)),
        kv("double", Any::DoubleValue(2.5)),
        kv("double.whole", Any::DoubleValue(3.0)),
        kv("double.precise", Any::DoubleValue(0.1 + 0.2)),
        kv("double.tiny", Any::DoubleValue(5e-324)),
        kv("double.huge", Any::DoubleValue(1.7976931348623157e308)),
        kv("bool", Any::BoolValue(true)),
        kv("bytes", Any::BytesValue(vec![0xde, 0xad, 0xbe, 0xef, 0xff])),
        kv(
            "array",
            Any::ArrayValue(ArrayValue {
                values: vec![any(Any::IntValue(1)), any(Any::StringValue("two".into())), any(Any::DoubleValue(3.5))],
            }),
        ),
        kv("array.empty", Any::ArrayValue(ArrayValue::default())),
        kv(
            "kvlist",
            Any::KvlistValue(KeyValueList {
                values: vec![
                    kv("z.first", Any::BoolValue(false)),
                    kv("a.second", Any::KvlistValue(KeyValueList { values: vec![kv("deep", Any::IntValue(7))] })),
                ],
            }),
        ),
        KeyValue { key: "absent".into(), value: None, ..Default::default() },
    ]
}

/// Trace 0x01 (checkout): a server root with every attribute type, a client child that failed,
/// an internal grandchild with events, and a producer with a link to trace 0x02.
fn checkout_traces() -> ExportTraceServiceRequest {
    let mut root = span(1, 1, None, "POST /checkout", 2, 0, 120);
    root.attributes = every_type();
    root.trace_state = "vendor=1".into();
    root.status = Some(Status { message: String::new(), code: 1 });
    let mut client = span(1, 2, Some(1), "charge card", 3, 10, 90);
    client.attributes = vec![text("peer.service", "payments"), kv("http.response.status_code", Any::IntValue(502))];
    client.status = Some(Status { message: "upstream returned 502".into(), code: 2 });
    client.events = vec![
        Event {
            time_unix_nano: at_ms(89),
            name: "exception".into(),
            attributes: vec![text("exception.type", "GatewayError"), kv("retry", Any::IntValue(2))],
            ..Default::default()
        },
        Event { time_unix_nano: at_ms(90), name: "gave up".into(), ..Default::default() },
    ];
    let mut internal = span(1, 3, Some(1), "render receipt", 1, 95, 110);
    internal.attributes = vec![kv("template.cached", Any::BoolValue(false))];
    let mut producer = span(1, 4, Some(1), "publish order", 4, 111, 115);
    producer.links = vec![Link {
        trace_id: vec![2; 16],
        span_id: vec![1; 8],
        trace_state: "k=v".into(),
        attributes: vec![text("link.kind", "follows"), kv("link.weight", Any::DoubleValue(0.5))],
        ..Default::default()
    }];
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource(
                "checkout",
                vec![
                    text("service.version", "1.4.2"),
                    text("host.name", "box-1"),
                    kv("process.pid", Any::IntValue(4242)),
                ],
            )),
            scope_spans: vec![
                ScopeSpans {
                    scope: Some(scope("checkout.http", "2.1.0")),
                    spans: vec![root, client],
                    ..Default::default()
                },
                ScopeSpans {
                    scope: Some(scope("checkout.render", "")),
                    spans: vec![internal, producer],
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
    }
}

/// Logs of two services: string, structured, array and bytes bodies, with and without ids.
fn first_logs() -> ExportLogsServiceRequest {
    let string_body = LogRecord {
        time_unix_nano: at_ms(20),
        observed_time_unix_nano: at_ms(21),
        severity_number: 9,
        severity_text: "INFO".into(),
        body: Some(any(Any::StringValue("charging card for order 17".into()))),
        attributes: vec![text("order.id", "17"), kv("amount", Any::DoubleValue(12.75))],
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        flags: 1,
        ..Default::default()
    };
    let structured_body = LogRecord {
        time_unix_nano: at_ms(90),
        observed_time_unix_nano: at_ms(92),
        severity_number: 17,
        severity_text: "ERROR".into(),
        body: Some(any(Any::KvlistValue(KeyValueList {
            values: vec![
                text("message", "card declined"),
                kv("code", Any::IntValue(51)),
                kv("retryable", Any::BoolValue(false)),
                kv("tags", Any::ArrayValue(ArrayValue { values: vec![any(Any::StringValue("payments".into()))] })),
            ],
        }))),
        attributes: vec![kv("exception.escaped", Any::BoolValue(true))],
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        ..Default::default()
    };
    let untimed = LogRecord {
        observed_time_unix_nano: at_ms(130),
        severity_number: 5,
        body: Some(any(Any::ArrayValue(ArrayValue {
            values: vec![any(Any::IntValue(1)), any(Any::DoubleValue(2.0))],
        }))),
        ..Default::default()
    };
    let bytes_body = LogRecord {
        time_unix_nano: at_ms(131),
        observed_time_unix_nano: at_ms(131),
        severity_number: 13,
        severity_text: "WARN".into(),
        body: Some(any(Any::BytesValue(b"\x00\x01binary".to_vec()))),
        ..Default::default()
    };
    let no_body = LogRecord { time_unix_nano: at_ms(132), observed_time_unix_nano: at_ms(133), ..Default::default() };
    ExportLogsServiceRequest {
        resource_logs: vec![
            ResourceLogs {
                resource: Some(resource(
                    "checkout",
                    vec![text("service.version", "1.4.2"), text("host.name", "box-1")],
                )),
                scope_logs: vec![ScopeLogs {
                    scope: Some(scope("checkout.log", "0.9")),
                    log_records: vec![string_body, structured_body],
                    ..Default::default()
                }],
                ..Default::default()
            },
            ResourceLogs {
                resource: Some(resource("worker", vec![kv("worker.slots", Any::IntValue(8))])),
                scope_logs: vec![ScopeLogs {
                    scope: None,
                    log_records: vec![untimed, bytes_body, no_body],
                    ..Default::default()
                }],
                ..Default::default()
            },
        ],
    }
}

fn number(time_ms: u64, value: number_data_point::Value, attributes: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        start_time_unix_nano: at_ms(0),
        time_unix_nano: at_ms(time_ms),
        value: Some(value),
        attributes,
        ..Default::default()
    }
}

/// One metric of every type.
fn first_metrics() -> ExportMetricsServiceRequest {
    let gauge = Metric {
        name: "queue.depth".into(),
        description: "Jobs waiting".into(),
        unit: "{job}".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![
                number(100, number_data_point::Value::AsInt(3), vec![text("queue", "high")]),
                number(100, number_data_point::Value::AsDouble(0.30000000000000004), vec![text("queue", "low")]),
            ],
        })),
        ..Default::default()
    };
    let mut counted = number(100, number_data_point::Value::AsDouble(1234.5), vec![text("route", "/checkout")]);
    counted.exemplars = vec![Exemplar {
        time_unix_nano: at_ms(60),
        value: Some(exemplar::Value::AsDouble(12.75)),
        trace_id: vec![1; 16],
        span_id: vec![1; 8],
        filtered_attributes: vec![text("user", "alice")],
    }];
    let sum = Metric {
        name: "http.server.request.body.size".into(),
        description: "Bytes received".into(),
        unit: "By".into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![counted],
            aggregation_temporality: 2,
            is_monotonic: true,
        })),
        ..Default::default()
    };
    let histogram = Metric {
        name: "http.server.request.duration".into(),
        description: "Request latency".into(),
        unit: "s".into(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: vec![
                HistogramDataPoint {
                    attributes: vec![kv("http.response.status_code", Any::IntValue(200))],
                    start_time_unix_nano: at_ms(0),
                    time_unix_nano: at_ms(100),
                    count: 6,
                    sum: Some(0.9),
                    bucket_counts: vec![1, 3, 2, 0],
                    explicit_bounds: vec![0.05, 0.1, 0.5],
                    min: Some(0.01),
                    max: Some(0.45),
                    ..Default::default()
                },
                HistogramDataPoint {
                    attributes: vec![kv("http.response.status_code", Any::IntValue(500))],
                    start_time_unix_nano: at_ms(0),
                    time_unix_nano: at_ms(100),
                    count: 1,
                    sum: None,
                    bucket_counts: vec![0, 0, 0, 1],
                    explicit_bounds: vec![0.05, 0.1, 0.5],
                    ..Default::default()
                },
            ],
            aggregation_temporality: 1,
        })),
        ..Default::default()
    };
    let exponential = Metric {
        name: "db.query.duration".into(),
        unit: "ms".into(),
        data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![ExponentialHistogramDataPoint {
                start_time_unix_nano: at_ms(0),
                time_unix_nano: at_ms(100),
                count: 5,
                sum: Some(42.0),
                scale: 2,
                zero_count: 1,
                positive: Some(Buckets { offset: -1, bucket_counts: vec![1, 2, 1] }),
                negative: None,
                min: Some(0.0),
                max: Some(20.5),
                zero_threshold: 1e-9,
                ..Default::default()
            }],
            aggregation_temporality: 2,
        })),
        ..Default::default()
    };
    let summary = Metric {
        name: "gc.pause".into(),
        unit: "ms".into(),
        data: Some(metric::Data::Summary(Summary {
            data_points: vec![SummaryDataPoint {
                start_time_unix_nano: at_ms(0),
                time_unix_nano: at_ms(100),
                count: 4,
                sum: 10.0,
                quantile_values: vec![
                    ValueAtQuantile { quantile: 0.5, value: 2.0 },
                    ValueAtQuantile { quantile: 0.99, value: 4.5 },
                ],
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource("checkout", vec![text("host.name", "box-1")])),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope("checkout.metrics", "1.0.0")),
                metrics: vec![gauge, sum, histogram, exponential, summary],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Trace 0x02 (payments, one request) and a late span of trace 0x01 from another service.
fn later_traces() -> ExportTraceServiceRequest {
    let mut consumer = span(2, 1, None, "process order", 5, 200, 260);
    consumer.attributes =
        vec![text("messaging.system", "kafka"), kv("messaging.batch.message_count", Any::IntValue(1))];
    let mut child = span(2, 2, Some(1), "UPDATE orders", 3, 210, 250);
    child.attributes = vec![text("db.system", "postgresql")];
    let mut late = span(1, 5, Some(2), "card network call", 3, 20, 80);
    late.attributes = vec![kv("attempt", Any::IntValue(1))];
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: Some(resource("payments", vec![text("cloud.region", "eu-west-1")])),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope("payments.worker", "3.0.0")),
                    spans: vec![consumer, child],
                    ..Default::default()
                }],
                ..Default::default()
            },
            ResourceSpans {
                resource: Some(resource("card-gateway", Vec::new())),
                scope_spans: vec![ScopeSpans { scope: None, spans: vec![late], ..Default::default() }],
                ..Default::default()
            },
        ],
    }
}

/// An X-Ray segment with a subsegment, as an X-Ray SDK sends it over UDP.
fn xray_segment() -> XraySegment {
    let body = r#"{"name":"inventory","id":"70de5b6f19ff9a0a","trace_id":"1-581cf771-a006649127e371903a2de979","start_time":1700000000.3,"end_time":1700000000.35,"fault":true,"http":{"request":{"method":"GET","url":"http://inventory/items/9"},"response":{"status":500}},"annotations":{"customer":"alice","items":3,"vip":true},"metadata":{"debug":{"cache":"miss"}},"subsegments":[{"name":"DynamoDB","id":"53995c3f42cd8ad8","start_time":1700000000.31,"end_time":1700000000.34,"namespace":"aws","aws":{"operation":"GetItem","table_name":"items"}}]}"#;
    XraySegment {
        body: body.as_bytes().to_vec().into(),
        trace_id: "1-581cf771-a006649127e371903a2de979".into(),
        id: "70de5b6f19ff9a0a".into(),
    }
}

fn later_logs() -> ExportLogsServiceRequest {
    let record = LogRecord {
        time_unix_nano: at_ms(220),
        observed_time_unix_nano: at_ms(221),
        severity_number: 9,
        severity_text: "INFO".into(),
        body: Some(any(Any::StringValue("order 17 stored".into()))),
        trace_id: vec![2; 16],
        span_id: vec![2; 8],
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource("payments", vec![text("cloud.region", "eu-west-1")])),
            scope_logs: vec![ScopeLogs {
                scope: Some(scope("payments.log", "")),
                log_records: vec![record],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn later_metrics() -> ExportMetricsServiceRequest {
    let sum = Metric {
        name: "orders.processed".into(),
        description: "Orders taken off the queue".into(),
        unit: "{order}".into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![number(260, number_data_point::Value::AsInt(17), Vec::new())],
            aggregation_temporality: 1,
            is_monotonic: true,
        })),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource("payments", vec![text("cloud.region", "eu-west-1")])),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope("payments.metrics", "3.0.0")),
                metrics: vec![sum],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn write(store: &LocalStore, batch: Batch) {
    let signal = batch.signal();
    let built = store.build(signal, &[Arc::new(batch)]);
    assert!(built.rejected.is_empty(), "rejected: {:?}", built.rejected);
    for mut request in built.requests {
        let items = <LocalStore as Exporter>::items(&request);
        let sent = store.send(&mut request).await.expect("write succeeds");
        assert_eq!(sent.accepted, items);
    }
}

fn out_dir() -> PathBuf {
    std::env::var_os("WAGGLE_STORE_V1_OUT")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/store-v1"), PathBuf::from)
}

#[tokio::test]
#[ignore = "writes the committed fixture tests/data/store-v1; run by hand on the SQLite engine's release"]
async fn generate_store_v1_fixture() {
    let dir = out_dir();
    std::fs::create_dir_all(&dir).expect("fixture directory");
    let path = db_path(&dir);
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let mut stale = path.as_os_str().to_owned();
        stale.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(stale));
    }

    let segment = xray_segment();
    let (converted, rejected) = waggle::translate::xray_to_otlp::convert([&segment]);
    assert!(rejected.is_empty());
    let mut written: Vec<Value> = Vec::new();
    {
        let (store, reader) = LocalStore::open(&path, 64 * 1024 * 1024).expect("store opens");
        let checkout = checkout_traces();
        written.push(json!({"signal": "traces", "request": checkout}));
        write(&store, Batch::traces(checkout, 0)).await;
        let logs = first_logs();
        written.push(json!({"signal": "logs", "request": logs}));
        write(&store, Batch::logs(logs, 0)).await;
        let metrics = first_metrics();
        written.push(json!({"signal": "metrics", "request": metrics}));
        write(&store, Batch::metrics(metrics, 0)).await;
        let traces = later_traces();
        written.push(json!({"signal": "traces", "request": traces}));
        write(&store, Batch::traces(traces, 0)).await;
        written.push(json!({
            "signal": "traces",
            "xray_segment": std::str::from_utf8(&segment.body).expect("utf-8"),
            "request": ExportTraceServiceRequest { resource_spans: converted },
        }));
        write(&store, Batch::xray(vec![segment])).await;
        let logs = later_logs();
        written.push(json!({"signal": "logs", "request": logs}));
        write(&store, Batch::logs(logs, 0)).await;
        let metrics = later_metrics();
        written.push(json!({"signal": "metrics", "request": metrics}));
        write(&store, Batch::metrics(metrics, 0)).await;
        drop(reader);
        // Dropping the store closes the last connection, which checkpoints the WAL into the
        // main file and removes it.
        drop(store);
    }
    let mut lock = path.as_os_str().to_owned();
    lock.push(".lock");
    std::fs::remove_file(PathBuf::from(lock)).expect("lock file removed");
    for suffix in ["-wal", "-shm"] {
        let mut leftover = path.as_os_str().to_owned();
        leftover.push(suffix);
        assert!(!PathBuf::from(leftover).exists(), "{suffix} left behind");
    }
    let document = json!({
        "about": "Every request written, in order, into waggle.db by tests/data/store-v1/generate.rs",
        "writes": written,
    });
    let text = serde_json::to_string_pretty(&document).expect("json");
    std::fs::write(dir.join("written.json"), text + "\n").expect("written.json");
}
