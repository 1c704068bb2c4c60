//! Jaeger's query API under `/jaeger/api/`: the envelope, services and operations, trace search
//! with Jaeger's parameter formats, and the trace shape (references, typed tags, logs from
//! events, deduplicated processes, microseconds), read from a real local store.

mod store_fixture;

use http::StatusCode;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue};
use opentelemetry_proto::tonic::trace::v1::Status;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use serde_json::{Value, json};
use store_fixture::*;

/// The span with this operation name in a Jaeger trace.
fn span_named<'a>(trace: &'a Value, name: &str) -> &'a Value {
    trace["spans"].as_array().expect("spans").iter().find(|s| s["operationName"] == name).expect("span present")
}

/// The tag `key` of a span or process: `(type, value)`.
fn tag<'a>(owner: &'a Value, key: &str) -> Option<(&'a str, &'a Value)> {
    let tags = owner["tags"].as_array()?;
    let tag = tags.iter().find(|t| t["key"] == key)?;
    Some((tag["type"].as_str()?, &tag["value"]))
}

/// The trace ids of a `data` list of traces, in order.
fn trace_ids(body: &Value) -> Vec<String> {
    body["data"].as_array().expect("data").iter().map(|t| t["traceID"].as_str().unwrap().into()).collect()
}

async fn jaeger_trace(store: &Store, trace: u8) -> Value {
    let body = store.get_ok(&format!("/jaeger/api/traces/{}", trace_hex(trace))).await;
    body["data"][0].clone()
}

// ---------------------------------------------------------------------------------------------
// Services and operations

#[tokio::test]
async fn services_are_listed_sorted_in_the_envelope() {
    let store = Store::open();
    store.write(traces("web", vec![span(1, 1, None, "GET /", 0, 10)])).await;
    store.write(traces("api", vec![span(1, 2, Some(1), "call", 1, 5)])).await;

    let body = store.get_ok("/jaeger/api/services").await;
    assert_eq!(body, json!({"data": ["api", "web"], "total": 2, "limit": 0, "offset": 0, "errors": null}));
}

#[tokio::test]
async fn a_service_operations_are_its_distinct_span_names() {
    let store = Store::open();
    let mut client = span(1, 3, Some(1), "GET /", 2, 3);
    client.kind = 3;
    store
        .write(traces("web", vec![span(1, 1, None, "GET /", 0, 10), client, span(1, 2, Some(1), "render", 1, 4)]))
        .await;
    store.write(traces("db", vec![span(1, 4, Some(2), "SELECT", 1, 2)])).await;

    let body = store.get_ok("/jaeger/api/services/web/operations").await;
    assert_eq!(body["data"], json!(["GET /", "render"]));
    assert_eq!(body["total"], 2);
}

#[tokio::test]
async fn operations_carry_their_span_kind_and_filter_on_it() {
    let store = Store::open();
    let mut client = span(1, 2, Some(1), "fetch", 1, 4);
    client.kind = 3;
    let mut unspecified = span(1, 3, Some(1), "work", 1, 2);
    unspecified.kind = 0;
    store.write(traces("web", vec![span(1, 1, None, "GET /", 0, 10), client, unspecified])).await;

    let all = store.get_ok("/jaeger/api/operations?service=web").await;
    assert_eq!(
        all["data"],
        json!([
            {"name": "GET /", "spanKind": "server"},
            {"name": "fetch", "spanKind": "client"},
            {"name": "work", "spanKind": ""},
        ])
    );
    let clients = store.get_ok("/jaeger/api/operations?service=web&spanKind=client").await;
    assert_eq!(clients["data"], json!([{"name": "fetch", "spanKind": "client"}]));
}

#[tokio::test]
async fn operations_without_a_service_is_a_400_in_jaeger_error_shape() {
    let store = Store::open();

    let (status, body) = store.get("/jaeger/api/operations").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["data"], Value::Null);
    assert_eq!(body["errors"][0]["code"], 400);
    assert!(body["errors"][0]["msg"].as_str().is_some_and(|m| m.contains("service")), "{body}");
}

