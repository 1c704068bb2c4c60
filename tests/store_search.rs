//! Trace and log search through the store's query API (`/api/traces`, `/api/logs`,
//! `/api/traces/{id}`): each condition, their combination on one span, order, limits and the
//! 400s. These are the contract any store engine must meet.

mod store_fixture;

use http::StatusCode;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::json;
use store_fixture::*;

// ---------------------------------------------------------------------------------------------
// Traces: each condition

#[tokio::test]
async fn traces_by_service_need_a_span_of_that_service() {
    let store = Store::open();
    store.write(traces("api", vec![span(1, 1, None, "GET /", 0, 10)])).await;
    store.write(traces("db", vec![span(1, 2, Some(1), "query", 2, 5)])).await;
    store.write(traces("api", vec![span(2, 1, None, "GET /", 20, 30)])).await;

    let body = store.get_ok("/api/traces?service=db&min_duration=0ms").await;
    assert_eq!(listed_ids(&body), [trace_hex(1)]);
}

#[tokio::test]
async fn traces_by_span_name() {
    let store = Store::open();
    store.write(traces("api", vec![span(1, 1, None, "GET /a", 0, 10), span(1, 2, Some(1), "lookup", 1, 2)])).await;
    store.write(traces("api", vec![span(2, 1, None, "GET /b", 20, 30)])).await;

    let body = store.get_ok("/api/traces?name=lookup").await;
    assert_eq!(listed_ids(&body), [trace_hex(1)]);
}

#[tokio::test]
async fn traces_by_minimum_duration() {
    let store = Store::open();
    store.write(traces("api", vec![span(1, 1, None, "fast", 0, 99)])).await;
    store.write(traces("api", vec![span(2, 1, None, "slow", 10, 160)])).await;

    let body = store.get_ok("/api/traces?min_duration=150ms").await;
    assert_eq!(listed_ids(&body), [trace_hex(2)]);
}

#[tokio::test]
async fn traces_by_maximum_duration() {
    let store = Store::open();
    store.write(traces("api", vec![span(1, 1, None, "fast", 0, 99)])).await;
    store.write(traces("api", vec![span(2, 1, None, "slow", 10, 1_300)])).await;

    let body = store.get_ok("/api/traces?max_duration=1.2s").await;
    assert_eq!(listed_ids(&body), [trace_hex(1)]);
}

#[tokio::test]
async fn a_bare_duration_is_milliseconds() {
    let store = Store::open();
    store.write(traces("api", vec![span(1, 1, None, "fast", 0, 99)])).await;
    store.write(traces("api", vec![span(2, 1, None, "slow", 10, 160)])).await;

    let body = store.get_ok("/api/traces?min_duration=100").await;
    assert_eq!(listed_ids(&body), [trace_hex(2)]);
}

#[tokio::test]
async fn traces_with_an_error_span() {
    let store = Store::open();
    store.write(traces("api", vec![span(1, 1, None, "GET /", 0, 10), failed(span(1, 2, Some(1), "db", 1, 2))])).await;
    store.write(traces("api", vec![span(2, 1, None, "GET /", 20, 30)])).await;

    let body = store.get_ok("/api/traces?error=true").await;
    assert_eq!(listed_ids(&body), [trace_hex(1)]);
}

#[tokio::test]
async fn traces_by_a_span_attribute_compared_as_text() {
    let store = Store::open();
    let ok = with_attributes(span(1, 1, None, "GET /", 0, 10), vec![kv("http.status_code", Any::IntValue(200))]);
    let missing = with_attributes(span(2, 1, None, "GET /", 20, 30), vec![kv("http.status_code", Any::IntValue(404))]);
    store.write(traces("api", vec![ok, missing])).await;

    let body = store.get_ok("/api/traces?attr=http.status_code=404").await;
    assert_eq!(listed_ids(&body), [trace_hex(2)]);
}

