//! Tests for the CloudWatch Logs lane's decisions, against a scripted [`LogsClient`]: which calls it
//! makes to create groups and streams, how each failure is classified, and how a request is
//! narrowed and reported across retries.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_sdk_cloudwatchlogs::types::RejectedLogEventsInfo;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

use super::client::LogsClient;
use super::exporter::CloudWatchLogs;
use super::lane_config::{LaneConfig, MAX_TAGS, RETENTION_DAYS};
use super::request::LogBatchRequest;
use super::resources::{KnownResources, MAX_KNOWN_STREAMS};
use super::*;
use crate::aws::AwsCallError;
use crate::aws::classify::classify;
use crate::config::{CloudWatchLogsSettings, XraySettings};
use crate::destination::{ExportError, Exporter};
use crate::model::{Batch, Destination, LossReason, SharedBatch, Signal};
use crate::telemetry::status::DestinationStatus;
use crate::translate::otlp_to_cloudwatch::batch::MAX_EVENT_LEAD;
use crate::translate::otlp_to_cloudwatch::{EventBatch, MAX_EVENT_AGE, unix_ms};
use crate::translate::otlp_to_cloudwatch::{LogEvent, MessageFormat};

// ---- a scripted CloudWatch Logs ------------------------------------------------------------

/// One call the lane made.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    CreateLogGroup { group: String, tags: BTreeMap<String, String> },
    PutRetentionPolicy { group: String, days: i32 },
    CreateLogStream { group: String, stream: String },
    PutLogEvents { group: String, stream: String, messages: Vec<String> },
}

/// Answers each operation from its own queue of scripted outcomes (success when empty) and
/// records every call.
#[derive(Default)]
struct ScriptedApi {
    calls: Mutex<Vec<Call>>,
    create_group: Mutex<VecDeque<Result<(), AwsCallError>>>,
    retention: Mutex<VecDeque<Result<(), AwsCallError>>>,
    create_stream: Mutex<VecDeque<Result<(), AwsCallError>>>,
    put: Mutex<VecDeque<Result<Option<RejectedLogEventsInfo>, AwsCallError>>>,
}

fn next<T: Default>(queue: &Mutex<VecDeque<Result<T, AwsCallError>>>) -> Result<T, AwsCallError> {
    queue.lock().expect("script lock").pop_front().unwrap_or_else(|| Ok(T::default()))
}

impl ScriptedApi {
    fn record(&self, call: Call) {
        self.calls.lock().expect("calls lock").push(call);
    }
}

impl LogsClient for Arc<ScriptedApi> {
    async fn create_log_group(&self, group: &str, tags: &BTreeMap<String, String>) -> Result<(), AwsCallError> {
        self.record(Call::CreateLogGroup { group: group.into(), tags: tags.clone() });
        next(&self.create_group)
    }

    async fn put_retention_policy(&self, group: &str, days: i32) -> Result<(), AwsCallError> {
        self.record(Call::PutRetentionPolicy { group: group.into(), days });
        next(&self.retention)
    }

    async fn create_log_stream(&self, group: &str, stream: &str) -> Result<(), AwsCallError> {
        self.record(Call::CreateLogStream { group: group.into(), stream: stream.into() });
        next(&self.create_stream)
    }

    async fn put_log_events(
        &self,
        group: &str,
        stream: &str,
        events: &[LogEvent],
    ) -> Result<Option<RejectedLogEventsInfo>, AwsCallError> {
        let messages = events.iter().map(|event| event.message.clone()).collect();
        self.record(Call::PutLogEvents { group: group.into(), stream: stream.into(), messages });
        next(&self.put)
    }
}

fn service_error(code: &str, status: u16) -> AwsCallError {
    AwsCallError::Service { code: code.into(), message: format!("{code} happened"), status }
}

fn not_found() -> AwsCallError {
    service_error("ResourceNotFoundException", 400)
}

fn already_exists() -> AwsCallError {
    service_error("ResourceAlreadyExistsException", 400)
}

fn throttled() -> AwsCallError {
    AwsCallError::Service { code: "ThrottlingException".into(), message: "Rate exceeded".into(), status: 400 }
}

// ---- the lane under test -------------------------------------------------------------------

const GROUP: &str = "/waggle/shop";
const STREAM: &str = "web-1";

fn settings() -> CloudWatchLogsSettings {
    CloudWatchLogsSettings {
        log_group: Some("/waggle/{service.name}".into()),
        log_stream: "{host.name}".into(),
        message_format: MessageFormat::Raw,
        ..CloudWatchLogsSettings::default()
    }
}

struct ScriptedLogsLane {
    api: Arc<ScriptedApi>,
    exporter: CloudWatchLogs<Arc<ScriptedApi>>,
    status: Arc<DestinationStatus>,
}

