//! The admin endpoint: `/healthz`, `/readyz`, `/metrics` (Prometheus), `/status` (JSON), and
//! the local store's query API under `/api/`, its Jaeger query API under `/jaeger/api/`, and
//! the web UI at `/` ([`ui`]) with what it needs to link a trace to Honeycomb
//! ([`honeycomb_link`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

mod errors_api;
pub mod honeycomb_link;
pub mod jaeger;
mod params;
pub mod query_api;
pub mod store_api;
pub mod ui;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::limits::{CappedListener, MemoryBudget, ServerLimits, http_server};
use crate::pipeline::lane::LaneGauge;
use crate::store::{StoreReader, StoreStats};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::receivers::{self, ReceiverReport};
use crate::telemetry::status::{DestinationStatus, StatusReport};

/// What the admin handlers read.
pub struct AdminState {
    pub metrics: Arc<Metrics>,
    pub lanes: Vec<LaneGauge>,
    /// The memory budget shown in `/metrics`.
    pub memory: MemoryBudget,
    pub destinations: Vec<Arc<DestinationStatus>>,
    /// The local store, when it is on: its size and evictions are shown too.
    pub store: Option<StoreReader>,
    /// True once every receiver listens; false again when shutdown starts.
    pub ready: AtomicBool,
    pub started: SystemTime,
    /// Each listener's name (`otlp_http`, `xray_udp`, …) and bound address, shown on
    /// `/status` so the UI can say what an app should set.
    pub listeners: BTreeMap<&'static str, String>,
}

/// The admin routes; `extra` adds the local store's query API when it is on.
pub fn app(state: Arc<AdminState>, extra: Option<Router>) -> Router {
    let admin = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .with_state(state);
    match extra {
        Some(extra) => admin.merge(extra),
        None => admin,
    }
}

/// The local store's routes on the admin port: its query API and its Jaeger API.
pub fn store_routes(reader: StoreReader) -> Router {
    let queries: Arc<dyn query_api::QuerySource> = Arc::new(reader.clone());
    store_api::routes(reader.clone())
        .merge(errors_api::routes(reader.clone()))
        .merge(jaeger::routes(reader))
        .merge(query_api::routes(queries))
}

/// Serves the admin routes until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, app: Router, shutdown: CancellationToken) -> std::io::Result<()> {
    let limits = ServerLimits::default();
    serve_within(CappedListener::new("admin", listener, limits.connections), app, &limits, shutdown).await;
    Ok(())
}

/// [`serve`] under `limits`: the header timeout and the listener's connection cap.
pub async fn serve_within(listener: CappedListener, app: Router, limits: &ServerLimits, shutdown: CancellationToken) {
    http_server::serve(listener, app, limits.header_timeout, shutdown).await;
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Arc<AdminState>>) -> Response {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn metrics(State(state): State<Arc<AdminState>>) -> Response {
    for lane in &state.lanes {
        let held = i64::try_from(lane.held_bytes()).unwrap_or(i64::MAX);
        state.metrics.queue_bytes.get_or_create(&Metrics::destination(lane.name)).set(held);
    }
    if let Some(store) = &state.store {
        state.metrics.set_store_stats(&store.stats());
    }
    state.metrics.set_memory_budget(&state.memory);
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], state.metrics.encode()).into_response()
}

#[derive(Serialize)]
struct StatusBody {
    version: &'static str,
    ready: bool,
    uptime_seconds: u64,
    listeners: BTreeMap<&'static str, String>,
    destinations: Vec<StatusReport>,
    /// Per receiver and signal: items accepted, refused (by reason) and requests rejected (by
    /// reason) since start.
    receivers: ReceiverReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    local_store: Option<StoreStats>,
}

async fn status(State(state): State<Arc<AdminState>>) -> Json<StatusBody> {
    let uptime = SystemTime::now().duration_since(state.started).unwrap_or(Duration::ZERO);
    Json(StatusBody {
        version: env!("CARGO_PKG_VERSION"),
        ready: state.ready.load(Ordering::Relaxed),
        uptime_seconds: uptime.as_secs(),
        listeners: state.listeners.clone(),
        destinations: state
            .destinations
            .iter()
            .map(|destination| {
                let queue_bytes = state.lanes.iter().find(|lane| lane.name == destination.name).map(|l| l.held_bytes());
                destination.report().with_queue_bytes(queue_bytes.unwrap_or(0))
            })
            .collect(),
        receivers: receivers::from_metrics(&state.metrics.encode()),
        local_store: state.store.as_ref().map(StoreReader::stats),
    })
}