#[tokio::test]
async fn boolean_and_double_attributes_compare_as_their_json_text() {
    let store = Store::open();
    let first = with_attributes(
        span(1, 1, None, "op", 0, 10),
        vec![kv("cached", Any::BoolValue(true)), kv("ratio", Any::DoubleValue(0.5))],
    );
    let second = with_attributes(
        span(2, 1, None, "op", 20, 30),
        vec![kv("cached", Any::BoolValue(false)), kv("ratio", Any::DoubleValue(0.5))],
    );
    store.write(traces("api", vec![first, second])).await;

    let body = store.get_ok("/api/traces?attr=cached=true&attr=ratio=0.5").await;
    assert_eq!(listed_ids(&body), [trace_hex(1)]);
}

#[tokio::test]
async fn traces_by_a_resource_attribute() {
    let store = Store::open();
    let mut blue = resource("api");
    blue.attributes.push(text("deployment.environment", "blue"));
    store.write(traces_of(blue, vec![span(1, 1, None, "op", 0, 10)])).await;
    let mut green: Resource = resource("api");
    green.attributes.push(text("deployment.environment", "green"));
    store.write(traces_of(green, vec![span(2, 1, None, "op", 20, 30)])).await;

    let body = store.get_ok("/api/traces?attr=deployment.environment=green").await;
    assert_eq!(listed_ids(&body), [trace_hex(2)]);
}

#[tokio::test]
async fn attributes_may_be_given_as_a_tags_json_object() {
    let store = Store::open();
    store.write(traces("api", vec![with_attributes(span(1, 1, None, "op", 0, 10), vec![text("user", "ada")])])).await;
    store.write(traces("api", vec![with_attributes(span(2, 1, None, "op", 20, 30), vec![text("user", "bob")])])).await;

    let body = store.get_ok("/api/traces?tags=%7B%22user%22%3A%22bob%22%7D").await;
    assert_eq!(listed_ids(&body), [trace_hex(2)]);
}

#[tokio::test]
async fn traces_by_time_range_in_unix_nanoseconds() {
    let store = Store::open();
    for trace in 1..=4u8 {
        let start = u64::from(trace) * 100;
        store.write(traces("api", vec![span(trace, 1, None, "op", start, start + 10)])).await;
    }

    let body = store.get_ok(&format!("/api/traces?start={}&end={}", at_ms(200), at_ms(300))).await;
    assert_eq!(listed_ids(&body), [trace_hex(3), trace_hex(2)]);
}

#[tokio::test]
async fn traces_by_time_range_in_rfc3339() {
    let store = Store::open();
    store.write(traces("api", vec![span(1, 1, None, "op", 0, 10)])).await;
    store.write(traces("api", vec![span(2, 1, None, "op", 2_000, 2_010)])).await;

    // BASE_NANOS is 2023-11-14T22:13:20Z.
    let body = store.get_ok("/api/traces?start=2023-11-14T22:13:21Z").await;
    assert_eq!(listed_ids(&body), [trace_hex(2)]);
}

// ---------------------------------------------------------------------------------------------
// Traces: combination, order, limit, shape

#[tokio::test]
async fn conditions_must_hold_on_one_span() {
    let store = Store::open();
    // Trace 1: the slow span is not the one named "db".
    store.write(traces("api", vec![span(1, 1, None, "GET /", 0, 500), span(1, 2, Some(1), "db", 1, 2)])).await;
    // Trace 2: the "db" span itself is slow.
    store.write(traces("api", vec![span(2, 1, None, "GET /", 10, 600), span(2, 2, Some(1), "db", 11, 400)])).await;

    let body = store.get_ok("/api/traces?name=db&min_duration=100ms").await;
    assert_eq!(listed_ids(&body), [trace_hex(2)]);
}

#[tokio::test]
async fn found_traces_are_newest_first() {
    let store = Store::open();
    store.write(traces("api", vec![span(2, 1, None, "op", 200, 210)])).await;
    store.write(traces("api", vec![span(3, 1, None, "op", 300, 310)])).await;
    store.write(traces("api", vec![span(1, 1, None, "op", 100, 110)])).await;

    let body = store.get_ok("/api/traces?name=op").await;
    assert_eq!(listed_ids(&body), [trace_hex(3), trace_hex(2), trace_hex(1)]);
}

