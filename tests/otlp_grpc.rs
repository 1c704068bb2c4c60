//! OTLP/gRPC receiver tests: the generated opentelemetry-proto clients and captured gRPC frames
//! against `serve()` on 127.0.0.1:0, into a real lane whose exporter records what reaches it.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use bytesize::ByteSize;
use common::RecordingRouter;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric};
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;
use tower::ServiceExt;
use waggle::config::OtlpGrpcSettings;
use waggle::model::{SharedBatch, Signal};
use waggle::receiver::otlp::error::rpc;
use waggle::receiver::otlp::grpc as otlp_grpc;
use waggle::telemetry::metrics::Metrics;

/// A traces request the Python SDK sent over gRPC (the message, unframed).
const PYTHON_GRPC_MESSAGE: &[u8] =
    include_bytes!("data/run3grpcgz_004_otlp_grpc_opentelemetry-proto-collector-trace-v1-TraceService_Export.bin");
/// A whole gRPC frame as sent by the Python SDK: compressed flag 1, length, gzip data.
const PYTHON_GZIP_FRAME: &[u8] = include_bytes!("data/run5grpcraw_01.grpcframe.bin");
const TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const TIMEOUT: Duration = Duration::from_secs(20);

/// A running receiver, its lane and its metrics.
struct Server {
    address: SocketAddr,
    metrics: Arc<Metrics>,
    seen: mpsc::UnboundedReceiver<SharedBatch>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Server {
    async fn start() -> Server {
        Server::start_with(OtlpGrpcSettings::default(), ByteSize::mib(64), false).await
    }

    async fn start_with(settings: OtlpGrpcSettings, queue_size: ByteSize, stall: bool) -> Server {
        let RecordingRouter { router, metrics, seen } = RecordingRouter::new(queue_size, stall, Duration::from_secs(2));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("bound address");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(otlp_grpc::serve(listener, settings, router, Arc::clone(&metrics), shutdown.clone()));
        Server { address, metrics, seen, shutdown, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    async fn traces_client(&self) -> TraceServiceClient<Channel> {
        TraceServiceClient::connect(self.url()).await.expect("connect")
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(self.url()).expect("valid URL").connect().await.expect("connect")
    }

    async fn next_batch(&mut self) -> SharedBatch {
        tokio::time::timeout(TIMEOUT, self.seen.recv()).await.expect("a batch reaches the lane").expect("lane open")
    }

    fn rejected(&self, reason: &str) -> u64 {
        let needle = format!("receiver=\"otlp_grpc\",signal=\"traces\",reason=\"{reason}\"}}");
        self.metrics
            .encode()
            .lines()
            .find(|line| line.starts_with("waggle_receiver_rejected_requests_total") && line.contains(&needle))
            .and_then(|line| line.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(TIMEOUT, self.task).await.expect("server stops").expect("task").expect("clean exit");
    }
}

fn python_request() -> ExportTraceServiceRequest {
    ExportTraceServiceRequest::decode(PYTHON_GRPC_MESSAGE).expect("fixture decodes")
}

fn spans_in(request: &ExportTraceServiceRequest) -> usize {
    request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum()
}

/// The first span of the Python request alone, without its resource.
fn one_span_request() -> ExportTraceServiceRequest {
    let mut request = python_request();
    request.resource_spans.truncate(1);
    request.resource_spans[0].resource = None;
    request.resource_spans[0].scope_spans.truncate(1);
    request.resource_spans[0].scope_spans[0].spans.truncate(1);
    request
}

/// One span carrying a `size`-byte attribute of repeated letters: large, but tiny once
/// compressed.
fn padded_request(size: usize) -> ExportTraceServiceRequest {
    let mut request = one_span_request();
    let padding = KeyValue {
        key: "padding".into(),
        value: Some(AnyValue { value: Some(Value::StringValue("a".repeat(size))) }),
        ..Default::default()
    };
    request.resource_spans[0].scope_spans[0].spans[0].attributes.push(padding);
    request
}

/// Sends one raw gRPC frame and returns the call's status code and message.
async fn call_raw(server: &Server, path: &str, encoding: Option<&str>, frame: Bytes) -> (Code, String) {
    let mut builder = http::Request::builder()
        .method("POST")
        .uri(format!("{}{path}", server.url()))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if let Some(encoding) = encoding {
        builder = builder.header("grpc-encoding", encoding);
    }
    let request = builder.body(tonic::body::Body::new(Full::new(frame))).expect("valid request");
    let response = server.channel().await.oneshot(request).await.expect("an HTTP/2 response");
    let headers = response.headers().clone();
    let collected = response.into_body().collect().await.expect("response body");
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let status = tonic::Status::from_header_map(&trailers)
        .or_else(|| tonic::Status::from_header_map(&headers))
        .expect("a grpc-status");
    (status.code(), status.message().to_owned())
}

fn frame(compressed: bool, message: &[u8]) -> Bytes {
    let mut framed = BytesMut::with_capacity(5 + message.len());
    framed.put_u8(u8::from(compressed));
    framed.put_u32(message.len() as u32);
    framed.put_slice(message);
    framed.freeze()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

// ---------------------------------------------------------------------------------------------
// Accepted calls.

#[tokio::test]
async fn gzip_traces_from_the_generated_client_reach_the_lane() {
    let mut server = Server::start().await;
    let mut client = server.traces_client().await.send_compressed(CompressionEncoding::Gzip);
    let response = client.export(python_request()).await.expect("accepted");
    assert!(response.into_inner().partial_success.is_none());
    assert_eq!(server.next_batch().await.items, spans_in(&python_request()));
    server.stop().await;
}

#[tokio::test]
async fn the_captured_python_gzip_frame_is_accepted() {
    let mut server = Server::start().await;
    let (code, message) = call_raw(&server, TRACE_EXPORT, Some("gzip"), Bytes::from_static(PYTHON_GZIP_FRAME)).await;
    assert_eq!(code, Code::Ok, "{message}");
    let batch = server.next_batch().await;
    assert_eq!(batch.signal(), Signal::Traces);
    assert!(batch.items > 0);
    server.stop().await;
}

#[tokio::test]
async fn zstd_logs_and_plain_metrics_reach_the_lane() {
    let mut server = Server::start().await;
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord { time_unix_nano: 1, ..Default::default() }; 3],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut logs_client =
        LogsServiceClient::connect(server.url()).await.expect("connect").send_compressed(CompressionEncoding::Zstd);
    logs_client.export(logs).await.expect("logs accepted");
    let batch = server.next_batch().await;
    assert_eq!((batch.signal(), batch.items), (Signal::Logs, 3));

    let gauge = Metric {
        name: "m".into(),
        data: Some(metric::Data::Gauge(Gauge { data_points: vec![NumberDataPoint::default(); 2] })),
        ..Default::default()
    };
    let metrics = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics { metrics: vec![gauge], ..Default::default() }],
            ..Default::default()
        }],
    };
    let mut metrics_client = MetricsServiceClient::connect(server.url()).await.expect("connect");
    metrics_client.export(metrics).await.expect("metrics accepted");
    let batch = server.next_batch().await;
    assert_eq!((batch.signal(), batch.items), (Signal::Metrics, 2));
    server.stop().await;
}

