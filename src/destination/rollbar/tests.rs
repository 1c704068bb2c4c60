//! The Rollbar exporter with a scripted client: what is built from batches (items, relayed
//! items, one item per exception) and how each answer is handled.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as OtlpValue;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::{Value, json};

use super::client::{PostError, RollbarResponse};
use super::*;
use crate::config::Secret;
use crate::model::{Batch, Destination, LossReason};

/// A [`RollbarClient`] that answers from a script and keeps what was posted.
#[derive(Default)]
struct ScriptedClient {
    answers: Mutex<VecDeque<Result<RollbarResponse, PostError>>>,
    posted: Mutex<Vec<Bytes>>,
}

impl RollbarClient for ScriptedClient {
    async fn post(&self, body: Bytes) -> Result<RollbarResponse, PostError> {
        self.posted.lock().unwrap().push(body);
        self.answers.lock().unwrap().pop_front().expect("an answer is scripted")
    }
}

fn answer(status: u16, headers: &[(&'static str, &str)], body: &str) -> Result<RollbarResponse, PostError> {
    let headers: HeaderMap =
        headers.iter().map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_str(v).unwrap())).collect();
    Ok(RollbarResponse { status: StatusCode::from_u16(status).unwrap(), headers, body: Bytes::from(body.to_string()) })
}

fn rollbar(answers: Vec<Result<RollbarResponse, PostError>>) -> Rollbar<ScriptedClient> {
    let settings = RollbarSettings { access_token: Some(Secret::new("t")), ..RollbarSettings::default() };
    let status = Arc::new(DestinationStatus::new(Destination::Rollbar, true, "test", vec!["traces", "logs"]));
    let client = ScriptedClient { answers: Mutex::new(answers.into()), ..ScriptedClient::default() };
    Rollbar::new(client, &settings, status)
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(OtlpValue::StringValue(value.into())) }),
        ..KeyValue::default()
    }
}

fn exception(message: &str) -> Vec<KeyValue> {
    vec![kv("exception.type", "RuntimeError"), kv("exception.message", message)]
}

/// A traces batch of one span per message, each with an exception event, plus one without.
fn spans_batch(messages: &[&str]) -> SharedBatch {
    let mut spans: Vec<Span> = messages
        .iter()
        .map(|message| Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "GET /crash".into(),
            events: vec![Event { name: "exception".into(), attributes: exception(message), ..Event::default() }],
            ..Span::default()
        })
        .collect();
    spans.push(Span { trace_id: vec![1; 16], span_id: vec![3; 8], name: "fine".into(), ..Span::default() });
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans, ..ScopeSpans::default() }],
            ..ResourceSpans::default()
        }],
    };
    let len = request.encoded_len();
    Arc::new(Batch::traces(request, len))
}

/// A logs batch with the ERROR log record of the same exception as [`spans_batch`].
fn logs_batch(message: &str) -> SharedBatch {
    let record = LogRecord {
        severity_number: 17,
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        attributes: exception(message),
        ..LogRecord::default()
    };
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs { log_records: vec![record], ..ScopeLogs::default() }],
            ..ResourceLogs::default()
        }],
    };
    let len = request.encoded_len();
    Arc::new(Batch::logs(request, len))
}

fn bodies(built: &Built<RollbarRequest>) -> Vec<Value> {
    built.requests.iter().map(|request| serde_json::from_slice(&request.body).unwrap()).collect()
}

#[test]
fn each_exception_event_is_one_request() {
    let exporter = rollbar(vec![]);
    let built = exporter.build(Signal::Traces, &[spans_batch(&["first", "second"])]);
    let messages: Vec<Value> =
        bodies(&built).iter().map(|body| body["data"]["body"]["trace"]["exception"]["message"].clone()).collect();
    assert_eq!(messages, [json!("first"), json!("second")]);
}

