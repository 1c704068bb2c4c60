//! One destination's lane: a queue bounded in bytes, a batcher, a pool of senders and retries.
//!
//! The router reserves room with [`LaneHandle::try_reserve`], which never waits: a full lane
//! answers at once, so a slow destination can only ever fill its own queue. The bytes stay
//! reserved until the destination has acknowledged the items (or they are given up on), so
//! "queue bytes" covers everything the lane holds.
//!
//! A lane started with [`spawn_spooled`] is backed by a disk [`Spool`]: what the full queue
//! cannot take is appended to it instead of refused (see the router), a replay task feeds it
//! back into the queue, oldest first, as room frees up, and a replayed record is acknowledged
//! (and so, segment by segment, deleted) once the destination took it or rejected it for good.
//! With a spool, what cannot be sent by the shutdown deadline, or whose retries ran out, goes
//! (back) to the disk instead of being dropped. A batch partly sent when that happens is
//! spooled whole: delivery is at least once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytesize::ByteSize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::destination::{ExportError, Exporter, Rejected, Sent};
use crate::model::{Destination, LossReason, SharedBatch, Signal};
use crate::pipeline::retry::RetryPolicy;
use crate::pipeline::spool::envelope::EncodedBatch;
use crate::pipeline::spool::{self, RecordTicket, Spool, SpoolReason};
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

/// The router's end of a lane.
#[derive(Clone, Debug)]
pub struct LaneHandle {
    pub name: Destination,
    signals: [bool; 3],
    capacity: Arc<Semaphore>,
    capacity_bytes: u32,
    queue: mpsc::UnboundedSender<Queued>,
    progress: Arc<Progress>,
    spool: Option<Arc<Spool>>,
    /// Cancels the lane's replay when the last handle is dropped (the router is gone).
    _router_open: Arc<DropGuard>,
}

/// Whether the lane is getting anywhere: how long its senders have been busy without
/// finishing a request. The router uses it to tell a busy lane (refuse; the caller retries)
/// from a stalled one (stop waiting for it).
#[derive(Debug)]
struct Progress {
    origin: Instant,
    /// Deliveries running now.
    in_flight: AtomicUsize,
    /// Milliseconds since `origin` when a request last finished, or when the lane got busy.
    since_millis: AtomicU64,
}

/// Held while a delivery runs.
struct Busy<'a>(&'a Progress);

impl Progress {
    fn new() -> Self {
        Progress { origin: Instant::now(), in_flight: AtomicUsize::new(0), since_millis: AtomicU64::new(0) }
    }

