//! What both OTLP receivers do with a request body once it is read: decode it (on a blocking
//! thread when it is large), hand the checked request to the router, and count and log, rate
//! limited, every request answered with an error. Depends on `codec` and `error`; neither
//! depends on it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::limits::MemoryPermit;
use crate::model::Receiver;
use crate::model::Signal;
use crate::pipeline::router::Router;
use crate::receiver::otlp::codec::{self, Decoded, ExportRequest, Format};
use crate::receiver::otlp::error::ReceiveError;
use crate::resource::ResourceAttributes;
use crate::telemetry::metrics::{Metrics, RefusalLabels};
use crate::telemetry::ratelimit::LogLimiter;

/// Bodies at least this large are decoded on a blocking thread rather than on the runtime.
///
/// Measured on the 2-core build machine (release, busy with other builds): prost decodes OTLP
/// traces at ~300 MB/s and serde_json OTLP/JSON at ~320 MB/s of JSON, so 64 KiB is ~0.2 ms of
/// work, against ~12 µs for a `spawn_blocking` round trip (6%). Decoding 1 MiB in place would
/// hold a runtime thread for ~3.6 ms, delaying every other request on it.
pub(crate) const INLINE_DECODE_BYTES: usize = 64 * 1024;

/// How often a receiver may log a WARN line about bad input (and, separately, refusals).
const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// [`codec::decode`] (with the resource attributes added), moved to a blocking thread for bodies
/// of [`INLINE_DECODE_BYTES`] or more.
pub(crate) async fn decode_off_runtime<R: ExportRequest>(
    body: Bytes,
    format: Format,
    resource: &Arc<ResourceAttributes>,
) -> Result<Decoded<R>, ReceiveError> {
    if body.len() < INLINE_DECODE_BYTES {
        return Ok(codec::decode(body, format, resource)?);
    }
    let resource = Arc::clone(resource);
    match tokio::task::spawn_blocking(move || codec::decode::<R>(body, format, &resource)).await {
        Ok(decoded) => Ok(decoded?),
        Err(join_error) => Err(ReceiveError::Internal(format!("decoding task failed: {join_error}"))),
    }
}

/// What both OTLP receivers share past reading a body: the resource attributes to add, the
/// router, the counts and the WARN lines.
#[derive(Debug)]
pub(crate) struct OtlpIntake {
    receiver: Receiver,
    resource: Arc<ResourceAttributes>,
    router: Arc<Router>,
    metrics: Arc<Metrics>,
    rejection_log: LogLimiter,
    refusal_log: LogLimiter,
}

impl OtlpIntake {
    /// `receiver` names it in metrics and logs: OTLP/HTTP or OTLP/gRPC.
    pub(crate) fn new(
        receiver: Receiver,
        resource: Arc<ResourceAttributes>,
        router: Arc<Router>,
        metrics: Arc<Metrics>,
    ) -> OtlpIntake {
        OtlpIntake {
            receiver,
            resource,
            router,
            metrics,
            rejection_log: LogLimiter::new(WARN_INTERVAL),
            refusal_log: LogLimiter::new(WARN_INTERVAL),
        }
    }

    /// Decodes a body ([`decode_off_runtime`]) with the resource attributes added.
    pub(crate) async fn decode<R: ExportRequest>(
        &self,
        body: Bytes,
        format: Format,
    ) -> Result<Decoded<R>, ReceiveError> {
        decode_off_runtime(body, format, &self.resource).await
    }

    /// Hands a decoded request to every target lane, or to none when one is full. A request
    /// without items is answered as accepted without being routed.
    /// `memory` holds the body's bytes of the memory budget and stays with the batch.
    pub(crate) fn route<R: ExportRequest>(
        &self,
        decoded: Decoded<R>,
        memory: MemoryPermit,
    ) -> Result<(), ReceiveError> {
        let items = decoded.items;
        if items == 0 {
            return Ok(());
        }
        let labels = Metrics::receiver(self.receiver, R::SIGNAL);
        self.metrics.received.get_or_create(&labels).inc_by(items as u64);
        match self.router.accept(R::into_batch(decoded.request, items, decoded.encoded_len).with_memory(memory)) {
            Ok(()) => {
                self.metrics.accepted.get_or_create(&labels).inc_by(items as u64);
                Ok(())
            }
            Err(full) => {
                let refusal = Metrics::refusal(self.receiver, R::SIGNAL, "queue_full");
                self.metrics.refused.get_or_create(&refusal).inc_by(items as u64);
                Err(full.into())
            }
        }
    }

    /// Counts a request answered with an error and logs it at WARN, rate-limited. Never logs
    /// header values. `signal` is `None` when the path named none.
    pub(crate) fn record_failure(&self, signal: Option<Signal>, error: &ReceiveError, peer: Option<SocketAddr>) {
        let signal = signal.map_or("unknown", Signal::as_str);
        let receiver = self.receiver;
        let reason = error.reason();
        let peer = peer.map_or_else(|| "unknown".to_string(), |address| address.to_string());
        if error.is_refusal() {
            if let Some(suppressed) = self.refusal_log.check() {
                tracing::warn!(%receiver, signal, %peer, suppressed, %error, "refused request; the client was asked to retry");
            }
            return;
        }
        self.metrics.rejected_requests.get_or_create(&RefusalLabels { receiver, signal, reason }).inc();
        if let Some(suppressed) = self.rejection_log.check() {
            tracing::warn!(%receiver, signal, reason, %peer, suppressed, %error, "rejected request");
        }
    }
}
