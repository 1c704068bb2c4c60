//! OTLP exceptions → Rollbar items: frames per language (innermost call last), chained causes,
//! the item's context fields, which log records make items, and one key per exception.

use opentelemetry_proto::tonic::common::v1::any_value::Value as OtlpValue;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use serde_json::{Value, json};

use super::*;

const TRACE_ID: [u8; 16] =
    [0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36];
const SPAN_ID: [u8; 8] = [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7];
/// 2026-01-01T00:00:00Z plus half a second.
const TIME: u64 = 1_767_225_600_500_000_000;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(OtlpValue::StringValue(value.into())) }),
        ..KeyValue::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(OtlpValue::IntValue(value)) }),
        ..KeyValue::default()
    }
}

fn exception_attributes(exception_type: &str, message: &str, stacktrace: &str) -> Vec<KeyValue> {
    vec![kv("exception.type", exception_type), kv("exception.message", message), kv("exception.stacktrace", stacktrace)]
}

fn resource(language: &str) -> Vec<KeyValue> {
    vec![
        kv("service.name", "backend-flask"),
        kv("service.version", "1.4.2"),
        kv("deployment.environment.name", "staging"),
        kv("host.name", "web-1"),
        kv("telemetry.sdk.language", language),
    ]
}

/// A server span that recorded one exception event.
fn spans_with_exception(language: &str, attributes: Vec<KeyValue>) -> Vec<ResourceSpans> {
    let span = Span {
        trace_id: TRACE_ID.to_vec(),
        span_id: SPAN_ID.to_vec(),
        name: "GET /api/activities/crash".into(),
        attributes: vec![
            kv("http.request.method", "GET"),
            kv("url.scheme", "http"),
            kv("server.address", "localhost"),
            int("server.port", 5000),
            kv("url.path", "/api/activities/crash"),
            kv("http.route", "/api/activities/crash"),
            int("http.response.status_code", 500),
        ],
        events: vec![Event { time_unix_nano: TIME, name: "exception".into(), attributes, ..Event::default() }],
        ..Span::default()
    };
    vec![ResourceSpans {
        resource: Some(Resource { attributes: resource(language), ..Resource::default() }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "opentelemetry.instrumentation.flask".into(),
                ..Default::default()
            }),
            spans: vec![span],
            ..ScopeSpans::default()
        }],
        ..ResourceSpans::default()
    }]
}

fn logs(records: Vec<LogRecord>) -> Vec<ResourceLogs> {
    vec![ResourceLogs {
        resource: Some(Resource { attributes: resource("python"), ..Resource::default() }),
        scope_logs: vec![ScopeLogs { log_records: records, ..ScopeLogs::default() }],
        ..ResourceLogs::default()
    }]
}

fn record(severity_number: i32, attributes: Vec<KeyValue>, body: &str) -> LogRecord {
    LogRecord {
        time_unix_nano: TIME,
        severity_number,
        trace_id: TRACE_ID.to_vec(),
        span_id: SPAN_ID.to_vec(),
        attributes,
        body: Some(AnyValue { value: Some(OtlpValue::StringValue(body.into())) }),
        ..LogRecord::default()
    }
}

fn span_items(translation: &RollbarTranslation, spans: &[ResourceSpans]) -> Vec<RollbarItem> {
    let mut items = Vec::new();
    translation.spans(spans, &mut items);
    items
}

fn log_items(translation: &RollbarTranslation, resource_logs: &[ResourceLogs]) -> Vec<RollbarItem> {
    let mut items = Vec::new();
    translation.logs(resource_logs, &mut items);
    items
}

fn data(item: &RollbarItem) -> Value {
    let envelope: Value = serde_json::from_slice(&item.body).expect("an item is JSON");
    envelope["data"].clone()
}

