//! Segment or subsegment, and in-progress documents.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use super::*;

#[test]
fn which_spans_become_subsegments() {
    let cases = [
        ("server root", span(SpanKind::Server, vec![]), false),
        ("server with parent", child(SpanKind::Server, vec![]), false),
        ("client root", span(SpanKind::Client, vec![]), false),
        ("internal root", span(SpanKind::Internal, vec![]), false),
        ("client with parent", child(SpanKind::Client, vec![]), true),
        ("internal with parent", child(SpanKind::Internal, vec![]), true),
        ("producer with parent", child(SpanKind::Producer, vec![]), true),
        ("consumer with parent", child(SpanKind::Consumer, vec![]), true),
        ("unspecified with parent", child(SpanKind::Unspecified, vec![]), true),
    ];
    for (case, span, subsegment) in cases {
        let doc = document(span);
        assert_eq!(doc.get("type").is_some(), subsegment, "{case}: {doc}");
    }
}

#[test]
fn subsegment_carries_type_parent_id_and_trace_id() {
    let doc = document(child(SpanKind::Client, vec![]));
    assert_eq!(doc["type"], "subsegment");
    assert_eq!(doc["parent_id"], PARENT_ID_TEXT);
    assert_eq!(doc["trace_id"], TRACE_ID_TEXT);
}

#[test]
fn segment_with_a_parent_keeps_its_parent_id() {
    let doc = document(child(SpanKind::Server, vec![]));
    assert_eq!(doc["parent_id"], PARENT_ID_TEXT);
    assert!(doc.get("type").is_none());
}

#[test]
fn resource_is_stored_on_segments_only() {
    let resource = vec![kv("service.name", string("cart")), kv("cloud.platform", string("aws_ec2"))];
    let segment = document_in(resource.clone(), span(SpanKind::Server, vec![]));
    let subsegment = document_in(resource, child(SpanKind::Client, vec![]));
    assert_eq!(segment["metadata"]["default"]["otel.resource.service.name"], "cart");
    assert_eq!(segment["origin"], "AWS::EC2::Instance");
    assert!(subsegment.get("metadata").is_none(), "{subsegment}");
    assert!(subsegment.get("origin").is_none(), "{subsegment}");
}

#[test]
fn span_without_end_is_in_progress() {
    let mut open = span(SpanKind::Server, vec![]);
    open.end_time_unix_nano = 0;
    let doc = document(open);
    assert_eq!(doc["in_progress"], true);
    assert!(doc.get("end_time").is_none());
}

#[test]
fn inprogress_attribute_marks_the_document_in_progress() {
    let doc = document(span(SpanKind::Server, vec![kv("aws.xray.inprogress", Value::BoolValue(true))]));
    assert_eq!(doc["in_progress"], true);
    assert!(doc.get("end_time").is_none());
    assert!(doc.get("metadata").is_none(), "the flag is not repeated in metadata: {doc}");
}

#[test]
fn finished_span_has_no_in_progress_flag() {
    let doc = document(span(SpanKind::Server, vec![kv("aws.xray.inprogress", Value::BoolValue(false))]));
    assert!(doc.get("in_progress").is_none());
    assert!(doc.get("end_time").is_some());
}

#[test]
fn enduser_id_becomes_the_user() {
    let doc = document(span(SpanKind::Server, vec![kv("enduser.id", string("customer-42"))]));
    assert_eq!(doc["user"], "customer-42");
    assert!(doc.get("metadata").is_none(), "{doc}");
}

#[test]
fn links_carry_converted_ids_and_attributes() {
    let mut linked = span(SpanKind::Consumer, vec![]);
    linked.links.push(opentelemetry_proto::tonic::trace::v1::span::Link {
        trace_id: TRACE_ID.to_vec(),
        span_id: PARENT_ID.to_vec(),
        attributes: vec![kv("messaging.operation", string("receive"))],
        ..Default::default()
    });
    linked.links.push(opentelemetry_proto::tonic::trace::v1::span::Link::default());
    let doc = document(linked);
    assert_eq!(
        doc["links"],
        serde_json::json!([{"trace_id": TRACE_ID_TEXT, "id": PARENT_ID_TEXT, "attributes": {"messaging.operation": "receive"}}])
    );
}

#[test]
fn spans_of_every_resource_and_scope_are_translated() {
    let request = [
        resource_spans(vec![kv("service.name", string("a"))], vec![span(SpanKind::Server, vec![])]),
        resource_spans(
            vec![kv("service.name", string("b"))],
            vec![span(SpanKind::Server, vec![]), child(SpanKind::Client, vec![])],
        ),
    ];
    let translated = XrayTranslation::default().translate(&request, now());
    let names: Vec<String> =
        translated.documents.iter().map(|document| parse(&document.json)["name"].to_string()).collect();
    assert_eq!(names, ["\"a\"", "\"b\"", "\"GET /api/cart\""]);
}
