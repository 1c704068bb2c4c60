//! Jaeger's query API over the local store, under `/jaeger` on the admin port, so Grafana's
//! Jaeger data source (URL `http://<waggle>:13133/jaeger`) and other Jaeger clients read
//! waggle's traces. Answers are Jaeger's envelope `{"data", "total", "limit", "offset",
//! "errors"}`; failures carry `errors: [{"code", "msg"}]` with the same HTTP status.
//!
//! - `GET /jaeger/api/services`: service names.
//! - `GET /jaeger/api/services/{service}/operations`: the service's span names.
//! - `GET /jaeger/api/operations?service=&spanKind=`: `[{"name", "spanKind"}]`.
//! - `GET /jaeger/api/traces?service=&operation=&tags=&minDuration=&maxDuration=&start=&end=&limit=`
//!   (or `traceID=`, repeatable): whole traces; see [`search`] for the parameters.
//! - `GET /jaeger/api/traces/{trace_id}`: one trace; 404 when unknown.
//! - `GET /jaeger/api/dependencies?endTs=&lookback=`: calls between services,
//!   `[{"parent", "child", "callCount"}]` plus waggle's `errorCount`, `p90DurationMs` and
//!   `peer`; see [`crate::store::DependencySearch`]. The envelope adds `spansRead` and
//!   `truncated` (true when the span bound was reached and older calls are left out).

mod dependencies;
mod search;
mod shape;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::params::{ParamError, Params, parse_lenient_trace_id};
use crate::store::{DependencyLink, StoreError, StoreReader};

/// The Jaeger API's routes, under `/jaeger`.
pub fn routes(reader: StoreReader) -> Router {
    Router::new()
        .route("/jaeger/api/services", get(services))
        .route("/jaeger/api/services/{service}/operations", get(service_operations))
        .route("/jaeger/api/operations", get(operations))
        .route("/jaeger/api/traces", get(traces))
        .route("/jaeger/api/traces/{trace_id}", get(trace))
        .route("/jaeger/api/dependencies", get(dependency_links))
        .with_state(reader)
}

/// Jaeger's response envelope.
#[derive(Debug, Serialize)]
struct Envelope<T> {
    data: T,
    total: usize,
    limit: usize,
    offset: usize,
    errors: Option<Vec<EnvelopeError>>,
}

#[derive(Debug, Serialize)]
struct EnvelopeError {
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
    msg: String,
    #[serde(rename = "traceID", skip_serializing_if = "Option::is_none")]
    trace_id: Option<String>,
}

impl<T> Envelope<Vec<T>> {
    fn list(data: Vec<T>) -> Json<Envelope<Vec<T>>> {
        Json(Envelope { total: data.len(), data, limit: 0, offset: 0, errors: None })
    }
}

