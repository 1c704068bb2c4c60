//! OTLP/HTTP receiver tests: real SDK payloads through `app()` (in process) and `serve()` (on
//! 127.0.0.1:0), into a real lane whose exporter records what reaches it.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use bytes::Bytes;
use bytesize::ByteSize;
use common::RecordingRouter;
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use waggle::config::{CorsSettings, OtlpHttpSettings};
use waggle::model::{Payload, SharedBatch, Signal};
use waggle::pipeline::router::Router;
use waggle::receiver::otlp::body::{self as request_body, BodyError, ContentEncoding};
use waggle::receiver::otlp::error::rpc;
use waggle::receiver::otlp::http as otlp_http;
use waggle::telemetry::metrics::Metrics;

const PYTHON_PROTOBUF: &[u8] = include_bytes!("data/run1_004_otlp_http_v1_traces.bin");
const PYTHON_PROTOBUF_GZIP: &[u8] = include_bytes!("data/run4protogz_004_otlp_http_v1_traces.bin");
const PYTHON_PROTOBUF_GZIP_PLAIN: &[u8] = include_bytes!("data/run4protogz_004_otlp_http_v1_traces.decompressed.bin");
const PYTHON_JSON: &[u8] = include_bytes!("data/run2json_004_otlp_http_v1_traces.bin");
const NODE_JSON: &[u8] = include_bytes!("data/run6nodejson_001_otlp_http_v1_traces.bin");
const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";
const TIMEOUT: Duration = Duration::from_secs(20);

struct Harness {
    router: Arc<Router>,
    metrics: Arc<Metrics>,
    seen: mpsc::UnboundedReceiver<SharedBatch>,
}

impl Harness {
    fn new() -> Harness {
        Harness::with_lane(ByteSize::mib(64), false)
    }

    /// A router with one lane taking every signal, dispatching each batch at once.
    fn with_lane(queue_size: ByteSize, stall: bool) -> Harness {
        let RecordingRouter { router, metrics, seen } = RecordingRouter::new(queue_size, stall, Duration::from_secs(3));
        Harness { router, metrics, seen }
    }

    fn app(&self) -> axum::Router {
        self.app_with(OtlpHttpSettings::default())
    }

    fn app_with(&self, settings: OtlpHttpSettings) -> axum::Router {
        otlp_http::app(&settings, Arc::clone(&self.router), Arc::clone(&self.metrics))
    }

    /// The next batch the lane's exporter was given.
    async fn next_batch(&mut self) -> SharedBatch {
        tokio::time::timeout(TIMEOUT, self.seen.recv()).await.expect("a batch reaches the lane").expect("lane open")
    }

    /// Sends a valid request and checks it is the next thing the lane sees: proves that
    /// nothing sent before it (and rejected) got into the lane.
    async fn assert_nothing_else_reached_the_lane(&mut self, app: &axum::Router) {
        let (status, _, _) = call(app, post("/v1/traces", Some(PROTOBUF), None, marker_request())).await;
        assert_eq!(status, StatusCode::OK);
        let batch = self.next_batch().await;
        assert_eq!(span_names(&batch), vec!["marker"], "only the marker request reached the lane");
    }

    fn metric_line(&self, needle: &str) -> Option<String> {
        self.metrics.encode().lines().find(|line| line.contains(needle)).map(str::to_owned)
    }

    fn rejected(&self, reason: &str) -> u64 {
        let needle = format!(
            "waggle_receiver_rejected_requests_total{{receiver=\"otlp_http\",signal=\"traces\",reason=\"{reason}\"}}"
        );
        self.metric_line(&needle).and_then(|line| line.rsplit(' ').next()?.parse().ok()).unwrap_or(0)
    }
}

/// A one-span protobuf request whose span is named "marker".
fn marker_request() -> Bytes {
    let mut request = ExportTraceServiceRequest::decode(PYTHON_PROTOBUF).expect("fixture decodes");
    request.resource_spans.truncate(1);
    request.resource_spans[0].scope_spans.truncate(1);
    request.resource_spans[0].scope_spans[0].spans.truncate(1);
    request.resource_spans[0].scope_spans[0].spans[0].name = "marker".into();
    Bytes::from(request.encode_to_vec())
}

