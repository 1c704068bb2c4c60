//! `GET /api/errors`: the exceptions the local store holds, grouped by service, exception type
//! and top frame (the innermost frame of the parsed stack trace), with counts, first and last
//! seen, and the latest occurrence's message and trace, so errors are visible without Rollbar.
//!
//! Exceptions are the `exception` events of the spans of error traces (at most
//! [`TRACES_SCANNED`], newest first) and the ERROR-or-worse log records with `exception.*`
//! attributes (at most [`LOGS_SCANNED`]); the span event and the log record of one exception
//! (same trace, span, type and message) count once.

use std::collections::{HashMap, HashSet};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;

use super::params::{ParamError, Params, ordered, parse_api_time, parse_limit};
use crate::store::{LogEntry, LogSearch, StoreError, StoreReader, TraceSearch};
use crate::translate::stack::{self, StackFormat};

/// Groups returned when the caller gives no `limit`.
const DEFAULT_LIMIT: usize = 20;
/// The largest `limit` accepted.
const MAX_LIMIT: usize = 1000;
/// Error traces read, newest first.
pub(crate) const TRACES_SCANNED: usize = 1000;
/// ERROR log records read, newest first.
pub(crate) const LOGS_SCANNED: usize = 1000;
/// OTLP severity number of ERROR.
const SEVERITY_ERROR: i32 = 17;

/// `GET /api/errors`.
pub(crate) fn routes(reader: StoreReader) -> Router {
    Router::new().route("/api/errors", get(list_errors)).with_state(reader)
}

/// A failed call, answered as `{"error": "..."}`.
#[derive(Debug, thiserror::Error)]
enum ErrorsApiError {
    #[error(transparent)]
    BadRequest(#[from] ParamError),
    #[error("{0}")]
    Query(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IntoResponse for ErrorsApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ErrorsApiError::BadRequest(_) | ErrorsApiError::Query(_) => StatusCode::BAD_REQUEST,
            ErrorsApiError::Store(error) => {
                tracing::warn!(%error, "local store errors query failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        (status, Json(serde_json::json!({"error": self.to_string()}))).into_response()
    }
}

/// One exception found in the store.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Occurrence {
    pub service: Option<String>,
    pub exception_type: String,
    pub message: String,
    pub top_frame: Option<TopFrame>,
    pub time_unix_nano: u64,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
}

/// The innermost frame of an exception's stack trace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub(crate) struct TopFrame {
    pub filename: Option<String>,
    pub lineno: Option<u64>,
    pub method: Option<String>,
}

/// Exceptions of one kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ErrorGroup {
    pub service: Option<String>,
    pub exception_type: String,
    pub top_frame: Option<TopFrame>,
    pub count: u64,
    pub first_seen_unix_nano: u64,
    pub last_seen_unix_nano: u64,
    /// The latest occurrence's message, trace and span.
    pub message: String,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
}

#[derive(Serialize)]
struct ErrorList {
    errors: Vec<ErrorGroup>,
}

