//! Reading `rejectedLogEventsInfo`: index meanings, counting, clamping and the WARN sentence.

use aws_sdk_cloudwatchlogs::types::RejectedLogEventsInfo;

use super::super::explain_rejected;

fn info() -> aws_sdk_cloudwatchlogs::types::builders::RejectedLogEventsInfoBuilder {
    RejectedLogEventsInfo::builder()
}

#[test]
fn no_indices_mean_every_event_was_stored() {
    let summary = explain_rejected(&info().build(), 10);

    assert!(summary.all_accepted());
    assert_eq!(summary.accepted(), 10);
    assert_eq!(summary.message, "CloudWatch Logs stored all 10 events of the batch");
}

#[test]
fn the_too_old_end_index_is_exclusive() {
    let summary = explain_rejected(&info().too_old_log_event_end_index(3).build(), 10);

    assert_eq!((summary.too_old, summary.rejected), (3, 3));
}

#[test]
fn the_too_new_start_index_is_inclusive() {
    let summary = explain_rejected(&info().too_new_log_event_start_index(8).build(), 10);

    assert_eq!((summary.too_new, summary.rejected), (2, 2));
}

#[test]
fn the_expired_end_index_is_exclusive() {
    let summary = explain_rejected(&info().expired_log_event_end_index(4).build(), 10);

    assert_eq!((summary.expired, summary.rejected), (4, 4));
}

#[test]
fn too_old_and_too_new_add_up() {
    let summary = explain_rejected(&info().too_old_log_event_end_index(2).too_new_log_event_start_index(7).build(), 10);

    assert_eq!((summary.rejected, summary.accepted()), (5, 5));
}

#[test]
fn overlapping_too_old_and_expired_ranges_count_each_event_once() {
    let summary = explain_rejected(&info().too_old_log_event_end_index(2).expired_log_event_end_index(5).build(), 10);

    assert_eq!((summary.too_old, summary.expired, summary.rejected), (2, 5, 5));
}

#[test]
fn indices_outside_the_batch_are_clamped_to_it() {
    let summary =
        explain_rejected(&info().too_old_log_event_end_index(50).too_new_log_event_start_index(-3).build(), 10);

    assert_eq!((summary.too_old, summary.too_new, summary.rejected), (10, 10, 10));
}

#[test]
fn the_sentence_names_each_reason_with_its_range() {
    let summary = explain_rejected(
        &info()
            .too_old_log_event_end_index(3)
            .expired_log_event_end_index(1)
            .too_new_log_event_start_index(118)
            .build(),
        120,
    );

    assert_eq!(
        summary.message,
        "CloudWatch Logs rejected 5 of 120 events of the batch (not retried): \
         3 too old (events [0, 3) are more than 14 days in the past); \
         1 expired (events [0, 1) are older than the log group's retention period); \
         2 too new (events [118, 120) are more than 2 hours in the future); \
         waggle drops events outside that window by its own clock before sending, \
         so this host's clock probably differs from AWS's"
    );
}

#[test]
fn expired_events_alone_do_not_blame_the_clock() {
    let summary = explain_rejected(&info().expired_log_event_end_index(2).build(), 4);

    assert!(!summary.message.contains("clock"), "{}", summary.message);
}
