//! Why items were lost: the `reason` label of `waggle_destination_dropped_items_total` and
//! `waggle_destination_failed_items_total`, one enum so every reason is spelled once.

/// Why a destination's lane dropped items, or why the destination refused them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum LossReason {
    // Dropped by the lane: it could not hold or deliver them.
    /// The lane was full (UDP input has no one to ask to retry).
    QueueFull,
    /// The lane was full and its destination has made no progress for the stall timeout.
    DestinationStalled,
    /// The local store could not keep up while another destination took the same items: its
    /// lane left them out rather than make the caller retry (see [`crate::pipeline::router`]).
    StoreBehind,
    /// The retry budget ran out.
    RetriesExhausted,
    /// The shutdown deadline passed.
    Shutdown,
    /// The disk spool reached its size bound; the oldest data made room.
    SpoolFull,
    /// A spool record could not be read back.
    SpoolCorrupt,
    // Refused: by the destination, or before sending because it would be.
    /// An item over the destination's size limit.
    TooLarge,
    /// An item the destination cannot take (a bad id, a document that is not JSON).
    Invalid,
    /// X-Ray left the document unprocessed for good.
    Unprocessed,
    /// The destination refused the request (a 4xx other than throttling or credentials).
    Rejected,
    /// The request could not be built.
    InvalidRequest,
    /// A checked OTLP request that did not decode when a lane needed its spans, log records or
    /// data points.
    Undecodable,
    /// The request body could not be compressed.
    CompressionFailed,
    /// OTLP `partial_success`: the destination refused part of the request.
    PartialSuccess,
    /// The destination refused the credentials.
    Unauthorized,
    /// CloudWatch Logs refused a parameter.
    InvalidParameter,
    /// Older than the destination keeps.
    TooOld,
    /// Further in the future than the destination takes.
    TooNew,
    /// Nothing to send (a log record without a body).
    Empty,
    /// CloudWatch Logs refused events in `rejectedLogEventsInfo`.
    RejectedByCloudWatch,
    /// The local store is closed.
    StoreStopped,
    /// The local store could not write.
    StoreError,
}

impl LossReason {
    /// Every reason, in declaration order ([`LossReason::index`]).
    pub const ALL: [LossReason; 23] = [
        LossReason::QueueFull,
        LossReason::DestinationStalled,
        LossReason::StoreBehind,
        LossReason::RetriesExhausted,
        LossReason::Shutdown,
        LossReason::SpoolFull,
        LossReason::SpoolCorrupt,
        LossReason::TooLarge,
        LossReason::Invalid,
        LossReason::Unprocessed,
        LossReason::Rejected,
        LossReason::InvalidRequest,
        LossReason::Undecodable,
        LossReason::CompressionFailed,
        LossReason::PartialSuccess,
        LossReason::Unauthorized,
        LossReason::InvalidParameter,
        LossReason::TooOld,
        LossReason::TooNew,
        LossReason::Empty,
        LossReason::RejectedByCloudWatch,
        LossReason::StoreStopped,
        LossReason::StoreError,
    ];

    /// Dense index, for per-reason arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The metrics label value.
    pub fn as_str(self) -> &'static str {
        match self {
            LossReason::QueueFull => "queue_full",
            LossReason::DestinationStalled => "destination_stalled",
            LossReason::StoreBehind => "store_behind",
            LossReason::RetriesExhausted => "retries_exhausted",
            LossReason::Shutdown => "shutdown",
            LossReason::SpoolFull => "spool_full",
            LossReason::SpoolCorrupt => "spool_corrupt",
            LossReason::TooLarge => "too_large",
            LossReason::Invalid => "invalid",
            LossReason::Unprocessed => "unprocessed",
            LossReason::Rejected => "rejected",
            LossReason::InvalidRequest => "invalid_request",
            LossReason::Undecodable => "undecodable",
            LossReason::CompressionFailed => "compression_failed",
            LossReason::PartialSuccess => "partial_success",
            LossReason::Unauthorized => "unauthorized",
            LossReason::InvalidParameter => "invalid_parameter",
            LossReason::TooOld => "too_old",
            LossReason::TooNew => "too_new",
            LossReason::Empty => "empty",
            LossReason::RejectedByCloudWatch => "rejected_by_cloudwatch",
            LossReason::StoreStopped => "store_stopped",
            LossReason::StoreError => "store_error",
        }
    }
}

super::label_value!(LossReason);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_in_all_at_its_index() {
        for (index, reason) in LossReason::ALL.into_iter().enumerate() {
            assert_eq!(reason.index(), index, "{reason}");
        }
    }
}
