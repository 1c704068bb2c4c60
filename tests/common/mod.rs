//! Pieces the integration tests share: one scripted test destination ([`ScriptedExporter`])
//! whose every send does what the test says (accept and record, fail retryably, reject for
//! good, hang, be slow, be down until switched up), and a lane with test settings behind a router.

#![allow(dead_code)] // each test file uses its own subset

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytesize::ByteSize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use waggle::destination::{Built, ExportError, Exporter, Rejected, Sent};
use waggle::model::{Destination, LossReason, Payload, SharedBatch, Signal, XraySegment};
use waggle::pipeline::lane::{self, LaneContext, LaneHandle, LaneSettings};
use waggle::pipeline::retry::RetryPolicy;
use waggle::pipeline::router::Router;
use waggle::telemetry::metrics::Metrics;
use waggle::telemetry::status::DestinationStatus;

/// One request of the scripted destination: the batches it was built from.
#[derive(Clone, Debug)]
pub(crate) struct Delivery {
    pub signal: Signal,
    /// Items in the batches (what the lane counts).
    pub items: usize,
    pub batches: Vec<SharedBatch>,
}

impl Delivery {
    /// The X-Ray documents in it, in order.
    pub(crate) fn xray_segments(&self) -> Vec<XraySegment> {
        self.batches
            .iter()
            .flat_map(|batch| match &batch.payload {
                Payload::XraySegments(segments) => segments.clone(),
                _ => Vec::new(),
            })
            .collect()
    }
}

/// A test destination. Each send, in this order: counts an attempt; waits when
/// [`slow`](ScriptedExporter::slow); hangs forever when [`hung`](ScriptedExporter::hung); rejects for good when
/// [`rejecting`](ScriptedExporter::rejecting); refuses the credentials while
/// [`blocked_while`](ScriptedExporter::blocked_while)'s flag is set; fails retryably while
/// [`switchable`](ScriptedExporter::switchable)'s flag is down, or while
/// [`failing`](ScriptedExporter::failing) failures are left; otherwise accepts everything and
/// reports the request as a [`Delivery`].
#[derive(Default)]
pub(crate) struct ScriptedExporter {
    delay: Duration,
    hang: bool,
    reject: bool,
    down: Option<Arc<AtomicBool>>,
    blocked: Option<Arc<AtomicBool>>,
    failures: AtomicUsize,
    retry_after: Option<Duration>,
    check_decodes: bool,
    attempts: Arc<AtomicUsize>,
    accepted_items: Arc<AtomicU64>,
    delivered: Option<mpsc::UnboundedSender<Delivery>>,
    built: Option<mpsc::UnboundedSender<SharedBatch>>,
}

impl ScriptedExporter {
    /// Accepts every request; the returned receiver gets each one once accepted.
    pub(crate) fn accepting() -> (Self, mpsc::UnboundedReceiver<Delivery>) {
        let (sender, delivered) = mpsc::unbounded_channel();
        (ScriptedExporter { delivered: Some(sender), ..ScriptedExporter::default() }, delivered)
    }

    /// A destination that never answers.
    pub(crate) fn hung() -> Self {
        ScriptedExporter { hang: true, ..ScriptedExporter::default() }
    }

    /// Takes `delay` to answer each send (a destination that keeps up with less than it gets).
    pub(crate) fn slow(self, delay: Duration) -> Self {
        ScriptedExporter { delay, ..self }
    }

    /// Rejects every request for good (`400 from test`, reason `rejected`).
    pub(crate) fn rejecting() -> Self {
        ScriptedExporter { reject: true, ..ScriptedExporter::default() }
    }

    /// Fails the first `failures` attempts retryably (`503 from test`, with `retry_after`),
    /// then accepts.
    pub(crate) fn failing(self, failures: usize, retry_after: Option<Duration>) -> Self {
        ScriptedExporter { failures: AtomicUsize::new(failures), retry_after, ..self }
    }

    /// Fails retryably (`503 from test`) while `down` is set.
    pub(crate) fn switchable(self, down: &Arc<AtomicBool>) -> Self {
        ScriptedExporter { down: Some(Arc::clone(down)), ..self }
    }

    /// Refuses the credentials (`401 from test`, [`ExportError::Blocked`]) while `blocked` is set.
    pub(crate) fn blocked_while(self, blocked: &Arc<AtomicBool>) -> Self {
        ScriptedExporter { blocked: Some(Arc::clone(blocked)), ..self }
    }

    /// Also hangs on every send (after recording what it builds, see [`Self::recording_builds`]).
    pub(crate) fn hanging(self, hang: bool) -> Self {
        ScriptedExporter { hang, ..self }
    }

    /// Asks every OTLP batch for its decoded request when building, as a real destination
    /// does, and reports the batches that do not decode as rejected (`undecodable`).
    pub(crate) fn checking_decodes(self) -> Self {
        ScriptedExporter { check_decodes: true, ..self }
    }

    /// The returned receiver gets every batch the lane asks it to build, before any send.
    pub(crate) fn recording_builds(self) -> (Self, mpsc::UnboundedReceiver<SharedBatch>) {
        let (sender, built) = mpsc::unbounded_channel();
        (ScriptedExporter { built: Some(sender), ..self }, built)
    }

