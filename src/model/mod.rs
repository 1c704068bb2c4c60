//! What flows through waggle and the names it is counted by: the [`Batch`] a receiver makes and
//! every lane shares, its [`Signal`], the [`Destination`]s and the [`LossReason`]s.

mod batch;
mod destination;
mod loss;
mod receiver;
mod signal;

pub use batch::{Batch, OtlpRequest, Payload, SharedBatch, Undecodable, XraySegment, count};
pub use destination::Destination;
pub use loss::LossReason;
pub use receiver::Receiver;
pub use signal::Signal;
