//! TEMPORARY stub; replaced by the X-Ray UDP receiver.
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use crate::{metrics::Metrics, pipeline::router::Router};
pub async fn serve(_s: tokio::net::UdpSocket, _r: Arc<Router>, _m: Arc<Metrics>, stop: CancellationToken) -> std::io::Result<()> { stop.cancelled().await; Ok(()) }