    /// Counts every send attempt.
    pub(crate) fn attempts(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.attempts)
    }

    /// Counts every item accepted.
    pub(crate) fn accepted_items(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.accepted_items)
    }

    fn undecodable(batch: &SharedBatch) -> Option<Rejected> {
        let error = match &batch.payload {
            Payload::Traces(request) => request.decoded().err(),
            Payload::Logs(request) => request.decoded().err(),
            Payload::Metrics(request) => request.decoded().err(),
            Payload::XraySegments(_) => None,
        };
        error.map(|error| Rejected::undecodable(batch.items, &error))
    }
}

impl Exporter for ScriptedExporter {
    type Request = Delivery;

    fn build(&self, signal: Signal, batches: &[SharedBatch]) -> Built<Delivery> {
        if let Some(built) = &self.built {
            for batch in batches {
                let _ = built.send(Arc::clone(batch));
            }
        }
        let mut rejected = Vec::new();
        let mut kept = Vec::with_capacity(batches.len());
        for batch in batches {
            // Only when asked: the OTLP receivers' tests check what stayed undecoded.
            if self.check_decodes
                && let Some(undecodable) = Self::undecodable(batch)
            {
                rejected.push(undecodable);
                continue;
            }
            kept.push(Arc::clone(batch));
        }
        let items = kept.iter().map(|batch| batch.items).sum();
        let requests = if kept.is_empty() { Vec::new() } else { vec![Delivery { signal, items, batches: kept }] };
        Built { requests, rejected }
    }

    fn items(request: &Delivery) -> usize {
        request.items
    }

    async fn send(&self, request: &mut Delivery) -> Result<Sent, ExportError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if self.hang {
            std::future::pending::<()>().await;
        }
        if self.reject {
            return Err(ExportError::permanent(LossReason::Rejected, "400 from test"));
        }
        if self.blocked.as_ref().is_some_and(|blocked| blocked.load(Ordering::SeqCst)) {
            return Err(ExportError::Blocked { reason: "401 from test".into() });
        }
        if self.down.as_ref().is_some_and(|down| down.load(Ordering::SeqCst)) {
            return Err(ExportError::retryable("503 from test"));
        }
        if self.failures.load(Ordering::SeqCst) > 0 {
            self.failures.fetch_sub(1, Ordering::SeqCst);
            return Err(ExportError::Retryable { reason: "503 from test".into(), retry_after: self.retry_after });
        }
        self.accepted_items.fetch_add(request.items as u64, Ordering::Relaxed);
        if let Some(delivered) = &self.delivered {
            let _ = delivered.send(request.clone());
        }
        Ok(Sent::all(request.items))
    }
}

/// Receives deliveries until `expected` items arrived; fails if more did.
pub(crate) async fn receive_items(delivered: &mut mpsc::UnboundedReceiver<Delivery>, expected: usize) {
    let mut total = 0;
    while total < expected {
        total += delivered.recv().await.expect("lane still running").items;
    }
    assert_eq!(total, expected);
}

/// Lane settings that dispatch every batch at once (one item is a full batch).
pub(crate) fn immediate_lane(signals: &[Signal], queue_size: ByteSize) -> LaneSettings {
    LaneSettings {
        signals: signals.to_vec(),
        queue_size,
        batch_max_items: 1,
        batch_max_size: ByteSize::b(1),
        batch_timeout: Duration::from_secs(3600),
        senders: 1,
        retry: RetryPolicy::default(),
    }
}

/// A lane context for destination `name` with its own status and counts.
pub(crate) fn lane_context(name: Destination, signals: &[Signal], metrics: &Arc<Metrics>) -> LaneContext {
    let signals = signals.iter().map(|s| s.as_str()).collect();
    let status = Arc::new(DestinationStatus::new(name, true, "test", signals));
    LaneContext::new(name, metrics, status, CancellationToken::new())
}

/// Starts a lane named `name` with its own status.
pub(crate) fn spawn_lane<E: Exporter>(
    name: Destination,
    exporter: E,
    settings: LaneSettings,
    metrics: &Arc<Metrics>,
) -> (LaneHandle, JoinHandle<()>) {
    let context = lane_context(name, &settings.signals, metrics);
    lane::spawn(name, exporter, settings, context)
}

/// A router in front of one recording lane that takes every signal.
pub(crate) struct RecordingRouter {
    pub router: Arc<Router>,
    pub metrics: Arc<Metrics>,
    pub seen: mpsc::UnboundedReceiver<SharedBatch>,
}

impl RecordingRouter {
    /// `retry_after` is what refused callers are told; with `stall` the lane never delivers.
    pub(crate) fn new(queue_size: ByteSize, stall: bool, retry_after: Duration) -> Self {
        let metrics = Arc::new(Metrics::new());
        let (recorder, seen) = ScriptedExporter::default().hanging(stall).recording_builds();
        let (handle, _task) =
            spawn_lane(Destination::Xray, recorder, immediate_lane(&Signal::ALL, queue_size), &metrics);
        let router = Arc::new(Router::new(vec![handle], Arc::clone(&metrics), retry_after, Duration::from_secs(3600)));
        RecordingRouter { router, metrics, seen }
    }
}