fn lane_with(settings: CloudWatchLogsSettings) -> ScriptedLogsLane {
    let api = Arc::new(ScriptedApi::default());
    let status = Arc::new(DestinationStatus::new(Destination::CloudWatchLogs, true, "test", vec!["logs"]));
    let config = LaneConfig::from_settings(&settings).expect("valid settings");
    let exporter = CloudWatchLogs::new(Arc::clone(&api), config, Arc::clone(&status));
    ScriptedLogsLane { api, exporter, status }
}

fn lane() -> ScriptedLogsLane {
    lane_with(settings())
}

impl ScriptedLogsLane {
    fn calls(&self) -> Vec<Call> {
        std::mem::take(&mut *self.api.calls.lock().expect("calls lock"))
    }
}

fn now_ms() -> i64 {
    unix_ms(SystemTime::now())
}

fn request_at(timestamps: &[i64]) -> LogBatchRequest {
    let events: Vec<LogEvent> = timestamps
        .iter()
        .enumerate()
        .map(|(index, &timestamp_ms)| LogEvent { timestamp_ms, message: format!("event {index}") })
        .collect();
    let bytes = events.iter().map(LogEvent::batch_bytes).sum();
    LogBatchRequest::new(EventBatch { group: GROUP.into(), stream: STREAM.into(), events, bytes })
}

fn request(events: usize) -> LogBatchRequest {
    let now = now_ms();
    request_at(&vec![now; events])
}

fn create_stream() -> Call {
    Call::CreateLogStream { group: GROUP.into(), stream: STREAM.into() }
}

fn put_of(messages: &[&str]) -> Call {
    Call::PutLogEvents {
        group: GROUP.into(),
        stream: STREAM.into(),
        messages: messages.iter().map(|m| m.to_string()).collect(),
    }
}

fn put_of_events(count: usize) -> Call {
    let messages: Vec<String> = (0..count).map(|index| format!("event {index}")).collect();
    put_of(&messages.iter().map(String::as_str).collect::<Vec<_>>())
}

fn permanent_label(error: &ExportError) -> Option<LossReason> {
    match error {
        ExportError::Permanent { label, .. } => Some(*label),
        ExportError::Retryable { .. } | ExportError::Blocked { .. } => None,
    }
}

// ---- error classification ------------------------------------------------------------------

#[test]
fn throttling_and_unavailable_codes_are_retried() {
    for code in ["ThrottlingException", "ServiceUnavailableException", "OperationAbortedException", "InternalFailure"] {
        let error = classify("PutLogEvents", "g / s", &service_error(code, 400));
        assert!(matches!(error, ExportError::Retryable { .. }), "{code}: {error:?}");
    }
}

#[test]
fn http_429_and_5xx_are_retried_whatever_the_code() {
    for status in [429, 500, 502, 503, 504] {
        let error = classify("PutLogEvents", "g / s", &service_error("Unknown", status));
        assert!(matches!(error, ExportError::Retryable { .. }), "{status}: {error:?}");
    }
}

#[test]
fn network_errors_timeouts_and_unreadable_answers_are_retried() {
    for failure in [
        AwsCallError::Network("connection refused".into()),
        AwsCallError::Timeout("no answer within 10s".into()),
        AwsCallError::BadResponse("truncated body".into()),
    ] {
        assert!(matches!(classify("PutLogEvents", "g / s", &failure), ExportError::Retryable { .. }), "{failure}");
    }
}

#[test]
fn invalid_parameter_is_permanent_and_keeps_cloudwatchs_message() {
    let error = AwsCallError::Service {
        code: "InvalidParameterException".into(),
        message: "Log events in a single PutLogEvents request must be in chronological order.".into(),
        status: 400,
    };
    let classified = classify("PutLogEvents", "/waggle/shop / web-1", &error);
    assert_eq!(permanent_label(&classified), Some(LossReason::InvalidParameter));
    let text = classified.to_string();
    assert!(text.contains("chronological order") && text.contains("/waggle/shop / web-1"), "{text}");
}

#[test]
fn credential_errors_block_the_lane() {
    for (code, status) in [("AccessDeniedException", 400), ("UnrecognizedClientException", 400), ("Whatever", 403)] {
        let classified = classify("PutLogEvents", "g / s", &service_error(code, status));
        assert!(matches!(classified, ExportError::Blocked { .. }), "{code}: {classified:?}");
    }
}

#[test]
fn other_client_errors_are_permanent() {
    let classified = classify("CreateLogGroup", "g", &service_error("LimitExceededException", 400));
    assert_eq!(permanent_label(&classified), Some(LossReason::Rejected));
    assert!(classified.to_string().contains("LimitExceededException"));
}

// ---- creating groups and streams -----------------------------------------------------------

