//! PutLogEvents batches: events partitioned by (group, stream), filtered to the accepted time
//! window, truncated to the event size limit, stably sorted and split at every request limit.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::KeyValue;

use super::template::Template;

/// Most events in one PutLogEvents request.
pub(crate) const MAX_BATCH_EVENTS: usize = 10_000;
/// Most bytes in one PutLogEvents request, counted as UTF-8 message bytes plus
/// [`EVENT_OVERHEAD_BYTES`] per event.
pub(crate) const MAX_BATCH_BYTES: usize = 1_048_576;
/// What CloudWatch Logs adds to each event's message bytes when sizing a batch.
pub(crate) const EVENT_OVERHEAD_BYTES: usize = 26;
/// The longest message sent: one event with its overhead fills a batch (1 MiB). Longer
/// messages are cut on a character boundary and end with [`TRUNCATION_MARKER`].
pub(crate) const MAX_EVENT_MESSAGE_BYTES: usize = MAX_BATCH_BYTES - EVENT_OVERHEAD_BYTES;
/// Ends every truncated message, so a reader sees it was cut.
pub(crate) const TRUNCATION_MARKER: &str = "…[truncated by waggle]";
/// Longest time between the first and last event of one request. Exactly 24 h is allowed:
/// the API says a batch "cannot span more than 24 hours".
pub(crate) const MAX_BATCH_SPAN: Duration = Duration::from_secs(24 * 60 * 60);
/// Oldest event accepted, relative to now. An event exactly 14 days old is sent: the API
/// rejects events "more than 14 days in the past".
pub(crate) const MAX_EVENT_AGE: Duration = Duration::from_secs(14 * 24 * 60 * 60);
/// Furthest an event may be ahead of now. An event exactly 2 hours ahead is sent: the API
/// rejects events "more than 2 hours in the future".
pub(crate) const MAX_EVENT_LEAD: Duration = Duration::from_secs(2 * 60 * 60);

const MAX_BATCH_SPAN_MS: i64 = duration_ms(MAX_BATCH_SPAN);
const MAX_EVENT_AGE_MS: i64 = duration_ms(MAX_EVENT_AGE);
const MAX_EVENT_LEAD_MS: i64 = duration_ms(MAX_EVENT_LEAD);

const fn duration_ms(duration: Duration) -> i64 {
    // The durations above are hours and days: far inside i64.
    duration.as_millis() as i64
}

/// Milliseconds since the Unix epoch (0 before it).
pub(crate) fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
}

/// Unix nanoseconds (OTLP timestamps) to milliseconds, rounding down.
pub(super) fn nanos_to_ms(unix_nanos: u64) -> i64 {
    // u64::MAX / 1e6 fits in i64.
    i64::try_from(unix_nanos / 1_000_000).unwrap_or(i64::MAX)
}

/// One CloudWatch Logs event: what PutLogEvents calls an `InputLogEvent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogEvent {
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub message: String,
}

impl LogEvent {
    /// This event's share of a request's size limit.
    pub(crate) fn batch_bytes(&self) -> usize {
        self.message.len() + EVENT_OVERHEAD_BYTES
    }
}

/// The events of one PutLogEvents request: one group and stream, sorted by timestamp, within
/// every request limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventBatch {
    pub group: String,
    pub stream: String,
    pub events: Vec<LogEvent>,
    /// Message bytes plus [`EVENT_OVERHEAD_BYTES`] per event; at most [`MAX_BATCH_BYTES`].
    pub bytes: usize,
}

/// What to send, and what was dropped or cut on the way (for counters and logs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Prepared {
    pub batches: Vec<EventBatch>,
    /// Events more than [`MAX_EVENT_AGE`] older than now: CloudWatch Logs would reject them.
    pub dropped_too_old: usize,
    /// Events more than [`MAX_EVENT_LEAD`] ahead of now: CloudWatch Logs would reject them.
    pub dropped_too_new: usize,
    /// Events whose message was empty (a `raw` record without a body), which the API refuses.
    pub dropped_empty: usize,
    /// Events cut to [`MAX_EVENT_MESSAGE_BYTES`].
    pub truncated: usize,
}

impl Prepared {
    /// Events in all batches.
    #[cfg(test)]
    pub(crate) fn event_count(&self) -> usize {
        self.batches.iter().map(|batch| batch.events.len()).sum()
    }

    /// Events that will not be sent.
    #[cfg(test)]
    pub(crate) fn dropped(&self) -> usize {
        self.dropped_too_old + self.dropped_too_new + self.dropped_empty
    }
}

/// A (group, stream) pair registered with a [`Batcher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartitionId(usize);

#[derive(Debug)]
struct Partition {
    group: String,
    stream: String,
    events: Vec<LogEvent>,
}

/// Collects events for any number of (group, stream) pairs, then cuts them into batches.
///
/// Events are checked against the accepted time window relative to `now` when pushed, and
/// their messages are built only if they pass. Batches come out per pair in the order the
/// pairs were first seen.
#[derive(Debug)]
pub(crate) struct Batcher {
    now_ms: i64,
    partitions: Vec<Partition>,
    partition_index: HashMap<(String, String), usize>,
    outcome: Prepared,
}

