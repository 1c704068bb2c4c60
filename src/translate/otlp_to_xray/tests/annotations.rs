//! Which attributes become annotations, their keys, types and the limit of 50.

use std::borrow::Cow;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::json;

use super::super::XrayTranslation;
use super::super::annotations::{MAX_ANNOTATION_VALUE_CHARS, MAX_ANNOTATIONS, fix_annotation_key};
use super::*;

fn indexing(keys: &[&str]) -> XrayTranslation {
    XrayTranslation { indexed_attributes: keys.iter().map(|key| (*key).to_owned()).collect(), ..Default::default() }
}

fn index_all() -> XrayTranslation {
    XrayTranslation { index_all_attributes: true, ..Default::default() }
}

#[test]
fn attributes_are_metadata_by_default() {
    let doc = document(span(SpanKind::Server, vec![kv("cart.items", Value::IntValue(3))]));
    assert!(doc.get("annotations").is_none());
    assert_eq!(doc["metadata"]["default"]["cart.items"], 3);
}

#[test]
fn indexed_attributes_become_annotations() {
    let attributes = vec![kv("cart.items", Value::IntValue(3)), kv("coupon", string("WINTER"))];
    let doc = document_with(&indexing(&["cart.items"]), vec![], span(SpanKind::Server, attributes));
    assert_eq!(doc["annotations"], json!({"cart.items": 3}));
    assert_eq!(doc["metadata"]["default"], json!({"coupon": "WINTER"}));
}

#[test]
fn keys_listed_by_the_span_become_annotations() {
    let attributes = vec![
        kv("cart.items", Value::IntValue(3)),
        kv("express", Value::BoolValue(false)),
        kv("aws.xray.annotations", strings(&["express"])),
    ];
    let doc = document(span(SpanKind::Server, attributes));
    assert_eq!(doc["annotations"], json!({"express": false}));
    assert_eq!(doc["metadata"]["default"], json!({"cart.items": 3}), "the list itself is not metadata");
}

#[test]
fn index_all_makes_every_scalar_an_annotation() {
    let attributes = vec![
        kv("s", string("x")),
        kv("i", Value::IntValue(-4)),
        kv("d", Value::DoubleValue(129.5)),
        kv("b", Value::BoolValue(true)),
        kv("list", strings(&["a", "b"])),
        kv("map", kvlist(vec![kv("k", string("v"))])),
        kv("nan", Value::DoubleValue(f64::NAN)),
    ];
    let doc = document_with(&index_all(), vec![], child(SpanKind::Internal, attributes));
    assert_eq!(doc["annotations"], json!({"s": "x", "i": -4, "d": 129.5, "b": true}));
    assert_eq!(doc["metadata"]["default"], json!({"list": ["a", "b"], "map": {"k": "v"}, "nan": null}));
}

#[test]
fn index_all_also_indexes_resource_attributes_of_segments() {
    let doc = document_with(&index_all(), vec![kv("service.name", string("cart"))], span(SpanKind::Server, vec![]));
    assert_eq!(doc["annotations"], json!({"otel.resource.service.name": "cart"}));
}

#[test]
fn annotation_keys_are_fixed_to_x_rays_characters() {
    let cases = [
        ("http.status_code", "http.status_code"),
        ("user-id", "user_id"),
        ("attr1@1", "attr1_1"),
        ("café key", "caf__key"),
        ("a/b:c", "a_b_c"),
    ];
    for (key, fixed) in cases {
        assert_eq!(fix_annotation_key(key), fixed, "{key}");
    }
    assert!(matches!(fix_annotation_key("already_valid.key"), Cow::Borrowed(_)));
}

#[test]
fn fixed_keys_are_written() {
    let doc = document_with(&indexing(&["user-id"]), vec![], span(SpanKind::Server, vec![kv("user-id", string("u1"))]));
    assert_eq!(doc["annotations"], json!({"user_id": "u1"}));
}

#[test]
fn a_key_that_collides_after_fixing_goes_to_metadata() {
    let attributes = vec![kv("a-b", string("first")), kv("a_b", string("second"))];
    let doc = document_with(&index_all(), vec![], child(SpanKind::Internal, attributes));
    assert_eq!(doc["annotations"], json!({"a_b": "first"}));
    assert_eq!(doc["metadata"]["default"], json!({"a_b": "second"}));
}

#[test]
fn at_most_50_annotations_and_the_rest_go_to_metadata() {
    let attributes: Vec<KeyValue> = (0..60).map(|n| kv(&format!("key{n:02}"), Value::IntValue(n))).collect();
    let doc = document_with(&index_all(), vec![], child(SpanKind::Internal, attributes));
    let annotations = doc["annotations"].as_object().cloned().unwrap_or_default();
    let metadata = doc["metadata"]["default"].as_object().cloned().unwrap_or_default();
    assert_eq!(annotations.len(), MAX_ANNOTATIONS);
    assert_eq!(metadata.len(), 10);
    assert!(annotations.contains_key("key00") && annotations.contains_key("key49"));
    assert!(metadata.contains_key("key50") && metadata.contains_key("key59"));
}

#[test]
fn long_annotation_strings_are_cut_to_1000_characters() {
    let long = "é".repeat(MAX_ANNOTATION_VALUE_CHARS + 5);
    let doc = document_with(&index_all(), vec![], child(SpanKind::Internal, vec![kv("note", string(&long))]));
    assert_eq!(doc["annotations"]["note"].as_str().map(|text| text.chars().count()), Some(MAX_ANNOTATION_VALUE_CHARS));
}

#[test]
fn consumed_attributes_are_annotated_only_when_named_explicitly() {
    let attributes = vec![kv("http.method", string("GET")), kv("http.status_code", Value::IntValue(200))];
    let all = document_with(&index_all(), vec![], span(SpanKind::Server, attributes.clone()));
    assert!(all.get("annotations").is_none(), "{all}");
    let named = document_with(&indexing(&["http.method"]), vec![], span(SpanKind::Server, attributes));
    assert_eq!(named["annotations"], json!({"http.method": "GET"}));
    assert_eq!(named["http"]["request"]["method"], "GET", "still in the http block");
}
