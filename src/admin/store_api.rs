//! The local store's query API on the admin port: trace search, one trace with its logs, log
//! search and recent metrics, as JSON. Bad parameters get a 400 with `{"error": "..."}` naming
//! the parameter; queries run off the async runtime (see [`StoreReader`]).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::params::{
    ParamError, Params, ordered, parse_api_duration, parse_api_time, parse_flag, parse_key_value, parse_limit,
    parse_severity, parse_strict_trace_id, parse_tags_json,
};
use crate::store::{
    LogEntry, LogSearch, MetricEntry, StoreError, StoreReader, TraceDetail, TraceSearch, TraceSummary, parse_trace_id,
};

/// Rows returned when the caller gives no `limit`.
pub const DEFAULT_LIMIT: usize = 20;
/// The largest `limit` accepted.
pub const MAX_LIMIT: usize = 1000;

/// `GET /api/traces`, `GET /api/traces/{trace_id}`, `GET /api/logs`, `GET /api/metrics`.
pub fn routes(reader: StoreReader) -> Router {
    Router::new()
        .route("/api/traces", get(list_traces))
        .route("/api/traces/{trace_id}", get(get_trace))
        .route("/api/logs", get(list_logs))
        .route("/api/metrics", get(list_metrics))
        .with_state(reader)
}

/// A failed API call, answered as `{"error": "..."}`.
#[derive(Debug)]
enum ApiError {
    BadRequest(String),
    NotFound(String),
    Store(StoreError),
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error) = match self {
            ApiError::BadRequest(error) => (StatusCode::BAD_REQUEST, error),
            ApiError::NotFound(error) => (StatusCode::NOT_FOUND, error),
            ApiError::Store(error) => {
                tracing::warn!(%error, "local store query failed");
                (StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
            }
        };
        (status, Json(ErrorBody { error })).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::Store(error)
    }
}

impl From<ParamError> for ApiError {
    fn from(error: ParamError) -> Self {
        ApiError::BadRequest(error.to_string())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

#[derive(Serialize)]
struct TraceList {
    traces: Vec<TraceSummary>,
}

#[derive(Serialize)]
struct LogList {
    logs: Vec<LogEntry>,
}

#[derive(Serialize)]
struct MetricList {
    metrics: Vec<MetricEntry>,
}

async fn list_traces(
    State(reader): State<StoreReader>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<TraceList>, ApiError> {
    let Query(pairs) = params?;
    let search = trace_search(&Params::new(pairs))?;
    let only_service = TraceSearch { service: search.service.clone(), limit: search.limit, ..TraceSearch::default() };
    let traces = if search == only_service {
        reader.recent_traces(search.service, search.limit).await?
    } else {
        reader.search_traces(search).await?.iter().map(summary).collect()
    };
    Ok(Json(TraceList { traces }))
}

/// `/api/traces` parameters: `service`, `name`, `min_duration`, `max_duration`, `error`,
/// `attr=key=value` (repeatable), `tags` (a JSON object), `start`, `end`, `limit`.
fn trace_search(params: &Params) -> Result<TraceSearch, ApiError> {
    let mut attributes = params.all("attr").map(|attr| parse_key_value("attr", attr)).collect::<Result<Vec<_>, _>>()?;
    for tags in params.all("tags") {
        attributes.extend(parse_tags_json("tags", tags)?);
    }
    let duration = |name| params.get(name).map(|text| parse_api_duration(name, text)).transpose();
    let (min_duration_ns, max_duration_ns) =
        ordered(duration("min_duration")?, duration("max_duration")?, ("min_duration", "max_duration"))?;
    let time = |name| params.get(name).map(|text| parse_api_time(name, text)).transpose();
    let (start_unix_nano, end_unix_nano) = ordered(time("start")?, time("end")?, ("start", "end"))?;
    Ok(TraceSearch {
        service: params.owned("service"),
        span_name: params.owned("name"),
        attributes,
        min_duration_ns,
        max_duration_ns,
        start_unix_nano,
        end_unix_nano,
        errors_only: params.get("error").map(|text| parse_flag("error", text)).transpose()?.unwrap_or(false),
        limit: parse_limit(params.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)?,
    })
}

/// A found trace as a listing entry: its root is the earliest span without a parent, or else
/// its earliest span.
fn summary(trace: &TraceDetail) -> TraceSummary {
    let root = trace.spans.iter().find(|span| span.parent_span_id.is_none()).or_else(|| trace.spans.first());
    let start = trace.spans.iter().map(|span| span.start_time_unix_nano).min().unwrap_or(0);
    let end = trace.spans.iter().map(|span| span.end_time_unix_nano).max().unwrap_or(0);
    let services: std::collections::BTreeSet<&String> =
        trace.spans.iter().filter_map(|span| span.service.as_ref()).collect();
    TraceSummary {
        trace_id: trace.trace_id.clone(),
        root_name: root.map(|span| span.name.clone()).unwrap_or_default(),
        service: root.and_then(|span| span.service.clone()),
        services: services.into_iter().cloned().collect(),
        start_time_unix_nano: start,
        duration_ms: end.saturating_sub(start) as f64 / 1_000_000.0,
        span_count: trace.spans.len() as u64,
    }
}

async fn get_trace(
    State(reader): State<StoreReader>,
    Path(trace_id): Path<String>,
) -> Result<Json<TraceDetail>, ApiError> {
    let Some(id) = parse_trace_id(&trace_id) else {
        return Err(ApiError::BadRequest(format!(
            "malformed trace id {trace_id:?}: expected 32 hex digits or the X-Ray form 1-xxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx"
        )));
    };
    match reader.trace(id).await? {
        Some(trace) => Ok(Json(trace)),
        None => Err(ApiError::NotFound(format!("trace {} not found", hex::encode(id)))),
    }
}

async fn list_logs(
    State(reader): State<StoreReader>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<LogList>, ApiError> {
    let Query(pairs) = params?;
    let logs = reader.search_logs(log_search(&Params::new(pairs))?).await?;
    Ok(Json(LogList { logs }))
}

/// `/api/logs` parameters: `service`, `severity` (a minimum), `q` or `text`, `trace_id`,
/// `start`, `end`, `limit`.
fn log_search(params: &Params) -> Result<LogSearch, ApiError> {
    let time = |name| params.get(name).map(|text| parse_api_time(name, text)).transpose();
    let (start_unix_nano, end_unix_nano) = ordered(time("start")?, time("end")?, ("start", "end"))?;
    Ok(LogSearch {
        service: params.owned("service"),
        min_severity_number: params.get("severity").map(|text| parse_severity("severity", text)).transpose()?,
        text: params.owned("q").or_else(|| params.owned("text")),
        trace_id: params.get("trace_id").map(|text| parse_strict_trace_id("trace_id", text)).transpose()?,
        start_unix_nano,
        end_unix_nano,
        limit: parse_limit(params.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)?,
    })
}

async fn list_metrics(
    State(reader): State<StoreReader>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<MetricList>, ApiError> {
    let Query(pairs) = params?;
    let params = Params::new(pairs);
    let limit = parse_limit(params.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)?;
    let metrics = reader.recent_metrics(params.owned("name"), limit).await?;
    Ok(Json(MetricList { metrics }))
}
