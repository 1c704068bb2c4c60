//! OTLP/gRPC receiver (port 4317): the three unary `Export` methods
//! (`opentelemetry.proto.collector.{trace,logs,metrics}.v1.*Service/Export`), gzip or zstd
//! request compression, a configurable message size limit (default 16 MiB).
//!
//! The services are served with tonic's own server machinery but a codec that hands the
//! handler the message bytes instead of a decoded message. That lets the handler decode off
//! the runtime when the message is large, answer a malformed message with INVALID_ARGUMENT
//! (tonic's prost codec says INTERNAL) and count and log it like every other bad input. What
//! tonic refuses before the handler runs (oversized or corrupt frames, an unsupported
//! `grpc-encoding`) is reclassified, counted and logged here too, so an oversized message gets
//! RESOURCE_EXHAUSTED (not retried by OTLP clients) instead of tonic's OUT_OF_RANGE (retried).

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::config::OtlpGrpcSettings;
use crate::model::Receiver;
use crate::pipeline::router::Router;
use crate::receiver::otlp::codec::{ExportRequest, Format};
use crate::receiver::otlp::error::ReceiveError;
use crate::receiver::otlp::intake::OtlpIntake;
use crate::resource::ResourceAttributes;
use crate::telemetry::metrics::Metrics;

/// The `receiver` metrics label.
pub const RECEIVER: Receiver = Receiver::OtlpGrpc;

/// Serves OTLP/gRPC on `listener` until `shutdown` is cancelled, then stops accepting
/// connections and lets in-flight calls finish.
pub async fn serve(
    listener: TcpListener,
    settings: OtlpGrpcSettings,
    router: Arc<Router>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    serve_with(listener, settings, Arc::new(ResourceAttributes::none()), router, metrics, shutdown).await
}

/// [`serve`], adding `resource`'s attributes to every request.
pub async fn serve_with(
    listener: TcpListener,
    settings: OtlpGrpcSettings,
    resource: Arc<ResourceAttributes>,
    router: Arc<Router>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let limit = usize::try_from(settings.max_message_size.as_u64()).unwrap_or(usize::MAX);
    let intake = Arc::new(OtlpIntake::new(RECEIVER, resource, router, metrics));
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, max_message_size = %settings.max_message_size, "OTLP/gRPC receiver listening");
    }
    tonic::transport::Server::builder()
        .add_service(ExportService::<ExportTraceServiceRequest>::new(Arc::clone(&intake), limit))
        .add_service(ExportService::<ExportLogsServiceRequest>::new(Arc::clone(&intake), limit))
        .add_service(ExportService::<ExportMetricsServiceRequest>::new(intake, limit))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown.cancelled_owned())
        .await
}

/// One OTLP gRPC service (its only method is `Export`), for the request type `R`.
struct ExportService<R> {
    intake: Arc<OtlpIntake>,
    /// Largest message, compressed or decompressed.
    limit: usize,
    request: PhantomData<fn() -> R>,
}

impl<R> Clone for ExportService<R> {
    fn clone(&self) -> Self {
        ExportService { intake: Arc::clone(&self.intake), limit: self.limit, request: PhantomData }
    }
}

impl<R: ExportRequest> ExportService<R> {
    fn new(intake: Arc<OtlpIntake>, limit: usize) -> Self {
        ExportService { intake, limit, request: PhantomData }
    }
}

impl NamedService for ExportService<ExportTraceServiceRequest> {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

impl NamedService for ExportService<ExportLogsServiceRequest> {
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
}

impl NamedService for ExportService<ExportMetricsServiceRequest> {
    const NAME: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<R> tower::Service<http::Request<Body>> for ExportService<R>
where
    R: ExportRequest,
    ExportService<R>: NamedService,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move { Ok(service.handle(request).await) })
    }
}

impl<R> ExportService<R>
where
    R: ExportRequest,
    ExportService<R>: NamedService,
{
    async fn handle(self, request: http::Request<Body>) -> http::Response<Body> {
        if !is_export_path(request.uri().path(), <Self as NamedService>::NAME) {
            return Status::unimplemented("OTLP services have one method: Export").into_http();
        }
        let peer =
            request.extensions().get::<tonic::transport::server::TcpConnectInfo>().and_then(|info| info.remote_addr());
        let handled = Arc::new(AtomicBool::new(false));
        let method =
            ExportMethod::<R> { intake: Arc::clone(&self.intake), handled: Arc::clone(&handled), request: PhantomData };
        let mut grpc = Grpc::new(RawCodec)
            .apply_compression_config(accepted_encodings(), EnabledCompressionEncodings::default())
            .apply_max_message_size_config(Some(self.limit), None);
        let response = grpc.unary(method, request).await;
        if handled.load(Ordering::Acquire) {
            return response;
        }
        // tonic answered before the handler ran: classify, count and log what it refused.
        match Status::from_header_map(response.headers()) {
            Some(status) if status.code() != tonic::Code::Ok => {
                let error = ReceiveError::from_grpc_transport(&status, self.limit);
                self.intake.record_failure(Some(R::SIGNAL), &error, peer);
                error.into_grpc_status().into_http()
            }
            _ => response,
        }
    }
}

/// `/<service>/Export`.
fn is_export_path(path: &str, service: &str) -> bool {
    path.strip_prefix('/').and_then(|rest| rest.strip_prefix(service)) == Some("/Export")
}

/// Request compressions the receiver accepts.
fn accepted_encodings() -> EnabledCompressionEncodings {
    let mut encodings = EnabledCompressionEncodings::default();
    encodings.enable(CompressionEncoding::Gzip);
    encodings.enable(CompressionEncoding::Zstd);
    encodings
}

/// The `Export` method: decode, check and route one message.
struct ExportMethod<R> {
    intake: Arc<OtlpIntake>,
    /// Set once the call reaches the handler; otherwise tonic refused the request itself.
    handled: Arc<AtomicBool>,
    request: PhantomData<fn() -> R>,
}

impl<R: ExportRequest> UnaryService<Bytes> for ExportMethod<R> {
    type Response = Bytes;
    type Future = BoxFuture<Result<Response<Bytes>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        self.handled.store(true, Ordering::Release);
        let intake = Arc::clone(&self.intake);
        Box::pin(async move {
            let peer = request.remote_addr();
            let message = request.into_inner();
            match receive::<R>(&intake, message).await {
                // Every empty Export…ServiceResponse encodes to zero bytes.
                Ok(()) => Ok(Response::new(Bytes::new())),
                Err(error) => {
                    intake.record_failure(Some(R::SIGNAL), &error, peer);
                    Err(error.into_grpc_status())
                }
            }
        })
    }
}

async fn receive<R: ExportRequest>(intake: &OtlpIntake, message: Bytes) -> Result<(), ReceiveError> {
    let decoded = intake.decode::<R>(message, Format::Protobuf).await?;
    intake.route(decoded)
}

/// A codec that passes message bytes through: requests are decoded by the handler, and the
/// response is the (already encoded, empty) `Export…ServiceResponse`.
#[derive(Clone, Copy, Debug, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_export_method_is_served() {
        let service = "opentelemetry.proto.collector.trace.v1.TraceService";
        assert!(is_export_path("/opentelemetry.proto.collector.trace.v1.TraceService/Export", service));
        assert!(!is_export_path("/opentelemetry.proto.collector.trace.v1.TraceService/Other", service));
        assert!(!is_export_path("/opentelemetry.proto.collector.trace.v1.TraceService/Export/x", service));
    }
}
