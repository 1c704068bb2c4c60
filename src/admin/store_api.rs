//! The local store's query API on the admin port: recent traces, one trace, recent logs and
//! metrics, as JSON. Bad parameters get a 400 with `{"error": "..."}`; queries run off the
//! async runtime (see [`StoreReader`]).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::store::{LogEntry, MetricEntry, StoreError, StoreReader, TraceDetail, TraceSummary, parse_trace_id};

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

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

/// Query parameters, all as text so a bad value gets our own message.
#[derive(Debug, Default, Deserialize)]
struct ListParams {
    limit: Option<String>,
    service: Option<String>,
    name: Option<String>,
}

impl ListParams {
    fn limit(&self) -> Result<usize, ApiError> {
        let Some(text) = self.limit.as_deref() else { return Ok(DEFAULT_LIMIT) };
        match text.parse::<usize>() {
            Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
            _ => Err(ApiError::BadRequest(format!("limit must be a whole number from 1 to {MAX_LIMIT}, not {text:?}"))),
        }
    }

    /// A filter value; an empty one means no filter.
    fn filter(value: Option<String>) -> Option<String> {
        value.filter(|value| !value.is_empty())
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
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<TraceList>, ApiError> {
    let Query(params) = params?;
    let limit = params.limit()?;
    let traces = reader.recent_traces(ListParams::filter(params.service), limit).await?;
    Ok(Json(TraceList { traces }))
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
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<LogList>, ApiError> {
    let Query(params) = params?;
    let limit = params.limit()?;
    let logs = reader.recent_logs(ListParams::filter(params.service), limit).await?;
    Ok(Json(LogList { logs }))
}

async fn list_metrics(
    State(reader): State<StoreReader>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<MetricList>, ApiError> {
    let Query(params) = params?;
    let limit = params.limit()?;
    let metrics = reader.recent_metrics(ListParams::filter(params.name), limit).await?;
    Ok(Json(MetricList { metrics }))
}