impl Batcher {
    pub(crate) fn new(now: SystemTime) -> Batcher {
        Batcher {
            now_ms: unix_ms(now),
            partitions: Vec::new(),
            partition_index: HashMap::new(),
            outcome: Prepared::default(),
        }
    }

    /// The `now` this batcher judges timestamps against, in Unix milliseconds.
    pub(crate) fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// The partition for a group and stream, registered on first use.
    pub(crate) fn partition(&mut self, group: String, stream: String) -> PartitionId {
        let key = (group, stream);
        if let Some(&index) = self.partition_index.get(&key) {
            return PartitionId(index);
        }
        let index = self.partitions.len();
        self.partitions.push(Partition { group: key.0.clone(), stream: key.1.clone(), events: Vec::new() });
        self.partition_index.insert(key, index);
        PartitionId(index)
    }

    /// Adds an event at `timestamp_ms` whose message `build_message` makes. Events outside the
    /// accepted window are counted and dropped without building their message; empty messages
    /// are counted and dropped; messages over [`MAX_EVENT_MESSAGE_BYTES`] are truncated.
    pub(crate) fn push_with(
        &mut self,
        partition: PartitionId,
        timestamp_ms: i64,
        build_message: impl FnOnce() -> String,
    ) {
        if timestamp_ms < self.now_ms.saturating_sub(MAX_EVENT_AGE_MS) {
            self.outcome.dropped_too_old += 1;
            return;
        }
        if timestamp_ms > self.now_ms.saturating_add(MAX_EVENT_LEAD_MS) {
            self.outcome.dropped_too_new += 1;
            return;
        }
        let mut message = build_message();
        if message.is_empty() {
            self.outcome.dropped_empty += 1;
            return;
        }
        if truncate_message(&mut message) {
            self.outcome.truncated += 1;
        }
        if let Some(target) = self.partitions.get_mut(partition.0) {
            target.events.push(LogEvent { timestamp_ms, message });
        }
    }

    #[cfg(test)]
    /// Adds an event (see [`Batcher::push_with`]).
    pub(crate) fn push(&mut self, partition: PartitionId, event: LogEvent) {
        let LogEvent { timestamp_ms, message } = event;
        self.push_with(partition, timestamp_ms, || message);
    }

    /// Sorts each partition's events by timestamp (stable: equal timestamps keep their arrival
    /// order) and splits them into requests within every limit.
    pub(crate) fn finish(self) -> Prepared {
        let mut prepared = self.outcome;
        for Partition { group, stream, mut events } in self.partitions {
            if events.is_empty() {
                continue;
            }
            events.sort_by_key(|event| event.timestamp_ms);
            let mut current = EventBatch { group: group.clone(), stream: stream.clone(), events: Vec::new(), bytes: 0 };
            for event in events {
                let event_bytes = event.batch_bytes();
                let full = match current.events.first() {
                    None => false,
                    Some(first) => {
                        current.events.len() == MAX_BATCH_EVENTS
                            || current.bytes + event_bytes > MAX_BATCH_BYTES
                            || event.timestamp_ms - first.timestamp_ms > MAX_BATCH_SPAN_MS
                    }
                };
                if full {
                    let next =
                        EventBatch { group: group.clone(), stream: stream.clone(), events: Vec::new(), bytes: 0 };
                    prepared.batches.push(std::mem::replace(&mut current, next));
                }
                current.bytes += event_bytes;
                current.events.push(event);
            }
            prepared.batches.push(current);
        }
        prepared
    }
}

/// Cuts a message over [`MAX_EVENT_MESSAGE_BYTES`] on a character boundary so that, with
/// [`TRUNCATION_MARKER`] appended, it is at most that long. Returns whether it cut.
pub(super) fn truncate_message(message: &mut String) -> bool {
    if message.len() <= MAX_EVENT_MESSAGE_BYTES {
        return false;
    }
    let mut cut = MAX_EVENT_MESSAGE_BYTES - TRUNCATION_MARKER.len();
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    message.truncate(cut);
    message.push_str(TRUNCATION_MARKER);
    message.shrink_to_fit();
    true
}

/// The partition for one resource's events, rendered from the templates once per resource, or
/// once per UTC day when a template uses `{date}`.
pub(super) struct ResourceDestination<'a> {
    group: &'a Template,
    stream: &'a Template,
    resource: &'a [KeyValue],
    per_day: bool,
    last: Option<(i64, PartitionId)>,
}

impl<'a> ResourceDestination<'a> {
    pub(super) fn new(group: &'a Template, stream: &'a Template, resource: &'a [KeyValue]) -> Self {
        let per_day = group.uses_date() || stream.uses_date();
        ResourceDestination { group, stream, resource, per_day, last: None }
    }

    pub(super) fn partition(&mut self, batcher: &mut Batcher, timestamp_ms: i64) -> PartitionId {
        const MILLIS_PER_DAY: i64 = 86_400_000;
        let day = if self.per_day { timestamp_ms.div_euclid(MILLIS_PER_DAY) } else { 0 };
        if let Some((last_day, partition)) = self.last
            && last_day == day
        {
            return partition;
        }
        let partition = batcher
            .partition(self.group.render(self.resource, timestamp_ms), self.stream.render(self.resource, timestamp_ms));
        self.last = Some((day, partition));
        partition
    }
}
