//! The Rollbar SDK relay: `POST /api/1/item/` on the OTLP/HTTP listener takes the SDKs' own
//! items, so an app keeps its `rollbar` calls with its `endpoint` set to waggle and no real
//! token. waggle checks the item, drops the SDK's token, and hands the item to the Rollbar
//! lane (which puts waggle's token on it, retries and spools); the SDK gets Rollbar's answer.
//!
//! | request | answer |
//! |---|---|
//! | an item (`{"data": {"environment", "body": {…}}}`) | 200 `{"err": 0, "result": {"id": null, "uuid": …}}` |
//! | a real Rollbar token (32 hex digits) other than waggle's, in `X-Rollbar-Access-Token` or `access_token` | 403 `{"err": 1, "message": …}`, never relayed |
//! | not JSON | 400 |
//! | no `data`, `data.environment` or `data.body` with one of `trace`, `trace_chain`, `message`, `crash_report` | 422 |
//! | larger than `receivers.otlp_http.max_body_size` | 413 |
//! | a compressed body | 415 |
//! | the body not received within `limits.body_timeout` | 408 |
//! | the memory budget (`limits.memory_limit`) has no room for the body | 429 with `Retry-After` |
//! | the lane full | 429 with `Retry-After` |
//!
//! The body takes its room from the memory budget before it is read ([`routes_within`]): its
//! `Content-Length`, or frame by frame without one; a body that does not fit is read to its
//! end unkept and answered 429 with `Retry-After` (`pipeline.retry_after`), as OTLP/HTTP
//! answers. The item relayed keeps its bytes of the budget while the Rollbar lane queues it,
//! and gives them back once it is sent (or dropped).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Map, Value, json};

use crate::config::Secret;
use crate::destination::rollbar::{TOKEN_HEADER, relayed_batch};
use crate::limits::{BudgetExhausted, MemoryBudget, MemoryPermit, ServerLimits, retry_after_seconds};
use crate::pipeline::router::Router;
use crate::receiver::body::{self, BodyError};
use crate::telemetry::ratelimit::LogLimiter;
use crate::translate::otlp_to_rollbar::uuid_text;

/// Where the SDKs post items (`endpoint` + `item/`).
pub const ITEM_PATH: &str = "/api/1/item/";

/// The body keys one of which an item's `data.body` must have.
const BODY_KINDS: [&str; 4] = ["trace", "trace_chain", "message", "crash_report"];

/// Why an item was not relayed; each answers as Rollbar would.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("the item carries another Rollbar project's access token; waggle relays items with its own token only")]
    ForeignToken,
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("invalid item: {0}")]
    Invalid(&'static str),
    #[error("the item is larger than {0} bytes")]
    TooLarge(usize),
    #[error("compressed items are not accepted")]
    Compressed,
    #[error("could not read the item: {0}")]
    Read(String),
    #[error("the item did not arrive within {0:?}")]
    BodyTimeout(Duration),
    /// The memory budget has no room for the item now.
    #[error("{source}; retry later")]
    OverBudget { source: BudgetExhausted, retry_after: Duration },
    #[error("the Rollbar lane is full; retry later")]
    Full { retry_after: Duration },
}

