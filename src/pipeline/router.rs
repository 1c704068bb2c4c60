//! Fans each accepted batch out to every lane that takes its signal, sharing it (no copies).
//!
//! OTLP requests are routed all-or-nothing ([`Router::accept`]): either every target lane has
//! taken the batch and the caller gets 200, or none has and the caller is asked to retry (429 /
//! `RESOURCE_EXHAUSTED` with `Retry-After`). A 200 always means some lane keeps the batch. Two
//! exceptions keep one lane from holding up the others, both only while another lane takes the
//! batch (never when that would leave nothing keeping it):
//!
//! - A full lane without a spool that has finished no request for the stall timeout is
//!   skipped, and the items it could not take are counted as dropped (`destination_stalled`).
//! - A lane whose [`WhenFull`] policy for the signal is [`WhenFull::Shed`] (the local store's,
//!   while another destination takes the same signal) is left out when it is full or stalled:
//!   the other lanes take the batch and the shed lane counts its items as dropped with the
//!   policy's reason (`store_behind`).
//!
//! UDP datagrams have no one to ask, so [`Router::offer`] gives the batch to every lane with
//! room and counts a drop in each full one (`queue_full`, or a shedding lane's own reason when
//! another lane took the datagram).
//!
//! Where a lane holds a batch is the lane's business ([`LaneHandle::take`]): a lane with a disk
//! spool writes every batch ahead to it (the memory queue is a read-ahead cache), so it is full
//! only when its spool refuses (full, disk error). The router commits in two phases: every
//! target lane reserves room first; only then are the spool writes made (the batch is encoded
//! once for all the spools that take it), and last the memory queues get the batch. When a
//! spool refuses, its lane counts as full; a spool that had already taken the batch keeps and
//! delivers it, and the caller's retry repeats it there (delivery is at least once). Drops are
//! counted only once the request is accepted, so a refused request (and its retry) counts
//! nothing twice.

use std::sync::Arc;
use std::time::Duration;

use crate::model::{Batch, Destination, LossReason, Signal};
use crate::pipeline::lane::{LaneHandle, Refusal, WhenFull};
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

    /// Accepts the batch into every lane that takes its signal, or into none of them (lanes
    /// that are stalled, or shed the signal, are left out while another lane takes it).
    pub fn accept(&self, batch: Batch) -> Result<(), LaneFull> {
        let signal = batch.signal();
        let batch = Arc::new(batch);
        let mut reservations = Vec::with_capacity(self.lanes.len());
        let mut left_out = Vec::new();
        for lane in self.targets(signal) {
            match lane.take(&batch, self.stall_timeout) {
                Ok(reservation) => reservations.push(reservation),
                // Dropping the reservations made so far releases their room.
                Err(refusal) => {
                    self.loss_reason(lane, signal, refusal, true)?;
                    left_out.push((lane, refusal));
                }
            }
        }
        // Every lane has room: what goes to disk is written now, encoded once for all spools.
        let encoded = EncodeOnce::new(&batch);
        let mut held = 0;
        let mut refused = None;
        for reservation in &mut reservations {
            match reservation.write(&encoded) {
                Ok(()) => held += 1,
                Err(refusal) => {
                    let lane = reservation.lane();
                    match self.loss_reason(lane, signal, refusal, true) {
                        Ok(_) => left_out.push((lane, refusal)),
                        Err(full) => {
                            refused = Some(full);
                            break;
                        }
                    }
                }
            }
        }
        // A lane is left out only while another lane takes the batch.
        let dropped = match refused {
            Some(full) => Err(full),
            None => left_out
                .into_iter()
                .map(|(lane, refusal)| Ok((lane, self.loss_reason(lane, signal, refusal, held > 0)?)))
                .collect::<Result<Vec<_>, LaneFull>>(),
        };
        let dropped = match dropped {
            Ok(dropped) => dropped,
            Err(full) => {
                // Spools that already wrote the batch own it: they deliver it.
                for reservation in reservations.into_iter().filter(|reservation| reservation.is_spooled()) {
                    reservation.send(&batch);
                }
                return Err(full);
            }
        };
        for (lane, reason) in dropped {
            lane.counts().record_dropped(signal, reason, batch.items as u64);
        }
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
        let mut full = Vec::new();
        for lane in self.targets(signal) {
            let committed = lane.take(&batch, self.stall_timeout).and_then(|mut reservation| {
                reservation.write(&encoded)?;
                reservation.send(&batch);
                Ok(())
            });
            match committed {
                Ok(()) => taken += 1,
                Err(_) => full.push(lane),
            }
        }
        for lane in full {
            let reason = match lane.when_full(signal) {
                WhenFull::Shed(reason) if taken > 0 => reason,
                WhenFull::Shed(_) | WhenFull::Refuse => LossReason::QueueFull,
            };
            lane.counts().record_dropped(signal, reason, items);
        }
        taken
    }

    /// Why a lane that did not take a batch of `signal` counts its items as dropped, or the
    /// refusal the caller gets when the lane holds up the request. `others_take_it`: whether
    /// another lane holds the batch (a shedding lane sheds only then).
    fn loss_reason(
        &self,
        lane: &LaneHandle,
        signal: Signal,
        refusal: Refusal,
        others_take_it: bool,
    ) -> Result<LossReason, LaneFull> {
        match (lane.when_full(signal), refusal) {
            (WhenFull::Shed(reason), _) if others_take_it => Ok(reason),
            (_, Refusal::Stalled) if others_take_it => Ok(LossReason::DestinationStalled),
            _ => Err(self.full(lane)),
        }
    }

    fn full(&self, lane: &LaneHandle) -> LaneFull {
        LaneFull { destination: lane.name, retry_after: self.retry_after }
    }

    fn targets(&self, signal: Signal) -> impl Iterator<Item = &LaneHandle> {
        self.lanes.iter().filter(move |lane| lane.takes(signal))
    }
}
