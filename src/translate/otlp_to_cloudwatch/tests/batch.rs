//! Request limits at their exact boundaries, the time window, truncation and ordering.

use super::super::batch::{
    EVENT_OVERHEAD_BYTES, MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_EVENT_MESSAGE_BYTES, TRUNCATION_MARKER,
};
use super::super::{Batcher, LogEvent, Prepared};
use super::{DAY_MS, HOUR_MS, NOW_MS, logs_request, now, raw_translation, record_at, resource_logs, service};

fn event(timestamp_ms: i64, message: &str) -> LogEvent {
    LogEvent { timestamp_ms, message: message.to_owned() }
}

/// Batches for `events`, all in one group and stream.
fn batch_all(events: Vec<LogEvent>) -> Prepared {
    let mut batcher = Batcher::new(now());
    let partition = batcher.partition("/waggle/app".to_owned(), "app".to_owned());
    for event in events {
        batcher.push(partition, event);
    }
    batcher.finish()
}

fn batch_sizes(prepared: &Prepared) -> Vec<usize> {
    prepared.batches.iter().map(|batch| batch.events.len()).collect()
}

fn messages(prepared: &Prepared) -> Vec<Vec<&str>> {
    prepared.batches.iter().map(|batch| batch.events.iter().map(|event| event.message.as_str()).collect()).collect()
}

/// Two events whose messages, with their overhead, add up to `total_bytes`.
fn two_events_totalling(total_bytes: usize) -> Vec<LogEvent> {
    let first_len = MAX_BATCH_BYTES / 2 - EVENT_OVERHEAD_BYTES;
    let second_len = total_bytes - 2 * EVENT_OVERHEAD_BYTES - first_len;
    vec![event(NOW_MS, &"a".repeat(first_len)), event(NOW_MS, &"b".repeat(second_len))]
}

#[test]
fn ten_thousand_events_fit_one_batch() {
    let prepared = batch_all((0..MAX_BATCH_EVENTS).map(|_| event(NOW_MS, "x")).collect());

    assert_eq!(batch_sizes(&prepared), [10_000]);
}

#[test]
fn the_ten_thousand_and_first_event_starts_a_new_batch() {
    let prepared = batch_all((0..=MAX_BATCH_EVENTS).map(|_| event(NOW_MS, "x")).collect());

    assert_eq!(batch_sizes(&prepared), [10_000, 1]);
}

#[test]
fn events_totalling_exactly_max_batch_bytes_with_overhead_fit_one_batch() {
    let prepared = batch_all(two_events_totalling(MAX_BATCH_BYTES));

    assert_eq!(batch_sizes(&prepared), [2]);
    assert_eq!(prepared.batches[0].bytes, 1_048_576);
}

#[test]
fn one_byte_over_max_batch_bytes_starts_a_new_batch() {
    let prepared = batch_all(two_events_totalling(MAX_BATCH_BYTES + 1));

    assert_eq!(batch_sizes(&prepared), [1, 1]);
}

#[test]
fn events_exactly_24_hours_apart_share_a_batch() {
    let prepared = batch_all(vec![event(NOW_MS - DAY_MS, "first"), event(NOW_MS, "last")]);

    assert_eq!(batch_sizes(&prepared), [2]);
}

#[test]
fn events_24_hours_and_1_ms_apart_are_split() {
    let prepared = batch_all(vec![event(NOW_MS - DAY_MS - 1, "first"), event(NOW_MS, "last")]);

    assert_eq!(messages(&prepared), [["first"], ["last"]]);
}

#[test]
fn the_24_hour_span_is_measured_from_each_batchs_first_event() {
    let start = NOW_MS - 13 * DAY_MS;
    let prepared = batch_all(vec![
        event(start, "a"),
        event(start + DAY_MS, "b"),
        event(start + DAY_MS + 1, "c"),
        event(start + 2 * DAY_MS + 1, "d"),
    ]);

    assert_eq!(messages(&prepared), [vec!["a", "b"], vec!["c", "d"]]);
}

#[test]
fn an_event_exactly_14_days_old_is_sent() {
    let prepared = batch_all(vec![event(NOW_MS - 14 * DAY_MS, "old")]);

    assert_eq!(batch_sizes(&prepared), [1]);
    assert_eq!(prepared.dropped_too_old, 0);
}

#[test]
fn an_event_14_days_and_1_ms_old_is_dropped_and_counted() {
    let prepared = batch_all(vec![event(NOW_MS - 14 * DAY_MS - 1, "too old"), event(NOW_MS, "fresh")]);

    assert_eq!(messages(&prepared), [["fresh"]]);
    assert_eq!(prepared.dropped_too_old, 1);
}

#[test]
fn an_event_exactly_2_hours_ahead_is_sent() {
    let prepared = batch_all(vec![event(NOW_MS + 2 * HOUR_MS, "ahead")]);

    assert_eq!(batch_sizes(&prepared), [1]);
    assert_eq!(prepared.dropped_too_new, 0);
}

#[test]
fn an_event_2_hours_and_1_ms_ahead_is_dropped_and_counted() {
    let prepared = batch_all(vec![event(NOW_MS, "now"), event(NOW_MS + 2 * HOUR_MS + 1, "too new")]);

    assert_eq!(messages(&prepared), [["now"]]);
    assert_eq!(prepared.dropped_too_new, 1);
}

#[test]
fn a_message_of_exactly_the_maximum_size_is_sent_whole_and_fills_a_batch() {
    let message = "m".repeat(MAX_EVENT_MESSAGE_BYTES);

    let prepared = batch_all(vec![event(NOW_MS, &message)]);

    assert_eq!(prepared.truncated, 0);
    assert_eq!(prepared.batches[0].events[0].message, message);
    assert_eq!(prepared.batches[0].bytes, MAX_BATCH_BYTES);
}

