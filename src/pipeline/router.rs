//! Fans each accepted batch out to every lane that takes its signal, sharing it (no copies).
//!
//! OTLP requests are routed all-or-nothing ([`Router::accept`]): either every target lane has
//! room and the caller gets 200, or none takes it and the caller is asked to retry, so a retry
//! never duplicates data. One exception keeps a dead destination from holding up the live
//! ones: a full lane that has finished no request for the stall timeout is skipped, and the
//! items it could not take are counted as dropped. UDP datagrams have no one to ask, so
//! [`Router::offer`] gives the batch to every lane with room and counts a drop in each full one.
//!
//! Where a lane holds a batch is the lane's business ([`LaneHandle::take`]): a lane with a disk
//! spool is never full, as what its queue cannot take (or anything that arrives while older
//! batches wait on its disk) goes to the spool and counts as accepted. The router commits in
//! two phases: every target lane reserves room first; only then are the spool writes made
//! (the batch is encoded once for all the spools that take it), and last the memory queues
//! get the batch. Only when a spool cannot take it either (disk error, larger than the spool)
//! does its lane count as full; if another lane's spool had already taken the batch then, the
//! caller's retry repeats it there.

use std::sync::Arc;
use std::time::Duration;

use crate::model::{Batch, Destination, LossReason, Signal};
use crate::pipeline::lane::{LaneHandle, Refusal};
use crate::pipeline::spool::envelope::EncodeOnce;
use crate::telemetry::metrics::Metrics;

/// A batch no lane could take right now.
#[derive(Debug, Clone, thiserror::Error)]
#[error("destination {destination} is full; retry after {retry_after:?}")]
pub struct LaneFull {
    pub destination: Destination,
    /// What the caller is told to wait (HTTP Retry-After, gRPC RetryInfo).
    pub retry_after: Duration,
}

/// The receivers' way into the lanes.
#[derive(Debug)]
pub struct Router {
    lanes: Vec<LaneHandle>,
    retry_after: Duration,
    stall_timeout: Duration,
}

impl Router {
    /// `retry_after` is what refused callers are told to wait; a full lane that finished no
    /// request for `stall_timeout` stops holding up the others. Each lane counts through its
    /// own [`LaneHandle::counts`]; `_metrics` is kept for callers of the older signature.
    pub fn new(lanes: Vec<LaneHandle>, _metrics: Arc<Metrics>, retry_after: Duration, stall_timeout: Duration) -> Self {
        Router { lanes, retry_after, stall_timeout }
    }

    /// Lanes known to this router.
    pub fn lanes(&self) -> &[LaneHandle] {
        &self.lanes
    }

    /// Accepts the batch into every lane that takes its signal, or into none of them.
    pub fn accept(&self, batch: Batch) -> Result<(), LaneFull> {
        let signal = batch.signal();
        let mut reservations = Vec::with_capacity(self.lanes.len());
        let mut stalled = Vec::new();
        for lane in self.targets(signal) {
            match lane.take(&batch, self.stall_timeout) {
                Ok(reservation) => reservations.push(reservation),
                Err(Refusal::Stalled) => stalled.push(lane),
                // Dropping the reservations made so far releases their room.
                Err(Refusal::Full) => return Err(self.full(lane)),
            }
        }
        // Every lane has room: what goes to disk is written now, encoded once for all spools.
        let encoded = EncodeOnce::new(&batch);
        for reservation in &mut reservations {
            match reservation.write(&encoded) {
                Ok(()) => {}
                Err(Refusal::Stalled) => stalled.push(reservation.lane()),
                Err(Refusal::Full) => return Err(self.full(reservation.lane())),
            }
        }
        for lane in stalled {
            lane.counts().record_dropped(signal, LossReason::DestinationStalled, batch.items as u64);
        }
        let batch = Arc::new(batch);
        for reservation in reservations {
            reservation.send(&batch);
        }
        Ok(())
    }

    /// Gives the batch to every target lane with room; counts a drop in each full lane.
    /// Returns how many lanes took it.
    pub fn offer(&self, batch: Batch) -> usize {
        let signal = batch.signal();
        let items = batch.items as u64;
        let batch = Arc::new(batch);
        let encoded = EncodeOnce::new(&batch);
        let mut taken = 0;
        for lane in self.targets(signal) {
            let committed = lane.take(&batch, self.stall_timeout).and_then(|mut reservation| {
                reservation.write(&encoded)?;
                reservation.send(&batch);
                Ok(())
            });
            match committed {
                Ok(()) => taken += 1,
                Err(_) => lane.counts().record_dropped(signal, LossReason::QueueFull, items),
            }
        }
        taken
    }

    fn full(&self, lane: &LaneHandle) -> LaneFull {
        LaneFull { destination: lane.name, retry_after: self.retry_after }
    }

    fn targets(&self, signal: Signal) -> impl Iterator<Item = &LaneHandle> {
        self.lanes.iter().filter(move |lane| lane.takes(signal))
    }
}
