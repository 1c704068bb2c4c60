//! Fans each accepted batch out to every lane that takes its signal, sharing it (no copies).
//!
//! OTLP requests are routed all-or-nothing ([`Router::accept`]): either every target lane has
//! room and the caller gets 200, or none takes it and the caller is asked to retry, so a retry
//! never duplicates data. One exception keeps a dead destination from holding up the live
//! ones: a full lane that has finished no request for the stall timeout is skipped, and the
//! items it could not take are counted as dropped. UDP datagrams have no one to ask, so
//! [`Router::offer`] gives the batch to every lane with room and counts a drop in each full one.
//!
//! A lane with a disk spool is never full: what its queue cannot take (or anything that
//! arrives while older batches wait on its disk) is appended to the spool and counts as
//! accepted. The batch is encoded once for all the spools that take it. Only when the spool
//! cannot take it either (disk error, larger than the spool) does the lane count as full; if
//! another lane's spool had already taken the batch then, the caller's retry repeats it there.

use std::sync::Arc;
use std::time::Duration;

use crate::model::{Batch, Destination, LossReason, Signal};
use crate::pipeline::lane::LaneHandle;
use crate::pipeline::spool::envelope::EncodedBatch;
use crate::pipeline::spool::{SpoolError, SpoolReason};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::ratelimit::LogLimiter;

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
    metrics: Arc<Metrics>,
    retry_after: Duration,
    stall_timeout: Duration,
    spool_warn_limit: LogLimiter,
}

impl Router {
    /// `retry_after` is what refused callers are told to wait; a full lane that finished no
    /// request for `stall_timeout` stops holding up the others.
    pub fn new(lanes: Vec<LaneHandle>, metrics: Arc<Metrics>, retry_after: Duration, stall_timeout: Duration) -> Self {
        Router {
            lanes,
            metrics,
            retry_after,
            stall_timeout,
            spool_warn_limit: LogLimiter::new(Duration::from_secs(10)),
        }
    }

    /// Lanes known to this router.
    pub fn lanes(&self) -> &[LaneHandle] {
        &self.lanes
    }

    /// Accepts the batch into every lane that takes its signal, or into none of them.
    pub fn accept(&self, batch: Batch) -> Result<(), LaneFull> {
        let signal = batch.signal();
        let mut reservations = Vec::with_capacity(self.lanes.len());
        let mut to_spool = Vec::new();
        let mut stalled = Vec::new();
        for lane in self.targets(signal) {
            match lane.try_reserve(batch.bytes) {
                Some(reservation) => reservations.push(reservation),
                None if lane.spool().is_some() => to_spool.push(lane),
                None if lane.is_stalled(self.stall_timeout) => stalled.push(lane.name),
                // Dropping the reservations made so far releases their room.
                None => return Err(self.full(lane)),
            }
        }
        if !to_spool.is_empty() {
            let encoded = EncodedBatch::new(&batch);
            for lane in to_spool {
                if let Err(error) = self.spool(lane, &encoded) {
                    self.warn_spool_failed(lane, &error);
                    if !lane.is_stalled(self.stall_timeout) {
                        return Err(self.full(lane));
                    }
                    stalled.push(lane.name);
                }
            }
        }
        for destination in stalled {
            let loss = Metrics::loss(destination, signal, LossReason::DestinationStalled);
            self.metrics.dropped.get_or_create(&loss).inc_by(batch.items as u64);
        }
        let batch = Arc::new(batch);
        for reservation in reservations {
            reservation.send(Arc::clone(&batch));
        }
        Ok(())
    }

    /// Gives the batch to every target lane with room; counts a drop in each full lane.
    /// Returns how many lanes took it.
    pub fn offer(&self, batch: Batch) -> usize {
        let signal = batch.signal();
        let items = batch.items as u64;
        let batch = Arc::new(batch);
        let mut encoded = None;
        let mut taken = 0;
        for lane in self.targets(signal) {
            if let Some(reservation) = lane.try_reserve(batch.bytes) {
                reservation.send(Arc::clone(&batch));
                taken += 1;
                continue;
            }
            if lane.spool().is_some() {
                let encoded = encoded.get_or_insert_with(|| EncodedBatch::new(&batch));
                match self.spool(lane, encoded) {
                    Ok(()) => {
                        taken += 1;
                        continue;
                    }
                    Err(error) => self.warn_spool_failed(lane, &error),
                }
            }
            self.metrics.dropped.get_or_create(&Metrics::loss(lane.name, signal, LossReason::QueueFull)).inc_by(items);
        }
        taken
    }

    fn spool(&self, lane: &LaneHandle, encoded: &EncodedBatch) -> Result<(), SpoolError> {
        match lane.spool() {
            Some(spool) => spool.append(encoded, SpoolReason::Overflow),
            None => Ok(()),
        }
    }

    fn warn_spool_failed(&self, lane: &LaneHandle, error: &SpoolError) {
        if let Some(suppressed) = self.spool_warn_limit.check() {
            tracing::warn!(destination = %lane.name, %error, suppressed, "the lane's queue is full and its spool cannot take the batch");
        }
    }

    fn full(&self, lane: &LaneHandle) -> LaneFull {
        LaneFull { destination: lane.name, retry_after: self.retry_after }
    }

    fn targets(&self, signal: Signal) -> impl Iterator<Item = &LaneHandle> {
        self.lanes.iter().filter(move |lane| lane.takes(signal))
    }
}