    fn now_millis(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn busy(&self) -> Busy<'_> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) == 0 {
            self.mark();
        }
        Busy(self)
    }

    /// A request finished.
    fn mark(&self) {
        self.since_millis.store(self.now_millis(), Ordering::Relaxed);
    }

    /// How long the lane has been busy without finishing anything; zero when idle.
    fn stuck_for(&self) -> Duration {
        if self.in_flight.load(Ordering::Acquire) == 0 {
            return Duration::ZERO;
        }
        let since = self.since_millis.load(Ordering::Relaxed);
        Duration::from_millis(self.now_millis().saturating_sub(since))
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Room reserved in a lane for one batch; hand it the batch with [`Reservation::send`].
#[derive(Debug)]
pub struct Reservation {
    permit: OwnedSemaphorePermit,
    queue: mpsc::UnboundedSender<Queued>,
}

#[derive(Debug)]
struct Queued {
    batch: SharedBatch,
    _permit: OwnedSemaphorePermit,
    /// The spool record it was read back from, if any.
    spooled: Option<RecordTicket>,
}

impl LaneHandle {
    /// Whether this lane takes a signal.
    pub fn takes(&self, signal: Signal) -> bool {
        self.signals[signal.index()]
    }

    /// Reserves room for `bytes` without waiting; `None` when the lane is full or closed, or
    /// when older batches wait in its spool (a new one must go behind them).
    /// A batch larger than the whole queue may still enter an empty lane.
    pub fn try_reserve(&self, bytes: usize) -> Option<Reservation> {
        if self.queue.is_closed() || self.spool.as_ref().is_some_and(|spool| spool.has_backlog()) {
            return None;
        }
        let wanted = u32::try_from(bytes).unwrap_or(u32::MAX).clamp(1, self.capacity_bytes);
        let permit = self.capacity.clone().try_acquire_many_owned(wanted).ok()?;
        Some(Reservation { permit, queue: self.queue.clone() })
    }

    /// The lane's disk spool, when it has one: where the router puts what the queue cannot take.
    pub fn spool(&self) -> Option<&Arc<Spool>> {
        self.spool.as_ref()
    }

    /// True when the lane's senders have been busy for `timeout` without finishing a request
    /// (its destination is down or hung). A full, stalled lane no longer holds up the others:
    /// see the router.
    pub fn is_stalled(&self, timeout: Duration) -> bool {
        self.progress.stuck_for() >= timeout
    }

    /// A read-only view of how full the lane is, which does not keep the lane open.
    pub fn gauge(&self) -> LaneGauge {
        LaneGauge { name: self.name, capacity: Arc::clone(&self.capacity), capacity_bytes: self.capacity_bytes }
    }
}

/// How many bytes a lane holds, for `/metrics`.
#[derive(Clone, Debug)]
pub struct LaneGauge {
    pub name: Destination,
    capacity: Arc<Semaphore>,
    capacity_bytes: u32,
}

impl LaneGauge {
    /// Bytes the lane holds now: queued, batching or being sent.
    pub fn held_bytes(&self) -> u64 {
        u64::from(self.capacity_bytes) - self.capacity.available_permits() as u64
    }
}

impl Reservation {
    /// Queues the batch in the reserved room.
    pub fn send(self, batch: SharedBatch) {
        // The batcher only stops after every LaneHandle is dropped, so the queue is open here;
        // if it were not, dropping the item releases its bytes and nothing else is owed.
        let _ = self.queue.send(Queued { batch, _permit: self.permit, spooled: None });
    }
}

/// What a running lane needs besides its exporter.
pub struct LaneContext {
    pub metrics: Arc<Metrics>,
    pub status: Arc<DestinationStatus>,
    /// Cancelled when the shutdown deadline passes: retries stop and what is left is dropped.
    pub abandon: CancellationToken,
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
        tokio::spawn(run_replay(Arc::clone(spool), feed, router_gone.clone()))
    });
    let handle = LaneHandle {
        name,
        signals,
        capacity,
        capacity_bytes,
        queue,
        progress: Arc::clone(&progress),
        spool: spool.clone(),
        _router_open: Arc::new(router_gone.drop_guard()),
    };
    let lane = Arc::new(Lane {
        name,
        exporter,
        settings,
        metrics: context.metrics,
        status: context.status,
        abandon: context.abandon,
        warn_limit: LogLimiter::new(Duration::from_secs(10)),
        progress,
        spool,
    });
    let task = tokio::spawn(async move {
        let spool = lane.spool.clone();
        run_batcher(lane, receiver).await;
        if let Some(spool) = spool {
            if let Some(replay) = replay {
                let _ = replay.await;
            }
            spool.sync().await;
        }
    });
    (handle, task)
}

/// The replay task's way into the memory queue. The queue is held weakly, so it closes (and
/// the batcher flushes) once the router is gone, whatever the replay is doing.
struct QueueFeed {
    queue: mpsc::WeakUnboundedSender<Queued>,
    capacity: Arc<Semaphore>,
    capacity_bytes: u32,
}

/// Feeds the spool's records into the memory queue, oldest first, as room frees up, and
/// flushes the spool to disk every [`spool::SYNC_INTERVAL`]. Stops when the router is gone:
/// what is still on disk is replayed at the next start.
async fn run_replay(spool: Arc<Spool>, feed: QueueFeed, router_gone: CancellationToken) {
    let sync = tokio::spawn({
        let (spool, router_gone) = (Arc::clone(&spool), router_gone.clone());
        async move {
            let mut ticks = tokio::time::interval(spool::SYNC_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = router_gone.cancelled() => break,
                    _ = ticks.tick() => spool.sync().await,
                }
            }
        }
    });
    let mut reader = spool.reader();
    loop {
        let replayed = tokio::select! {
            () = router_gone.cancelled() => break,
            replayed = reader.next() => replayed,
        };
        let wanted = u32::try_from(replayed.batch.bytes).unwrap_or(u32::MAX).clamp(1, feed.capacity_bytes);
        let permit = tokio::select! {
            () = router_gone.cancelled() => None,
            permit = Arc::clone(&feed.capacity).acquire_many_owned(wanted) => permit.ok(),
        };
        let queue = feed.queue.upgrade();
        let (Some(permit), Some(queue)) = (permit, queue) else {
            reader.handed_over();
            break;
        };
        let queued = Queued { batch: Arc::new(replayed.batch), _permit: permit, spooled: Some(replayed.ticket) };
        let _ = queue.send(queued);
        reader.handed_over();
    }
    let _ = sync.await;
}

struct Lane<E> {
    name: Destination,
    exporter: E,
    settings: LaneSettings,
    metrics: Arc<Metrics>,
    status: Arc<DestinationStatus>,
    abandon: CancellationToken,
    warn_limit: LogLimiter,
    progress: Arc<Progress>,
    spool: Option<Arc<Spool>>,
}