#[tokio::test]
async fn messages_over_four_mib_are_accepted_by_default() {
    let mut server = Server::start().await;
    let request = padded_request(5 * 1024 * 1024);
    let mut client = server.traces_client().await;
    client.export(request).await.expect("a 5 MiB message is under the 16 MiB default");
    assert_eq!(server.next_batch().await.items, 1);
    server.stop().await;
}

#[tokio::test]
async fn an_empty_request_succeeds_without_reaching_the_lane() {
    let mut server = Server::start().await;
    let mut client = server.traces_client().await;
    client.export(ExportTraceServiceRequest::default()).await.expect("empty request accepted");
    client.export(python_request()).await.expect("accepted");
    assert_eq!(server.next_batch().await.items, spans_in(&python_request()), "the empty request was not routed");
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Refused calls.

#[tokio::test]
async fn a_message_over_the_limit_is_resource_exhausted_without_retry_info() {
    let limit = 1024;
    let mut server = Server::start_with(
        OtlpGrpcSettings { max_message_size: ByteSize::b(limit), ..Default::default() },
        ByteSize::mib(64),
        false,
    )
    .await;
    let mut client = server.traces_client().await;
    let status = client.export(python_request()).await.expect_err("over the limit");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.details().is_empty(), "no RetryInfo: the client must not retry");

    // Small on the wire, too large once decompressed.
    let bomb = padded_request(64 * 1024);
    assert!(gzip(&bomb.encode_to_vec()).len() < limit as usize);
    let mut client = client.send_compressed(CompressionEncoding::Gzip);
    let status = client.export(bomb).await.expect_err("over the limit once decompressed");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(server.rejected("too_large"), 2);

    // The server keeps serving.
    let small = one_span_request();
    assert!(small.encoded_len() < limit as usize, "{}", small.encoded_len());
    client.export(small).await.expect("a small message is accepted");
    assert_eq!(server.next_batch().await.items, 1);
    server.stop().await;
}