fn span_names(batch: &SharedBatch) -> Vec<String> {
    let Payload::Traces(request) = &batch.payload else { panic!("expected traces, got {:?}", batch.signal()) };
    request
        .decoded()
        .expect("decodes")
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| s.name.clone())
        .collect()
}

fn spans_in(body: &[u8]) -> usize {
    let request = ExportTraceServiceRequest::decode(body).expect("fixture decodes");
    request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum()
}

// ---------------------------------------------------------------------------------------------
// Requests.

fn post(path: &str, content_type: Option<&str>, encoding: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    request(Method::POST, path, content_type, encoding, body)
}

fn request(
    method: Method,
    path: &str,
    content_type: Option<&str>,
    encoding: Option<&str>,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    if let Some(encoding) = encoding {
        builder = builder.header(header::CONTENT_ENCODING, encoding);
    }
    builder.body(body.into()).expect("valid request")
}

async fn call(app: &axum::Router, request: Request<Body>) -> (StatusCode, HeaderMap, Bytes) {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.expect("in-memory body").to_bytes();
    (status, headers, body)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

/// `mib` MiB of zeros as concatenated 1 MiB gzip members (~1 KiB each).
fn gzip_bomb(mib: usize) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&vec![0u8; 1024 * 1024]).expect("gzip into memory");
    encoder.finish().expect("gzip into memory").repeat(mib)
}

fn content_type(headers: &HeaderMap) -> &str {
    headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Accepted requests.

#[tokio::test]
async fn python_protobuf_is_accepted_and_answered_in_protobuf() {
    let mut harness = Harness::new();
    let app = harness.app();
    let (status, headers, body) = call(&app, post("/v1/traces", Some(PROTOBUF), None, PYTHON_PROTOBUF)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type(&headers), PROTOBUF);
    assert!(body.is_empty(), "an empty ExportTraceServiceResponse is zero bytes");
    let batch = harness.next_batch().await;
    assert_eq!(batch.items, spans_in(PYTHON_PROTOBUF));
    assert_eq!(batch.bytes, PYTHON_PROTOBUF.len());
    let accepted =
        harness.metric_line("waggle_receiver_accepted_items_total{receiver=\"otlp_http\",signal=\"traces\"}");
    assert_eq!(accepted.as_deref().and_then(|line| line.rsplit(' ').next()), Some(&*batch.items.to_string()));
}

#[tokio::test]
async fn python_and_node_json_are_accepted_and_answered_in_json() {
    let mut harness = Harness::new();
    let app = harness.app();
    for (body, content) in [(PYTHON_JSON, JSON), (NODE_JSON, "application/json; charset=utf-8")] {
        let (status, headers, response) = call(&app, post("/v1/traces", Some(content), None, body)).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&response));
        assert_eq!(content_type(&headers), JSON);
        assert_eq!(&response[..], b"{}");
        let batch = harness.next_batch().await;
        assert!(batch.items > 0);
    }
}

#[tokio::test]
async fn captured_gzip_protobuf_is_accepted() {
    let mut harness = Harness::new();
    let (status, _, _) =
        call(&harness.app(), post("/v1/traces", Some(PROTOBUF), Some("gzip"), PYTHON_PROTOBUF_GZIP)).await;
    assert_eq!(status, StatusCode::OK);
    let batch = harness.next_batch().await;
    assert_eq!(batch.items, spans_in(PYTHON_PROTOBUF_GZIP_PLAIN));
    assert_eq!(batch.bytes, PYTHON_PROTOBUF_GZIP_PLAIN.len(), "sized after decompression");
}

#[tokio::test]
async fn zstd_json_is_accepted() {
    let mut harness = Harness::new();
    let body = zstd::encode_all(NODE_JSON, 3).expect("zstd into memory");
    let (status, _, _) = call(&harness.app(), post("/v1/traces", Some(JSON), Some("zstd"), body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(harness.next_batch().await.items, 1);
}

#[tokio::test]
async fn logs_and_metrics_reach_the_lane_as_their_signal() {
    let mut harness = Harness::new();
    let app = harness.app();
    let logs =
        br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"1","body":{"stringValue":"hello"}}]}]}]}"#;
    let (status, _, _) = call(&app, post("/v1/logs", Some(JSON), None, &logs[..])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(harness.next_batch().await.signal(), Signal::Logs);
    let metrics = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m","gauge":{"dataPoints":[{"asDouble":1.5,"timeUnixNano":1}]}}]}]}]}"#;
    let (status, _, _) = call(&app, post("/v1/metrics", Some(JSON), None, &metrics[..])).await;
    assert_eq!(status, StatusCode::OK);
    let batch = harness.next_batch().await;
    assert_eq!((batch.signal(), batch.items), (Signal::Metrics, 1));
}

