//! The router's end of a lane: [`LaneHandle::take`] decides, without waiting, whether the
//! lane can take a batch (room in memory; a spooled lane always writes it ahead to its spool)
//! or is full or stalled, the [`Reservation`] it returns commits the batch in two phases, and
//! [`WhenFull`] says what the router does with a batch of a signal the lane cannot take.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::DropGuard;

use super::progress::Progress;
use super::queued::Queued;
use crate::model::{Batch, Destination, LossReason, SharedBatch, Signal};
use crate::pipeline::spool::envelope::EncodeOnce;
use crate::pipeline::spool::{RecordTicket, Spool, SpoolError};
use crate::telemetry::counts::DestinationCounts;
use crate::telemetry::ratelimit::LogLimiter;
use crate::telemetry::status::DestinationStatus;

/// The router's end of a lane.
#[derive(Clone, Debug)]
pub struct LaneHandle {
    pub name: Destination,
    pub(super) signals: [bool; 3],
    /// Per signal: what the router does when the lane cannot take a batch.
    pub(super) when_full: [WhenFull; Signal::ALL.len()],
    pub(super) capacity: Arc<Semaphore>,
    pub(super) capacity_bytes: u32,
    pub(super) queue: mpsc::UnboundedSender<Queued>,
    pub(super) progress: Arc<Progress>,
    pub(super) counts: Arc<DestinationCounts>,
    pub(super) overflow: Option<Arc<Overflow>>,
    /// Cancels the lane's replay when the last handle is dropped (the router is gone).
    pub(super) _router_open: Arc<DropGuard>,
}

/// A spooled lane's write-ahead log: every batch the lane accepts is written here first.
#[derive(Debug)]
pub(super) struct Overflow {
    pub(super) spool: Arc<Spool>,
    /// For the WARN line when the spool cannot take a batch.
    pub(super) warn_limit: LogLimiter,
    /// Where a spool that cannot write (disk full, read-only) is shown until it can again.
    pub(super) status: Arc<DestinationStatus>,
    /// Set while the spool refuses writes, so recovery is said once.
    pub(super) failing: AtomicBool,
}

/// Why a lane did not take a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No room, and its destination is getting somewhere: the caller should retry.
    Full,
    /// No room, and its senders finished no request for the stall timeout: the lane should no
    /// longer hold up the others.
    Stalled,
}

/// What the router does with a batch a lane cannot take (no room in its queue, nor in its
/// spool if it has one). Set per signal when the lanes are wired ([`LaneHandle::set_when_full`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WhenFull {
    /// Refuse the whole request: the caller is asked to retry and no lane keeps a copy (a
    /// stalled lane is still skipped after the stall timeout).
    #[default]
    Refuse,
    /// Leave this lane out: the other lanes take the batch and this lane counts its items as
    /// dropped with this reason. The router only sheds while another lane takes the batch;
    /// when none does, a shedding lane refuses like any other.
    Shed(LossReason),
}

/// Room a lane holds for one batch, in its memory queue or in its spool. Commit it in two
/// phases, [`Reservation::write`] then [`Reservation::send`]; dropping it instead releases the
/// room and nothing is owed.
#[derive(Debug)]
pub struct Reservation<'a> {
    lane: &'a LaneHandle,
    room: Room,
}

#[derive(Debug)]
enum Room {
    /// Bytes of the memory queue (a lane without a spool).
    Memory(OwnedSemaphorePermit),
    /// The lane's spool, written ahead at [`Reservation::write`], and the memory room the
    /// batch also goes to when there is some and nothing waits on disk before it. After the
    /// write, `ticket` is the claimed record (the batch goes to memory with it); without one
    /// the spool's reader replays the record.
    Spool { memory: Option<OwnedSemaphorePermit>, ticket: Option<RecordTicket> },
}

impl LaneHandle {
    /// Whether this lane takes a signal.
    pub fn takes(&self, signal: Signal) -> bool {
        self.signals[signal.index()]
    }

    /// What the router does when this lane cannot take a batch of `signal`.
    pub fn when_full(&self, signal: Signal) -> WhenFull {
        self.when_full[signal.index()]
    }

    /// Sets what the router does when this lane cannot take a batch of `signal` (at wiring
    /// time, before the router gets the handle; clones made earlier keep their own setting).
    pub fn set_when_full(&mut self, signal: Signal, when_full: WhenFull) {
        self.when_full[signal.index()] = when_full;
    }

