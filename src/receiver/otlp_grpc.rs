//! TEMPORARY stub; replaced by the OTLP/gRPC receiver.
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use crate::{config::OtlpGrpcSettings, metrics::Metrics, pipeline::router::Router};
pub async fn serve(_l: tokio::net::TcpListener, _s: OtlpGrpcSettings, _r: Arc<Router>, _m: Arc<Metrics>, stop: CancellationToken) -> std::io::Result<()> { stop.cancelled().await; Ok(()) }
