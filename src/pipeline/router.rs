//! Fans each accepted batch out to every lane that takes its signal, sharing it (no copies).
//!
//! OTLP requests are routed all-or-nothing ([`Router::accept`]): either every target lane has
//! room and the caller gets 200, or none takes it and the caller is asked to retry, so a retry
//! never duplicates data. UDP datagrams have no one to ask, so [`Router::offer`] gives the
//! batch to every lane with room and counts a drop in each full one.

use std::sync::Arc;
use std::time::Duration;

use crate::batch::{Batch, Signal};
use crate::metrics::Metrics;
use crate::pipeline::lane::LaneHandle;

/// A batch no lane could take right now.
#[derive(Debug, Clone, thiserror::Error)]
#[error("destination {destination} is full; retry after {retry_after:?}")]
pub struct LaneFull {
    pub destination: &'static str,
    /// What the caller is told to wait (HTTP Retry-After, gRPC RetryInfo).
    pub retry_after: Duration,
}

/// The receivers' way into the lanes.
#[derive(Debug)]
pub struct Router {
    lanes: Vec<LaneHandle>,
    metrics: Arc<Metrics>,
    retry_after: Duration,
}

impl Router {
    pub fn new(lanes: Vec<LaneHandle>, metrics: Arc<Metrics>, retry_after: Duration) -> Self {
        Router { lanes, metrics, retry_after }
    }

    /// Lanes known to this router.
    pub fn lanes(&self) -> &[LaneHandle] {
        &self.lanes
    }

    /// Accepts the batch into every lane that takes its signal, or into none of them.
    pub fn accept(&self, batch: Batch) -> Result<(), LaneFull> {
        let signal = batch.signal();
        let mut reservations = Vec::with_capacity(self.lanes.len());
        for lane in self.targets(signal) {
            match lane.try_reserve(batch.bytes) {
                Some(reservation) => reservations.push(reservation),
                // Dropping the reservations made so far releases their room.
                None => return Err(LaneFull { destination: lane.name, retry_after: self.retry_after }),
            }
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
        let mut taken = 0;
        for lane in self.targets(signal) {
            match lane.try_reserve(batch.bytes) {
                Some(reservation) => {
                    reservation.send(Arc::clone(&batch));
                    taken += 1;
                }
                None => {
                    self.metrics.dropped.get_or_create(&Metrics::loss(lane.name, signal, "queue_full")).inc_by(items);
                }
            }
        }
        taken
    }

    fn targets(&self, signal: Signal) -> impl Iterator<Item = &LaneHandle> {
        self.lanes.iter().filter(move |lane| lane.takes(signal))
    }
}
