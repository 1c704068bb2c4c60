//! Metadata: the default namespace, resource attributes, and `aws.xray.metadata.<ns>`.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::json;

use super::*;

#[test]
fn values_keep_their_types() {
    let attributes = vec![
        kv("s", string("x")),
        kv("i", Value::IntValue(7)),
        kv("d", Value::DoubleValue(0.25)),
        kv("b", Value::BoolValue(false)),
        kv("list", Value::ArrayValue(ArrayValue { values: vec![any(Value::IntValue(1)), any(string("two"))] })),
        kv("map", kvlist(vec![kv("nested", kvlist(vec![kv("deep", Value::BoolValue(true))]))])),
        kv("bytes", Value::BytesValue(vec![0xca, 0xfe])),
    ];
    let doc = document(child(SpanKind::Internal, attributes));
    assert_eq!(
        doc["metadata"],
        json!({"default": {
            "s": "x", "i": 7, "d": 0.25, "b": false, "list": [1, "two"], "map": {"nested": {"deep": true}}, "bytes": "cafe",
        }})
    );
}

#[test]
fn resource_attributes_are_prefixed() {
    let resource = vec![kv("service.name", string("cart")), kv("host.arch", string("arm64"))];
    let doc = document_in(resource, span(SpanKind::Server, vec![kv("route", string("/cart"))]));
    assert_eq!(
        doc["metadata"]["default"],
        json!({"route": "/cart", "otel.resource.service.name": "cart", "otel.resource.host.arch": "arm64"})
    );
}

#[test]
fn metadata_namespace_attribute_is_parsed() {
    let attributes = vec![
        kv("aws.xray.metadata.app", string(r#"{"now": "2026-11-21T05:28:21+00:00", "cart": {"skus": ["A-1"]}}"#)),
        kv("aws.xray.metadata.http", string(r#"{"connection": {"reused": false}}"#)),
    ];
    let doc = document(child(SpanKind::Internal, attributes));
    assert_eq!(
        doc["metadata"],
        json!({
            "app": {"now": "2026-11-21T05:28:21+00:00", "cart": {"skus": ["A-1"]}},
            "http": {"connection": {"reused": false}},
        })
    );
}

#[test]
fn default_namespace_attribute_merges_with_the_other_attributes() {
    let attributes = vec![
        kv("attr", string("loose")),
        kv("custom", string("attribute")),
        kv("aws.xray.metadata.default", string(r#"{"custom": "from x-ray", "other": 1}"#)),
    ];
    let doc = document(child(SpanKind::Internal, attributes));
    assert_eq!(doc["metadata"], json!({"default": {"custom": "from x-ray", "other": 1, "attr": "loose"}}));
}

#[test]
fn metadata_namespace_that_is_not_a_json_object_stays_a_string() {
    let attributes = vec![kv("aws.xray.metadata.non-xray", string("retain-value"))];
    let doc = document(child(SpanKind::Internal, attributes));
    assert_eq!(doc["metadata"], json!({"default": {"aws.xray.metadata.non-xray": "retain-value"}}));
}

#[test]
fn sample_rate_copied_out_of_a_namespace_is_not_repeated() {
    let attributes = vec![
        kv("aws.xray.metadata.default", string(r#"{"SampleRate": 4}"#)),
        kv("SampleRate", Value::IntValue(4)),
        kv("aws.xray.metadata.app", string(r#"{"sampleRate": 2}"#)),
        kv("sampleRate", Value::IntValue(2)),
    ];
    let doc = document(child(SpanKind::Internal, attributes));
    assert_eq!(doc["metadata"], json!({"default": {"SampleRate": 4}, "app": {"sampleRate": 2}}));
}

#[test]
fn a_different_sample_rate_attribute_is_kept() {
    let attributes =
        vec![kv("aws.xray.metadata.app", string(r#"{"SampleRate": 2}"#)), kv("SampleRate", Value::IntValue(8))];
    let doc = document(child(SpanKind::Internal, attributes));
    assert_eq!(doc["metadata"], json!({"default": {"SampleRate": 8}, "app": {"SampleRate": 2}}));
}

#[test]
fn span_without_attributes_has_no_metadata() {
    let doc = document(child(SpanKind::Internal, vec![]));
    assert!(doc.get("metadata").is_none());
    assert!(doc.get("annotations").is_none());
}
