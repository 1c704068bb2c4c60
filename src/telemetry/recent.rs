//! What happened in the last minute: per signal, items sent, refused and dropped in six
//! ten-second slots, so `/status` and `waggle status` show recent figures beside the totals
//! since start (the last minute is 50 to 60 s, in ten-second steps). One lock per recording,
//! which happens once per request, not per item.

use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use crate::model::Signal;

const SLOT_SECONDS: u64 = 10;
const SLOTS: usize = 6;

/// Items of one signal in the last minute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RecentTotals {
    pub sent: u64,
    pub failed: u64,
    pub dropped: u64,
}

/// Which figure a recording adds to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecentKind {
    Sent,
    Failed,
    Dropped,
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    /// Which ten seconds since start (plus one, so an unused slot never matches).
    index: u64,
    by_signal: [RecentTotals; Signal::ALL.len()],
}

/// The last minute of one destination's counts.
#[derive(Debug)]
pub struct RecentCounts {
    started: Instant,
    slots: Mutex<[Slot; SLOTS]>,
}

impl Default for RecentCounts {
    fn default() -> Self {
        RecentCounts { started: Instant::now(), slots: Mutex::new([Slot::default(); SLOTS]) }
    }
}

impl RecentCounts {
    pub fn record(&self, signal: Signal, kind: RecentKind, items: u64) {
        self.record_at(self.started.elapsed().as_secs(), signal, kind, items);
    }

    pub fn last_minute(&self, signal: Signal) -> RecentTotals {
        self.last_minute_at(self.started.elapsed().as_secs(), signal)
    }

    fn record_at(&self, seconds: u64, signal: Signal, kind: RecentKind, items: u64) {
        let index = seconds / SLOT_SECONDS + 1;
        let mut slots = self.lock();
        let slot = &mut slots[(index % SLOTS as u64) as usize];
        if slot.index != index {
            *slot = Slot { index, ..Slot::default() };
        }
        let totals = &mut slot.by_signal[signal.index()];
        match kind {
            RecentKind::Sent => totals.sent += items,
            RecentKind::Failed => totals.failed += items,
            RecentKind::Dropped => totals.dropped += items,
        }
    }

    fn last_minute_at(&self, seconds: u64, signal: Signal) -> RecentTotals {
        let now = seconds / SLOT_SECONDS + 1;
        let slots = self.lock();
        let mut sum = RecentTotals::default();
        for slot in slots.iter().filter(|slot| slot.index != 0 && slot.index <= now && slot.index + SLOTS as u64 > now)
        {
            let totals = slot.by_signal[signal.index()];
            sum.sent += totals.sent;
            sum.failed += totals.failed;
            sum.dropped += totals.dropped;
        }
        sum
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, [Slot; SLOTS]> {
        // Plain counters: a panic while holding the lock cannot leave them inconsistent.
        self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_minute_adds_up_what_was_recorded_in_it() {
        let recent = RecentCounts::default();
        recent.record_at(5, Signal::Traces, RecentKind::Sent, 10);
        recent.record_at(25, Signal::Traces, RecentKind::Sent, 5);
        recent.record_at(26, Signal::Traces, RecentKind::Dropped, 2);
        recent.record_at(27, Signal::Logs, RecentKind::Failed, 3);
        assert_eq!(recent.last_minute_at(30, Signal::Traces), RecentTotals { sent: 15, failed: 0, dropped: 2 });
        assert_eq!(recent.last_minute_at(30, Signal::Logs), RecentTotals { sent: 0, failed: 3, dropped: 0 });
    }

    #[test]
    fn older_than_a_minute_is_left_out() {
        let recent = RecentCounts::default();
        recent.record_at(5, Signal::Traces, RecentKind::Sent, 10);
        recent.record_at(65, Signal::Traces, RecentKind::Sent, 1);
        assert_eq!(recent.last_minute_at(65, Signal::Traces).sent, 1, "the slot of second 5 is a minute old");
        assert_eq!(recent.last_minute_at(200, Signal::Traces), RecentTotals::default());
    }

    #[test]
    fn a_reused_slot_starts_from_zero() {
        let recent = RecentCounts::default();
        recent.record_at(5, Signal::Metrics, RecentKind::Sent, 7);
        // Second 65 falls in the same slot position as second 5, a minute later.
        recent.record_at(65, Signal::Metrics, RecentKind::Sent, 1);
        recent.record_at(66, Signal::Metrics, RecentKind::Sent, 1);
        assert_eq!(recent.last_minute_at(66, Signal::Metrics).sent, 2);
    }
}