/// Parameters: `service`, `start`, `end` (as `/api/traces`), `limit` (groups).
async fn list_errors(
    State(reader): State<StoreReader>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<ErrorList>, ErrorsApiError> {
    let Query(pairs) = params.map_err(|rejection| ErrorsApiError::Query(rejection.body_text()))?;
    let params = Params::new(pairs);
    let time = |name| params.get(name).map(|text| parse_api_time(name, text)).transpose();
    let (start_unix_nano, end_unix_nano) = ordered(time("start")?, time("end")?, ("start", "end"))?;
    let limit = parse_limit(params.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)?;
    let service = params.owned("service");
    let traces = reader
        .search_traces(TraceSearch {
            service: service.clone(),
            start_unix_nano,
            end_unix_nano,
            errors_only: true,
            limit: TRACES_SCANNED,
            ..TraceSearch::default()
        })
        .await?;
    let logs = reader
        .search_logs(LogSearch {
            service: service.clone(),
            min_severity_number: Some(SEVERITY_ERROR),
            start_unix_nano,
            end_unix_nano,
            limit: LOGS_SCANNED,
            ..LogSearch::default()
        })
        .await?;
    let mut occurrences = Vec::new();
    for span in traces.iter().flat_map(|trace| &trace.spans) {
        if service.as_ref().is_some_and(|wanted| span.service.as_ref() != Some(wanted)) {
            continue;
        }
        let language = span.resource.get("telemetry.sdk.language").and_then(Value::as_str);
        for event in span.events.as_array().into_iter().flatten().filter(|event| event["name"] == "exception") {
            let time = event["time_unix_nano"].as_u64().unwrap_or(span.start_time_unix_nano);
            let ids = (Some(span.trace_id.clone()), Some(span.span_id.clone()));
            occurrences.extend(occurrence(&event["attributes"], span.service.clone(), language, time, ids));
        }
    }
    occurrences.extend(logs.iter().filter_map(log_occurrence));
    let mut errors = group(occurrences);
    errors.truncate(limit);
    Ok(Json(ErrorList { errors }))
}

fn log_occurrence(log: &LogEntry) -> Option<Occurrence> {
    let language = log.resource.get("telemetry.sdk.language").and_then(Value::as_str);
    let time = if log.time_unix_nano > 0 { log.time_unix_nano } else { log.observed_time_unix_nano };
    occurrence(&log.attributes, log.service.clone(), language, time, (log.trace_id.clone(), log.span_id.clone()))
}

/// The exception in `attributes` (`exception.type` or `exception.message` set).
fn occurrence(
    attributes: &Value,
    service: Option<String>,
    language: Option<&str>,
    time_unix_nano: u64,
    (trace_id, span_id): (Option<String>, Option<String>),
) -> Option<Occurrence> {
    let text = |key: &str| attributes.get(key).and_then(Value::as_str).filter(|text| !text.is_empty());
    let (exception_type, message) = (text("exception.type"), text("exception.message"));
    if exception_type.is_none() && message.is_none() {
        return None;
    }
    let stacktrace = text("exception.stacktrace").unwrap_or_default();
    let parsed = stack::parse(StackFormat::for_language(language, stacktrace), stacktrace);
    let top_frame = parsed.first().and_then(|thrown| thrown.frames.first()).map(|frame| TopFrame {
        filename: frame.path.map(str::to_owned),
        lineno: frame.line,
        method: frame.label.map(str::to_owned),
    });
    Some(Occurrence {
        service,
        exception_type: exception_type.unwrap_or("Error").to_owned(),
        message: message.unwrap_or_default().to_owned(),
        top_frame,
        time_unix_nano,
        trace_id,
        span_id,
    })
}

/// Groups occurrences by service, type and top frame, the most frequent first (then the most
/// recent); one exception reported as a span event and as a log record counts once.
pub(crate) fn group(occurrences: Vec<Occurrence>) -> Vec<ErrorGroup> {
    let mut seen = HashSet::new();
    let mut groups: HashMap<(Option<String>, String, Option<TopFrame>), ErrorGroup> = HashMap::new();
    for occurrence in occurrences {
        let identity = (
            occurrence.trace_id.clone(),
            occurrence.span_id.clone(),
            occurrence.exception_type.clone(),
            occurrence.message.clone(),
        );
        if occurrence.trace_id.is_some() && !seen.insert(identity) {
            continue;
        }
        let key = (occurrence.service.clone(), occurrence.exception_type.clone(), occurrence.top_frame.clone());
        let group = groups.entry(key).or_insert_with(|| ErrorGroup {
            service: occurrence.service.clone(),
            exception_type: occurrence.exception_type.clone(),
            top_frame: occurrence.top_frame.clone(),
            count: 0,
            first_seen_unix_nano: occurrence.time_unix_nano,
            last_seen_unix_nano: 0,
            message: String::new(),
            trace_id: None,
            span_id: None,
        });
        group.count += 1;
        group.first_seen_unix_nano = group.first_seen_unix_nano.min(occurrence.time_unix_nano);
        if occurrence.time_unix_nano >= group.last_seen_unix_nano {
            group.last_seen_unix_nano = occurrence.time_unix_nano;
            group.message = occurrence.message;
            group.trace_id = occurrence.trace_id;
            group.span_id = occurrence.span_id;
        }
    }
    let mut groups: Vec<ErrorGroup> = groups.into_values().collect();
    groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(b.last_seen_unix_nano.cmp(&a.last_seen_unix_nano))
            .then(a.exception_type.cmp(&b.exception_type))
    });
    groups
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PYTHON: &str = "Traceback (most recent call last):\n  File \"/app/app.py\", line 10, in outer\n    inner()\n  File \"/app/app.py\", line 52, in data_crash\n    raise RuntimeError(\"boom\")\nRuntimeError: boom\n";

    fn found(message: &str, stacktrace: &str, time: u64, trace: &str, span: &str) -> Occurrence {
        let attributes =
            json!({"exception.type": "RuntimeError", "exception.message": message, "exception.stacktrace": stacktrace});
        let ids = (Some(trace.to_owned()), Some(span.to_owned()));
        occurrence(&attributes, Some("backend-flask".into()), Some("python"), time, ids).expect("an exception")
    }

    #[test]
    fn the_top_frame_is_the_innermost_call() {
        let occurrence = found("boom", PYTHON, 1, "t1", "s1");
        let top = occurrence.top_frame.unwrap();
        assert_eq!(
            (top.filename.as_deref(), top.lineno, top.method.as_deref()),
            (Some("/app/app.py"), Some(52), Some("data_crash"))
        );
    }

    #[test]
    fn attributes_without_an_exception_are_none() {
        assert_eq!(occurrence(&json!({"http.route": "/"}), None, None, 1, (None, None)), None);
    }

    #[test]
    fn same_type_and_top_frame_group_with_the_latest_trace() {
        let groups = group(vec![
            found("boom 1", PYTHON, 10, "t1", "s1"),
            found("boom 3", PYTHON, 30, "t3", "s3"),
            found("boom 2", PYTHON, 20, "t2", "s2"),
            found("other place", "", 40, "t4", "s4"),
        ]);
        assert_eq!(groups.len(), 2);
        let first = &groups[0];
        assert_eq!((first.count, first.first_seen_unix_nano, first.last_seen_unix_nano), (3, 10, 30));
        assert_eq!((first.message.as_str(), first.trace_id.as_deref()), ("boom 3", Some("t3")));
        assert_eq!((groups[1].count, groups[1].top_frame.clone()), (1, None));
    }

    #[test]
    fn a_span_event_and_its_log_record_count_once() {
        let groups = group(vec![
            found("boom", PYTHON, 10, "t1", "s1"),
            found("boom", PYTHON, 11, "t1", "s1"),
            found("boom", PYTHON, 12, "t2", "s2"),
        ]);
        assert_eq!(groups[0].count, 2);
    }
}
