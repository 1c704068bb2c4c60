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
//!
//! Each call takes its room from the memory budget before tonic reads it: the message limit,
//! or what the budget has left when that is less (twice that for a compressed call, whose
//! compressed and inflated copies coexist); tonic is told that room as the call's message
//! limit, so its decompressor never gets more. A call that finds too little room is refused
//! with RESOURCE_EXHAUSTED and RetryInfo before its message is read.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};

use crate::config::OtlpGrpcSettings;
use crate::limits::{BudgetExhausted, CappedListener, MemoryBudget, MemoryPermit, ServerLimits, http_server};
use crate::model::Receiver;
use crate::pipeline::router::Router;
use crate::receiver::otlp::body::BodyError;
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
    let limits = ServerLimits::default();
    let listener = CappedListener::new("otlp_grpc", listener, limits.connections);
    let resource = Arc::new(ResourceAttributes::none());
    serve_within(listener, settings, resource, router, metrics, limits, shutdown).await
}

/// [`serve`] under `limits` (the memory budget, the call timeout, HTTP/2 limits and the
/// listener's connection cap), adding `resource`'s attributes to every request.
///
/// The receiver is set up and logs that it listens when this is called; the returned future
/// serves. So whatever is logged after the call (waggle's `ready`) comes after that line.
pub fn serve_within(
    listener: CappedListener,
    settings: OtlpGrpcSettings,
    resource: Arc<ResourceAttributes>,
    router: Arc<Router>,
    metrics: Arc<Metrics>,
    limits: ServerLimits,
    shutdown: CancellationToken,
) -> impl Future<Output = Result<(), tonic::transport::Error>> + use<> {
    let limit = usize::try_from(settings.max_message_size.as_u64()).unwrap_or(usize::MAX);
    let intake = Arc::new(OtlpIntake::new(RECEIVER, resource, router, metrics));
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, max_message_size = %settings.max_message_size, "OTLP/gRPC receiver listening");
    }
    let room = CallRoom { limit, budget: limits.budget.clone(), retry_after: limits.retry_after };
    let incoming = futures_util::stream::unfold(listener, |mut listener| async move {
        let (stream, _) = listener.accept().await;
        Some((Ok::<_, std::io::Error>(stream), listener))
    });
    tonic::transport::Server::builder()
        .timeout(limits.body_timeout)
        .max_concurrent_streams(http_server::MAX_HTTP2_STREAMS)
        .http2_max_header_list_size(MAX_HEADER_LIST)
        .initial_stream_window_size(http_server::HTTP2_STREAM_WINDOW)
        .initial_connection_window_size(http_server::HTTP2_CONNECTION_WINDOW)
        .http2_max_pending_accept_reset_streams(Some(http_server::MAX_HTTP2_PENDING_RESETS))
        .add_service(ExportService::<ExportTraceServiceRequest>::new(Arc::clone(&intake), room.clone()))
        .add_service(ExportService::<ExportLogsServiceRequest>::new(Arc::clone(&intake), room.clone()))
        .add_service(ExportService::<ExportMetricsServiceRequest>::new(intake, room))
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
}

/// Largest header list (metadata) of one call.
const MAX_HEADER_LIST: u32 = 16 * 1024;

/// Smallest room worth starting a call with; with less left in the budget it is refused.
const SMALLEST_ROOM: usize = 64 * 1024;

/// How a call finds its room: the message limit and the budget it is taken from.
#[derive(Clone, Debug)]
struct CallRoom {
    /// Largest message, compressed or decompressed.
    limit: usize,
    budget: MemoryBudget,
    retry_after: Duration,
}

impl CallRoom {
    /// The call's message limit and its permit, or the refusal when the budget has too little.
    fn take(&self, compressed: bool) -> Result<(usize, MemoryPermit), ReceiveError> {
        let copies = if compressed { 2 } else { 1 };
        let free = self.budget.limit().saturating_sub(self.budget.in_use());
        let room = self.limit.min(free / copies);
        let refused = |source| ReceiveError::OverBudget { source, retry_after: self.retry_after };
        if room < self.limit.min(SMALLEST_ROOM) {
            let in_use = self.budget.in_use();
            return Err(refused(BudgetExhausted {
                wanted: SMALLEST_ROOM * copies,
                in_use,
                limit: self.budget.limit(),
            }));
        }
        let permit = self.budget.try_reserve(room * copies).map_err(refused)?;
        Ok((room, permit))
    }
}

/// One OTLP gRPC service (its only method is `Export`), for the request type `R`.
struct ExportService<R> {
    intake: Arc<OtlpIntake>,
    room: CallRoom,
    request: PhantomData<fn() -> R>,
}

impl<R> Clone for ExportService<R> {
    fn clone(&self) -> Self {
        ExportService { intake: Arc::clone(&self.intake), room: self.room.clone(), request: PhantomData }
    }
}