// ---------------------------------------------------------------------------------------------
// One trace: shape

#[tokio::test]
async fn a_child_references_its_parent_as_child_of() {
    let store = Store::open();
    store.write(traces("web", vec![span(1, 1, None, "GET /", 0, 10), span(1, 2, Some(1), "render", 1, 4)])).await;

    let trace = jaeger_trace(&store, 1).await;
    assert_eq!(trace["traceID"], trace_hex(1));
    assert_eq!(span_named(&trace, "GET /")["references"], json!([]));
    assert_eq!(
        span_named(&trace, "render")["references"],
        json!([{"refType": "CHILD_OF", "traceID": trace_hex(1), "spanID": span_hex(1)}])
    );
}

#[tokio::test]
async fn links_become_follows_from_references_after_the_parent() {
    let store = Store::open();
    let mut consumer = span(1, 2, Some(1), "consume", 1, 4);
    consumer.links = vec![Link { trace_id: vec![9; 16], span_id: vec![8; 8], ..Default::default() }];
    store.write(traces("worker", vec![span(1, 1, None, "poll", 0, 10), consumer])).await;

    let trace = jaeger_trace(&store, 1).await;
    assert_eq!(
        span_named(&trace, "consume")["references"],
        json!([
            {"refType": "CHILD_OF", "traceID": trace_hex(1), "spanID": span_hex(1)},
            {"refType": "FOLLOWS_FROM", "traceID": trace_hex(9), "spanID": span_hex(8)},
        ])
    );
}

#[tokio::test]
async fn times_and_durations_are_microseconds() {
    let store = Store::open();
    let mut root = span(1, 1, None, "GET /", 0, 0);
    root.end_time_unix_nano = root.start_time_unix_nano + 1_234_567;
    store.write(traces("web", vec![root])).await;

    let trace = jaeger_trace(&store, 1).await;
    let span = span_named(&trace, "GET /");
    assert_eq!(span["startTime"], json!(at_ms(0) / 1_000));
    assert_eq!(span["duration"], json!(1_234));
}

#[tokio::test]
async fn attributes_become_tags_of_jaeger_types() {
    let store = Store::open();
    let array = Any::ArrayValue(ArrayValue { values: vec![AnyValue { value: Some(Any::IntValue(1)) }] });
    let root = with_attributes(
        span(1, 1, None, "op", 0, 10),
        vec![
            text("http.method", "GET"),
            kv("http.status_code", Any::IntValue(200)),
            kv("ratio", Any::DoubleValue(0.25)),
            kv("cached", Any::BoolValue(false)),
            kv("ids", array),
        ],
    );
    store.write(traces("web", vec![root])).await;

    let trace = jaeger_trace(&store, 1).await;
    let span = span_named(&trace, "op");
    assert_eq!(tag(span, "http.method"), Some(("string", &json!("GET"))));
    assert_eq!(tag(span, "http.status_code"), Some(("int64", &json!(200))));
    assert_eq!(tag(span, "ratio"), Some(("float64", &json!(0.25))));
    assert_eq!(tag(span, "cached"), Some(("bool", &json!(false))));
    assert_eq!(tag(span, "ids"), Some(("string", &json!("[1]"))));
}

#[tokio::test]
async fn kind_scope_and_status_become_otel_tags() {
    let store = Store::open();
    let mut ok = span(1, 1, None, "ok", 0, 10);
    ok.status = Some(Status { message: String::new(), code: 1 });
    store.write(traces("web", vec![ok, failed(span(1, 2, Some(1), "bad", 1, 2))])).await;

    let trace = jaeger_trace(&store, 1).await;
    let ok = span_named(&trace, "ok");
    assert_eq!(tag(ok, "span.kind"), Some(("string", &json!("server"))));
    assert_eq!(tag(ok, "otel.scope.name"), Some(("string", &json!("test-scope"))));
    assert_eq!(tag(ok, "otel.scope.version"), Some(("string", &json!("1.2.3"))));
    assert_eq!(tag(ok, "otel.status_code"), Some(("string", &json!("OK"))));
    assert_eq!(tag(ok, "error"), None);
    let bad = span_named(&trace, "bad");
    assert_eq!(tag(bad, "otel.status_code"), Some(("string", &json!("ERROR"))));
    assert_eq!(tag(bad, "otel.status_description"), Some(("string", &json!("it broke"))));
    assert_eq!(tag(bad, "error"), Some(("bool", &json!(true))));
}

