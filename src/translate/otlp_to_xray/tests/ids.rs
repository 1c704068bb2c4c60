//! Trace, span and parent ids, and the optional trace id time check.

use std::time::{Duration, UNIX_EPOCH};

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use super::super::ids::{MAX_TRACE_ID_AGE_SECS, MAX_TRACE_ID_AHEAD_SECS, epoch_seconds, xray_trace_id};
use super::super::{Untranslatable, XrayTranslation};
use super::*;

#[test]
fn trace_id_is_version_epoch_and_random_part() {
    let doc = document(span(SpanKind::Server, vec![]));
    assert_eq!(doc["trace_id"], TRACE_ID_TEXT);
}

#[test]
fn random_w3c_trace_id_passes_unchanged_by_default() {
    // A W3C id whose first 32 bits are no plausible time (2106): accepted, only reformatted.
    let mut w3c = span(SpanKind::Server, vec![]);
    w3c.trace_id = hex::decode("fffffffe1e8720b39541901950019ee5").unwrap_or_default();
    let doc = document(w3c);
    assert_eq!(doc["trace_id"], "1-fffffffe-1e8720b39541901950019ee5");
}

#[test]
fn span_id_and_parent_id_are_16_hex_digits() {
    let doc = document(child(SpanKind::Server, vec![]));
    assert_eq!(doc["id"], SPAN_ID_TEXT);
    assert_eq!(doc["parent_id"], PARENT_ID_TEXT);
}

#[test]
fn all_zero_parent_id_means_root() {
    let mut root = span(SpanKind::Client, vec![]);
    root.parent_span_id = vec![0; 8];
    let doc = document(root);
    assert!(doc.get("parent_id").is_none());
    assert!(doc.get("type").is_none());
}

#[test]
fn document_carries_its_ids_outside_the_json_too() {
    let translated = translate_with(&XrayTranslation::default(), vec![], vec![span(SpanKind::Server, vec![])]);
    assert_eq!(translated.documents[0].trace_id, TRACE_ID_TEXT);
    assert_eq!(translated.documents[0].id, SPAN_ID_TEXT);
}

/// A case name, how to break a span, and the error expected.
type Breakage = (&'static str, fn(&mut Span), Untranslatable);

#[test]
fn invalid_ids_are_rejected_with_a_reason() {
    let cases: [Breakage; 5] = [
        ("short trace id", |s| s.trace_id.truncate(8), Untranslatable::TraceIdLength(8)),
        ("zero trace id", |s| s.trace_id = vec![0; 16], Untranslatable::TraceIdZero),
        ("short span id", |s| s.span_id = vec![1; 4], Untranslatable::SpanIdLength { field: "span id", length: 4 }),
        ("zero span id", |s| s.span_id = vec![0; 8], Untranslatable::SpanIdZero),
        (
            "long parent id",
            |s| s.parent_span_id = vec![1; 16],
            Untranslatable::SpanIdLength { field: "parent span id", length: 16 },
        ),
    ];
    for (case, break_it, expected) in cases {
        let mut bad = span(SpanKind::Server, vec![]);
        break_it(&mut bad);
        let translated = translate_with(&XrayTranslation::default(), vec![], vec![bad]);
        assert!(translated.documents.is_empty(), "{case}");
        assert_eq!(translated.rejected.len(), 1, "{case}");
        assert_eq!(translated.rejected[0].reason, crate::model::LossReason::Invalid, "{case}");
        assert!(
            translated.rejected[0].detail.contains(&expected.to_string()),
            "{case}: {}",
            translated.rejected[0].detail
        );
    }
}

#[test]
fn a_bad_span_does_not_stop_the_others() {
    let mut bad = span(SpanKind::Server, vec![]);
    bad.trace_id.clear();
    let translated = translate_with(&XrayTranslation::default(), vec![], vec![bad, span(SpanKind::Server, vec![])]);
    assert_eq!(translated.documents.len(), 1);
    assert_eq!(translated.rejected.len(), 1);
}

/// A translation with the time check on, and a span whose trace id epoch is `now + offset`.
fn checked(offset_secs: i64) -> Translated {
    let now_secs = 1_700_000_000i64;
    let epoch = u32::try_from(now_secs + offset_secs).unwrap_or_default();
    let mut traced = span(SpanKind::Server, vec![]);
    traced.trace_id[..4].copy_from_slice(&epoch.to_be_bytes());
    let translation = XrayTranslation { validate_trace_id_time: true, ..XrayTranslation::default() };
    let now = UNIX_EPOCH + Duration::from_secs(now_secs.unsigned_abs());
    translation.translate(&[resource_spans(vec![], vec![traced])], now)
}

#[test]
fn time_check_accepts_ids_from_28_days_ago_to_5_minutes_ahead() {
    let oldest = -i64::try_from(MAX_TRACE_ID_AGE_SECS).unwrap_or_default();
    let newest = i64::try_from(MAX_TRACE_ID_AHEAD_SECS).unwrap_or_default();
    for offset in [oldest, -3600, 0, newest] {
        let translated = checked(offset);
        assert_eq!(translated.documents.len(), 1, "offset {offset}: {:?}", translated.rejected);
    }
}

#[test]
fn time_check_rejects_ids_older_than_28_days() {
    let translated = checked(-i64::try_from(MAX_TRACE_ID_AGE_SECS).unwrap_or_default() - 1);
    assert!(translated.documents.is_empty());
    assert!(translated.rejected[0].detail.contains("more than the 28 days"), "{}", translated.rejected[0].detail);
}

#[test]
fn time_check_rejects_ids_more_than_5_minutes_ahead() {
    let translated = checked(i64::try_from(MAX_TRACE_ID_AHEAD_SECS).unwrap_or_default() + 1);
    assert!(translated.documents.is_empty());
    assert!(translated.rejected[0].detail.contains("in the future"), "{}", translated.rejected[0].detail);
}

#[test]
fn time_check_is_off_by_default() {
    let mut old = span(SpanKind::Server, vec![]);
    old.trace_id[..4].copy_from_slice(&[0, 0, 0, 1]);
    let translated = XrayTranslation::default().translate(&[resource_spans(vec![], vec![old])], now());
    assert_eq!(translated.documents.len(), 1);
}

#[test]
fn trace_id_text_is_35_characters() {
    assert_eq!(xray_trace_id(&TRACE_ID).map(|id| id.len()), Ok(35));
}

#[test]
fn times_are_epoch_seconds_rounded_to_the_microsecond() {
    let cases = [
        (1_478_293_361_271_000_000, 1_478_293_361.271),
        (1_795_238_901_722_550_600, 1_795_238_901.722_551),
        (1_795_238_901_722_550_499, 1_795_238_901.722_55),
        (0, 0.0),
    ];
    for (nanos, seconds) in cases {
        assert_eq!(epoch_seconds(nanos), seconds, "{nanos}");
    }
}

#[test]
fn start_and_end_time_are_written_as_seconds() {
    let doc = document(span(SpanKind::Server, vec![]));
    assert_eq!(doc["start_time"], 1_478_293_361.271);
    assert_eq!(doc["end_time"], 1_478_293_361.449);
}