#[tokio::test]
async fn the_first_request_creates_the_stream_and_later_ones_go_straight_to_put() {
    let lane = lane();
    let sent = lane.exporter.send(&mut request(2)).await.expect("sent");
    assert_eq!(sent.accepted, 2);
    assert_eq!(lane.calls(), vec![create_stream(), put_of_events(2)]);

    lane.exporter.send(&mut request(1)).await.expect("sent");
    assert_eq!(lane.calls(), vec![put_of_events(1)], "the stream is remembered");
}

#[tokio::test]
async fn a_missing_group_is_created_with_tags_and_retention_before_the_stream() {
    let mut with_group_settings = settings();
    with_group_settings.retention_days = Some(14);
    with_group_settings.tags = BTreeMap::from([("team".to_string(), "shop".to_string())]);
    let lane = lane_with(with_group_settings);
    lane.api.create_stream.lock().unwrap().push_back(Err(not_found()));

    lane.exporter.send(&mut request(1)).await.expect("sent");
    assert_eq!(
        lane.calls(),
        vec![
            create_stream(),
            Call::CreateLogGroup {
                group: GROUP.into(),
                tags: BTreeMap::from([("team".to_string(), "shop".to_string())])
            },
            Call::PutRetentionPolicy { group: GROUP.into(), days: 14 },
            create_stream(),
            put_of_events(1),
        ]
    );
    assert_eq!(lane.exporter.resources().retention_owed(GROUP), None);
}

#[tokio::test]
async fn groups_and_streams_that_already_exist_are_used_as_they_are() {
    let mut with_retention = settings();
    with_retention.retention_days = Some(30);
    let lane = lane_with(with_retention);
    lane.api.create_stream.lock().unwrap().extend([Err(not_found()), Err(already_exists())]);
    lane.api.create_group.lock().unwrap().push_back(Err(already_exists()));

    let sent = lane.exporter.send(&mut request(1)).await.expect("sent");
    assert_eq!(sent.accepted, 1);
    let calls = lane.calls();
    assert!(
        !calls.iter().any(|call| matches!(call, Call::PutRetentionPolicy { .. })),
        "a group someone else made keeps its retention: {calls:?}"
    );
    assert_eq!(calls.last(), Some(&put_of_events(1)));
    assert_eq!(lane.exporter.resources().known_streams(), 1);
}

#[tokio::test]
async fn a_stream_deleted_behind_waggles_back_is_recreated_and_the_batch_sent_again() {
    let lane = lane();
    lane.exporter.send(&mut request(1)).await.expect("first send");
    lane.calls();
    lane.api.put.lock().unwrap().push_back(Err(not_found()));
    lane.api.create_stream.lock().unwrap().push_back(Err(not_found()));

    let sent = lane.exporter.send(&mut request(2)).await.expect("sent after recreating");
    assert_eq!(sent.accepted, 2);
    assert_eq!(
        lane.calls(),
        vec![
            put_of_events(2),
            create_stream(),
            Call::CreateLogGroup { group: GROUP.into(), tags: BTreeMap::new() },
            create_stream(),
            put_of_events(2),
        ]
    );
}

#[tokio::test]
async fn not_found_again_right_after_creating_is_retried_later() {
    let lane = lane();
    lane.api.put.lock().unwrap().extend([Err(not_found()), Err(not_found())]);
    let failure = lane.exporter.send(&mut request(1)).await.expect_err("still not found");
    assert!(matches!(failure, ExportError::Retryable { .. }), "{failure:?}");
    assert_eq!(lane.exporter.resources().known_streams(), 0, "the next attempt creates the stream again");
    lane.calls();
    lane.exporter.send(&mut request(1)).await.expect("sent");
    assert_eq!(lane.calls(), vec![create_stream(), put_of_events(1)]);
}

#[tokio::test]
async fn a_retention_policy_that_failed_for_now_is_set_on_the_next_attempt() {
    let mut with_retention = settings();
    with_retention.retention_days = Some(7);
    let lane = lane_with(with_retention);
    lane.api.create_stream.lock().unwrap().push_back(Err(not_found()));
    lane.api.retention.lock().unwrap().push_back(Err(throttled()));

    let failure = lane.exporter.send(&mut request(1)).await.expect_err("retention throttled");
    assert!(matches!(failure, ExportError::Retryable { .. }));
    assert_eq!(lane.exporter.resources().retention_owed(GROUP), Some(7));
    lane.calls();

    lane.exporter.send(&mut request(1)).await.expect("sent");
    assert_eq!(
        lane.calls(),
        vec![Call::PutRetentionPolicy { group: GROUP.into(), days: 7 }, create_stream(), put_of_events(1)]
    );
    assert_eq!(lane.exporter.resources().retention_owed(GROUP), None);
}