#[tokio::test]
async fn large_bodies_are_decoded_off_the_runtime_and_accepted() {
    let mut harness = Harness::new();
    let mut request = ExportTraceServiceRequest::decode(PYTHON_PROTOBUF).expect("fixture decodes");
    let one = request.resource_spans[0].clone();
    while request.encoded_len() < 512 * 1024 {
        request.resource_spans.push(one.clone());
    }
    let body = gzip(&request.encode_to_vec());
    let (status, _, _) = call(&harness.app(), post("/v1/traces", Some(PROTOBUF), Some("gzip"), body)).await;
    assert_eq!(status, StatusCode::OK);
    let spans: usize = request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
    assert_eq!(harness.next_batch().await.items, spans);
}

#[tokio::test]
async fn empty_requests_succeed_without_reaching_the_lane() {
    let mut harness = Harness::new();
    let app = harness.app();
    for (content, body) in [(PROTOBUF, &b""[..]), (JSON, b""), (JSON, b"{}"), (JSON, br#"{"resourceSpans":[]}"#)] {
        let (status, headers, _) = call(&app, post("/v1/traces", Some(content), None, body)).await;
        assert_eq!(status, StatusCode::OK, "{content} {body:?}");
        assert_eq!(content_type(&headers), content);
    }
    harness.assert_nothing_else_reached_the_lane(&app).await;
}

// ---------------------------------------------------------------------------------------------
// Rejected requests: documented answer, counted, never routed.

#[tokio::test]
async fn undecodable_protobuf_is_a_400_with_a_protobuf_status() {
    let mut harness = Harness::new();
    let app = harness.app();
    let (status, headers, body) = call(&app, post("/v1/traces", Some(PROTOBUF), None, &b"\xff\xff\xff\xff"[..])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(content_type(&headers), PROTOBUF);
    let rpc_status = rpc::GoogleRpcStatus::decode(&body[..]).expect("a google.rpc.Status");
    assert_eq!(rpc_status.code, 3, "INVALID_ARGUMENT");
    assert!(rpc_status.message.contains("protobuf"), "{}", rpc_status.message);
    assert_eq!(harness.rejected("malformed"), 1);
    harness.assert_nothing_else_reached_the_lane(&app).await;
}

#[tokio::test]
async fn undecodable_json_is_a_400_with_a_json_status() {
    let mut harness = Harness::new();
    let app = harness.app();
    let (status, headers, body) =
        call(&app, post("/v1/traces", Some(JSON), None, &br#"{"resourceSpans": [}"#[..])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(content_type(&headers), JSON);
    let rpc_status: serde_json::Value = serde_json::from_slice(&body).expect("a JSON Status");
    assert_eq!(rpc_status["code"], 3);
    assert!(rpc_status["message"].as_str().is_some_and(|m| m.contains("OTLP/JSON")), "{rpc_status}");
    harness.assert_nothing_else_reached_the_lane(&app).await;
}

#[tokio::test]
async fn wrong_length_ids_are_a_400_in_json_and_protobuf() {
    let mut harness = Harness::new();
    let app = harness.app();
    let short_json = String::from_utf8_lossy(NODE_JSON)
        .replace("6e358fd76005134f794386eed9efe581", "6e358fd76005134f794386eed9efe5");
    let snake_case = String::from_utf8_lossy(NODE_JSON).replace("\"traceId\"", "\"trace_id\"");
    let mut short_protobuf = ExportTraceServiceRequest::decode(PYTHON_PROTOBUF).expect("fixture decodes");
    short_protobuf.resource_spans[0].scope_spans[0].spans[0].span_id.pop();
    let cases = [
        (JSON, Bytes::from(short_json)),
        (JSON, Bytes::from(snake_case)),
        (PROTOBUF, Bytes::from(short_protobuf.encode_to_vec())),
    ];
    for (content, body) in cases {
        let (status, _, response) = call(&app, post("/v1/traces", Some(content), None, body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{content}");
        let message = match content {
            JSON => serde_json::from_slice::<serde_json::Value>(&response).expect("JSON status")["message"].to_string(),
            _ => rpc::GoogleRpcStatus::decode(&response[..]).expect("protobuf status").message,
        };
        assert!(message.contains("bytes long"), "{message}");
    }
    assert_eq!(harness.rejected("invalid_id"), 3);
    harness.assert_nothing_else_reached_the_lane(&app).await;
}

#[tokio::test]
async fn corrupt_compressed_data_is_a_400() {
    let mut harness = Harness::new();
    let app = harness.app();
    let truncated = &PYTHON_PROTOBUF_GZIP[..PYTHON_PROTOBUF_GZIP.len() / 2];
    let (status, _, body) = call(&app, post("/v1/traces", Some(PROTOBUF), Some("gzip"), truncated)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(rpc::GoogleRpcStatus::decode(&body[..]).is_ok_and(|s| s.message.contains("decompress")));
    let (status, _, _) = call(&app, post("/v1/traces", Some(PROTOBUF), Some("zstd"), PYTHON_PROTOBUF)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(harness.rejected("bad_encoding"), 2);
    harness.assert_nothing_else_reached_the_lane(&app).await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_a_413_compressed_or_not() {
    let mut harness = Harness::new();
    let limit = PYTHON_PROTOBUF.len() - 1;
    let app = harness.app_with(OtlpHttpSettings { max_body_size: ByteSize::b(limit as u64), ..Default::default() });
    // Plain, compressed (small on the wire, too large once decompressed) and JSON.
    let cases = [
        (PROTOBUF, None, Bytes::from_static(PYTHON_PROTOBUF)),
        (PROTOBUF, Some("gzip"), Bytes::from(gzip(PYTHON_PROTOBUF))),
        (PROTOBUF, Some("zstd"), Bytes::from(zstd::encode_all(PYTHON_PROTOBUF, 1).expect("zstd"))),
        (JSON, None, Bytes::from(vec![b' '; limit + 1])),
    ];
    for (content, encoding, body) in cases {
        let (status, headers, response) = call(&app, post("/v1/traces", Some(content), encoding, body)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{content} {encoding:?}");
        assert_eq!(content_type(&headers), content, "the Status is in the request's encoding");
        assert!(!response.is_empty());
    }
    assert_eq!(harness.rejected("too_large"), 4);
    // Exactly the limit is fine.
    let app = harness
        .app_with(OtlpHttpSettings { max_body_size: ByteSize::b(PYTHON_PROTOBUF.len() as u64), ..Default::default() });
    let (status, _, _) = call(&app, post("/v1/traces", Some(PROTOBUF), Some("gzip"), gzip(PYTHON_PROTOBUF))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(harness.next_batch().await.items, spans_in(PYTHON_PROTOBUF));
    harness.assert_nothing_else_reached_the_lane(&app).await;
}

#[tokio::test]
async fn a_gzip_bomb_is_a_413_with_the_default_limit() {
    let mut harness = Harness::new();
    let app = harness.app();
    let bomb = gzip_bomb(100);
    assert!(bomb.len() < 200 * 1024);
    let (status, _, _) = call(&app, post("/v1/traces", Some(PROTOBUF), Some("gzip"), bomb)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    harness.assert_nothing_else_reached_the_lane(&app).await;
}

#[tokio::test]
async fn unsupported_content_types_and_encodings_are_a_415() {
    let mut harness = Harness::new();
    let app = harness.app();
    for content in [Some("text/plain"), Some("application/protobuf"), None] {
        let (status, headers, _) = call(&app, post("/v1/traces", content, None, PYTHON_PROTOBUF)).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content:?}");
        assert!(content_type(&headers).starts_with("text/plain"));
    }
    let (status, headers, body) = call(&app, post("/v1/traces", Some(PROTOBUF), Some("br"), PYTHON_PROTOBUF)).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(headers[header::ACCEPT_ENCODING], "gzip, zstd, identity");
    assert!(rpc::GoogleRpcStatus::decode(&body[..]).is_ok_and(|s| s.message.contains("encoding")));
    assert_eq!(harness.rejected("unsupported_media_type"), 3);
    assert_eq!(harness.rejected("unsupported_encoding"), 1);
    harness.assert_nothing_else_reached_the_lane(&app).await;
}

#[tokio::test]
async fn other_methods_are_a_405_with_allow_post() {
    let mut harness = Harness::new();
    let app = harness.app();
    for method in [Method::GET, Method::PUT, Method::DELETE, Method::OPTIONS] {
        let (status, headers, _) = call(&app, request(method.clone(), "/v1/traces", None, None, Body::empty())).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(headers[header::ALLOW], "POST");
    }
    assert_eq!(harness.rejected("method_not_allowed"), 4);
    harness.assert_nothing_else_reached_the_lane(&app).await;
}

#[tokio::test]
async fn unknown_paths_are_a_404() {
    let harness = Harness::new();
    let app = harness.app();
    for path in ["/v1/trace", "/v1/traces/extra", "/", "/v1development/profiles"] {
        let (status, _, _) = call(&app, post(path, Some(PROTOBUF), None, PYTHON_PROTOBUF)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    assert!(harness.metric_line("signal=\"unknown\",reason=\"not_found\"} 4").is_some());
}

#[tokio::test]
async fn a_full_lane_is_a_429_with_retry_after_and_nothing_is_routed() {
    // A one-byte queue whose exporter never finishes: the first request fills the lane.
    let mut harness = Harness::with_lane(ByteSize::b(1), true);
    let app = harness.app();
    let (status, _, _) = call(&app, post("/v1/traces", Some(PROTOBUF), None, PYTHON_PROTOBUF)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(harness.next_batch().await.items, spans_in(PYTHON_PROTOBUF));

    let (status, headers, body) = call(&app, post("/v1/traces", Some(PROTOBUF), None, PYTHON_PROTOBUF)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers[header::RETRY_AFTER], "3");
    let rpc_status = rpc::GoogleRpcStatus::decode(&body[..]).expect("a google.rpc.Status");
    assert_eq!(rpc_status.retry_delay(), Some(Duration::from_secs(3)));

    let (status, headers, body) = call(&app, post("/v1/traces", Some(JSON), None, NODE_JSON)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(content_type(&headers), JSON);
    let json: serde_json::Value = serde_json::from_slice(&body).expect("a JSON Status");
    assert_eq!(json["code"], 8);

    let refused = harness.metric_line(
        "waggle_receiver_refused_items_total{receiver=\"otlp_http\",signal=\"traces\",reason=\"queue_full\"}",
    );
    let expected = spans_in(PYTHON_PROTOBUF) + 1;
    assert_eq!(refused.as_deref().and_then(|line| line.rsplit(' ').next()), Some(&*expected.to_string()));
    assert!(harness.seen.try_recv().is_err(), "refused requests never reach the lane");
}

/// Log lines written while the guard lives, on this thread.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for CapturedLogs {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())).into_owned()
    }
}

#[tokio::test]
async fn bad_input_is_logged_once_per_interval_without_header_values() {
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let harness = Harness::new();
    let app = harness.app();
    for _ in 0..3 {
        let mut request = post("/v1/traces", Some(PROTOBUF), None, &b"\xff\xff"[..]);
        request.headers_mut().insert("x-honeycomb-team", "secret-api-key-123".parse().expect("valid header"));
        let (status, _, _) = call(&app, request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let text = logs.text();
    assert_eq!(text.matches("rejected request").count(), 1, "{text}");
    assert!(text.contains("WARN") && text.contains("reason=\"malformed\""), "{text}");
    assert!(!text.contains("secret-api-key-123"), "{text}");
    assert_eq!(harness.rejected("malformed"), 3, "every request is counted, logged or not");
}

// ---------------------------------------------------------------------------------------------
// CORS.

fn cors_settings(origins: &[&str]) -> OtlpHttpSettings {
    OtlpHttpSettings {
        cors: CorsSettings {
            allowed_origins: origins.iter().map(|origin| origin.to_string()).collect(),
            allowed_headers: vec!["x-honeycomb-team".into()],
            max_age: Duration::from_secs(600),
        },
        ..Default::default()
    }
}

fn preflight(origin: &str) -> Request<Body> {
    Request::builder()
        .method(Method::OPTIONS)
        .uri("/v1/traces")
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type,x-honeycomb-team")
        .body(Body::empty())
        .expect("valid request")
}

#[tokio::test]
async fn cors_preflight_is_answered_for_allowed_origins_only() {
    let harness = Harness::new();
    let app = harness.app_with(cors_settings(&["http://localhost:3000", "https://*.example.com"]));
    for origin in ["http://localhost:3000", "https://app.example.com"] {
        let (status, headers, _) = call(&app, preflight(origin)).await;
        assert!(status.is_success(), "{origin}: {status}");
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], origin);
        assert!(headers[header::ACCESS_CONTROL_ALLOW_METHODS].to_str().is_ok_and(|m| m.contains("POST")));
        let allowed = headers[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().expect("ASCII").to_ascii_lowercase();
        assert!(allowed.contains("content-type") && allowed.contains("x-honeycomb-team"), "{allowed}");
        assert_eq!(headers[header::ACCESS_CONTROL_MAX_AGE], "600");
    }
    for origin in ["http://localhost:3001", "https://example.com.evil.net"] {
        let (_, headers, _) = call(&app, preflight(origin)).await;
        assert!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(), "{origin} must be denied");
    }
}

#[tokio::test]
async fn cors_headers_are_on_actual_requests_and_a_lone_star_allows_any_origin() {
    let harness = Harness::new();
    let app = harness.app_with(cors_settings(&["*"]));
    let (_, headers, _) = call(&app, preflight("https://anything.test")).await;
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let mut request = post("/v1/traces", Some(JSON), None, NODE_JSON);
    request.headers_mut().insert(header::ORIGIN, "https://anything.test".parse().expect("valid header"));
    let (status, headers, _) = call(&app, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
}

#[tokio::test]
async fn cors_is_off_without_configured_origins() {
    let harness = Harness::new();
    let (status, headers, _) = call(&harness.app(), preflight("http://localhost:3000")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
}

// ---------------------------------------------------------------------------------------------
// A real listener: chunked bodies and graceful shutdown.

async fn start_server(
    harness: &Harness,
) -> (SocketAddr, CancellationToken, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let address = listener.local_addr().expect("bound address");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(otlp_http::serve(
        listener,
        OtlpHttpSettings::default(),
        Arc::clone(&harness.router),
        Arc::clone(&harness.metrics),
        shutdown.clone(),
    ));
    (address, shutdown, server)
}

fn chunk(data: &[u8]) -> Vec<u8> {
    let mut framed = format!("{:x}\r\n", data.len()).into_bytes();
    framed.extend_from_slice(data);
    framed.extend_from_slice(b"\r\n");
    framed
}

const CHUNKED_HEAD: &[u8] = b"POST /v1/traces HTTP/1.1\r\nHost: waggle\r\nContent-Type: application/json\r\n\
Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";

/// Reads a whole `Connection: close` response and returns its status line and body.
async fn read_response(stream: &mut TcpStream) -> (String, String) {
    let mut response = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut response)).await.expect("response in time").expect("read");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status_line = text.lines().next().unwrap_or_default().to_owned();
    let body = text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    (status_line, body)
}

#[tokio::test]
async fn a_chunked_node_json_body_is_accepted_over_tcp() {
    let mut harness = Harness::new();
    let (address, shutdown, server) = start_server(&harness).await;
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let mut request = CHUNKED_HEAD.to_vec();
    for piece in NODE_JSON.chunks(100) {
        request.extend_from_slice(&chunk(piece));
    }
    request.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&request).await.expect("write");
    let (status_line, _) = read_response(&mut stream).await;
    assert!(status_line.starts_with("HTTP/1.1 200"), "{status_line}");
    assert_eq!(harness.next_batch().await.items, 1);
    shutdown.cancel();
    server.await.expect("server task").expect("server ends cleanly");
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    let mut harness = Harness::new();
    let (address, shutdown, server) = start_server(&harness).await;
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: waggle\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        NODE_JSON.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write the head");
    // hyper sends "100 Continue" when the handler starts reading the body: it is in flight.
    let mut interim = Vec::new();
    while !interim.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tokio::time::timeout(TIMEOUT, stream.read_exact(&mut byte)).await.expect("in time").expect("read");
        interim.push(byte[0]);
    }
    assert!(interim.starts_with(b"HTTP/1.1 100"), "{}", String::from_utf8_lossy(&interim));
    shutdown.cancel();
    stream.write_all(NODE_JSON).await.expect("write the body");
    let (status_line, body) = read_response(&mut stream).await;
    assert!(status_line.starts_with("HTTP/1.1 200"), "{status_line}");
    assert_eq!(body.trim(), "{}");
    assert_eq!(harness.next_batch().await.items, 1);
    tokio::time::timeout(TIMEOUT, server).await.expect("server stops").expect("task").expect("clean exit");
    assert!(TcpStream::connect(address).await.is_err(), "no longer accepting");
}

// ---------------------------------------------------------------------------------------------
// Memory use of a decompression bomb, measured with a per-thread counting allocator.

/// Counts the bytes allocated on the current thread while tracking is on; tracks the peak.
struct CountingAllocator;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static CURRENT: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = TRACKING.try_with(|tracking| {
        if tracking.get() {
            CURRENT.with(|current| {
                current.set(current.get() + delta);
                PEAK.with(|peak| peak.set(peak.get().max(current.get())));
            });
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; only counters change.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            track(layout.size() as isize);
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            track(layout.size() as isize);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        unsafe { System.dealloc(pointer, layout) };
        track(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            track(new_size as isize - layout.size() as isize);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn a_gzip_bomb_never_holds_more_than_the_limit() {
    const MIB: usize = 1024 * 1024;
    let limit = 20 * MIB;
    let bomb = Bytes::from(gzip_bomb(100));
    TRACKING.with(|tracking| tracking.set(true));
    let result = request_body::decompress_blocking(ContentEncoding::Gzip, bomb, limit);
    TRACKING.with(|tracking| tracking.set(false));
    assert!(matches!(result, Err(BodyError::TooLarge { .. })), "{result:?}");
    let peak = PEAK.with(Cell::get) as usize;
    // The output buffer (at most limit + 1) plus the decoder's own state (a 32 KiB window).
    assert!(peak <= limit + 1 + MIB, "peak {peak} bytes for a {limit} byte limit");
    assert!(peak > limit / 2, "the counter saw the buffer: {peak}");
}

/// The attributes of every resource in what a forwarding lane sends: the protobuf the receiver
/// kept, or (for JSON) the decoded request encoded.
fn forwarded_resources(batch: &SharedBatch) -> Vec<Vec<(String, String)>> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    let Payload::Traces(request) = &batch.payload else { panic!("expected traces, got {:?}", batch.signal()) };
    let bytes = request.protobuf().cloned().unwrap_or_else(|| Bytes::from(request.decoded().unwrap().encode_to_vec()));
    let forwarded = ExportTraceServiceRequest::decode(bytes).expect("the forwarded protobuf decodes");
    forwarded
        .resource_spans
        .iter()
        .map(|entry| {
            let attributes = entry.resource.iter().flat_map(|r| &r.attributes);
            attributes
                .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(text) => Some((kv.key.clone(), text.clone())),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn configured_resource_attributes_reach_the_lane_and_the_apps_own_are_kept() {
    use std::collections::BTreeMap;
    use waggle::resource::ResourceAttributes;

    let mut harness = Harness::new();
    let pairs = BTreeMap::from([
        ("deployment.environment.name".to_string(), "prod".to_string()),
        ("service.name".to_string(), "not-the-apps".to_string()),
    ]);
    let resource = Arc::new(ResourceAttributes::new(pairs, false).expect("valid attributes"));
    let app = otlp_http::app_within(
        &OtlpHttpSettings::default(),
        resource,
        Arc::clone(&harness.router),
        Arc::clone(&harness.metrics),
        &waggle::limits::ServerLimits::default(),
    );
    for (content_type, body) in [(PROTOBUF, PYTHON_PROTOBUF), (JSON, PYTHON_JSON), (JSON, NODE_JSON)] {
        let (status, _, _) = call(&app, post("/v1/traces", Some(content_type), None, Bytes::from_static(body))).await;
        assert_eq!(status, StatusCode::OK, "{content_type}");
        let resources = forwarded_resources(&harness.next_batch().await);
        assert!(!resources.is_empty());
        for attributes in resources {
            let value =
                |key: &str| attributes.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect::<Vec<_>>();
            assert_eq!(value("deployment.environment.name"), ["prod"], "{content_type}: {attributes:?}");
            let service = value("service.name");
            assert_eq!(service.len(), 1, "{content_type}: {attributes:?}");
            assert_ne!(service[0], "not-the-apps", "the app's service.name is kept");
        }
    }
}
