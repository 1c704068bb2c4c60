//! The Rollbar SDK relay (`POST /api/1/item/`): items as the `rollbar` Python SDK posts them,
//! in process, into a real lane whose exporter records what reaches it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use bytesize::ByteSize;
use common::RecordingRouter;
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::common::v1::any_value::Value as OtlpValue;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tower::ServiceExt;
use waggle::config::Secret;
use waggle::limits::{MemoryBudget, ServerLimits};
use waggle::model::{Payload, SharedBatch};
use waggle::receiver::rollbar_relay::{self, ITEM_PATH};

const OWN_TOKEN: &str = "0123456789abcdef0123456789abcdef";
const FOREIGN_TOKEN: &str = "fedcba9876543210fedcba9876543210";
const TIMEOUT: Duration = Duration::from_secs(20);

struct Harness {
    app: axum::Router,
    seen: mpsc::UnboundedReceiver<SharedBatch>,
}

impl Harness {
    fn new() -> Harness {
        Harness::with_lane(ByteSize::mib(8), false, 1024 * 1024)
    }

    fn with_lane(queue_size: ByteSize, stall: bool, limit: usize) -> Harness {
        let RecordingRouter { router, seen, .. } = RecordingRouter::new(queue_size, stall, Duration::from_secs(3));
        Harness { app: rollbar_relay::routes(Arc::clone(&router), Secret::new(OWN_TOKEN), limit), seen }
    }

    /// Bodies take their room from `budget` (a refusal is told to wait 2 s); with `stall` the
    /// lane never finishes sending what it took.
    fn within(budget: MemoryBudget, stall: bool) -> Harness {
        let RecordingRouter { router, seen, .. } =
            RecordingRouter::new(ByteSize::mib(8), stall, Duration::from_secs(3));
        let limits = ServerLimits { budget, retry_after: Duration::from_secs(2), ..ServerLimits::default() };
        let app = rollbar_relay::routes_within(Arc::clone(&router), Secret::new(OWN_TOKEN), 1024 * 1024, &limits);
        Harness { app, seen }
    }

    /// Posts `body` with its `Content-Length`; the whole answer.
    async fn post_sized(&self, body: String) -> Response<Body> {
        let request = Request::post(ITEM_PATH)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, body.len())
            .body(Body::from(body))
            .unwrap();
        self.app.clone().oneshot(request).await.expect("infallible")
    }

    /// The item's JSON exactly as the lane holds it; the lane's batch is let go of here.
    async fn next_item_text(&mut self) -> String {
        let batch = tokio::time::timeout(TIMEOUT, self.seen.recv()).await.expect("an item reaches the lane").unwrap();
        let Payload::Logs(request) = &batch.payload else { panic!("relayed items travel as logs") };
        let record = &request.decoded().unwrap().resource_logs[0].scope_logs[0].log_records[0];
        let Some(OtlpValue::StringValue(item)) = record.body.as_ref().and_then(|b| b.value.as_ref()) else {
            panic!("the item is the record's body")
        };
        item.clone()
    }

    async fn post(&self, token: Option<&str>, body: impl Into<Body>) -> (StatusCode, Value) {
        let mut request = Request::post(ITEM_PATH).header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header("X-Rollbar-Access-Token", token);
        }
        let response = self.app.clone().oneshot(request.body(body.into()).unwrap()).await.expect("infallible");
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// The item JSON that reached the lane.
    async fn next_item(&mut self) -> Value {
        serde_json::from_str(&self.next_item_text().await).unwrap()
    }

    async fn assert_nothing_reached_the_lane(&mut self) {
        assert!(tokio::time::timeout(Duration::from_millis(200), self.seen.recv()).await.is_err());
    }
}

