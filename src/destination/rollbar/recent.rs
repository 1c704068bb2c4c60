//! The items made lately, by key and source: a span event and the log record of the same
//! exception (same trace, span, type and message) make one Rollbar item, whichever arrives
//! first. The same source may make its item again (a batch replayed from the spool is built
//! again; Rollbar drops the repeat by its `uuid`).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Keys remembered; the oldest is forgotten first.
pub(crate) const REMEMBERED: usize = 8192;

/// Where an item came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    SpanEvent,
    LogRecord,
}

/// A bounded map of recent item keys to the source that made them.
#[derive(Debug)]
pub(crate) struct RecentItems {
    inner: Mutex<Keys>,
}

#[derive(Debug, Default)]
struct Keys {
    sources: HashMap<u128, Source>,
    order: VecDeque<u128>,
}

impl RecentItems {
    pub(crate) fn new() -> Self {
        RecentItems { inner: Mutex::new(Keys::default()) }
    }

    /// False when the other source already made this item (while it is remembered).
    pub(crate) fn should_send(&self, key: u128, source: Source) -> bool {
        let mut keys = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(&first) = keys.sources.get(&key) {
            return first == source;
        }
        keys.sources.insert(key, source);
        keys.order.push_back(key);
        if keys.order.len() > REMEMBERED
            && let Some(oldest) = keys.order.pop_front()
        {
            keys.sources.remove(&oldest);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_other_source_of_the_same_exception_is_not_sent() {
        let recent = RecentItems::new();
        assert!(recent.should_send(7, Source::SpanEvent));
        assert!(!recent.should_send(7, Source::LogRecord));
        assert!(recent.should_send(8, Source::LogRecord));
        assert!(!recent.should_send(8, Source::SpanEvent));
    }

    #[test]
    fn the_same_source_may_send_again_after_a_replay() {
        let recent = RecentItems::new();
        assert!(recent.should_send(7, Source::SpanEvent));
        assert!(recent.should_send(7, Source::SpanEvent));
    }

    #[test]
    fn the_oldest_key_is_forgotten_past_the_bound() {
        let recent = RecentItems::new();
        for key in 0..=REMEMBERED as u128 {
            assert!(recent.should_send(key, Source::SpanEvent));
        }
        assert!(recent.should_send(0, Source::LogRecord), "key 0 was forgotten");
        assert!(!recent.should_send(REMEMBERED as u128, Source::LogRecord));
    }
}
