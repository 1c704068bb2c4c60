//! What flows through waggle and the names it is counted by: the [`Batch`] a receiver makes and
//! every lane shares, its [`Signal`], the [`Destination`]s, the [`LossReason`]s and the
//! [`SpoolReason`]s.

/// A metric label enum's `Display` and Prometheus label value: its `as_str()`.
macro_rules! label_value {
    ($name:ty) => {
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl prometheus_client::encoding::EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut prometheus_client::encoding::LabelValueEncoder<'_>) -> std::fmt::Result {
                std::fmt::Write::write_str(encoder, self.as_str())
            }
        }
    };
}
use label_value;

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