/// A failed call, answered in Jaeger's envelope with `data: null`.
#[derive(Debug, thiserror::Error)]
enum JaegerError {
    #[error(transparent)]
    BadParam(#[from] ParamError),
    #[error("{0}")]
    BadQuery(String),
    #[error("malformed trace id {0:?}: expected 1 to 32 hex digits or an X-Ray id 1-xxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx")]
    BadTraceId(String),
    #[error("trace not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<QueryRejection> for JaegerError {
    fn from(rejection: QueryRejection) -> Self {
        JaegerError::BadQuery(rejection.body_text())
    }
}

impl IntoResponse for JaegerError {
    fn into_response(self) -> Response {
        let status = match &self {
            JaegerError::BadParam(_) | JaegerError::BadQuery(_) | JaegerError::BadTraceId(_) => StatusCode::BAD_REQUEST,
            JaegerError::NotFound => StatusCode::NOT_FOUND,
            JaegerError::Store(error) => {
                tracing::warn!(%error, "local store query failed (Jaeger API)");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let error = EnvelopeError { code: Some(status.as_u16()), msg: self.to_string(), trace_id: None };
        let body = Envelope { data: (), total: 0, limit: 0, offset: 0, errors: Some(vec![error]) };
        (status, Json(body)).into_response()
    }
}

async fn services(State(reader): State<StoreReader>) -> Result<Json<Envelope<Vec<String>>>, JaegerError> {
    Ok(Envelope::list(reader.services().await?))
}

async fn service_operations(
    State(reader): State<StoreReader>,
    Path(service): Path<String>,
) -> Result<Json<Envelope<Vec<String>>>, JaegerError> {
    let mut names: Vec<String> = reader.operations(service).await?.into_iter().map(|op| op.name).collect();
    names.dedup();
    Ok(Envelope::list(names))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct JaegerOperation {
    name: String,
    span_kind: &'static str,
}

async fn operations(
    State(reader): State<StoreReader>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Envelope<Vec<JaegerOperation>>>, JaegerError> {
    let Query(pairs) = params?;
    let params = Params::new(pairs);
    let service = params.owned("service").ok_or(ParamError::Missing { param: "service" })?;
    let wanted_kind = params.get("spanKind");
    let operations = reader
        .operations(service)
        .await?
        .into_iter()
        .map(|op| JaegerOperation { name: op.name, span_kind: jaeger_span_kind(op.span_kind) })
        .filter(|op| wanted_kind.is_none_or(|kind| kind == op.span_kind))
        .collect();
    Ok(Envelope::list(operations))
}

/// Jaeger names no kind for an unspecified one.
fn jaeger_span_kind(kind: &'static str) -> &'static str {
    if kind == "unspecified" { "" } else { kind }
}

async fn traces(
    State(reader): State<StoreReader>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, JaegerError> {
    let Query(pairs) = params?;
    let params = Params::new(pairs);
    let trace_ids: Vec<&str> = params.all("traceID").collect();
    if !trace_ids.is_empty() {
        return traces_by_id(&reader, &trace_ids).await;
    }
    let found = reader.search_traces(search::trace_search(&params)?).await?;
    Ok(Envelope::list(found.into_iter().map(shape::trace).collect()).into_response())
}

/// `traceID=` searches: the traces found, and an error entry for each unknown one.
async fn traces_by_id(reader: &StoreReader, texts: &[&str]) -> Result<Response, JaegerError> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for text in texts {
        let id = parse_lenient_trace_id(text).ok_or_else(|| JaegerError::BadTraceId((*text).to_owned()))?;
        match reader.trace(id).await? {
            Some(trace) => found.push(shape::trace(trace)),
            None => missing.push(EnvelopeError {
                code: None,
                msg: JaegerError::NotFound.to_string(),
                trace_id: Some(hex::encode(id)),
            }),
        }
    }
    let errors = (!missing.is_empty()).then_some(missing);
    Ok(Json(Envelope { total: found.len(), data: found, limit: 0, offset: 0, errors }).into_response())
}

async fn trace(
    State(reader): State<StoreReader>,
    Path(trace_id): Path<String>,
) -> Result<Json<Envelope<Vec<shape::Trace>>>, JaegerError> {
    let id = parse_lenient_trace_id(&trace_id).ok_or(JaegerError::BadTraceId(trace_id))?;
    let trace = reader.trace(id).await?.ok_or(JaegerError::NotFound)?;
    Ok(Envelope::list(vec![shape::trace(trace)]))
}

/// Jaeger's envelope for dependency links, with how much was read.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DependencyEnvelope {
    data: Vec<DependencyLink>,
    total: usize,
    limit: usize,
    offset: usize,
    errors: Option<Vec<EnvelopeError>>,
    spans_read: u64,
    truncated: bool,
}

async fn dependency_links(
    State(reader): State<StoreReader>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<DependencyEnvelope>, JaegerError> {
    let Query(pairs) = params?;
    let found = reader.dependencies(dependencies::dependency_search(&Params::new(pairs))?).await?;
    Ok(Json(DependencyEnvelope {
        total: found.links.len(),
        data: found.links,
        limit: 0,
        offset: 0,
        errors: None,
        spans_read: found.spans_read,
        truncated: found.truncated,
    }))
}
