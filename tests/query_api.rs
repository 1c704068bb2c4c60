//! `POST /api/query` and `GET /api/query?query=…` over an in-memory source: the answer's
//! JSON shape and the 400s (bad JSON with the parser's message, a bad op or column by name).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use waggle::admin::query_api;
use waggle::query::memory::{MemorySource, VecBlock, VecRow};

/// Three spans in the last minute: two on /a (3 ms, 5 ms), one on /b (8 ms).
fn source() -> Arc<MemorySource> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64;
    let start = now - 30_000_000_000;
    let span =
        |route: &str, ms: i64| VecRow::new(start, start + ms * 1_000_000).with_duration().with("http.route", route);
    Arc::new(MemorySource::new(vec![VecBlock::new(&[span("/a", 3), span("/a", 5), span("/b", 8)])]))
}

async fn call(request: Request<Body>) -> (StatusCode, Value) {
    let response = query_api::routes(source()).oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&body)})))
}

async fn post(body: &str) -> (StatusCode, Value) {
    call(
        Request::post("/api/query")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn post_answers_results_and_series_per_group() {
    let spec = json!({"calculations": [{"op": "COUNT"}, {"op": "MAX", "column": "duration_ms"}], "breakdowns": ["http.route"], "time_range": 600});
    let (status, body) = post(&spec.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["results"],
        json!([
            {"data": {"http.route": "/a", "COUNT": 2, "MAX(duration_ms)": 5.0}},
            {"data": {"http.route": "/b", "COUNT": 1, "MAX(duration_ms)": 8.0}}
        ])
    );
    assert_eq!(body["series"].as_array().unwrap().len(), 2);
    assert_eq!(body["total_count"], json!(3));
    assert_eq!(body["end_time"].as_i64().unwrap() - body["start_time"].as_i64().unwrap(), 600);
}

#[tokio::test]
async fn get_takes_the_spec_as_a_query_template_link_does() {
    let spec = json!({"calculations": [{"op": "COUNT"}], "time_range": 600}).to_string();
    let uri = format!(
        "/api/query?query={}",
        spec.replace('"', "%22").replace(' ', "%20").replace('{', "%7B").replace('}', "%7D")
    );
    let (status, body) = call(Request::get(uri).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["data"]["COUNT"], json!(3));
}

#[tokio::test]
async fn malformed_json_is_a_400_with_the_parsers_message() {
    let (status, body) = post("{\"calculations\": [").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("EOF"), "{body}");
}

#[tokio::test]
async fn an_unknown_field_is_a_400_naming_it() {
    let (status, body) = post(r#"{"calculatons": []}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("calculatons"), "{body}");
}

#[tokio::test]
async fn an_unknown_op_is_a_400_naming_it() {
    let (status, body) = post(r#"{"calculations": [{"op": "MEDIAN", "column": "duration_ms"}]}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("\"MEDIAN\""), "{body}");
}

#[tokio::test]
async fn an_unknown_column_is_a_400_naming_it() {
    let (status, body) = post(r#"{"breakdowns": ["http.rout"]}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("\"http.rout\""), "{body}");
}

#[tokio::test]
async fn an_empty_body_is_the_default_query() {
    let (status, body) = post("").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["data"]["COUNT"], json!(3));
    assert_eq!(body["end_time"].as_i64().unwrap() - body["start_time"].as_i64().unwrap(), 7200);
}