#[tokio::test]
async fn a_retention_policy_refused_for_good_does_not_stop_the_events() {
    let mut with_retention = settings();
    with_retention.retention_days = Some(7);
    let lane = lane_with(with_retention);
    lane.api.create_stream.lock().unwrap().push_back(Err(not_found()));
    lane.api.retention.lock().unwrap().push_back(Err(service_error("AccessDeniedException", 400)));

    let sent = lane.exporter.send(&mut request(1)).await.expect("events still sent");
    assert_eq!(sent.accepted, 1);
    assert_eq!(lane.exporter.resources().retention_owed(GROUP), None, "not tried again");
}

#[tokio::test]
async fn a_throttled_put_keeps_the_stream_known_and_is_retried_as_is() {
    let lane = lane();
    lane.api.put.lock().unwrap().push_back(Err(throttled()));
    let mut throttled_request = request(3);
    let failure = lane.exporter.send(&mut throttled_request).await.expect_err("throttled");
    assert!(matches!(failure, ExportError::Retryable { .. }));
    assert_eq!(CloudWatchLogs::<Arc<ScriptedApi>>::items(&throttled_request), 3);
    lane.calls();

    let sent = lane.exporter.send(&mut throttled_request).await.expect("sent on retry");
    assert_eq!(sent.accepted, 3);
    assert_eq!(lane.calls(), vec![put_of_events(3)]);
}

#[tokio::test]
async fn a_failure_to_create_the_stream_is_classified_like_any_other() {
    let lane = lane();
    lane.api.create_stream.lock().unwrap().push_back(Err(service_error("InvalidParameterException", 400)));
    let failure = lane.exporter.send(&mut request(1)).await.expect_err("refused");
    assert_eq!(permanent_label(&failure), Some(LossReason::InvalidParameter));
    assert!(failure.to_string().contains("CreateLogStream"), "{failure}");
    assert_eq!(lane.calls(), vec![create_stream()], "no PutLogEvents without a stream");
}

#[tokio::test]
async fn a_refused_put_is_permanent_and_rejected() {
    let lane = lane();
    lane.api.put.lock().unwrap().push_back(Err(service_error("ValidationException", 400)));
    let failure = lane.exporter.send(&mut request(2)).await.expect_err("refused");
    assert_eq!(permanent_label(&failure), Some(LossReason::Rejected));
    assert!(failure.to_string().contains("PutLogEvents"), "{failure}");
}

#[tokio::test]
async fn a_refused_put_is_not_a_problem_on_status() {
    let lane = lane();
    lane.api.put.lock().unwrap().push_back(Err(service_error("ValidationException", 400)));
    let _ = lane.exporter.send(&mut request(2)).await;
    let report = serde_json::to_value(lane.status.report()).expect("status serialises");
    assert!(report["problem"].is_null(), "{report}");
}

#[tokio::test]
async fn refused_credentials_on_put_block_the_lane() {
    let lane = lane();
    lane.api.put.lock().unwrap().push_back(Err(service_error("ExpiredTokenException", 400)));
    let failure = lane.exporter.send(&mut request(1)).await.expect_err("refused");
    assert!(matches!(failure, ExportError::Blocked { .. }), "{failure:?}");
}

#[tokio::test]
async fn refused_credentials_are_shown_as_a_problem_on_status() {
    let lane = lane();
    lane.api.create_stream.lock().unwrap().push_back(Err(service_error("UnrecognizedClientException", 400)));
    let failure = lane.exporter.send(&mut request(1)).await.expect_err("refused");
    assert!(matches!(failure, ExportError::Blocked { .. }), "{failure:?}");
    let report = serde_json::to_value(lane.status.report()).expect("status serialises");
    assert!(report["problem"].as_str().is_some_and(|p| p.contains("UnrecognizedClientException")), "{report}");
}

#[tokio::test]
async fn data_already_accepted_counts_as_sent() {
    let lane = lane();
    lane.api.put.lock().unwrap().push_back(Err(service_error("DataAlreadyAcceptedException", 400)));
    let sent = lane.exporter.send(&mut request(2)).await.expect("sent");
    assert_eq!((sent.accepted, sent.rejected.len()), (2, 0));
}

#[test]
fn known_streams_are_bounded() {
    let resources = KnownResources::default();
    for index in 0..MAX_KNOWN_STREAMS {
        resources.remember_stream("g", &index.to_string());
    }
    assert_eq!(resources.known_streams(), MAX_KNOWN_STREAMS);
    resources.remember_stream("g", "one more");
    assert_eq!(resources.known_streams(), 1, "emptied, then the new one remembered");
    assert!(resources.has_stream("g", "one more"));
}

// ---- what CloudWatch refused, and narrowing on retry ---------------------------------------

