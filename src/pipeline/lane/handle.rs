//! The router's end of a lane: [`LaneHandle::take`] decides, without waiting, whether the
//! lane can take a batch (room in memory, else its spool) or is full or stalled, the
//! [`Reservation`] it returns commits the batch in two phases, and [`WhenFull`] says what the
//! router does with a batch of a signal the lane cannot take.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::DropGuard;

use super::progress::Progress;
use super::queued::Queued;
use crate::model::{Batch, Destination, LossReason, SharedBatch, Signal};
use crate::pipeline::spool::envelope::EncodeOnce;
use crate::pipeline::spool::{Spool, SpoolError, SpoolReason};
use crate::telemetry::counts::DestinationCounts;
use crate::telemetry::ratelimit::LogLimiter;

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

/// Where a spooled lane puts what its memory queue cannot take.
#[derive(Debug)]
pub(super) struct Overflow {
    pub(super) spool: Arc<Spool>,
    /// For the WARN line when the spool cannot take a batch.
    pub(super) warn_limit: LogLimiter,
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
    stall_timeout: Duration,
    room: Room,
}

#[derive(Debug)]
enum Room {
    /// Bytes of the memory queue.
    Memory(OwnedSemaphorePermit),
    /// The lane's spool: the batch is appended at [`Reservation::write`].
    Disk,
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

    /// Decides, without waiting, where the lane can hold `batch`: room in its memory queue, or
    /// (when that is full, or older batches wait on its disk, which a new one must go behind)
    /// its spool. Refused when neither: [`Refusal::Stalled`] if its senders have been busy for
    /// `stall_timeout` without finishing a request, else [`Refusal::Full`]. A batch larger
    /// than the whole queue may still enter an empty lane.
    pub fn take(&self, batch: &Batch, stall_timeout: Duration) -> Result<Reservation<'_>, Refusal> {
        if let Some(permit) = self.try_reserve(batch.bytes) {
            return Ok(Reservation { lane: self, stall_timeout, room: Room::Memory(permit) });
        }
        if self.overflow.is_some() {
            return Ok(Reservation { lane: self, stall_timeout, room: Room::Disk });
        }
        Err(self.refusal(stall_timeout))
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

impl<'a> Reservation<'a> {
    /// The lane this room is in.
    pub fn lane(&self) -> &'a LaneHandle {
        self.lane
    }

    /// First phase of the commit, the one that can fail: room on disk appends the batch to
    /// the spool (encoded at most once, however many lanes spool it); room in memory has
    /// nothing to do yet. When the spool cannot take it (disk error, larger than the spool),
    /// the lane is full or stalled after all, and says so in a (rate-limited) WARN line.
    pub fn write(&mut self, batch: &EncodeOnce<'_>) -> Result<(), Refusal> {
        let Room::Disk = self.room else { return Ok(()) };
        let Some(overflow) = &self.lane.overflow else { return Ok(()) };
        match overflow.spool.append(batch.get(), SpoolReason::Overflow) {
            Ok(()) => Ok(()),
            Err(error) => {
                self.warn_spool_failed(overflow, &error);
                Err(self.lane.refusal(self.stall_timeout))
            }
        }
    }

    /// Second phase: queues the batch in the reserved memory room (a batch written to the
    /// spool is already where it belongs).
    pub fn send(self, batch: &SharedBatch) {
        if let Room::Memory(permit) = self.room {
            // The batcher only stops after every LaneHandle is dropped, so the queue is open
            // here; if it were not, dropping the item releases its bytes and nothing else is owed.
            let _ = self.lane.queue.send(Queued { batch: Arc::clone(batch), _permit: permit, spooled: None });
        }
    }

    fn warn_spool_failed(&self, overflow: &Overflow, error: &SpoolError) {
        if let Some(suppressed) = overflow.warn_limit.check() {
            tracing::warn!(destination = %self.lane.name, %error, suppressed, "the lane's queue is full and its spool cannot take the batch");
        }
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
