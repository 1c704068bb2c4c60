//! Pieces the integration tests share: an exporter that hands every batch it is given to the
//! test, and a lane with test settings behind a router.

#![allow(dead_code)] // each test file uses its own subset

use std::sync::Arc;
use std::time::Duration;

use bytesize::ByteSize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use waggle::destination::{Built, ExportError, Exporter, Sent};
use waggle::model::{Destination, SharedBatch, Signal};
use waggle::pipeline::lane::{self, LaneContext, LaneHandle, LaneSettings};
use waggle::pipeline::retry::RetryPolicy;
use waggle::pipeline::router::Router;
use waggle::telemetry::metrics::Metrics;
use waggle::telemetry::status::DestinationStatus;

/// Sends every batch it is asked to build to the test; with `stall`, never finishes a send,
/// so the lane keeps holding its bytes.
pub struct BatchRecorder {
    pub seen: mpsc::UnboundedSender<SharedBatch>,
    pub stall: bool,
}

impl Exporter for BatchRecorder {
    type Request = usize;

    fn build(&self, _signal: Signal, batches: &[SharedBatch]) -> Built<usize> {
        for batch in batches {
            let _ = self.seen.send(Arc::clone(batch));
        }
        Built::requests(vec![batches.iter().map(|batch| batch.items).sum()])
    }

    fn items(request: &usize) -> usize {
        *request
    }

    async fn send(&self, request: &mut usize) -> Result<Sent, ExportError> {
        if self.stall {
            std::future::pending::<()>().await;
        }
        Ok(Sent::all(*request))
    }
}

/// A destination that never answers.
pub struct Hung;

impl Exporter for Hung {
    type Request = usize;

    fn build(&self, _signal: Signal, batches: &[SharedBatch]) -> Built<usize> {
        Built::requests(vec![batches.iter().map(|batch| batch.items).sum()])
    }

    fn items(request: &usize) -> usize {
        *request
    }

    async fn send(&self, _request: &mut usize) -> Result<Sent, ExportError> {
        std::future::pending().await
    }
}

/// Lane settings that dispatch every batch at once (one item is a full batch).
pub fn immediate_lane(signals: &[Signal], queue_size: ByteSize) -> LaneSettings {
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

/// Starts a lane named `name` with its own status.
pub fn spawn_lane<E: Exporter>(
    name: Destination,
    exporter: E,
    settings: LaneSettings,
    metrics: &Arc<Metrics>,
) -> (LaneHandle, JoinHandle<()>) {
    let signals = settings.signals.iter().map(|s| s.as_str()).collect();
    let context = LaneContext {
        metrics: Arc::clone(metrics),
        status: Arc::new(DestinationStatus::new(name, true, "test", signals)),
        abandon: CancellationToken::new(),
    };
    lane::spawn(name, exporter, settings, context)
}

/// A router in front of one recording lane that takes every signal.
pub struct RecordingRouter {
    pub router: Arc<Router>,
    pub metrics: Arc<Metrics>,
    pub seen: mpsc::UnboundedReceiver<SharedBatch>,
}

impl RecordingRouter {
    /// `retry_after` is what refused callers are told; with `stall` the lane never delivers.
    pub fn new(queue_size: ByteSize, stall: bool, retry_after: Duration) -> Self {
        let metrics = Arc::new(Metrics::new());
        let (sender, seen) = mpsc::unbounded_channel();
        let recorder = BatchRecorder { seen: sender, stall };
        let (handle, _task) =
            spawn_lane(Destination::Xray, recorder, immediate_lane(&Signal::ALL, queue_size), &metrics);
        let router = Arc::new(Router::new(vec![handle], Arc::clone(&metrics), retry_after, Duration::from_secs(3600)));
        RecordingRouter { router, metrics, seen }
    }
}