#[tokio::test]
async fn rejected_log_events_are_counted_and_not_retried() {
    let lane = lane();
    let info = RejectedLogEventsInfo::builder().too_old_log_event_end_index(2).too_new_log_event_start_index(4).build();
    lane.api.put.lock().unwrap().push_back(Ok(Some(info)));
    let sent = lane.exporter.send(&mut request(5)).await.expect("sent");
    assert_eq!(sent.accepted, 2, "events 2 and 3 were stored");
    assert_eq!(sent.rejected.len(), 1);
    assert_eq!((sent.rejected[0].reason, sent.rejected[0].items), (LossReason::RejectedByCloudWatch, 3));
    assert!(sent.rejected[0].detail.contains("[0, 2)"), "{}", sent.rejected[0].detail);
    assert!(sent.retry_remaining.is_none());
}

#[tokio::test]
async fn events_that_turn_too_old_while_waiting_for_a_retry_are_taken_out_and_reported() {
    let lane = lane();
    let now = now_ms();
    let age_ms = i64::try_from(MAX_EVENT_AGE.as_millis()).expect("fits");
    // Two events a second inside the 14-day line, one well inside it.
    let mut waiting = request_at(&[now - age_ms + 1_000, now - age_ms + 1_000, now]);
    lane.api.put.lock().unwrap().push_back(Err(throttled()));
    lane.exporter.send(&mut waiting).await.expect_err("throttled");
    assert_eq!(lane.calls(), vec![create_stream(), put_of_events(3)]);

    // The retry comes after the two older events crossed the line.
    assert_eq!(waiting.drop_expired(now + 2_000), 2);
    assert_eq!(CloudWatchLogs::<Arc<ScriptedApi>>::items(&waiting), 3, "still counted until reported");
    assert_eq!(waiting.batch().bytes, waiting.batch().events.iter().map(LogEvent::batch_bytes).sum::<usize>());
    let sent = lane.exporter.send(&mut waiting).await.expect("sent");
    assert_eq!(lane.calls(), vec![put_of(&["event 2"])]);
    assert_eq!(sent.accepted, 1);
    assert_eq!((sent.rejected[0].reason, sent.rejected[0].items), (LossReason::TooOld, 2));
}

#[tokio::test]
async fn a_batch_whose_events_all_turned_too_old_makes_no_call() {
    let lane = lane();
    let age_ms = i64::try_from(MAX_EVENT_AGE.as_millis()).expect("fits");
    let mut stale = request_at(&[now_ms() - age_ms - 1]);
    let sent = lane.exporter.send(&mut stale).await.expect("settled");
    assert!(lane.calls().is_empty());
    assert_eq!((sent.accepted, sent.rejected[0].reason, sent.rejected[0].items), (0, LossReason::TooOld, 1));
}

#[test]
fn an_event_exactly_14_days_old_is_kept_on_retry_and_one_ms_older_is_not() {
    let now = now_ms();
    let age_ms = i64::try_from(MAX_EVENT_AGE.as_millis()).expect("fits");
    let mut boundary = request_at(&[now - age_ms - 1, now - age_ms]);
    assert_eq!(boundary.drop_expired(now), 1);
    assert_eq!(boundary.batch().events[0].timestamp_ms, now - age_ms);
}

// ---- building requests ---------------------------------------------------------------------

fn text(value: &str) -> AnyValue {
    AnyValue { value: Some(Value::StringValue(value.into())) }
}

fn resource(service: &str, host: &str) -> Option<Resource> {
    let attributes = vec![
        KeyValue { key: "service.name".into(), value: Some(text(service)), ..Default::default() },
        KeyValue { key: "host.name".into(), value: Some(text(host)), ..Default::default() },
    ];
    Some(Resource { attributes, ..Default::default() })
}

fn ms_to_nanos(unix_ms: i64) -> u64 {
    u64::try_from(unix_ms).expect("after 1970") * 1_000_000
}

fn logs_batch(service: &str, records: &[(i64, &str)]) -> SharedBatch {
    let log_records = records
        .iter()
        .map(|(at_ms, body)| LogRecord {
            time_unix_nano: ms_to_nanos(*at_ms),
            body: Some(text(body)),
            ..Default::default()
        })
        .collect();
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(service, "web-1"),
            scope_logs: vec![ScopeLogs { log_records, ..Default::default() }],
            ..Default::default()
        }],
    };
    Arc::new(Batch::logs(request, 100))
}

fn traces_batch(spans: Vec<Span>) -> SharedBatch {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource("shop", "web-1"),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    };
    Arc::new(Batch::traces(request, 100))
}

fn messages(request: &LogBatchRequest) -> Vec<&str> {
    request.batch().events.iter().map(|event| event.message.as_str()).collect()
}

#[test]
fn log_records_become_one_sorted_request_per_group_and_stream() {
    let now = now_ms();
    let built = lane().exporter.build(
        Signal::Logs,
        &[logs_batch("shop", &[(now, "second"), (now - 5, "first")]), logs_batch("cart", &[(now, "cart")])],
    );
    assert!(built.rejected.is_empty());
    let batches: Vec<(&str, &str, Vec<&str>)> = built
        .requests
        .iter()
        .map(|request| (request.batch().group.as_str(), request.batch().stream.as_str(), messages(request)))
        .collect();
    assert_eq!(
        batches,
        vec![("/waggle/shop", "web-1", vec!["first", "second"]), ("/waggle/cart", "web-1", vec!["cart"])]
    );
}

