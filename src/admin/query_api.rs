//! `POST /api/query` on the admin port: a Honeycomb query specification (JSON body) run over
//! the store's spans; `GET /api/query?query=<JSON>` takes the same specification the way
//! Honeycomb's query template links carry it. A body that is not a specification gets a 400
//! with the JSON parser's message, a [`QueryError`] a 400 naming the bad op, column or field
//! (500 if the store failed), each as `{"error": "..."}`. Queries run off the async runtime.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::query::{QueryError, QueryResult, QuerySpec};

pub use crate::query::QuerySource;

/// `POST /api/query` and `GET /api/query?query=…`.
pub fn routes(source: Arc<dyn QuerySource>) -> Router {
    Router::new().route("/api/query", get(get_query).post(post_query)).with_state(source)
}

/// A refused or failed query, answered as `{"error": "..."}`.
#[derive(Debug)]
enum QueryApiError {
    BadRequest(String),
    Failed(String),
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

impl IntoResponse for QueryApiError {
    fn into_response(self) -> Response {
        let (status, error) = match self {
            QueryApiError::BadRequest(error) => (StatusCode::BAD_REQUEST, error),
            QueryApiError::Failed(error) => {
                tracing::warn!(%error, "local store query failed");
                (StatusCode::INTERNAL_SERVER_ERROR, error)
            }
        };
        (status, Json(ErrorBody { error })).into_response()
    }
}

impl From<QueryError> for QueryApiError {
    fn from(error: QueryError) -> Self {
        if error.is_bad_request() {
            QueryApiError::BadRequest(error.to_string())
        } else {
            QueryApiError::Failed(error.to_string())
        }
    }
}

impl From<QueryRejection> for QueryApiError {
    fn from(rejection: QueryRejection) -> Self {
        QueryApiError::BadRequest(rejection.body_text())
    }
}

#[derive(Debug, Deserialize)]
struct TemplateParams {
    query: Option<String>,
}

async fn post_query(
    State(source): State<Arc<dyn QuerySource>>,
    body: Bytes,
) -> Result<Json<QueryResult>, QueryApiError> {
    let spec = parse(&body)?;
    run(source, spec).await
}

async fn get_query(
    State(source): State<Arc<dyn QuerySource>>,
    params: Result<Query<TemplateParams>, QueryRejection>,
) -> Result<Json<QueryResult>, QueryApiError> {
    let Query(params) = params?;
    let Some(text) = params.query else {
        return Err(QueryApiError::BadRequest("missing the query parameter: ?query=<query specification JSON>".into()));
    };
    let spec = parse(text.as_bytes())?;
    run(source, spec).await
}

fn parse(body: &[u8]) -> Result<QuerySpec, QueryApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    serde_json::from_slice(body)
        .map_err(|error| QueryApiError::BadRequest(format!("invalid query specification: {error}")))
}

async fn run(source: Arc<dyn QuerySource>, spec: QuerySpec) -> Result<Json<QueryResult>, QueryApiError> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_nanos() as i64);
    let answer = tokio::task::spawn_blocking(move || source.run_query(spec, now))
        .await
        .map_err(|error| QueryApiError::Failed(format!("query task failed: {error}")))??;
    Ok(Json(answer))
}