/// An item as `rollbar.report_message` posts it (token in the body and the header).
fn sdk_message(token: &str) -> Value {
    json!({
        "access_token": token,
        "data": {
            "timestamp": 1_767_225_600,
            "environment": "development",
            "level": "error",
            "language": "python 3.12.3",
            "notifier": {"name": "pyrollbar", "version": "1.3.0"},
            "uuid": "8d0a5c3e-5b8c-4f6e-9a61-0b7d1c2e3f40",
            "body": {"message": {"body": "payment provider timed out"}},
        }
    })
}

#[tokio::test]
async fn an_item_without_a_real_token_is_relayed_without_any_token() {
    let mut harness = Harness::new();
    let (status, answer) = harness.post(Some("waggle"), sdk_message("waggle").to_string()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, json!({"err": 0, "result": {"id": null, "uuid": "8d0a5c3e-5b8c-4f6e-9a61-0b7d1c2e3f40"}}));
    let item = harness.next_item().await;
    assert_eq!(item, json!({"data": sdk_message("waggle")["data"]}));
}

#[tokio::test]
async fn an_item_carrying_waggles_own_token_is_relayed() {
    let mut harness = Harness::new();
    let (status, _) = harness.post(Some(OWN_TOKEN), sdk_message(OWN_TOKEN).to_string()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(harness.next_item().await.get("access_token").is_none());
}

#[tokio::test]
async fn an_item_with_another_projects_token_is_refused() {
    let mut harness = Harness::new();
    let (status, answer) = harness.post(Some(FOREIGN_TOKEN), sdk_message(FOREIGN_TOKEN).to_string()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(answer["err"], 1);
    harness.assert_nothing_reached_the_lane().await;
}

#[tokio::test]
async fn a_foreign_token_in_the_body_alone_is_refused_too() {
    let mut harness = Harness::new();
    let (status, _) = harness.post(None, sdk_message(FOREIGN_TOKEN).to_string()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    harness.assert_nothing_reached_the_lane().await;
}

#[tokio::test]
async fn an_item_without_a_uuid_gets_one() {
    let mut harness = Harness::new();
    let mut item = sdk_message("");
    item["data"].as_object_mut().unwrap().remove("uuid");
    let (status, answer) = harness.post(None, item.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    let uuid = answer["result"]["uuid"].as_str().unwrap().to_string();
    assert_eq!(uuid.len(), 36);
    assert_eq!(harness.next_item().await["data"]["uuid"], uuid.as_str());
}

#[tokio::test]
async fn malformed_items_are_refused_as_rollbar_would() {
    let mut harness = Harness::new();
    let no_environment = json!({"data": {"body": {"message": {"body": "x"}}}});
    let no_body = json!({"data": {"environment": "dev"}});
    let two_bodies = json!({"data": {"environment": "dev", "body": {"message": {"body": "x"}, "trace": {}}}});
    for (body, expected) in [
        ("not json".to_string(), StatusCode::BAD_REQUEST),
        ("[1, 2]".to_string(), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"access_token": "x"}).to_string(), StatusCode::UNPROCESSABLE_ENTITY),
        (no_environment.to_string(), StatusCode::UNPROCESSABLE_ENTITY),
        (no_body.to_string(), StatusCode::UNPROCESSABLE_ENTITY),
        (two_bodies.to_string(), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let (status, answer) = harness.post(None, body.clone()).await;
        assert_eq!(status, expected, "{body}");
        assert_eq!(answer["err"], 1, "{body}");
    }
    harness.assert_nothing_reached_the_lane().await;
}

#[tokio::test]
async fn an_item_over_the_size_limit_is_a_413() {
    let mut harness = Harness::with_lane(ByteSize::mib(8), false, 256);
    let mut item = sdk_message("");
    item["data"]["body"]["message"]["body"] = Value::String("x".repeat(1024));
    let (status, _) = harness.post(None, item.to_string()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    harness.assert_nothing_reached_the_lane().await;
}

/// The `Retry-After` the SDK is told when the lane is full: a one-byte queue whose exporter
/// never finishes, so the first item fills the lane; the router says to wait `retry_after`.
async fn full_lane_retry_after(retry_after: Duration) -> String {
    let RecordingRouter { router, seen, .. } = RecordingRouter::new(ByteSize::b(1), true, retry_after);
    let mut harness =
        Harness { app: rollbar_relay::routes(Arc::clone(&router), Secret::new(OWN_TOKEN), 1024 * 1024), seen };
    let (status, _) = harness.post(None, sdk_message("").to_string()).await;
    assert_eq!(status, StatusCode::OK);
    harness.next_item().await;
    let request = Request::post(ITEM_PATH).body(Body::from(sdk_message("").to_string())).unwrap();
    let response = harness.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    response.headers()[header::RETRY_AFTER].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_full_lane_asks_the_sdk_to_retry() {
    assert_eq!(full_lane_retry_after(Duration::from_secs(3)).await, "3");
}

#[tokio::test]
async fn a_full_lanes_retry_after_is_rounded_up_to_whole_seconds() {
    assert_eq!(full_lane_retry_after(Duration::from_millis(1500)).await, "2", "1.5 s is not told as 1 s");
}

// The memory budget (paused time: waiting advances the clock, it never sleeps)

/// Waits until `condition` holds; fails after [`TIMEOUT`] of (paused) time.
async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "{what} within {TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn an_item_the_memory_budget_has_no_room_for_is_a_429_and_a_later_one_is_relayed() {
    let budget = MemoryBudget::new(64 * 1024);
    let mut harness = Harness::within(budget.clone(), false);
    let item = sdk_message("").to_string();
    let held = budget.try_reserve(budget.limit() - item.len() + 1).expect("the budget is free");

    let response = harness.post_sized(item.clone()).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    let body: Value = serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["err"], 1, "{body}");
    harness.assert_nothing_reached_the_lane().await;

    drop(held);
    let response = harness.post_sized(item).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(harness.next_item().await["data"]["uuid"], "8d0a5c3e-5b8c-4f6e-9a61-0b7d1c2e3f40");
}

#[tokio::test(start_paused = true)]
async fn an_item_without_a_length_that_outgrows_the_memory_budget_is_a_429() {
    let budget = MemoryBudget::new(256);
    let mut harness = Harness::within(budget.clone(), false);
    let mut item = sdk_message("");
    item["data"]["body"]["message"]["body"] = Value::String("x".repeat(1024));

    let (status, body) = harness.post(None, item.to_string()).await;

    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    harness.assert_nothing_reached_the_lane().await;
    assert_eq!(budget.in_use(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_queued_item_holds_its_bytes_of_the_memory_budget() {
    let budget = MemoryBudget::new(64 * 1024);
    let mut harness = Harness::within(budget.clone(), true);
    let response = harness.post_sized(sdk_message("").to_string()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let queued = harness.next_item_text().await;
    assert_eq!(budget.in_use(), queued.len(), "the lane that cannot send it holds the item's bytes");
}

#[tokio::test(start_paused = true)]
async fn a_sent_item_gives_its_bytes_back_to_the_memory_budget() {
    let budget = MemoryBudget::new(64 * 1024);
    let mut harness = Harness::within(budget.clone(), false);
    let response = harness.post_sized(sdk_message("").to_string()).await;
    assert_eq!(response.status(), StatusCode::OK);
    harness.next_item_text().await;
    wait_until("the sent item gives its bytes back", || budget.in_use() == 0).await;
}

#[test]
fn only_real_looking_tokens_other_than_waggles_are_foreign() {
    assert!(rollbar_relay::is_foreign(FOREIGN_TOKEN, OWN_TOKEN));
    assert!(!rollbar_relay::is_foreign(OWN_TOKEN, OWN_TOKEN));
    assert!(!rollbar_relay::is_foreign("", OWN_TOKEN));
    assert!(!rollbar_relay::is_foreign("waggle", OWN_TOKEN));
}