#[test]
fn events_outside_the_accepted_window_are_counted_with_their_reason() {
    let now = now_ms();
    let age_ms = i64::try_from(MAX_EVENT_AGE.as_millis()).expect("fits");
    let lead_ms = i64::try_from(MAX_EVENT_LEAD.as_millis()).expect("fits");
    let built = lane().exporter.build(
        Signal::Logs,
        &[logs_batch("shop", &[(now - age_ms - 60_000, "old"), (now + lead_ms + 60_000, "new"), (now, "kept")])],
    );
    assert_eq!(built.requests.len(), 1);
    assert_eq!(messages(&built.requests[0]), vec!["kept"]);
    let reasons: Vec<(LossReason, usize)> = built.rejected.iter().map(|r| (r.reason, r.items)).collect();
    assert_eq!(reasons, vec![(LossReason::TooOld, 1), (LossReason::TooNew, 1)]);
}

#[test]
fn raw_records_without_a_body_are_counted_as_empty() {
    let now = now_ms();
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource("shop", "web-1"),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord { time_unix_nano: ms_to_nanos(now), ..Default::default() }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let built = lane().exporter.build(Signal::Logs, &[Arc::new(Batch::logs(request, 10))]);
    assert!(built.requests.is_empty());
    assert_eq!((built.rejected[0].reason, built.rejected[0].items), (LossReason::Empty, 1));
}

fn server_span(name: &str, kind: SpanKind) -> Span {
    let now = ms_to_nanos(now_ms());
    Span {
        trace_id: vec![0x4b; 16],
        span_id: vec![0x11; 8],
        name: name.into(),
        kind: kind as i32,
        start_time_unix_nano: now - 2_000_000,
        end_time_unix_nano: now,
        attributes: vec![
            KeyValue { key: "http.request.method".into(), value: Some(text("GET")), ..Default::default() },
            KeyValue { key: "http.route".into(), value: Some(text(name)), ..Default::default() },
        ],
        ..Default::default()
    }
}

#[test]
fn traces_make_nothing_without_the_request_log() {
    let built = lane().exporter.build(Signal::Traces, &[traces_batch(vec![server_span("/a", SpanKind::Server)])]);
    assert!(built.requests.is_empty() && built.rejected.is_empty());
}

#[test]
fn the_request_log_writes_one_line_per_server_span_to_its_own_stream() {
    let mut with_request_log = settings();
    with_request_log.request_log.enabled = true;
    with_request_log.request_log.log_stream = "{host.name}/requests".into();
    with_request_log.request_log.message_format = MessageFormat::Raw;
    let spans = vec![server_span("/api/home", SpanKind::Server), server_span("db", SpanKind::Client)];
    let built = lane_with(with_request_log).exporter.build(Signal::Traces, &[traces_batch(spans)]);
    assert_eq!(built.requests.len(), 1);
    let batch = built.requests[0].batch();
    assert_eq!((batch.group.as_str(), batch.stream.as_str()), ("/waggle/shop", "web-1/requests"));
    assert_eq!(batch.events.len(), 1);
    assert!(batch.events[0].message.contains("\"GET /api/home\""), "{}", batch.events[0].message);
}

#[test]
fn metrics_make_nothing() {
    let built = lane().exporter.build(Signal::Metrics, &[logs_batch("shop", &[(now_ms(), "x")])]);
    assert!(built.requests.is_empty());
}

// ---- settings ------------------------------------------------------------------------------

#[test]
fn unset_aws_keys_take_the_xray_destinations() {
    let xray = XraySettings {
        region: Some("eu-west-1".into()),
        role_arn: Some("arn:aws:iam::1:role/x".into()),
        local_mode: true,
        ..XraySettings::default()
    };
    let shared = aws_access(&settings(), &xray);
    assert_eq!(shared.region.as_deref(), Some("eu-west-1"));
    assert!(shared.local_mode);
    assert!(same_access(
        &shared,
        &crate::aws::AwsAccess {
            region: xray.region.clone(),
            role_arn: xray.role_arn.clone(),
            local_mode: true,
            proxy_address: None,
        }
    ));

    let own = CloudWatchLogsSettings { region: Some("us-west-2".into()), local_mode: Some(false), ..settings() };
    let access = aws_access(&own, &xray);
    assert_eq!((access.region.as_deref(), access.local_mode), (Some("us-west-2"), false));
    assert_eq!(access.role_arn.as_deref(), Some("arn:aws:iam::1:role/x"));
    assert!(!same_access(&access, &shared));
}