#[tokio::test]
async fn events_become_logs_with_an_event_field() {
    let store = Store::open();
    let mut root = span(1, 1, None, "op", 0, 10);
    root.events = vec![Event {
        time_unix_nano: at_ms(4),
        name: "exception".into(),
        attributes: vec![text("exception.message", "boom")],
        ..Default::default()
    }];
    store.write(traces("web", vec![root])).await;

    let trace = jaeger_trace(&store, 1).await;
    assert_eq!(
        span_named(&trace, "op")["logs"],
        json!([{"timestamp": at_ms(4) / 1_000, "fields": [
            {"key": "event", "type": "string", "value": "exception"},
            {"key": "exception.message", "type": "string", "value": "boom"},
        ]}])
    );
}

#[tokio::test]
async fn one_process_per_distinct_resource() {
    let store = Store::open();
    store.write(traces("web", vec![span(1, 1, None, "GET /", 0, 10), span(1, 2, Some(1), "render", 1, 4)])).await;
    let mut db = resource("db");
    db.attributes.push(text("host.name", "db-1"));
    store.write(traces_of(db, vec![span(1, 3, Some(2), "SELECT", 2, 3)])).await;

    let trace = jaeger_trace(&store, 1).await;
    let processes = trace["processes"].as_object().expect("processes");
    assert_eq!(processes.len(), 2, "{processes:?}");
    let web = span_named(&trace, "GET /")["processID"].as_str().expect("process id");
    assert_eq!(span_named(&trace, "render")["processID"], web);
    let db = span_named(&trace, "SELECT")["processID"].as_str().expect("process id");
    assert_ne!(db, web);
    assert_eq!(processes[web], json!({"serviceName": "web", "tags": []}));
    assert_eq!(
        processes[db],
        json!({"serviceName": "db", "tags": [{"key": "host.name", "type": "string", "value": "db-1"}]})
    );
}

#[tokio::test]
async fn an_unknown_trace_is_a_404_in_jaeger_error_shape() {
    let store = Store::open();

    let (status, body) = store.get(&format!("/jaeger/api/traces/{}", trace_hex(1))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"data": null, "total": 0, "limit": 0, "offset": 0, "errors": [{"code": 404, "msg": "trace not found"}]})
    );
}

#[tokio::test]
async fn a_malformed_trace_id_is_a_400() {
    let store = Store::open();

    let (status, body) = store.get("/jaeger/api/traces/not-hex").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["code"], 400);
}

#[tokio::test]
async fn a_short_trace_id_as_grafana_may_send_is_left_padded() {
    let store = Store::open();
    let mut root = span(0, 1, None, "op", 0, 10);
    root.trace_id = [vec![0; 14], vec![0x0a, 0xbc]].concat();
    store.write(traces("web", vec![root])).await;

    let body = store.get_ok("/jaeger/api/traces/ABC").await;
    assert_eq!(body["data"][0]["traceID"], "00000000000000000000000000000abc");
}

#[tokio::test]
async fn a_trace_is_found_by_its_xray_id() {
    let store = Store::open();
    let mut root = span(0, 1, None, "op", 0, 10);
    root.trace_id = hex::decode("581cf771a006649127e371903a2de979").expect("hex");
    store.write(traces("web", vec![root])).await;

    let body = store.get_ok("/jaeger/api/traces/1-581cf771-a006649127e371903a2de979").await;
    assert_eq!(body["data"][0]["traceID"], "581cf771a006649127e371903a2de979");
}

// ---------------------------------------------------------------------------------------------
// Search