impl RelayError {
    fn status(&self) -> StatusCode {
        match self {
            RelayError::ForeignToken => StatusCode::FORBIDDEN,
            RelayError::NotJson(_) => StatusCode::BAD_REQUEST,
            RelayError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            RelayError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            RelayError::Compressed => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RelayError::Read(_) => StatusCode::BAD_REQUEST,
            RelayError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            RelayError::OverBudget { .. } | RelayError::Full { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// Whole seconds the SDK is told to wait before retrying, when it is told to.
    fn retry_after_seconds(&self) -> Option<u64> {
        match self {
            RelayError::OverBudget { retry_after, .. } | RelayError::Full { retry_after } => {
                Some(retry_after_seconds(*retry_after))
            }
            _ => None,
        }
    }

    /// A body error, with the memory budget's refusal told to retry after `retry_after`.
    fn from_body(error: BodyError, retry_after: Duration) -> RelayError {
        match error {
            BodyError::TooLarge { limit } => RelayError::TooLarge(limit),
            BodyError::OverBudget(source) => RelayError::OverBudget { source, retry_after },
            other => RelayError::Read(other.to_string()),
        }
    }

    /// Rollbar's error shape, `{"err": 1, "message": …}`.
    fn into_response(self) -> Response {
        let mut response = json_response(self.status(), &json!({"err": 1, "message": self.to_string()}));
        if let Some(seconds) = self.retry_after_seconds() {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// What the relay's handler shares.
#[derive(Clone)]
struct Relay {
    /// A router holding the Rollbar lane only.
    router: Arc<Router>,
    /// waggle's own token: an SDK may carry it too.
    own_token: Secret,
    limit: usize,
    budget: MemoryBudget,
    body_timeout: Duration,
    /// What an item refused for memory is told to wait.
    retry_after: Duration,
    refusals: Arc<LogLimiter>,
}

/// The relay's routes, to merge into the OTLP/HTTP listener's. `router` holds only the
/// Rollbar lane; `limit` is the largest body taken. Bodies are counted in no memory budget
/// (for in-process tests); see [`routes_within`].
pub fn routes(router: Arc<Router>, own_token: Secret, limit: usize) -> axum::Router {
    routes_within(router, own_token, limit, &ServerLimits::default())
}

/// [`routes`], bodies taking their room from `limits.budget` (kept by the item until the lane
/// lets it go) and arriving within `limits.body_timeout`.
pub fn routes_within(router: Arc<Router>, own_token: Secret, limit: usize, limits: &ServerLimits) -> axum::Router {
    let relay = Relay {
        router,
        own_token,
        limit,
        budget: limits.budget.clone(),
        body_timeout: limits.body_timeout,
        retry_after: limits.retry_after,
        refusals: Arc::new(LogLimiter::new(Duration::from_secs(60))),
    };
    axum::Router::new()
        .route(ITEM_PATH, post(receive))
        .route(ITEM_PATH.trim_end_matches('/'), post(receive))
        .with_state(relay)
}

async fn receive(State(relay): State<Relay>, request: Request) -> Response {
    match relay.relay(request).await {
        Ok(uuid) => json_response(StatusCode::OK, &json!({"err": 0, "result": {"id": null, "uuid": uuid}})),
        Err(error) => {
            if !matches!(error, RelayError::Full { .. })
                && let Some(suppressed) = relay.refusals.check()
            {
                tracing::warn!(receiver = "rollbar_relay", %error, suppressed, "refused a Rollbar SDK item");
            }
            error.into_response()
        }
    }
}

impl Relay {
    /// Checks the item and hands it to the lane; returns its uuid.
    async fn relay(&self, request: Request) -> Result<String, RelayError> {
        let (parts, body) = request.into_parts();
        let compressed = parts
            .headers
            .get(CONTENT_ENCODING)
            .is_some_and(|value| !value.as_bytes().eq_ignore_ascii_case(b"identity"));
        if compressed {
            return Err(RelayError::Compressed);
        }
        let header_token = parts.headers.get(TOKEN_HEADER).and_then(|value| value.to_str().ok()).map(str::to_owned);
        let declared = parts.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        let (bytes, mut permit) = self.read_body(body, declared).await?;
        let mut item: Map<String, Value> = match serde_json::from_slice(&bytes) {
            Ok(Value::Object(item)) => item,
            Ok(_) => return Err(RelayError::Invalid("the item is not a JSON object")),
            Err(error) => return Err(RelayError::NotJson(error.to_string())),
        };
        let body_token = item.get("access_token").and_then(Value::as_str);
        for token in [header_token.as_deref(), body_token].into_iter().flatten() {
            if is_foreign(token, self.own_token.expose()) {
                return Err(RelayError::ForeignToken);
            }
        }
        let Some(Value::Object(mut data)) = item.remove("data") else {
            return Err(RelayError::Invalid("data is required"));
        };
        check(&data)?;
        let uuid = match data.get("uuid").and_then(Value::as_str) {
            Some(uuid) if !uuid.is_empty() => uuid.to_string(),
            _ => {
                let uuid = uuid_text(rand::random());
                data.insert("uuid".into(), Value::String(uuid.clone()));
                uuid
            }
        };
        let forwarded = json!({"data": data}).to_string();
        drop(bytes);
        // The item queued is the JSON re-written (a uuid may have been added): its bytes.
        let more = forwarded.len().saturating_sub(permit.bytes());
        if more > 0 {
            permit.try_grow(more).map_err(|source| RelayError::OverBudget { source, retry_after: self.retry_after })?;
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0));
        self.router
            .accept(relayed_batch(forwarded, now).with_memory(permit))
            .map_err(|full| RelayError::Full { retry_after: full.retry_after })?;
        Ok(uuid)
    }

    /// Reads the body within the size limit and the body timeout, its room taken from the
    /// memory budget first (the declared length, else frame by frame). A body the budget has
    /// no room for is read to its end unkept, so the SDK sees the 429 rather than a reset.
    async fn read_body(&self, body: Body, declared: Option<u64>) -> Result<(bytes::Bytes, MemoryPermit), RelayError> {
        let mut permit = match body::reserve_declared(&self.budget, declared, self.limit) {
            Ok(permit) => permit,
            Err(source) => {
                let _ = tokio::time::timeout(self.body_timeout, body::discard(body, self.limit)).await;
                return Err(RelayError::OverBudget { source, retry_after: self.retry_after });
            }
        };
        let read = body::read_within(body, self.limit, declared, &mut permit);
        let bytes = tokio::time::timeout(self.body_timeout, read)
            .await
            .map_err(|_| RelayError::BodyTimeout(self.body_timeout))?
            .map_err(|error| RelayError::from_body(error, self.retry_after))?;
        Ok((bytes, permit))
    }
}

/// Rollbar's required fields: `data.environment`, and `data.body` with one known kind.
fn check(data: &Map<String, Value>) -> Result<(), RelayError> {
    match data.get("environment") {
        Some(Value::String(environment)) if !environment.is_empty() => {}
        _ => return Err(RelayError::Invalid("data.environment is required")),
    }
    let Some(Value::Object(body)) = data.get("body") else {
        return Err(RelayError::Invalid("data.body is required"));
    };
    match BODY_KINDS.iter().filter(|kind| body.contains_key(**kind)).count() {
        1 => Ok(()),
        0 => Err(RelayError::Invalid("data.body needs one of trace, trace_chain, message, crash_report")),
        _ => Err(RelayError::Invalid("data.body may hold only one of trace, trace_chain, message, crash_report")),
    }
}

/// A token that looks like a real Rollbar access token (32 hex digits) and is not waggle's.
/// Anything else (empty, a placeholder such as `waggle`) stands for "use waggle's token".
pub fn is_foreign(token: &str, own: &str) -> bool {
    let token = token.trim();
    token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()) && token != own
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