    /// Decides, without waiting, where the lane can hold `batch`. A spooled lane takes every
    /// batch into its spool (written ahead at [`Reservation::write`], which may still refuse
    /// it), and into its memory queue too when that has room and no older batch waits on disk.
    /// A lane without a spool needs room in its memory queue; refused without:
    /// [`Refusal::Stalled`] if its senders have been busy for `stall_timeout` without
    /// finishing a request, else [`Refusal::Full`]. A batch larger than the whole queue may
    /// still enter an empty lane.
    pub fn take(&self, batch: &Batch, stall_timeout: Duration) -> Result<Reservation<'_>, Refusal> {
        let memory = self.try_reserve(batch.bytes);
        if self.overflow.is_some() {
            return Ok(Reservation { lane: self, room: Room::Spool { memory, ticket: None } });
        }
        match memory {
            Some(permit) => Ok(Reservation { lane: self, room: Room::Memory(permit) }),
            None => Err(self.refusal(stall_timeout)),
        }
    }

    /// Memory room for `bytes`; `None` when the lane is full or closed, or when older batches
    /// wait in its spool.
    fn try_reserve(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        if self.queue.is_closed() || self.overflow.as_ref().is_some_and(|overflow| overflow.spool.has_backlog()) {
            return None;
        }
        let wanted = u32::try_from(bytes).unwrap_or(u32::MAX).clamp(1, self.capacity_bytes);
        self.capacity.clone().try_acquire_many_owned(wanted).ok()
    }

    fn refusal(&self, stall_timeout: Duration) -> Refusal {
        if self.is_stalled(stall_timeout) { Refusal::Stalled } else { Refusal::Full }
    }

    /// True when the lane's senders have been busy for `timeout` without finishing a request
    /// (its destination is down or hung).
    pub(crate) fn is_stalled(&self, timeout: Duration) -> bool {
        self.progress.stuck_for() >= timeout
    }

    /// What this lane sent, had refused and dropped; everything it counts goes through here.
    pub fn counts(&self) -> &Arc<DestinationCounts> {
        &self.counts
    }

    /// A read-only view of how full the lane is, which does not keep the lane open.
    pub fn gauge(&self) -> LaneGauge {
        LaneGauge { name: self.name, capacity: Arc::clone(&self.capacity), capacity_bytes: self.capacity_bytes }
    }
}

impl Overflow {
    /// The spool refused a batch: a (rate-limited) WARN line, and `/status` says why until it
    /// takes batches again.
    fn spool_failed(&self, lane: Destination, error: &SpoolError) {
        self.failing.store(true, Ordering::Relaxed);
        self.status.record_problem(format!("the spool refuses batches (callers are answered 429): {error}"));
        if let Some(suppressed) = self.warn_limit.check() {
            tracing::warn!(destination = %lane, %error, suppressed, "the lane's spool cannot take the batch; refusing it (429)");
        }
    }
}

impl<'a> Reservation<'a> {
    /// The lane this room is in.
    pub fn lane(&self) -> &'a LaneHandle {
        self.lane
    }

    /// First phase of the commit, the one that can fail: a spooled lane writes the batch
    /// ahead to its spool (encoded at most once, however many lanes spool it); room in memory
    /// alone has nothing to do yet. When the spool cannot take it (full, disk error, larger
    /// than the spool), the lane is full (never stalled: nothing else keeps the batch for it),
    /// says so in a (rate-limited) WARN line and on `/status`, and the caller retries.
    pub fn write(&mut self, batch: &EncodeOnce<'_>) -> Result<(), Refusal> {
        let Room::Spool { memory, ticket } = &mut self.room else { return Ok(()) };
        let Some(overflow) = &self.lane.overflow else { return Ok(()) };
        match overflow.spool.append_ahead(batch.get(), memory.is_some()) {
            Ok(claimed) => {
                *ticket = claimed;
                if claimed.is_none() {
                    // The reader replays it: the memory room goes back.
                    *memory = None;
                }
                if overflow.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(destination = %self.lane.name, "the spool takes batches again");
                }
                Ok(())
            }
            Err(error) => {
                overflow.spool_failed(self.lane.name, &error);
                Err(Refusal::Full)
            }
        }
    }

    /// True for room in a spooled lane: once [`Reservation::write`] succeeded the lane owns
    /// the batch (it is on disk), so [`Reservation::send`] must follow even when another lane
    /// refuses the request (the caller's retry then repeats it here: at least once). Sending
    /// one whose write failed or never ran queues nothing.
    pub fn is_spooled(&self) -> bool {
        matches!(self.room, Room::Spool { .. })
    }

    /// Second phase: queues the batch in the reserved memory room, with the spool record it
    /// was written ahead to (a record the reader replays needs nothing more).
    pub fn send(self, batch: &SharedBatch) {
        let (permit, spooled) = match self.room {
            Room::Memory(permit) => (permit, None),
            Room::Spool { memory: Some(permit), ticket: Some(ticket) } => (permit, Some(ticket)),
            Room::Spool { .. } => return,
        };
        // The batcher only stops after every LaneHandle is dropped, so the queue is open
        // here; if it were not, dropping the item releases its bytes, and a record stays on
        // disk for the next start.
        let _ = self.lane.queue.send(Queued { batch: Arc::clone(batch), _permit: permit, spooled });
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
