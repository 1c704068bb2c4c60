//! Reading PutLogEvents' `rejectedLogEventsInfo`: which events of a sent batch CloudWatch Logs
//! refused, as counts and one sentence fit for a WARN line.
//!
//! The indices point into the batch as sent (sorted by timestamp). As the API model documents
//! them: `tooOldLogEventEndIndex` is exclusive, so events `[0, end)` were too old;
//! `tooNewLogEventStartIndex` is inclusive, so events `[start, n)` were too new;
//! `expiredLogEventEndIndex` (undocumented) is read like the too-old one, `[0, end)`. Indices
//! outside the batch are clamped to it and an event is counted once even when ranges overlap.
//! (moto, the test peer, reports the *last* too-old and too-new index instead, so its counts
//! come out one lower for too-old and can differ for too-new.)
//!
//! Rejected events are not worth retrying: waggle already drops events outside the 14-day /
//! 2-hour window by its own clock, so too-old or too-new rejections mean this host's clock
//! disagrees with AWS, and expired ones mean the log group's retention is shorter than the
//! events' age.

use std::fmt::Write as _;

use aws_sdk_cloudwatchlogs::types::RejectedLogEventsInfo;

/// What a batch lost to `rejectedLogEventsInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RejectedSummary {
    /// Events in the batch as sent.
    pub batch_len: usize,
    /// Events `[0, too_old)` were more than 14 days old.
    pub too_old: usize,
    /// Events `[batch_len - too_new, batch_len)` were more than 2 hours in the future.
    pub too_new: usize,
    /// Events `[0, expired)` were older than the log group's retention period.
    pub expired: usize,
    /// Distinct events rejected for any reason; the others were stored.
    pub rejected: usize,
    /// One sentence for a WARN log line, naming each reason with its index range.
    pub message: String,
}

impl RejectedSummary {
    /// Whether every event of the batch was stored.
    pub(crate) fn all_accepted(&self) -> bool {
        self.rejected == 0
    }

    /// Events stored.
    pub(crate) fn accepted(&self) -> usize {
        self.batch_len - self.rejected
    }
}

/// Counts and explains the events of a `batch_len`-event batch that CloudWatch Logs rejected.
pub(crate) fn explain_rejected(info: &RejectedLogEventsInfo, batch_len: usize) -> RejectedSummary {
    let clamp = |index: Option<i32>| index.map(|index| usize::try_from(index).unwrap_or(0).min(batch_len));
    let too_old_end = clamp(info.too_old_log_event_end_index());
    let expired_end = clamp(info.expired_log_event_end_index());
    let too_new_start = clamp(info.too_new_log_event_start_index());

    let too_old = too_old_end.unwrap_or(0);
    let expired = expired_end.unwrap_or(0);
    let too_new = too_new_start.map_or(0, |start| batch_len - start);
    let rejected_prefix = too_old.max(expired);
    let rejected = rejected_prefix + too_new_start.map_or(0, |start| batch_len - start.max(rejected_prefix));

    let mut message = String::new();
    if rejected == 0 {
        let _ = write!(message, "CloudWatch Logs stored all {batch_len} events of the batch");
    } else {
        let _ =
            write!(message, "CloudWatch Logs rejected {rejected} of {batch_len} events of the batch (not retried):");
        let mut reasons = Vec::new();
        if too_old > 0 {
            reasons.push(format!(" {too_old} too old (events [0, {too_old}) are more than 14 days in the past)"));
        }
        if expired > 0 {
            reasons.push(format!(
                " {expired} expired (events [0, {expired}) are older than the log group's retention period)"
            ));
        }
        if too_new > 0 {
            let start = batch_len - too_new;
            reasons.push(format!(
                " {too_new} too new (events [{start}, {batch_len}) are more than 2 hours in the future)"
            ));
        }
        message.push_str(&reasons.join(";"));
        if too_old > 0 || too_new > 0 {
            message.push_str(
                "; waggle drops events outside that window by its own clock before sending, so this host's clock \
                 probably differs from AWS's",
            );
        }
    }
    RejectedSummary { batch_len, too_old, too_new, expired, rejected, message }
}