#[tokio::test]
async fn found_traces_respect_the_limit() {
    let store = Store::open();
    for trace in 1..=5u8 {
        store.write(traces("api", vec![span(trace, 1, None, "op", u64::from(trace) * 10, 1000)])).await;
    }

    let body = store.get_ok("/api/traces?name=op&limit=2").await;
    assert_eq!(listed_ids(&body), [trace_hex(5), trace_hex(4)]);
}

#[tokio::test]
async fn a_found_trace_is_listed_by_its_root() {
    let store = Store::open();
    store.write(traces("db", vec![span(1, 2, Some(1), "query", 10, 20)])).await;
    store.write(traces("api", vec![span(1, 1, None, "GET /", 0, 40)])).await;

    let body = store.get_ok("/api/traces?name=query").await;
    assert_eq!(
        body,
        json!({"traces": [{
            "trace_id": trace_hex(1), "root_name": "GET /", "service": "api", "services": ["api", "db"],
            "start_time_unix_nano": at_ms(0), "duration_ms": 40.0, "span_count": 2,
        }]})
    );
}

// ---------------------------------------------------------------------------------------------
// One trace with its logs

#[tokio::test]
async fn a_trace_carries_its_log_records_in_time_order() {
    let store = Store::open();
    store.write(traces("api", vec![span(1, 1, None, "GET /", 0, 50)])).await;
    store
        .write(logs(
            "api",
            vec![
                in_trace(log_record(30, "second"), 1, 1),
                in_trace(log_record(40, "other trace"), 2, 1),
                log_record(20, "no trace"),
                in_trace(log_record(10, "first"), 1, 1),
            ],
        ))
        .await;

    let body = store.get_ok(&format!("/api/traces/{}", trace_hex(1))).await;
    let bodies: Vec<&str> =
        body["logs"].as_array().expect("logs").iter().map(|l| l["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["first", "second"]);
    assert_eq!(body["logs"][0]["span_id"], json!(span_hex(1)));
}

// ---------------------------------------------------------------------------------------------
// Logs

#[tokio::test]
async fn logs_by_minimum_severity_name() {
    let store = Store::open();
    let records = vec![
        severity(log_record(1, "debug"), 5, "DEBUG"),
        severity(log_record(2, "warn"), 13, "WARN"),
        severity(log_record(3, "error"), 17, "ERROR"),
    ];
    store.write(logs("api", records)).await;

    let body = store.get_ok("/api/logs?severity=warn").await;
    assert_eq!(listed_bodies(&body), ["error", "warn"]);
}

#[tokio::test]
async fn logs_by_minimum_severity_number() {
    let store = Store::open();
    store
        .write(logs(
            "api",
            vec![severity(log_record(1, "info"), 9, "INFO"), severity(log_record(2, "error"), 17, "ERROR")],
        ))
        .await;

    let body = store.get_ok("/api/logs?severity=10").await;
    assert_eq!(listed_bodies(&body), ["error"]);
}

#[tokio::test]
async fn logs_by_text_ignore_case() {
    let store = Store::open();
    store
        .write(logs(
            "api",
            vec![log_record(1, "User Ada logged in"), log_record(2, "cache miss"), log_record(3, "ÉCHEC de connexion")],
        ))
        .await;

    assert_eq!(listed_bodies(&store.get_ok("/api/logs?q=LOGGED%20IN").await), ["User Ada logged in"]);
    assert_eq!(listed_bodies(&store.get_ok("/api/logs?text=%C3%A9chec").await), ["ÉCHEC de connexion"]);
}

#[tokio::test]
async fn logs_by_text_search_a_structured_body_as_json() {
    let store = Store::open();
    let mut structured = log_record(1, "unused");
    structured.body = Some(any(Any::KvlistValue(opentelemetry_proto::tonic::common::v1::KeyValueList {
        values: vec![text("event", "Checkout")],
    })));
    store.write(logs("api", vec![structured, log_record(2, "plain")])).await;

    let body = store.get_ok("/api/logs?q=checkout").await;
    assert_eq!(body["logs"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["logs"][0]["body"], json!({"event": "Checkout"}));
}

#[tokio::test]
async fn logs_by_trace_id() {
    let store = Store::open();
    store
        .write(logs(
            "api",
            vec![in_trace(log_record(1, "mine"), 7, 1), in_trace(log_record(2, "theirs"), 8, 1), log_record(3, "none")],
        ))
        .await;

    let body = store.get_ok(&format!("/api/logs?trace_id={}", trace_hex(7))).await;
    assert_eq!(listed_bodies(&body), ["mine"]);
}

#[tokio::test]
async fn logs_by_time_range() {
    let store = Store::open();
    store.write(logs("api", vec![log_record(100, "early"), log_record(200, "middle"), log_record(300, "late")])).await;

    let body = store.get_ok(&format!("/api/logs?start={}&end={}", at_ms(150), at_ms(250))).await;
    assert_eq!(listed_bodies(&body), ["middle"]);
}

#[tokio::test]
async fn logs_by_service_and_text_together() {
    let store = Store::open();
    store.write(logs("api", vec![log_record(1, "timeout"), log_record(2, "ok")])).await;
    store.write(logs("db", vec![log_record(3, "timeout")])).await;

    let body = store.get_ok("/api/logs?service=api&q=timeout").await;
    let found = body["logs"].as_array().expect("logs");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["service"], "api");
}

#[tokio::test]
async fn found_logs_are_newest_first_up_to_the_limit() {
    let store = Store::open();
    store
        .write(logs("api", vec![log_record(2, "b"), log_record(4, "d"), log_record(1, "a"), log_record(3, "c")]))
        .await;

    let body = store.get_ok("/api/logs?q=&limit=3").await;
    assert_eq!(listed_bodies(&body), ["d", "c", "b"]);
}

#[tokio::test]
async fn a_text_search_still_fills_the_limit_past_non_matching_records() {
    let store = Store::open();
    let mut records: Vec<_> = (0..50).map(|n| log_record(n, "noise")).collect();
    records.push(log_record(0, "needle old"));
    records.push(log_record(60, "needle new"));
    store.write(logs("api", records)).await;

    let body = store.get_ok("/api/logs?q=needle&limit=2").await;
    assert_eq!(listed_bodies(&body), ["needle new", "needle old"]);
}

// ---------------------------------------------------------------------------------------------
// Bad parameters

#[tokio::test]
async fn a_bad_parameter_is_a_400_naming_it() {
    let store = Store::open();
    for (uri, parameter) in [
        ("/api/traces?min_duration=fast", "min_duration"),
        ("/api/traces?max_duration=1d", "max_duration"),
        ("/api/traces?start=yesterday", "start"),
        ("/api/traces?end=-5", "end"),
        ("/api/traces?error=maybe", "error"),
        ("/api/traces?attr=no-equals-sign", "attr"),
        ("/api/traces?tags=%5B1%5D", "tags"),
        ("/api/traces?limit=0", "limit"),
        ("/api/logs?severity=loud", "severity"),
        ("/api/logs?trace_id=abc", "trace_id"),
        ("/api/logs?start=soon", "start"),
        ("/api/logs?limit=1001", "limit"),
    ] {
        let (status, body) = store.get(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        let message = body["error"].as_str().unwrap_or_default();
        assert!(message.contains(&format!("parameter {parameter}")), "{uri}: {message}");
    }
}

#[tokio::test]
async fn an_inverted_range_is_a_400_naming_both_bounds() {
    let store = Store::open();

    let (status, body) = store.get("/api/traces?min_duration=2s&max_duration=1s").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = body["error"].as_str().unwrap_or_default();
    assert!(message.contains("max_duration") && message.contains("min_duration"), "{message}");
}