impl<R: ExportRequest> ExportService<R> {
    fn new(intake: Arc<OtlpIntake>, room: CallRoom) -> Self {
        ExportService { intake, room, request: PhantomData }
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
        let compressed = request.headers().get("grpc-encoding").is_some_and(|coding| coding.as_bytes() != b"identity");
        let (room, permit) = match self.room.take(compressed) {
            Ok(taken) => taken,
            Err(error) => {
                self.intake.record_failure(Some(R::SIGNAL), &error, peer);
                return error.into_grpc_status().into_http();
            }
        };
        let handled = Arc::new(AtomicBool::new(false));
        let method = ExportMethod::<R> {
            intake: Arc::clone(&self.intake),
            handled: Arc::clone(&handled),
            permit: Some(permit),
            request: PhantomData,
        };
        let mut grpc = Grpc::new(RawCodec)
            .apply_compression_config(accepted_encodings(), EnabledCompressionEncodings::default())
            .apply_max_message_size_config(Some(room), None);
        let response = grpc.unary(method, request).await;
        if handled.load(Ordering::Acquire) {
            return response;
        }
        // tonic answered before the handler ran: classify, count and log what it refused.
        match Status::from_header_map(response.headers()) {
            Some(status) if status.code() != tonic::Code::Ok => {
                let mut error = ReceiveError::from_grpc_transport(&status, self.room.limit);
                if room < self.room.limit && matches!(error, ReceiveError::Body(BodyError::TooLarge { .. })) {
                    // Larger than the room the budget had, not (yet) than the limit.
                    let source = BudgetExhausted {
                        wanted: room,
                        in_use: self.room.budget.in_use(),
                        limit: self.room.budget.limit(),
                    };
                    error = ReceiveError::OverBudget { source, retry_after: self.room.retry_after };
                }
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
    /// The call's room in the memory budget, handed to the batch.
    permit: Option<MemoryPermit>,
    request: PhantomData<fn() -> R>,
}

impl<R: ExportRequest> UnaryService<Bytes> for ExportMethod<R> {
    type Response = Bytes;
    type Future = BoxFuture<Result<Response<Bytes>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        self.handled.store(true, Ordering::Release);
        let intake = Arc::clone(&self.intake);
        let mut permit = self.permit.take().unwrap_or_default();
        Box::pin(async move {
            let peer = request.remote_addr();
            let message = request.into_inner();
            permit.shrink_to(message.len());
            match receive::<R>(&intake, message, permit).await {
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

async fn receive<R: ExportRequest>(
    intake: &OtlpIntake,
    message: Bytes,
    permit: MemoryPermit,
) -> Result<(), ReceiveError> {
    let decoded = intake.decode::<R>(message, Format::Protobuf).await?;
    intake.route(decoded, permit)
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

    fn call_room(limit: usize, budget: usize) -> CallRoom {
        CallRoom { limit, budget: MemoryBudget::new(budget), retry_after: Duration::from_secs(1) }
    }

    #[test]
    fn a_call_gets_the_message_limit_when_the_budget_has_it() {
        let room = call_room(1_000_000, 10_000_000);
        let (limit, permit) = room.take(false).expect("room");
        assert_eq!((limit, permit.bytes()), (1_000_000, 1_000_000));
        let (limit, permit) = room.take(true).expect("room");
        assert_eq!((limit, permit.bytes()), (1_000_000, 2_000_000), "a compressed call holds two copies");
    }

    #[test]
    fn a_call_gets_only_what_the_budget_has_left() {
        let room = call_room(1_000_000, 1_200_000);
        let _held = room.budget.try_reserve(800_000).expect("fits");
        let (limit, permit) = room.take(false).expect("400 kB are left");
        assert_eq!((limit, permit.bytes()), (400_000, 400_000));
        let (limit, _) = call_room(1_000_000, 1_200_000).take(true).expect("room");
        assert_eq!(limit, 600_000, "two copies of what is left");
    }

    #[test]
    fn a_call_is_refused_when_the_budget_has_less_than_the_smallest_room() {
        let room = call_room(1_000_000, 1_000_000);
        let _held = room.budget.try_reserve(1_000_000 - SMALLEST_ROOM + 1).expect("fits");
        let refused = room.take(false).expect_err("less than 64 KiB left");
        assert!(matches!(refused, ReceiveError::OverBudget { .. }), "{refused:?}");
        assert_eq!(refused.into_grpc_status().code(), tonic::Code::ResourceExhausted);
    }

    #[test]
    fn only_the_export_method_is_served() {
        let service = "opentelemetry.proto.collector.trace.v1.TraceService";
        assert!(is_export_path("/opentelemetry.proto.collector.trace.v1.TraceService/Export", service));
        assert!(!is_export_path("/opentelemetry.proto.collector.trace.v1.TraceService/Other", service));
        assert!(!is_export_path("/opentelemetry.proto.collector.trace.v1.TraceService/Export/x", service));
    }
}