#[test]
fn the_destination_wants_aws_only_when_enabled_with_a_log_group() {
    assert!(wants_aws(&settings()));
    assert!(!wants_aws(&CloudWatchLogsSettings::default()), "no log group by default");
    assert!(!wants_aws(&CloudWatchLogsSettings { log_group: Some(String::new()), ..settings() }));
    assert!(!wants_aws(&CloudWatchLogsSettings { enabled: false, ..settings() }));
}

#[test]
fn retention_must_be_one_cloudwatch_offers() {
    for days in RETENTION_DAYS {
        assert!(
            LaneConfig::from_settings(&CloudWatchLogsSettings { retention_days: Some(*days), ..settings() }).is_ok()
        );
    }
    let error = LaneConfig::from_settings(&CloudWatchLogsSettings { retention_days: Some(10), ..settings() })
        .expect_err("10 days is not offered");
    assert_eq!(error, CloudWatchLogsConfigError::RetentionDays(10));
    assert!(error.to_string().contains("retention_days = 10") && error.to_string().contains("3653"));
}

#[test]
fn a_bad_template_names_its_key() {
    let bad_group = CloudWatchLogsSettings { log_group: Some("/waggle/{service.name".into()), ..settings() };
    let error = LaneConfig::from_settings(&bad_group).expect_err("unclosed placeholder");
    assert!(error.to_string().starts_with("destinations.cloudwatch_logs.log_group: "), "{error}");

    let mut bad_request_stream = settings();
    bad_request_stream.request_log.enabled = true;
    bad_request_stream.request_log.log_stream = "a:b".into();
    let error = LaneConfig::from_settings(&bad_request_stream).expect_err("colon in a stream name");
    assert!(error.to_string().starts_with("destinations.cloudwatch_logs.request_log.log_stream: "), "{error}");
}

#[test]
fn the_request_log_defaults_to_the_destinations_log_group() {
    let mut with_request_log = settings();
    with_request_log.request_log.enabled = true;
    let config = LaneConfig::from_settings(&with_request_log).expect("valid");
    let request_log = config.request_log.expect("request log on");
    assert_eq!(request_log.group.to_string(), "/waggle/{service.name}");
    assert_eq!(request_log.stream.to_string(), "{host.name}/requests/{date}");
}

#[test]
fn tags_are_checked_against_cloudwatchs_limits() {
    let tags =
        |pairs: Vec<(String, String)>| CloudWatchLogsSettings { tags: pairs.into_iter().collect(), ..settings() };
    let fifty = (0..MAX_TAGS).map(|i| (format!("k{i}"), "v".to_string())).collect();
    assert!(LaneConfig::from_settings(&tags(fifty)).is_ok());
    let fifty_one = (0..=MAX_TAGS).map(|i| (format!("k{i}"), "v".to_string())).collect();
    assert!(matches!(LaneConfig::from_settings(&tags(fifty_one)), Err(CloudWatchLogsConfigError::Tags(_))));
    let reserved = vec![("aws:owner".to_string(), "me".to_string())];
    assert!(matches!(LaneConfig::from_settings(&tags(reserved)), Err(CloudWatchLogsConfigError::Tags(_))));
    let long_key = vec![("k".repeat(129), "v".to_string())];
    assert!(matches!(LaneConfig::from_settings(&tags(long_key)), Err(CloudWatchLogsConfigError::Tags(_))));
    let longest_value = vec![("k".to_string(), "v".repeat(256))];
    assert!(LaneConfig::from_settings(&tags(longest_value)).is_ok());
}

// ---- protocol = "otlp" ---------------------------------------------------------------------