/// The one item made from an exception event recorded under `language`.
fn item_for(language: &str, exception_type: &str, message: &str, stacktrace: &str) -> Value {
    let spans = spans_with_exception(language, exception_attributes(exception_type, message, stacktrace));
    let items = span_items(&RollbarTranslation::default(), &spans);
    assert_eq!(items.len(), 1);
    data(&items[0])
}

const PYTHON: &str = r#"Traceback (most recent call last):
  File "/usr/lib/python3.12/site-packages/flask/app.py", line 880, in full_dispatch_request
    rv = self.dispatch_request()
  File "/app/app.py", line 52, in data_crash
    raise RuntimeError("mock failure in the crash route")
RuntimeError: mock failure in the crash route
"#;

const PYTHON_CHAINED: &str = r#"Traceback (most recent call last):
  File "/app/shop/db.py", line 12, in fetch_cart
    return conn.execute("SELECT * FROM carts")
sqlite3.OperationalError: no such table: carts

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/app/shop/views.py", line 31, in checkout
    cart = fetch_cart(cart_id)
  File "/app/shop/db.py", line 14, in fetch_cart
    raise CartError("cart lookup failed") from e
shop.errors.CartError: cart lookup failed
"#;

const JAVA: &str = "com.example.shop.CheckoutException: checkout failed\n\
\tat com.example.shop.CheckoutService.pay(CheckoutService.java:88)\n\
\tat com.example.shop.CheckoutController.post(CheckoutController.java:41)\n\
Caused by: java.net.ConnectException: Connection refused\n\
\tat java.base/sun.nio.ch.Net.connect0(Native Method)\n\
\tat com.example.shop.PaymentsClient.charge(PaymentsClient.java:19)\n\
\t... 2 more\n";

const NODE: &str = "TypeError: Cannot read properties of undefined (reading 'id')\n    at getUser (/app/src/users.js:14:23)\n    at /app/src/routes.js:30:5\n    at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)\n";

const GO: &str = "goroutine 1 [running]:\nmain.handler(0xc000010000)\n\t/app/main.go:27 +0x1d\nnet/http.HandlerFunc.ServeHTTP(0x0)\n\t/usr/local/go/src/net/http/server.go:2136 +0x29\n";

/// (language, type, message, stack trace, expected `body`).
fn stack_cases() -> Vec<(&'static str, &'static str, &'static str, &'static str, Value)> {
    vec![
        (
            "python",
            "RuntimeError",
            "mock failure in the crash route",
            PYTHON,
            json!({"trace": {
                "frames": [
                    {"filename": "/usr/lib/python3.12/site-packages/flask/app.py", "lineno": 880, "method": "full_dispatch_request"},
                    {"filename": "/app/app.py", "lineno": 52, "method": "data_crash"},
                ],
                "exception": {"class": "RuntimeError", "message": "mock failure in the crash route"},
            }}),
        ),
        (
            "python",
            "shop.errors.CartError",
            "cart lookup failed",
            PYTHON_CHAINED,
            json!({"trace_chain": [
                {"frames": [
                    {"filename": "/app/shop/views.py", "lineno": 31, "method": "checkout"},
                    {"filename": "/app/shop/db.py", "lineno": 14, "method": "fetch_cart"},
                ], "exception": {"class": "shop.errors.CartError", "message": "cart lookup failed"}},
                {"frames": [
                    {"filename": "/app/shop/db.py", "lineno": 12, "method": "fetch_cart"},
                ], "exception": {"class": "sqlite3.OperationalError", "message": "no such table: carts"}},
            ]}),
        ),
        (
            "java",
            "com.example.shop.CheckoutException",
            "checkout failed",
            JAVA,
            json!({"trace_chain": [
                {"frames": [
                    {"filename": "CheckoutController.java", "lineno": 41, "method": "com.example.shop.CheckoutController.post"},
                    {"filename": "CheckoutService.java", "lineno": 88, "method": "com.example.shop.CheckoutService.pay"},
                ], "exception": {"class": "com.example.shop.CheckoutException", "message": "checkout failed"}},
                {"frames": [
                    {"filename": "PaymentsClient.java", "lineno": 19, "method": "com.example.shop.PaymentsClient.charge"},
                    {"filename": "Native Method", "method": "sun.nio.ch.Net.connect0"},
                ], "exception": {"class": "java.net.ConnectException", "message": "Connection refused"}},
            ]}),
        ),
        (
            "nodejs",
            "TypeError",
            "Cannot read properties of undefined (reading 'id')",
            NODE,
            json!({"trace": {
                "frames": [
                    {"filename": "/app/node_modules/express/lib/router/layer.js", "lineno": 95, "method": "Layer.handle [as handle_request]"},
                    {"filename": "/app/src/routes.js", "lineno": 30},
                    {"filename": "/app/src/users.js", "lineno": 14, "method": "getUser"},
                ],
                "exception": {"class": "TypeError", "message": "Cannot read properties of undefined (reading 'id')"},
            }}),
        ),
        (
            "go",
            "*errors.errorString",
            "boom",
            GO,
            json!({"trace": {
                "frames": [
                    {"filename": "/usr/local/go/src/net/http/server.go", "lineno": 2136, "method": "net/http.HandlerFunc.ServeHTTP"},
                    {"filename": "/app/main.go", "lineno": 27, "method": "main.handler"},
                ],
                "exception": {"class": "*errors.errorString", "message": "boom"},
            }}),
        ),
    ]
}