#[test]
fn a_message_one_byte_over_the_maximum_is_truncated_with_a_marker_and_counted() {
    let prepared = batch_all(vec![event(NOW_MS, &"m".repeat(MAX_EVENT_MESSAGE_BYTES + 1))]);

    let message = &prepared.batches[0].events[0].message;
    assert_eq!(prepared.truncated, 1);
    assert_eq!(message.len(), 1_048_550);
    assert!(message.ends_with("m…[truncated by waggle]"));
}

#[test]
fn truncation_never_splits_a_multi_byte_character() {
    // "é" is two bytes; after one ASCII byte every character starts at an odd offset, and the
    // cut point (1,048,550 − marker) is even, so it falls inside a character.
    let cut = MAX_EVENT_MESSAGE_BYTES - TRUNCATION_MARKER.len();
    assert_eq!(cut % 2, 0);
    let message = format!("a{}", "é".repeat(MAX_EVENT_MESSAGE_BYTES));

    let prepared = batch_all(vec![event(NOW_MS, &message)]);

    let sent = &prepared.batches[0].events[0].message;
    assert_eq!(sent.len(), cut - 1 + TRUNCATION_MARKER.len());
    assert!(sent.ends_with(&format!("é{TRUNCATION_MARKER}")));
}

#[test]
fn truncation_backs_off_over_a_four_byte_character() {
    let cut = MAX_EVENT_MESSAGE_BYTES - TRUNCATION_MARKER.len();
    // The emoji starts one byte before the cut point.
    let message = format!("{}😀{}", "a".repeat(cut - 1), "b".repeat(100));

    let prepared = batch_all(vec![event(NOW_MS, &message)]);

    let sent = &prepared.batches[0].events[0].message;
    assert_eq!(sent.len(), cut - 1 + TRUNCATION_MARKER.len());
    assert!(sent.ends_with(&format!("a{TRUNCATION_MARKER}")));
}

#[test]
fn events_are_sorted_by_timestamp() {
    let prepared = batch_all(vec![event(NOW_MS, "c"), event(NOW_MS - 2, "a"), event(NOW_MS - 1, "b")]);

    assert_eq!(messages(&prepared), [["a", "b", "c"]]);
}

#[test]
fn events_with_equal_timestamps_keep_their_arrival_order() {
    let prepared = batch_all(vec![
        event(NOW_MS, "first"),
        event(NOW_MS - 1, "earlier"),
        event(NOW_MS, "second"),
        event(NOW_MS, "third"),
    ]);

    assert_eq!(messages(&prepared), [["earlier", "first", "second", "third"]]);
}

#[test]
fn interleaved_events_of_two_resources_in_one_stream_are_sorted_together() {
    let translation = raw_translation();
    let request = logs_request(vec![
        resource_logs(service("app"), vec![record_at(NOW_MS - 30, "a1"), record_at(NOW_MS - 10, "a2")]),
        resource_logs(service("app"), vec![record_at(NOW_MS - 40, "b1"), record_at(NOW_MS - 20, "b2")]),
    ]);

    let prepared = translation.prepare(&[&request], now());

    assert_eq!(messages(&prepared), [["b1", "a1", "b2", "a2"]]);
}

#[test]
fn each_group_gets_its_own_batches_in_first_seen_order() {
    let translation = raw_translation();
    let request = logs_request(vec![
        resource_logs(service("web"), vec![record_at(NOW_MS, "w1")]),
        resource_logs(service("db"), vec![record_at(NOW_MS, "d1")]),
        resource_logs(service("web"), vec![record_at(NOW_MS, "w2")]),
    ]);

    let prepared = translation.prepare(&[&request], now());

    let groups: Vec<&str> = prepared.batches.iter().map(|batch| batch.group.as_str()).collect();
    assert_eq!(groups, ["/waggle/web", "/waggle/db"]);
    assert_eq!(messages(&prepared), [vec!["w1", "w2"], vec!["d1"]]);
}

#[test]
fn events_of_several_requests_are_batched_together() {
    let translation = raw_translation();
    let first = logs_request(vec![resource_logs(service("app"), vec![record_at(NOW_MS, "one")])]);
    let second = logs_request(vec![resource_logs(service("app"), vec![record_at(NOW_MS - 1, "two")])]);

    let prepared = translation.prepare(&[&first, &second], now());

    assert_eq!(messages(&prepared), [["two", "one"]]);
}

#[test]
fn a_stream_whose_events_were_all_dropped_yields_no_batch() {
    let prepared = batch_all(vec![event(NOW_MS - 15 * DAY_MS, "old")]);

    assert!(prepared.batches.is_empty());
    assert_eq!(prepared.dropped(), 1);
}

#[test]
fn an_empty_message_is_dropped_and_counted() {
    let prepared = batch_all(vec![event(NOW_MS, ""), event(NOW_MS, "kept")]);

    assert_eq!(messages(&prepared), [["kept"]]);
    assert_eq!(prepared.dropped_empty, 1);
}

#[test]
fn an_event_outside_the_window_never_builds_its_message() {
    let mut batcher = Batcher::new(now());
    let partition = batcher.partition("g".to_owned(), "s".to_owned());

    batcher.push_with(partition, NOW_MS + 3 * HOUR_MS, || panic!("the message of a dropped event was built"));

    assert_eq!(batcher.finish().dropped_too_new, 1);
}
