//! What flows through waggle and the names it is counted by: the [`Batch`] a receiver makes and
//! every lane shares, its [`Signal`], the [`Destination`]s, the [`LossReason`]s and the
//! [`SpoolReason`]s.

mod batch;
mod destination;
mod loss;
mod receiver;
mod signal;
mod spool_reason;

pub use batch::{Batch, OtlpRequest, Payload, SharedBatch, Undecodable, XraySegment, count};
pub use destination::Destination;
pub use loss::LossReason;
pub use receiver::Receiver;
pub use signal::Signal;
pub use spool_reason::SpoolReason;