#[test]
fn the_log_record_of_an_exception_already_sent_as_a_span_event_is_not_sent_again() {
    let exporter = rollbar(vec![]);
    assert_eq!(exporter.build(Signal::Traces, &[spans_batch(&["boom"])]).requests.len(), 1);
    assert_eq!(exporter.build(Signal::Logs, &[logs_batch("boom")]).requests.len(), 0);
    assert_eq!(exporter.build(Signal::Logs, &[logs_batch("another")]).requests.len(), 1);
}

#[test]
fn a_span_event_after_its_log_record_is_not_sent_again() {
    let exporter = rollbar(vec![]);
    assert_eq!(exporter.build(Signal::Logs, &[logs_batch("boom")]).requests.len(), 1);
    assert_eq!(exporter.build(Signal::Traces, &[spans_batch(&["boom"])]).requests.len(), 0);
}

#[test]
fn a_replayed_batch_is_built_again() {
    let exporter = rollbar(vec![]);
    let batch = spans_batch(&["boom"]);
    assert_eq!(exporter.build(Signal::Traces, std::slice::from_ref(&batch)).requests.len(), 1);
    assert_eq!(exporter.build(Signal::Traces, &[batch]).requests.len(), 1);
}

#[test]
fn relayed_items_are_posted_as_they_came() {
    let exporter = rollbar(vec![]);
    let item = json!({"data": {"environment": "dev", "body": {"message": {"body": "hi"}}}}).to_string();
    let built = exporter.build(Signal::Logs, &[Arc::new(relayed_batch(item.clone(), 1)), logs_batch("boom")]);
    assert_eq!(built.requests.len(), 2);
    assert_eq!(built.requests[0].body, Bytes::from(item));
    assert_eq!(bodies(&built)[1]["data"]["body"]["trace"]["exception"]["message"], "boom");
}

#[tokio::test]
async fn an_accepted_item_is_sent() {
    let exporter = rollbar(vec![answer(200, &[], r#"{"err": 0, "result": {"id": null, "uuid": "u"}}"#)]);
    let mut request = exporter.build(Signal::Traces, &[spans_batch(&["boom"])]).requests.remove(0);
    let body = request.body.clone();
    assert_eq!(exporter.send(&mut request).await.unwrap().accepted, 1);
    assert_eq!(exporter.client.posted.lock().unwrap().as_slice(), &[body]);
}

#[tokio::test]
async fn throttling_is_retried_after_rollbars_hint() {
    let exporter = rollbar(vec![answer(429, &[("x-rate-limit-remaining-seconds", "9")], "")]);
    let mut request = exporter.build(Signal::Traces, &[spans_batch(&["boom"])]).requests.remove(0);
    let error = exporter.send(&mut request).await.unwrap_err();
    let ExportError::Retryable { retry_after, .. } = error else { panic!("{error:?}") };
    assert_eq!(retry_after, Some(Duration::from_secs(9)));
}

#[tokio::test]
async fn a_rejected_token_is_a_status_problem_and_not_retried() {
    let exporter = rollbar(vec![answer(401, &[], r#"{"err": 1, "message": "invalid access token"}"#)]);
    let mut request = exporter.build(Signal::Traces, &[spans_batch(&["boom"])]).requests.remove(0);
    let error = exporter.send(&mut request).await.unwrap_err();
    assert!(matches!(error, ExportError::Permanent { label: LossReason::Unauthorized, .. }), "{error:?}");
    let report = serde_json::to_value(exporter.status.report()).unwrap();
    assert_eq!(report["problem"], "Rollbar rejected the access token (HTTP 401)");
}

#[tokio::test]
async fn no_answer_is_retried() {
    let exporter = rollbar(vec![Err(PostError::NoAnswer(Duration::from_secs(10)))]);
    let mut request = exporter.build(Signal::Traces, &[spans_batch(&["boom"])]).requests.remove(0);
    assert!(matches!(exporter.send(&mut request).await, Err(ExportError::Retryable { .. })));
}
