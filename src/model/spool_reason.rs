//! Why a batch went to a lane's disk spool: the `reason` label of
//! `waggle_destination_spooled_items`, and what is lost when the spool cannot take it.

use super::LossReason;

/// Why a batch went to the spool (the `reason` label of `waggle_destination_spooled_items`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpoolReason {
    /// Written ahead as the lane accepted it (a spooled lane writes every batch before the
    /// caller is answered).
    Accepted,
    /// The shutdown deadline passed before the destination took it.
    Shutdown,
    /// The retry budget ran out; it waits on disk for another round.
    RetriesExhausted,
}

impl SpoolReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SpoolReason::Accepted => "accepted",
            SpoolReason::Shutdown => "shutdown",
            SpoolReason::RetriesExhausted => "retries_exhausted",
        }
    }

    /// What is lost, and counted, when the spool cannot take a batch written for this reason.
    pub fn loss(self) -> LossReason {
        match self {
            SpoolReason::Accepted => LossReason::QueueFull,
            SpoolReason::Shutdown => LossReason::Shutdown,
            SpoolReason::RetriesExhausted => LossReason::RetriesExhausted,
        }
    }
}

super::label_value!(SpoolReason);