#[tokio::test]
async fn search_by_service_and_operation() {
    let store = Store::open();
    store.write(traces("web", vec![span(1, 1, None, "GET /a", 0, 10)])).await;
    store.write(traces("web", vec![span(2, 1, None, "GET /b", 20, 30)])).await;
    store.write(traces("api", vec![span(3, 1, None, "GET /b", 40, 50)])).await;

    let body = store.get_ok("/jaeger/api/traces?service=web&operation=GET%20%2Fb").await;
    assert_eq!(trace_ids(&body), [trace_hex(2)]);
    assert_eq!(body["total"], 1);
    assert_eq!(body["errors"], Value::Null);
}

#[tokio::test]
async fn search_by_tags_json_as_grafana_sends_it() {
    let store = Store::open();
    store.write(traces("web", vec![with_attributes(span(1, 1, None, "op", 0, 10), vec![text("user", "ada")])])).await;
    store.write(traces("web", vec![with_attributes(span(2, 1, None, "op", 20, 30), vec![text("user", "bob")])])).await;

    let body = store.get_ok("/jaeger/api/traces?service=web&tags=%7B%22user%22%3A%22ada%22%7D&lookback=custom").await;
    assert_eq!(trace_ids(&body), [trace_hex(1)]);
}

#[tokio::test]
async fn search_by_tag_key_colon_value() {
    let store = Store::open();
    store
        .write(traces("web", vec![with_attributes(span(1, 1, None, "op", 0, 10), vec![text("url", "http://a:1/")])]))
        .await;
    store
        .write(traces("web", vec![with_attributes(span(2, 1, None, "op", 20, 30), vec![text("url", "http://b:2/")])]))
        .await;

    let body = store.get_ok("/jaeger/api/traces?service=web&tag=url:http://b:2/").await;
    assert_eq!(trace_ids(&body), [trace_hex(2)]);
}

#[tokio::test]
async fn the_error_tag_searches_for_error_spans() {
    let store = Store::open();
    store.write(traces("web", vec![failed(span(1, 1, None, "op", 0, 10))])).await;
    store.write(traces("web", vec![span(2, 1, None, "op", 20, 30)])).await;

    let body = store.get_ok("/jaeger/api/traces?service=web&tags=%7B%22error%22%3A%22true%22%7D").await;
    assert_eq!(trace_ids(&body), [trace_hex(1)]);
}

#[tokio::test]
async fn search_by_go_durations() {
    let store = Store::open();
    store.write(traces("web", vec![span(1, 1, None, "op", 0, 50)])).await;
    store.write(traces("web", vec![span(2, 1, None, "op", 100, 250)])).await;
    store.write(traces("web", vec![span(3, 1, None, "op", 300, 1_800)])).await;

    let body = store.get_ok("/jaeger/api/traces?service=web&minDuration=100ms&maxDuration=1.2s").await;
    assert_eq!(trace_ids(&body), [trace_hex(2)]);
}

#[tokio::test]
async fn search_by_time_range_in_microseconds() {
    let store = Store::open();
    for trace in 1..=3u8 {
        let start = u64::from(trace) * 100;
        store.write(traces("web", vec![span(trace, 1, None, "op", start, start + 10)])).await;
    }

    let (start, end) = (at_ms(150) / 1_000, at_ms(250) / 1_000);
    let body = store.get_ok(&format!("/jaeger/api/traces?service=web&start={start}&end={end}")).await;
    assert_eq!(trace_ids(&body), [trace_hex(2)]);
}

#[tokio::test]
async fn search_is_newest_first_up_to_the_limit() {
    let store = Store::open();
    for trace in [2u8, 4, 1, 3] {
        store.write(traces("web", vec![span(trace, 1, None, "op", u64::from(trace) * 10, 100)])).await;
    }

    let body = store.get_ok("/jaeger/api/traces?service=web&limit=3").await;
    assert_eq!(trace_ids(&body), [trace_hex(4), trace_hex(3), trace_hex(2)]);
}

#[tokio::test]
async fn search_answers_whole_traces() {
    let store = Store::open();
    store.write(traces("web", vec![span(1, 1, None, "GET /", 0, 10)])).await;
    store.write(traces("db", vec![span(1, 2, Some(1), "SELECT", 1, 2)])).await;

    let body = store.get_ok("/jaeger/api/traces?service=db").await;
    let spans = body["data"][0]["spans"].as_array().expect("spans");
    assert_eq!(spans.len(), 2);
}

