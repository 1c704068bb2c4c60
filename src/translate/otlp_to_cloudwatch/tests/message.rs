//! `json` and `raw` messages for every OTLP value type, and the record's timestamp.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValueList};
use opentelemetry_proto::tonic::logs::v1::LogRecord;

use super::super::MessageFormat;
use super::super::message::{SharedMembers, record_message, record_timestamp_ms};
use super::{NOW_MS, any, attribute, ms_to_nanos, service, text, text_attribute};

fn with_body(body: AnyValue) -> LogRecord {
    LogRecord { body: Some(body), ..Default::default() }
}

fn json_of(record: &LogRecord) -> String {
    record_message(record, MessageFormat::Json, &SharedMembers::default())
}

fn raw_of(record: &LogRecord) -> String {
    record_message(record, MessageFormat::Raw, &SharedMembers::default())
}

fn array_body() -> AnyValue {
    any(Value::ArrayValue(ArrayValue {
        values: vec![any(Value::IntValue(1)), text("two"), any(Value::BoolValue(false))],
    }))
}

fn map_body() -> AnyValue {
    any(Value::KvlistValue(KeyValueList {
        values: vec![attribute("user", text("ana")), attribute("ids", array_body())],
    }))
}

#[test]
fn json_string_body_is_a_json_string() {
    assert_eq!(json_of(&with_body(text("user logged in"))), r#"{"body":"user logged in"}"#);
}

#[test]
fn json_int_body_is_a_number() {
    assert_eq!(json_of(&with_body(any(Value::IntValue(-42)))), r#"{"body":-42}"#);
}

#[test]
fn json_double_body_is_a_number() {
    assert_eq!(json_of(&with_body(any(Value::DoubleValue(0.25)))), r#"{"body":0.25}"#);
}

#[test]
fn json_huge_double_body_uses_an_exponent() {
    assert_eq!(json_of(&with_body(any(Value::DoubleValue(1e300)))), r#"{"body":1e300}"#);
}

#[test]
fn json_non_finite_double_body_is_a_string() {
    assert_eq!(json_of(&with_body(any(Value::DoubleValue(f64::NAN)))), r#"{"body":"NaN"}"#);
    assert_eq!(json_of(&with_body(any(Value::DoubleValue(f64::NEG_INFINITY)))), r#"{"body":"-Infinity"}"#);
}

#[test]
fn json_bool_body_is_a_bool() {
    assert_eq!(json_of(&with_body(any(Value::BoolValue(true)))), r#"{"body":true}"#);
}

#[test]
fn json_bytes_body_is_a_base64_string() {
    assert_eq!(json_of(&with_body(any(Value::BytesValue(b"hi!\xff".to_vec())))), r#"{"body":"aGkh/w=="}"#);
}

#[test]
fn json_array_body_is_an_array() {
    assert_eq!(json_of(&with_body(array_body())), r#"{"body":[1,"two",false]}"#);
}

#[test]
fn json_map_body_is_an_object() {
    assert_eq!(json_of(&with_body(map_body())), r#"{"body":{"user":"ana","ids":[1,"two",false]}}"#);
}

#[test]
fn json_empty_value_inside_a_body_is_null() {
    let body = any(Value::ArrayValue(ArrayValue { values: vec![AnyValue { value: None }] }));

    assert_eq!(json_of(&with_body(body)), r#"{"body":[null]}"#);
}

#[test]
fn json_body_without_a_value_is_left_out() {
    let record =
        LogRecord { body: Some(AnyValue { value: None }), severity_text: "INFO".to_owned(), ..Default::default() };

    assert_eq!(json_of(&record), r#"{"severity_text":"INFO"}"#);
}

#[test]
fn json_escapes_quotes_backslashes_and_control_characters() {
    let record = with_body(text("say \"hi\"\\\n\t\u{1}é"));

    assert_eq!(json_of(&record), r#"{"body":"say \"hi\"\\\n\t\u0001é"}"#);
}

#[test]
fn json_record_with_every_field_has_every_member_in_order() {
    let record = LogRecord {
        time_unix_nano: 1,
        severity_number: 9,
        severity_text: "INFO".to_owned(),
        event_name: "user.login".to_owned(),
        body: Some(text("hello")),
        attributes: vec![text_attribute("http.route", "/home"), attribute("count", any(Value::IntValue(3)))],
        dropped_attributes_count: 2,
        flags: 1,
        trace_id: vec![0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36],
        span_id: vec![0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7],
        ..Default::default()
    };
    let scope = InstrumentationScope { name: "app.logger".to_owned(), version: "1.2".to_owned(), ..Default::default() };
    let shared = SharedMembers::new(&service("backend-flask"), Some(&scope));

    let message = record_message(&record, MessageFormat::Json, &shared);

    assert_eq!(
        message,
        concat!(
            r#"{"body":"hello","severity_number":9,"severity_text":"INFO","event_name":"user.login","#,
            r#""trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","#,
            r#""attributes":{"http.route":"/home","count":3},"resource":{"service.name":"backend-flask"},"#,
            r#""scope":{"name":"app.logger","version":"1.2"},"flags":1,"dropped_attributes_count":2}"#
        )
    );
    assert!(serde_json::from_str::<serde_json::Value>(&message).is_ok());
}

#[test]
fn json_scope_without_a_name_is_left_out() {
    let scope = InstrumentationScope { version: "1.2".to_owned(), ..Default::default() };
    let shared = SharedMembers::new(&[], Some(&scope));

    assert_eq!(record_message(&with_body(text("x")), MessageFormat::Json, &shared), r#"{"body":"x"}"#);
}

#[test]
fn json_all_zero_ids_are_left_out() {
    let record = LogRecord { body: Some(text("x")), trace_id: vec![0; 16], span_id: vec![0; 8], ..Default::default() };

    assert_eq!(json_of(&record), r#"{"body":"x"}"#);
}

#[test]
fn json_record_with_nothing_set_is_an_empty_object() {
    assert_eq!(json_of(&LogRecord::default()), "{}");
}

#[test]
fn raw_string_body_is_the_text_as_is() {
    assert_eq!(raw_of(&with_body(text("GET /api \"ok\"\n"))), "GET /api \"ok\"\n");
}

#[test]
fn raw_int_body_is_its_digits() {
    assert_eq!(raw_of(&with_body(any(Value::IntValue(7)))), "7");
}

#[test]
fn raw_double_body_is_its_number() {
    assert_eq!(raw_of(&with_body(any(Value::DoubleValue(1.5)))), "1.5");
}

#[test]
fn raw_non_finite_double_body_is_its_name() {
    assert_eq!(raw_of(&with_body(any(Value::DoubleValue(f64::INFINITY)))), "Infinity");
}

#[test]
fn raw_bool_body_is_true_or_false() {
    assert_eq!(raw_of(&with_body(any(Value::BoolValue(false)))), "false");
}

#[test]
fn raw_bytes_body_is_base64_text() {
    assert_eq!(raw_of(&with_body(any(Value::BytesValue(b"hi!\xff".to_vec())))), "aGkh/w==");
}

#[test]
fn raw_array_body_is_its_json() {
    assert_eq!(raw_of(&with_body(array_body())), r#"[1,"two",false]"#);
}

#[test]
fn raw_map_body_is_its_json() {
    assert_eq!(raw_of(&with_body(map_body())), r#"{"user":"ana","ids":[1,"two",false]}"#);
}

#[test]
fn raw_record_without_a_body_is_an_empty_message() {
    assert_eq!(raw_of(&LogRecord::default()), "");
}

#[test]
fn timestamp_is_time_unix_nano_in_milliseconds_rounded_down() {
    let record = LogRecord {
        time_unix_nano: ms_to_nanos(NOW_MS - 5) + 999_999,
        observed_time_unix_nano: ms_to_nanos(NOW_MS),
        ..Default::default()
    };

    assert_eq!(record_timestamp_ms(&record, NOW_MS), NOW_MS - 5);
}

#[test]
fn timestamp_falls_back_to_the_observed_time() {
    let record = LogRecord { observed_time_unix_nano: ms_to_nanos(NOW_MS - 7), ..Default::default() };

    assert_eq!(record_timestamp_ms(&record, NOW_MS), NOW_MS - 7);
}

#[test]
fn timestamp_falls_back_to_now() {
    assert_eq!(record_timestamp_ms(&LogRecord::default(), NOW_MS), NOW_MS);
}
