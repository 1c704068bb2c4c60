//! The admin endpoint: health, readiness, Prometheus metrics and destination status.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use waggle::admin::{self, AdminState};
use waggle::model::{Destination, Signal};
use waggle::telemetry::metrics::Metrics;
use waggle::telemetry::status::DestinationStatus;

fn state(ready: bool) -> Arc<AdminState> {
    let metrics = Arc::new(Metrics::new());
    metrics.show_receiver(waggle::model::Receiver::OtlpHttp, &Signal::ALL);
    let on = Arc::new(DestinationStatus::new(Destination::Local, true, "embedded store at /tmp/x", vec!["traces"]));
    let off =
        Arc::new(DestinationStatus::new(Destination::Honeycomb, false, "HONEYCOMB_API_KEY not set", vec!["traces"]));
    Arc::new(AdminState {
        memory: waggle::limits::MemoryBudget::new(1 << 20),
        metrics,
        lanes: Vec::new(),
        destinations: vec![on, off],
        store: None,
        ready: ready.into(),
        started: SystemTime::now(),
        listeners: [("otlp_http", "127.0.0.1:4318".to_string())].into_iter().collect(),
    })
}

async fn get(state: &Arc<AdminState>, path: &str) -> (StatusCode, String, String) {
    let app = admin::app(Arc::clone(state), None);
    let response = app.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, content_type, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn healthz_answers_ok() {
    let (status, _, body) = get(&state(false), "/healthz").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok\n"));
}

#[tokio::test]
async fn readyz_follows_the_ready_flag() {
    let state = state(false);
    assert_eq!(get(&state, "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
    state.ready.store(true, Ordering::Relaxed);
    assert_eq!(get(&state, "/readyz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_zeroed_receiver_counters() {
    let (status, content_type, body) = get(&state(true), "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    assert!(body.contains(r#"waggle_receiver_received_items_total{receiver="otlp_http",signal="logs"} 0"#), "{body}");
    assert!(body.ends_with("# EOF\n"));
}

#[tokio::test]
async fn metrics_show_the_memory_budget_in_use_and_its_limit() {
    let state = state(true);
    let _held = state.memory.try_reserve(1000).expect("fits");
    let (_, _, body) = get(&state, "/metrics").await;
    assert!(body.contains("waggle_memory_budget_used_bytes 1000\n"), "{body}");
    assert!(body.contains("waggle_memory_budget_limit_bytes 1048576\n"), "{body}");
}

#[tokio::test]
async fn status_says_which_destinations_are_on_and_why() {
    let state = state(true);
    state.destinations[0].record_error("connection refused");
    let (status, _, body) = get(&state, "/status").await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let destinations = json["destinations"].as_array().unwrap();
    assert_eq!(destinations[0]["name"], "local");
    assert_eq!(destinations[0]["enabled"], true);
    assert_eq!(destinations[0]["last_error"], "connection refused");
    assert_eq!(destinations[1]["enabled"], false);
    assert_eq!(destinations[1]["reason"], "HONEYCOMB_API_KEY not set");
    assert_eq!(json["ready"], true);
}

#[tokio::test]
async fn status_names_each_listener_address() {
    let state = state(true);
    let (_, _, body) = get(&state, "/status").await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let expected: serde_json::Value = state
        .listeners
        .iter()
        .map(|(name, address)| (name.to_string(), serde_json::Value::from(address.as_str())))
        .collect();
    assert_eq!(json["listeners"], expected);
}

#[tokio::test]
async fn unknown_paths_are_404() {
    assert_eq!(get(&state(true), "/nope").await.0, StatusCode::NOT_FOUND);
}
