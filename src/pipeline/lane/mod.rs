//! One destination's lane: a queue bounded in bytes, a batcher, a pool of senders and retries,
//! and, when it has one, the disk spool behind the queue.
//!
//! The router asks a lane to [`LaneHandle::take`] a batch, which never waits: a full lane
//! answers at once, so a slow destination can only ever fill its own queue. The bytes stay
//! reserved until the destination has acknowledged the items (or they are given up on), so
//! "queue bytes" covers everything the lane holds.
//!
//! A lane started with [`spawn_spooled`] owns a disk [`Spool`] and writes every batch it takes
//! ahead to it before the caller is answered: the memory queue is a read-ahead cache, never the
//! only copy. A batch goes to the memory queue at once when it has room and nothing waits on
//! disk; otherwise a replay task feeds the spool back into the queue, oldest first, as room
//! frees up. A record is acknowledged (and so, segment by segment, deleted) once the
//! destination took it or rejected it for good. What cannot be sent by the shutdown deadline
//! stays on disk; a batch whose retries ran out is written again at the spool's tail (or, when
//! the spool cannot take it, retried in place: never dropped). A batch partly sent when that
//! happens is spooled whole: delivery is at least once.
//!
//! Faults that heal are waited out: a destination's `Retry-After` is a not-before time for the
//! whole lane, kept across respooling ([`not_before`]), and a refused credential
//! ([`crate::destination::ExportError::Blocked`]) is retried at the slowest retry interval,
//! without a time budget, until someone fixes it.
//!
//! What the router does with a batch a lane cannot take is the lane's [`WhenFull`] policy, per
//! signal: refuse the request (the default), or shed the batch and count it dropped while the
//! other lanes take it (the local store's lane, set when the destinations are wired).
//!
//! Everything the lane (and its spool) counts as sent, failed or dropped goes through its
//! [`DestinationCounts`] ([`LaneHandle::counts`]).
//!
//! `handle` is the router's end, `batcher` gathers batches, `deliver` sends them, `replay`
//! reads the spool back, `progress` tells a busy lane from a stalled one, `not_before` holds
//! the destination's own wait.

mod batcher;
mod deliver;
mod handle;
mod not_before;
mod progress;
mod queued;
mod replay;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use bytesize::ByteSize;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::deliver::Lane;
use self::handle::Overflow;
pub use self::handle::{LaneGauge, LaneHandle, Refusal, Reservation, WhenFull};
use self::not_before::NotBefore;
use self::progress::Progress;
use self::replay::QueueFeed;
use crate::destination::Exporter;
use crate::model::{Destination, Signal};
use crate::pipeline::retry::RetryPolicy;
use crate::pipeline::spool::Spool;
use crate::telemetry::counts::DestinationCounts;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::ratelimit::LogLimiter;
use crate::telemetry::status::DestinationStatus;

/// Queue, batch and sender settings shared by every destination (config keys under
/// `destinations.<name>`, see `config::settings`).
#[derive(Clone, Debug, PartialEq)]
pub struct LaneSettings {
    /// Signals this destination takes.
    pub signals: Vec<Signal>,
    /// Bytes the lane may hold (queued, batching, being sent) before callers are refused.
    pub queue_size: ByteSize,
    /// A batch is sent once it holds this many items (a trigger, not a cap: the destination
    /// splits requests to its own limits).
    pub batch_max_items: usize,
    /// A batch is sent once it holds this many bytes.
    pub batch_max_size: ByteSize,
    /// A batch is sent at the latest this long after its first item arrived.
    pub batch_timeout: Duration,
    /// Requests in flight at once.
    pub senders: usize,
    pub retry: RetryPolicy,
}

/// What a running lane needs besides its exporter.
pub struct LaneContext {
    /// Where the lane counts what it sent, had refused and dropped (and, through it, the
    /// registry for its other metrics). A spooled lane's spool counts through the same one.
    pub counts: Arc<DestinationCounts>,
    pub status: Arc<DestinationStatus>,
    /// Cancelled when the shutdown deadline passes: retries stop and what is left is dropped.
    pub abandon: CancellationToken,
}

impl LaneContext {
    /// A context whose counts are new, for destination `name` in `metrics`.
    pub fn new(
        name: Destination,
        metrics: &Arc<Metrics>,
        status: Arc<DestinationStatus>,
        abandon: CancellationToken,
    ) -> Self {
        LaneContext { counts: Arc::new(DestinationCounts::new(name, Arc::clone(metrics))), status, abandon }
    }
}

/// Starts a lane's batcher and returns the router's handle and the task that ends once the
/// handle is dropped and everything queued has been delivered or given up on.
pub fn spawn<E: Exporter>(
    name: Destination,
    exporter: E,
    settings: LaneSettings,
    context: LaneContext,
) -> (LaneHandle, JoinHandle<()>) {
    start(name, exporter, settings, context, None)
}

/// [`spawn`], with a disk spool behind the memory queue. What the spool holds from an
/// earlier run is replayed first. The returned task also ends once what could not be sent was
/// written to the spool and flushed to disk.
pub fn spawn_spooled<E: Exporter>(
    name: Destination,
    exporter: E,
    settings: LaneSettings,
    context: LaneContext,
    spool: Arc<Spool>,
) -> (LaneHandle, JoinHandle<()>) {
    start(name, exporter, settings, context, Some(spool))
}

fn start<E: Exporter>(
    name: Destination,
    exporter: E,
    settings: LaneSettings,
    context: LaneContext,
    spool: Option<Arc<Spool>>,
) -> (LaneHandle, JoinHandle<()>) {
    let capacity_bytes = u32::try_from(settings.queue_size.as_u64().max(1)).unwrap_or(u32::MAX);
    let (queue, receiver) = mpsc::unbounded_channel();
    let mut signals = [false; 3];
    for signal in &settings.signals {
        signals[signal.index()] = true;
    }
    let progress = Arc::new(Progress::new());
    let capacity = Arc::new(Semaphore::new(capacity_bytes as usize));
    let router_gone = CancellationToken::new();
    let replay = spool.as_ref().map(|spool| {
        let feed = QueueFeed { queue: queue.downgrade(), capacity: Arc::clone(&capacity), capacity_bytes };
        tokio::spawn(replay::run_replay(Arc::clone(spool), feed, router_gone.clone()))
    });
    let overflow = spool.as_ref().map(|spool| {
        Arc::new(Overflow {
            spool: Arc::clone(spool),
            warn_limit: LogLimiter::new(Duration::from_secs(10)),
            status: Arc::clone(&context.status),
            failing: AtomicBool::new(false),
        })
    });
    let handle = LaneHandle {
        name,
        signals,
        when_full: [WhenFull::Refuse; Signal::ALL.len()],
        capacity,
        capacity_bytes,
        queue,
        progress: Arc::clone(&progress),
        counts: Arc::clone(&context.counts),
        overflow,
        _router_open: Arc::new(router_gone.drop_guard()),
    };
    let lane = Arc::new(Lane {
        name,
        exporter,
        settings,
        metrics: Arc::clone(context.counts.metrics()),
        counts: context.counts,
        status: context.status,
        abandon: context.abandon,
        warn_limit: LogLimiter::new(Duration::from_secs(10)),
        progress,
        not_before: NotBefore::new(),
        spool,
    });
    let task = tokio::spawn(async move {
        let spool = lane.spool.clone();
        batcher::run_batcher(lane, receiver).await;
        if let Some(spool) = spool {
            if let Some(replay) = replay {
                let _ = replay.await;
            }
            spool.sync().await;
        }
    });
    (handle, task)
}