mod otlp {
    use std::io::Read;

    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue, StatusCode};
    use prost::Message;

    use super::super::otlp::{CloudWatchLogsOtlp, CloudWatchOtlpRequest};
    use super::*;
    use crate::destination::aws_otlp::{AwsOtlpClient, OtlpAnswer, PostError};

    /// Answers 200 unless a status (and error type) is scripted; records group, stream and records.
    #[derive(Default)]
    struct ScriptedEndpoint {
        answers: Mutex<VecDeque<(u16, &'static str)>>,
        posted: Mutex<Vec<(String, String, ExportLogsServiceRequest)>>,
    }

    impl AwsOtlpClient for Arc<ScriptedEndpoint> {
        async fn post(&self, headers: &[(&'static str, &str)], body: Bytes) -> Result<OtlpAnswer, PostError> {
            let header = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string()).unwrap();
            let mut protobuf = Vec::new();
            flate2::read::GzDecoder::new(body.as_ref()).read_to_end(&mut protobuf).expect("gzip");
            let request = ExportLogsServiceRequest::decode(protobuf.as_slice()).expect("OTLP logs");
            self.posted.lock().unwrap().push((header("x-aws-log-group"), header("x-aws-log-stream"), request));
            let (status, error_type) = self.answers.lock().unwrap().pop_front().unwrap_or((200, ""));
            let mut answer_headers = HeaderMap::new();
            if !error_type.is_empty() {
                answer_headers.insert("x-amzn-errortype", HeaderValue::from_static(error_type));
            }
            Ok(OtlpAnswer {
                status: StatusCode::from_u16(status).unwrap(),
                headers: answer_headers,
                body: Bytes::new(),
            })
        }
    }

    struct OtlpLane {
        api: Arc<ScriptedApi>,
        endpoint: Arc<ScriptedEndpoint>,
        exporter: CloudWatchLogsOtlp<Arc<ScriptedEndpoint>, Arc<ScriptedApi>>,
    }

    fn otlp_lane() -> OtlpLane {
        let ScriptedLogsLane { api, exporter, status } = lane();
        let endpoint = Arc::new(ScriptedEndpoint::default());
        let translation = LaneConfig::from_settings(&settings()).unwrap().translation;
        let exporter = CloudWatchLogsOtlp::new(Arc::clone(&endpoint), exporter, translation, status);
        OtlpLane { api, endpoint, exporter }
    }

    fn resource_logs(service: &str, bodies: &[&str]) -> ResourceLogs {
        let attribute = |key: &str, value: &str| KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(Value::StringValue(value.into())) }),
            ..Default::default()
        };
        ResourceLogs {
            resource: Some(Resource {
                attributes: vec![attribute("service.name", service), attribute("host.name", "web-1")],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: bodies
                    .iter()
                    .map(|body| LogRecord {
                        body: Some(AnyValue { value: Some(Value::StringValue(body.to_string())) }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn logs_batch(resources: Vec<ResourceLogs>) -> SharedBatch {
        let request = ExportLogsServiceRequest { resource_logs: resources };
        let len = request.encoded_len();
        Arc::new(Batch::logs(request, len))
    }

    fn otlp_requests(built: crate::destination::Built<CloudWatchOtlpRequest>) -> Vec<CloudWatchOtlpRequest> {
        assert!(built.rejected.is_empty(), "{:?}", built.rejected);
        built.requests
    }

    #[tokio::test]
    async fn records_go_to_their_own_group_and_stream_after_the_stream_is_made() {
        let lane = otlp_lane();
        let batch = logs_batch(vec![resource_logs("shop", &["a", "b"]), resource_logs("cart", &["c"])]);
        let mut requests = otlp_requests(lane.exporter.build(Signal::Logs, &[batch]));
        assert_eq!(requests.len(), 2);
        for request in &mut requests {
            lane.exporter.send(request).await.unwrap();
        }
        let posted = lane.endpoint.posted.lock().unwrap();
        let summary: Vec<(String, String, usize)> = posted
            .iter()
            .map(|(g, s, r)| (g.clone(), s.clone(), r.resource_logs[0].scope_logs[0].log_records.len()))
            .collect();
        assert_eq!(
            summary,
            vec![("/waggle/shop".into(), "web-1".into(), 2), ("/waggle/cart".into(), "web-1".into(), 1)]
        );
        let calls = lane.api.calls.lock().unwrap().clone();
        assert_eq!(calls[0], create_stream(), "the stream is created before the first request");
        assert!(calls.iter().all(|call| !matches!(call, Call::PutLogEvents { .. })), "{calls:?}");
    }

    #[tokio::test]
    async fn a_missing_stream_is_created_again_on_the_next_attempt() {
        let lane = otlp_lane();
        lane.endpoint.answers.lock().unwrap().push_back((400, "ResourceNotFoundException"));
        let mut request =
            otlp_requests(lane.exporter.build(Signal::Logs, &[logs_batch(vec![resource_logs("shop", &["a"])])]))
                .remove(0);
        let error = lane.exporter.send(&mut request).await.unwrap_err();
        assert!(matches!(error, ExportError::Retryable { .. }), "{error:?}");
        assert_eq!(lane.exporter.send(&mut request).await.unwrap().accepted, 1);
        let creates = lane.api.calls.lock().unwrap().iter().filter(|call| **call == create_stream()).count();
        assert_eq!(creates, 2);
    }

    #[test]
    fn more_than_10000_records_are_split() {
        let lane = otlp_lane();
        let bodies: Vec<String> = (0..10_001).map(|i| format!("r{i}")).collect();
        let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
        let requests =
            otlp_requests(lane.exporter.build(Signal::Logs, &[logs_batch(vec![resource_logs("shop", &bodies)])]));
        let sizes: Vec<usize> =
            requests.iter().map(CloudWatchLogsOtlp::<Arc<ScriptedEndpoint>, Arc<ScriptedApi>>::items).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 10_001);
        assert!(sizes.iter().all(|&s| s <= 10_000), "{sizes:?}");
    }
}