#[tokio::test]
async fn wrong_length_ids_are_invalid_argument() {
    let mut server = Server::start().await;
    let mut request = python_request();
    request.resource_spans[0].scope_spans[0].spans[0].trace_id.truncate(15);
    let mut client = server.traces_client().await;
    let status = client.export(request).await.expect_err("short trace id");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("trace_id is 15 bytes long"), "{}", status.message());
    assert_eq!(server.rejected("invalid_id"), 1);
    client.export(python_request()).await.expect("the next good request is accepted");
    assert_eq!(server.next_batch().await.items, spans_in(&python_request()), "the bad request was not routed");
    server.stop().await;
}

#[tokio::test]
async fn malformed_and_corrupt_frames_are_invalid_argument() {
    let server = Server::start().await;
    let (code, message) = call_raw(&server, TRACE_EXPORT, None, frame(false, b"\xff\xff\xff\xff")).await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    let (code, message) = call_raw(&server, TRACE_EXPORT, Some("gzip"), frame(true, b"not gzip at all")).await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    let (code, message) = call_raw(&server, TRACE_EXPORT, Some("br"), frame(true, b"whatever")).await;
    assert_eq!(code, Code::Unimplemented, "{message}");
    let (code, message) =
        call_raw(&server, "/opentelemetry.proto.collector.trace.v1.TraceService/Other", None, frame(false, b"")).await;
    assert_eq!(code, Code::Unimplemented, "{message}");
    assert_eq!(server.rejected("malformed"), 1);
    assert_eq!(server.rejected("bad_encoding"), 1);
    assert_eq!(server.rejected("unsupported_encoding"), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_full_lane_is_resource_exhausted_with_retry_info() {
    let mut server = Server::start_with(OtlpGrpcSettings::default(), ByteSize::b(1), true).await;
    let mut client = server.traces_client().await.send_compressed(CompressionEncoding::Gzip);
    client.export(python_request()).await.expect("the first request fills the lane");
    assert_eq!(server.next_batch().await.items, spans_in(&python_request()));
    let status = client.export(python_request()).await.expect_err("the lane is full");
    assert_eq!(status.code(), Code::ResourceExhausted);
    let details = rpc::GoogleRpcStatus::decode(status.details()).expect("google.rpc.Status details");
    assert_eq!(details.retry_delay(), Some(Duration::from_secs(2)));
    assert!(server.seen.try_recv().is_err(), "the refused request never reached the lane");
    let refused = server.metrics.encode();
    let expected = format!(
        "waggle_receiver_refused_items_total{{receiver=\"otlp_grpc\",signal=\"traces\",reason=\"queue_full\"}} {}",
        spans_in(&python_request())
    );
    assert!(refused.contains(&expected), "{refused}");
    server.stop().await;
}
