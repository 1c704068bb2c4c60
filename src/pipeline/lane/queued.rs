//! What the lane's memory queue holds: a batch with the bytes it reserved, and the spool record
//! it came from.

use tokio::sync::OwnedSemaphorePermit;

use crate::model::SharedBatch;
use crate::pipeline::spool::RecordTicket;

/// A batch in the lane's memory queue, holding its reserved bytes.
#[derive(Debug)]
pub(super) struct Queued {
    pub(super) batch: SharedBatch,
    pub(super) _permit: OwnedSemaphorePermit,
    /// The spool record it was read back from, if any.
    pub(super) spooled: Option<RecordTicket>,
}