#[test]
fn stack_traces_become_rollbar_frames_innermost_last() {
    for (language, exception_type, message, stacktrace, expected) in stack_cases() {
        let data = item_for(language, exception_type, message, stacktrace);
        assert_eq!(data["body"], expected, "{language}: {exception_type}");
    }
}

#[test]
fn an_unknown_language_is_detected_from_the_text() {
    let data = item_for("erlang", "RuntimeError", "mock failure in the crash route", PYTHON);
    assert_eq!(data["body"]["trace"]["frames"][1]["filename"], "/app/app.py");
}

#[test]
fn without_a_stack_trace_the_trace_has_no_frames() {
    let data = item_for("python", "KeyError", "'cart'", "");
    assert_eq!(data["body"], json!({"trace": {"frames": [], "exception": {"class": "KeyError", "message": "'cart'"}}}));
}

#[test]
fn a_span_event_item_carries_its_context() {
    let data = item_for("python", "RuntimeError", "mock failure in the crash route", PYTHON);
    assert_eq!(data["environment"], "staging");
    assert_eq!(data["level"], "error");
    assert_eq!(data["timestamp"], 1_767_225_600);
    assert_eq!(data["code_version"], "1.4.2");
    assert_eq!(data["language"], "python");
    assert_eq!(data["framework"], "flask");
    assert_eq!(data["server"], json!({"host": "web-1"}));
    assert_eq!(data["context"], "/api/activities/crash");
    assert_eq!(
        data["request"],
        json!({"url": "http://localhost:5000/api/activities/crash", "method": "GET", "route": "/api/activities/crash", "status_code": 500})
    );
    assert_eq!(
        data["custom"],
        json!({"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7", "service.name": "backend-flask", "source": "span event"})
    );
    assert_eq!(data["notifier"]["name"], "waggle");
}

#[test]
fn the_configured_environment_wins_and_production_is_the_default() {
    let spans = spans_with_exception("python", exception_attributes("E", "m", ""));
    let configured = RollbarTranslation { environment: Some("prod-eu".into()), log_errors: false };
    assert_eq!(data(&span_items(&configured, &spans)[0])["environment"], "prod-eu");
    let mut bare = spans;
    bare[0].resource = None;
    assert_eq!(data(&span_items(&RollbarTranslation::default(), &bare)[0])["environment"], DEFAULT_ENVIRONMENT);
}

