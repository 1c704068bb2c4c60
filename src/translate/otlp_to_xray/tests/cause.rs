//! error / throttle / fault, and `cause` from exception events or a failed status.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use serde_json::json;

use super::super::http::{Flags, flags};
use super::*;

#[test]
fn failure_flags_from_status_code_and_span_status() {
    let cases = [
        (Some(200), false, Flags::default()),
        (Some(302), true, Flags { fault: true, ..Flags::default() }),
        (Some(400), false, Flags { error: true, ..Flags::default() }),
        (Some(404), true, Flags { error: true, ..Flags::default() }),
        (Some(429), false, Flags { error: true, throttle: true, fault: false }),
        (Some(500), false, Flags { fault: true, ..Flags::default() }),
        (Some(503), true, Flags { fault: true, ..Flags::default() }),
        (Some(600), true, Flags { fault: true, ..Flags::default() }),
        (None, true, Flags { fault: true, ..Flags::default() }),
        (None, false, Flags::default()),
    ];
    for (code, failed, expected) in cases {
        assert_eq!(flags(code, failed), expected, "{code:?} {failed}");
    }
}

#[test]
fn throttled_request_is_an_error_and_a_throttle() {
    let doc = document(child(SpanKind::Client, vec![kv("http.response.status_code", Value::IntValue(429))]));
    assert_eq!(
        (doc.get("error"), doc.get("throttle"), doc.get("fault")),
        (Some(&json!(true)), Some(&json!(true)), None)
    );
}

#[test]
fn client_error_is_an_error_only() {
    let doc = document(child(SpanKind::Client, vec![kv("http.status_code", Value::IntValue(404))]));
    assert_eq!((doc.get("error"), doc.get("throttle"), doc.get("fault")), (Some(&json!(true)), None, None));
}

#[test]
fn server_error_is_a_fault() {
    let doc = document(span(SpanKind::Server, vec![kv("http.status_code", Value::IntValue(502))]));
    assert_eq!((doc.get("error"), doc.get("fault")), (None, Some(&json!(true))));
}

#[test]
fn failed_span_without_code_is_a_fault_with_its_status_message() {
    let doc = document(with_status(child(SpanKind::Internal, vec![]), StatusCode::Error, "queue closed"));
    assert_eq!(doc["fault"], true);
    let exceptions = &doc["cause"]["exceptions"];
    assert_eq!(exceptions.as_array().map(Vec::len), Some(1));
    assert_eq!(exceptions[0]["message"], "queue closed");
    assert_eq!(exceptions[0]["id"].as_str().map(str::len), Some(16));
}

#[test]
fn failed_span_without_message_uses_http_status_text() {
    let doc = document(with_status(
        child(SpanKind::Client, vec![kv("http.status_text", string("Service Unavailable"))]),
        StatusCode::Error,
        "",
    ));
    assert_eq!(doc["cause"]["exceptions"][0]["message"], "Service Unavailable");
}

#[test]
fn failed_span_without_any_message_has_no_cause() {
    let doc = document(with_status(child(SpanKind::Client, vec![]), StatusCode::Error, ""));
    assert_eq!(doc["fault"], true);
    assert!(doc.get("cause").is_none());
}

#[test]
fn ok_span_has_no_cause() {
    let doc = document(with_status(child(SpanKind::Client, vec![]), StatusCode::Ok, "fine"));
    assert!(doc.get("cause").is_none());
}

#[test]
fn exception_events_become_exceptions() {
    let mut failed = child(SpanKind::Internal, vec![]);
    failed.events = vec![
        exception_event(vec![kv("exception.type", string("ValueError")), kv("exception.message", string("bad cart"))]),
        Event { name: "log".to_owned(), ..Default::default() },
        exception_event(vec![kv("exception.type", string("KeyError")), kv("exception.message", string("'id'"))]),
    ];
    let exceptions = document(failed)["cause"]["exceptions"].clone();
    let summary: Vec<(String, String)> = exceptions
        .as_array()
        .map(|list| list.iter().map(|e| (e["type"].to_string(), e["message"].to_string())).collect())
        .unwrap_or_default();
    assert_eq!(
        summary,
        [("\"ValueError\"".to_owned(), "\"bad cart\"".to_owned()), ("\"KeyError\"".to_owned(), "\"'id'\"".to_owned())]
    );
    assert_ne!(exceptions[0]["id"], exceptions[1]["id"]);
}

#[test]
fn exception_events_win_over_the_status_message() {
    let mut failed = with_status(child(SpanKind::Internal, vec![]), StatusCode::Error, "status text");
    failed.events = vec![exception_event(vec![kv("exception.message", string("from the event"))])];
    let exceptions = document(failed)["cause"]["exceptions"].clone();
    assert_eq!(exceptions.as_array().map(Vec::len), Some(1));
    assert_eq!(exceptions[0]["message"], "from the event");
}

#[test]
fn exceptions_of_client_and_producer_spans_are_remote() {
    let cases = [
        (SpanKind::Client, true),
        (SpanKind::Producer, true),
        (SpanKind::Server, false),
        (SpanKind::Consumer, false),
        (SpanKind::Internal, false),
    ];
    for (kind, remote) in cases {
        let mut failed = child(kind, vec![]);
        failed.events = vec![exception_event(vec![kv("exception.type", string("IOError"))])];
        let exception = document(failed)["cause"]["exceptions"][0].clone();
        assert_eq!(exception.get("remote") == Some(&json!(true)), remote, "{kind:?}");
    }
}

#[test]
fn exceptions_from_x_ray_keep_their_id_flags_and_cause_link() {
    let mut failed = child(SpanKind::Internal, vec![]);
    failed.events = vec![exception_event(vec![
        kv("aws.xray.exception.id", string("6e5d4c3b2a190807")),
        kv("exception.type", string("PaymentError")),
        kv("aws.xray.exception.remote", Value::BoolValue(true)),
        kv("aws.xray.exception.truncated", Value::IntValue(3)),
        kv("aws.xray.exception.skipped", Value::IntValue(1)),
        kv("aws.xray.exception.cause", string("5d4c3b2a19080706")),
    ])];
    let exception = document(failed)["cause"]["exceptions"][0].clone();
    assert_eq!(
        exception,
        json!({"id": "6e5d4c3b2a190807", "type": "PaymentError", "remote": true, "truncated": 3, "skipped": 1, "cause": "5d4c3b2a19080706"})
    );
}