#[tokio::test]
async fn search_by_trace_ids_reports_the_unknown_ones() {
    let store = Store::open();
    store.write(traces("web", vec![span(1, 1, None, "op", 0, 10)])).await;

    let body = store.get_ok(&format!("/jaeger/api/traces?traceID={}&traceID={}", trace_hex(1), trace_hex(2))).await;
    assert_eq!(trace_ids(&body), [trace_hex(1)]);
    assert_eq!(body["errors"], json!([{"msg": "trace not found", "traceID": trace_hex(2)}]));
}

#[tokio::test]
async fn a_bad_search_parameter_is_a_400_naming_it() {
    let store = Store::open();
    for (uri, parameter) in [
        ("/jaeger/api/traces", "service"),
        ("/jaeger/api/traces?service=web&minDuration=100", "minDuration"),
        ("/jaeger/api/traces?service=web&maxDuration=soon", "maxDuration"),
        ("/jaeger/api/traces?service=web&minDuration=2s&maxDuration=1s", "maxDuration"),
        ("/jaeger/api/traces?service=web&start=2024-01-01", "start"),
        ("/jaeger/api/traces?service=web&end=x", "end"),
        ("/jaeger/api/traces?service=web&limit=many", "limit"),
        ("/jaeger/api/traces?service=web&tags=nope", "tags"),
        ("/jaeger/api/traces?service=web&tag=nocolon", "tag"),
    ] {
        let (status, body) = store.get(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["data"], Value::Null, "{uri}");
        let message = body["errors"][0]["msg"].as_str().unwrap_or_default();
        assert!(message.contains(parameter), "{uri}: {message}");
    }
}

// ---------------------------------------------------------------------------------------------
// Dependencies

/// `endTs` (ms) just after the test times, with `lookback` ms before it.
fn dependencies_uri(end_ms: u64, lookback_ms: u64) -> String {
    format!("/jaeger/api/dependencies?endTs={}&lookback={lookback_ms}", at_ms(end_ms) / 1_000_000)
}

#[tokio::test]
async fn dependencies_count_calls_and_errors_from_parent_and_child_services() {
    let store = Store::open();
    store.write(traces("web", vec![span(1, 1, None, "GET /", 0, 100), span(2, 1, None, "GET /", 200, 300)])).await;
    store
        .write(traces(
            "api",
            vec![span(1, 2, Some(1), "lookup", 10, 30), failed(span(2, 2, Some(1), "lookup", 210, 250))],
        ))
        .await;

    let body = store.get_ok(&dependencies_uri(1_000, 10_000)).await;
    assert_eq!(
        body["data"],
        json!([{"parent": "web", "child": "api", "callCount": 2, "errorCount": 1, "p90DurationMs": 40.0, "peer": false}])
    );
    assert_eq!((body["total"].clone(), body["truncated"].clone()), (json!(1), json!(false)));
}

#[tokio::test]
async fn dependencies_count_only_callee_spans_that_started_in_the_range() {
    let store = Store::open();
    store.write(traces("web", vec![span(1, 1, None, "GET /", 0, 100), span(2, 1, None, "GET /", 5_000, 5_100)])).await;
    store
        .write(traces("api", vec![span(1, 2, Some(1), "lookup", 10, 30), span(2, 2, Some(1), "lookup", 5_010, 5_020)]))
        .await;

    let body = store.get_ok(&dependencies_uri(6_000, 2_000)).await;
    assert_eq!(body["data"][0]["callCount"], 1, "{body}");
}

#[tokio::test]
async fn a_malformed_dependencies_parameter_is_a_400_naming_it() {
    let store = Store::open();
    for (uri, parameter) in
        [("/jaeger/api/dependencies?endTs=soon", "endTs"), ("/jaeger/api/dependencies?lookback=-5", "lookback")]
    {
        let (status, body) = store.get(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(body["errors"][0]["msg"].as_str().unwrap().contains(parameter), "{uri}: {body}");
    }
}