#[test]
fn the_older_http_conventions_give_the_request_too() {
    let mut spans = spans_with_exception("python", exception_attributes("E", "m", ""));
    spans[0].scope_spans[0].spans[0].attributes =
        vec![kv("http.method", "POST"), kv("http.url", "http://shop.local/cart?id=7"), int("http.status_code", 502)];
    let data = data(&span_items(&RollbarTranslation::default(), &spans)[0]);
    assert_eq!(data["request"], json!({"url": "http://shop.local/cart?id=7", "method": "POST", "status_code": 502}));
}

#[test]
fn spans_without_exception_events_make_no_item() {
    let mut spans = spans_with_exception("python", exception_attributes("E", "m", ""));
    spans[0].scope_spans[0].spans[0].events[0].name = "retry".into();
    assert!(span_items(&RollbarTranslation::default(), &spans).is_empty());
}

#[test]
fn an_error_log_record_with_an_exception_is_an_item() {
    let records = logs(vec![record(17, exception_attributes("RuntimeError", "mock failure", PYTHON), "failed")]);
    let items = log_items(&RollbarTranslation::default(), &records);
    assert_eq!(items.len(), 1);
    let data = data(&items[0]);
    assert_eq!(data["body"]["trace"]["exception"], json!({"class": "RuntimeError", "message": "mock failure"}));
    assert_eq!(data["custom"]["source"], "log record");
    assert_eq!(data["custom"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
}

#[test]
fn a_fatal_log_record_is_critical() {
    let records = logs(vec![record(21, exception_attributes("SystemExit", "down", ""), "down")]);
    assert_eq!(data(&log_items(&RollbarTranslation::default(), &records)[0])["level"], "critical");
}

#[test]
fn below_error_no_item_is_made() {
    let records = logs(vec![record(13, exception_attributes("Warning", "careful", ""), "careful")]);
    assert!(log_items(&RollbarTranslation::default(), &records).is_empty());
}

#[test]
fn error_records_without_an_exception_are_messages_only_with_log_errors() {
    let records = logs(vec![record(17, vec![], "payment provider timed out")]);
    assert!(log_items(&RollbarTranslation::default(), &records).is_empty());
    let on = RollbarTranslation { environment: None, log_errors: true };
    let items = log_items(&on, &records);
    assert_eq!(data(&items[0])["body"], json!({"message": {"body": "payment provider timed out"}}));
}

#[test]
fn the_span_event_and_the_log_record_of_one_exception_share_a_key() {
    let attributes = exception_attributes("RuntimeError", "mock failure", PYTHON);
    let from_span = span_items(&RollbarTranslation::default(), &spans_with_exception("python", attributes.clone()));
    let from_log = log_items(&RollbarTranslation::default(), &logs(vec![record(17, attributes, "failed")]));
    assert_eq!(from_span[0].key, from_log[0].key);
    assert_eq!(data(&from_span[0])["uuid"], data(&from_log[0])["uuid"]);
    let other = exception_attributes("RuntimeError", "another failure", PYTHON);
    let different = span_items(&RollbarTranslation::default(), &spans_with_exception("python", other));
    assert_ne!(from_span[0].key, different[0].key);
}

#[test]
fn a_quoted_message_is_the_same_exception() {
    let from_span = span_items(
        &RollbarTranslation::default(),
        &spans_with_exception("python", exception_attributes("KeyError", "'cart-7'", "")),
    );
    let records = logs(vec![record(17, exception_attributes("KeyError", "cart-7", ""), "failed")]);
    assert_eq!(from_span[0].key, log_items(&RollbarTranslation::default(), &records)[0].key);
}

#[test]
fn the_uuid_is_shaped_like_a_version_4_uuid() {
    let text = uuid_text(u128::MAX);
    assert_eq!(text, "ffffffff-ffff-4fff-bfff-ffffffffffff");
    assert_eq!(uuid_text(0), "00000000-0000-4000-8000-000000000000");
}
