//! The 64 KB limit: exact boundary, trimming largest metadata first, dropping metadata,
//! rejecting what still does not fit.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use super::super::XrayTranslation;
use super::super::metadata::TRUNCATED_MARKER;
use super::super::outcome::MAX_DOCUMENT_BYTES;
use super::*;

fn translate(span: Span) -> Translated {
    translate_with(&XrayTranslation::default(), vec![], vec![span])
}

/// A span whose only attribute is `pad` = `length` × "x".
fn padded(length: usize) -> Span {
    child(SpanKind::Internal, vec![kv("pad", string(&"x".repeat(length)))])
}

/// The `pad` length that makes the document exactly `MAX_DOCUMENT_BYTES` long.
fn exact_pad() -> usize {
    let base = translate(padded(0)).documents[0].json.len();
    MAX_DOCUMENT_BYTES - base
}

#[test]
fn limit_is_64000_bytes() {
    assert_eq!(MAX_DOCUMENT_BYTES, 64_000);
}

#[test]
fn document_of_exactly_the_limit_is_sent_untouched() {
    let translated = translate(padded(exact_pad()));
    assert_eq!(translated.documents[0].json.len(), MAX_DOCUMENT_BYTES);
    assert_eq!(translated.trimmed, 0);
    assert_eq!(
        parse(&translated.documents[0].json)["metadata"]["default"]["pad"].as_str().map(str::len),
        Some(exact_pad())
    );
}

#[test]
fn one_byte_over_the_limit_trims_the_value_with_a_marker() {
    let translated = translate(padded(exact_pad() + 1));
    assert_eq!(translated.trimmed, 1);
    assert!(translated.rejected.is_empty());
    let json = &translated.documents[0].json;
    assert!(json.len() <= MAX_DOCUMENT_BYTES);
    assert_eq!(parse(json)["metadata"]["default"]["pad"], TRUNCATED_MARKER);
}

#[test]
fn largest_values_are_trimmed_first_and_only_as_many_as_needed() {
    let attributes = vec![
        kv("medium", string(&"m".repeat(30_000))),
        kv("large", string(&"l".repeat(40_000))),
        kv("small", string("kept")),
    ];
    let translated = translate(child(SpanKind::Internal, attributes));
    let doc = parse(&translated.documents[0].json);
    assert_eq!(doc["metadata"]["default"]["large"], TRUNCATED_MARKER);
    assert_eq!(doc["metadata"]["default"]["medium"].as_str().map(str::len), Some(30_000));
    assert_eq!(doc["metadata"]["default"]["small"], "kept");
    assert_eq!(translated.trimmed, 1);
}

#[test]
fn parsed_namespaces_are_trimmed_too() {
    let big = format!(r#"{{"blob": "{}", "id": 7}}"#, "b".repeat(70_000));
    let translated = translate(child(SpanKind::Internal, vec![kv("aws.xray.metadata.app", string(&big))]));
    let doc = parse(&translated.documents[0].json);
    assert_eq!(doc["metadata"]["app"], serde_json::json!({"blob": TRUNCATED_MARKER, "id": 7}));
}

#[test]
fn metadata_is_dropped_when_markers_are_not_enough() {
    let attributes: Vec<KeyValue> = (0..5_000).map(|n| kv(&format!("k{n:04}"), string("0123456789abcdef"))).collect();
    let translated = translate(child(SpanKind::Internal, attributes));
    assert_eq!(translated.trimmed, 1);
    let doc = parse(&translated.documents[0].json);
    assert!(doc.get("metadata").is_none());
    assert_eq!(doc["id"], SPAN_ID_TEXT);
}

#[test]
fn document_too_large_without_metadata_is_rejected_with_its_size() {
    let mut huge = child(SpanKind::Internal, vec![kv("note", string("metadata cannot save this"))]);
    huge.events = vec![exception_event(vec![kv("exception.message", string(&"e".repeat(70_000)))])];
    let translated = translate(huge);
    assert!(translated.documents.is_empty());
    assert_eq!(translated.rejected.len(), 1);
    assert_eq!(translated.rejected[0].reason, crate::model::LossReason::TooLarge);
    assert!(translated.rejected[0].detail.contains("bytes even without metadata"), "{}", translated.rejected[0].detail);
}
