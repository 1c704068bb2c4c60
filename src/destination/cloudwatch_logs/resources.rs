//! What the lane knows about log groups and streams, so each is created once: the streams seen
//! to exist, and the groups waggle created whose retention policy is not set yet.
//!
//! Shared by the lane's senders behind a mutex that is never held across a call. The set of
//! known streams is bounded ([`MAX_KNOWN_STREAMS`]); when full it is emptied, which costs one
//! `CreateLogStream` call (answered "already exists") per stream still in use.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

/// Most (group, stream) pairs remembered. A `{date}` stream is a new pair each day, so this
/// holds thousands of service-days before it is emptied.
pub(crate) const MAX_KNOWN_STREAMS: usize = 10_000;

#[derive(Debug, Default)]
struct Known {
    streams: HashSet<(String, String)>,
    /// Groups waggle created and still owes a retention policy, with its days.
    retention_owed: HashMap<String, i32>,
}

/// The lane's memory of which log groups and streams exist.
#[derive(Debug, Default)]
pub(crate) struct KnownResources {
    known: Mutex<Known>,
}

impl KnownResources {
    fn lock(&self) -> MutexGuard<'_, Known> {
        // Nothing here can be left half-updated by a panic: recover the state.
        self.known.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether this stream was created (or found to exist) already.
    pub(crate) fn has_stream(&self, group: &str, stream: &str) -> bool {
        // A tuple of Strings cannot be looked up by (&str, &str) without allocating; the
        // allocation is two short names per request.
        self.lock().streams.contains(&(group.to_owned(), stream.to_owned()))
    }

    pub(crate) fn remember_stream(&self, group: &str, stream: &str) {
        let mut known = self.lock();
        if known.streams.len() >= MAX_KNOWN_STREAMS {
            known.streams.clear();
        }
        known.streams.insert((group.to_owned(), stream.to_owned()));
    }

    /// Forgets a stream CloudWatch Logs says is gone (deleted, or its group deleted), so the
    /// next request creates it again.
    pub(crate) fn forget_stream(&self, group: &str, stream: &str) {
        self.lock().streams.remove(&(group.to_owned(), stream.to_owned()));
    }

    /// Records that waggle created `group` and must still set its retention.
    pub(crate) fn owe_retention(&self, group: &str, days: i32) {
        self.lock().retention_owed.insert(group.to_owned(), days);
    }

    /// The retention still owed to `group`, if any.
    pub(crate) fn retention_owed(&self, group: &str) -> Option<i32> {
        self.lock().retention_owed.get(group).copied()
    }

    /// The retention of `group` was set (or will never be): stop trying.
    pub(crate) fn settle_retention(&self, group: &str) {
        self.lock().retention_owed.remove(group);
    }

    #[cfg(test)]
    /// Streams remembered now (for tests and diagnostics).
    pub(crate) fn known_streams(&self) -> usize {
        self.lock().streams.len()
    }
}