/// How one request ended.
enum Outcome {
    /// The destination took it, or rejected it for good (counted).
    Settled,
    /// Not sent: the shutdown deadline passed, or the retry budget ran out.
    GaveUp { reason: LossReason, detail: String },
}

/// Items of one signal waiting to be sent together.
#[derive(Default)]
struct Pending {
    queued: Vec<Queued>,
    items: usize,
    bytes: u64,
    deadline: Option<Instant>,
}

async fn run_batcher<E: Exporter>(lane: Arc<Lane<E>>, mut receiver: mpsc::UnboundedReceiver<Queued>) {
    let senders = Arc::new(Semaphore::new(lane.settings.senders.max(1)));
    let mut pending: [Pending; 3] = Default::default();
    loop {
        let next_deadline = pending.iter().filter_map(|p| p.deadline).min();
        tokio::select! {
            received = receiver.recv() => {
                let Some(queued) = received else { break };
                let signal = queued.batch.signal();
                let slot = &mut pending[signal.index()];
                slot.items += queued.batch.items;
                slot.bytes += queued.batch.bytes as u64;
                slot.deadline.get_or_insert_with(|| Instant::now() + lane.settings.batch_timeout);
                slot.queued.push(queued);
                if slot.items >= lane.settings.batch_max_items || slot.bytes >= lane.settings.batch_max_size.as_u64() {
                    let ready = std::mem::take(slot);
                    dispatch(&lane, &senders, signal, ready).await;
                }
            }
            () = sleep_until(next_deadline) => {
                let now = Instant::now();
                for signal in Signal::ALL {
                    let slot = &mut pending[signal.index()];
                    if slot.deadline.is_some_and(|deadline| deadline <= now) {
                        let ready = std::mem::take(slot);
                        dispatch(&lane, &senders, signal, ready).await;
                    }
                }
            }
        }
    }
    // The router is gone (shutdown): send what is left and wait for every sender.
    for signal in Signal::ALL {
        let ready = std::mem::take(&mut pending[signal.index()]);
        if !ready.queued.is_empty() {
            dispatch(&lane, &senders, signal, ready).await;
        }
    }
    let all = u32::try_from(lane.settings.senders.max(1)).unwrap_or(u32::MAX);
    let _ = senders.acquire_many(all).await;
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Waits for a free sender, then delivers the batch on its own task.
async fn dispatch<E: Exporter>(lane: &Arc<Lane<E>>, senders: &Arc<Semaphore>, signal: Signal, ready: Pending) {
    let Ok(sender) = senders.clone().acquire_owned().await else { return };
    let lane = Arc::clone(lane);
    tokio::spawn(async move {
        lane.deliver(signal, ready.queued).await;
        // The lane (and its spool) before the sender slot: once the batcher has every slot
        // back, nothing of the lane is left running.
        drop(lane);
        drop(sender);
    });
}

impl<E: Exporter> Lane<E> {
    /// Builds the requests for a batch and sends each until it succeeds or is given up on.
    /// The queued items (and so their reserved bytes) are released when this returns.
    /// With a spool, a batch given up on goes (back) to the disk whole instead of being dropped,
    /// and replayed records are acknowledged once settled.
    async fn deliver(&self, signal: Signal, queued: Vec<Queued>) {
        let _busy = self.progress.busy();
        if self.spool.is_some() && self.abandon.is_cancelled() {
            // Past the shutdown deadline: straight to disk, without building requests.
            self.keep_on_disk(queued, SpoolReason::Shutdown);
            return;
        }
        let batches: Vec<SharedBatch> = queued.iter().map(|q| Arc::clone(&q.batch)).collect();
        let built = self.exporter.build(signal, &batches);
        drop(batches);
        for rejected in &built.rejected {
            self.count_rejected(signal, rejected);
        }
        for mut request in built.requests {
            let outcome = self.send_with_retry(signal, &mut request).await;
            self.progress.mark();
            if let Outcome::GaveUp { reason, detail } = outcome {
                if self.spool.is_some() {
                    let why = if reason == LossReason::Shutdown {
                        SpoolReason::Shutdown
                    } else {
                        SpoolReason::RetriesExhausted
                    };
                    if why == SpoolReason::RetriesExhausted
                        && let Some(suppressed) = self.warn_limit.check()
                    {
                        tracing::warn!(destination = %self.name, %signal, detail, suppressed, "giving up for now; back to the spool");
                    }
                    self.keep_on_disk(queued, why);
                    return;
                }
                self.give_up(signal, &request, reason, &detail);
            }
        }
        if let Some(spool) = &self.spool {
            for ticket in queued.iter().filter_map(|q| q.spooled) {
                spool.acknowledge(ticket);
            }
        }
        drop(queued);
    }

    /// Puts batches that were not sent on disk for later: a replayed record still on disk stays
    /// there at shutdown; anything else is appended. Only what the spool cannot take is dropped.
    fn keep_on_disk(&self, queued: Vec<Queued>, why: SpoolReason) {
        let Some(spool) = &self.spool else { return };
        for queued in queued {
            if let Some(ticket) = queued.spooled
                && why == SpoolReason::Shutdown
                && spool.holds(ticket)
            {
                continue;
            }
            let signal = queued.batch.signal();
            match spool.append(&EncodedBatch::new(&queued.batch), why) {
                Ok(()) => {}
                Err(error) => {
                    let reason = why.loss();
                    let items = queued.batch.items;
                    self.metrics.dropped.get_or_create(&Metrics::loss(self.name, signal, reason)).inc_by(items as u64);
                    tracing::warn!(destination = %self.name, %signal, items, %reason, %error, "dropped items: the spool cannot take them");
                }
            }
            // The copy on disk replaces the record it was read from.
            if let Some(ticket) = queued.spooled {
                spool.acknowledge(ticket);
            }
        }
    }

    async fn send_with_retry(&self, signal: Signal, request: &mut E::Request) -> Outcome {
        let destination = Metrics::destination(self.name);
        let started = Instant::now();
        let mut backoff = self.settings.retry.start();
        loop {
            let attempt = tokio::select! {
                result = self.exporter.send(request) => result,
                () = self.abandon.cancelled() => {
                    return Outcome::GaveUp { reason: LossReason::Shutdown, detail: "shutdown deadline passed during a send".into() };
                }
            };
            let attempt = match attempt {
                Ok(mut sent) => match sent.retry_remaining.take() {
                    // Part went through; the request now holds only what must be sent again.
                    Some(reason) => {
                        self.count_sent(signal, sent);
                        Err(ExportError::Retryable { reason, retry_after: None })
                    }
                    None => Ok(sent),
                },
                Err(error) => Err(error),
            };
            match attempt {
                Ok(sent) => {
                    self.metrics.export_duration.get_or_create(&destination).observe(started.elapsed().as_secs_f64());
                    self.count_sent(signal, sent);
                    return Outcome::Settled;
                }
                Err(ExportError::Permanent { reason, label }) => {
                    self.metrics.export_duration.get_or_create(&destination).observe(started.elapsed().as_secs_f64());
                    let rejected = Rejected { items: E::items(request), reason: label, detail: reason };
                    self.status.record_error(format!("rejected: {}", rejected.detail));
                    self.count_rejected(signal, &rejected);
                    return Outcome::Settled;
                }
                Err(ExportError::Retryable { reason, retry_after }) => {
                    self.status.record_error(reason.clone());
                    self.metrics.retries.get_or_create(&destination).inc();
                    let Some(delay) = backoff.next_delay(retry_after) else {
                        let detail = format!("retries exhausted after {:?}: {reason}", started.elapsed());
                        return Outcome::GaveUp { reason: LossReason::RetriesExhausted, detail };
                    };
                    if let Some(suppressed) = self.warn_limit.check() {
                        tracing::warn!(destination = %self.name, %signal, error = %reason, retry_in = ?delay, suppressed, "send failed; will retry");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.abandon.cancelled() => {
                            let detail = "shutdown deadline passed while waiting to retry".into();
                            return Outcome::GaveUp { reason: LossReason::Shutdown, detail };
                        }
                    }
                }
            }
        }
    }

    fn count_sent(&self, signal: Signal, sent: Sent) {
        self.metrics.sent.get_or_create(&Metrics::lane(self.name, signal)).inc_by(sent.accepted as u64);
        for rejected in &sent.rejected {
            self.count_rejected(signal, rejected);
        }
        self.status.record_success();
    }

    fn count_rejected(&self, signal: Signal, rejected: &Rejected) {
        if rejected.items == 0 {
            return;
        }
        self.metrics
            .failed
            .get_or_create(&Metrics::loss(self.name, signal, rejected.reason))
            .inc_by(rejected.items as u64);
        if let Some(suppressed) = self.warn_limit.check() {
            tracing::warn!(destination = %self.name, %signal, items = rejected.items, reason = %rejected.reason, detail = %rejected.detail, suppressed, "destination rejected items");
        }
    }

    fn give_up(&self, signal: Signal, request: &E::Request, reason: LossReason, detail: &str) {
        let items = E::items(request);
        self.metrics.dropped.get_or_create(&Metrics::loss(self.name, signal, reason)).inc_by(items as u64);
        tracing::warn!(destination = %self.name, %signal, items, %reason, detail, "dropped items");
    }
}
