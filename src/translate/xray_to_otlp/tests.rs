//! One test per mapping rule of the X-Ray → OTLP translation.

use bytes::Bytes;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as OtlpValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span};
use serde_json::json;

use super::convert;
use super::ids::{IdError, decode_span_id, decode_trace_id, seconds_to_unix_nanos};
use super::span::split_sql_url;
use crate::model::XraySegment;

const TRACE: &str = "1-5f84c7a1-e7d1852db8c4fd35d88bf49a";
const TRACE_BYTES: [u8; 16] =
    [0x5f, 0x84, 0xc7, 0xa1, 0xe7, 0xd1, 0x85, 0x2d, 0xb8, 0xc4, 0xfd, 0x35, 0xd8, 0x8b, 0xf4, 0x9a];

fn segment_of(document: &serde_json::Value) -> XraySegment {
    XraySegment {
        body: Bytes::from(document.to_string()),
        trace_id: document["trace_id"].as_str().unwrap_or_default().to_owned(),
        id: document["id"].as_str().unwrap_or_default().to_owned(),
    }
}

/// A minimal valid segment, with `extra` fields merged in.
fn segment(extra: serde_json::Value) -> serde_json::Value {
    let mut document = json!({
        "trace_id": TRACE,
        "id": "6226467e3f845502",
        "name": "api",
        "start_time": 1478293361.271,
        "end_time": 1478293361.449,
    });
    if let (Some(base), serde_json::Value::Object(extra)) = (document.as_object_mut(), extra) {
        base.extend(extra);
    }
    document
}

fn convert_one(document: serde_json::Value) -> ResourceSpans {
    let (mut converted, rejected) = convert(&[segment_of(&document)]);
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(converted.len(), 1);
    converted.remove(0)
}

fn spans(resource_spans: &ResourceSpans) -> &[Span] {
    &resource_spans.scope_spans[0].spans
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a OtlpValue> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()).and_then(|v| v.value.as_ref())
}

fn string(value: &str) -> OtlpValue {
    OtlpValue::StringValue(value.to_owned())
}

fn strings(attributes: &[KeyValue], key: &str) -> Vec<String> {
    match attribute(attributes, key) {
        Some(OtlpValue::ArrayValue(array)) => array
            .values
            .iter()
            .filter_map(|v| match &v.value {
                Some(OtlpValue::StringValue(s)) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        other => panic!("{key} is not a string array: {other:?}"),
    }
}

fn resource_attribute<'a>(resource_spans: &'a ResourceSpans, key: &str) -> Option<&'a OtlpValue> {
    attribute(&resource_spans.resource.as_ref().expect("resource").attributes, key)
}

fn kind(span: &Span) -> SpanKind {
    SpanKind::try_from(span.kind).expect("valid kind")
}

fn status_code(span: &Span) -> StatusCode {
    StatusCode::try_from(span.status.as_ref().expect("status").code).expect("valid code")
}

#[test]
fn decodes_xray_trace_ids() {
    assert_eq!(decode_trace_id(TRACE), Ok(TRACE_BYTES));
    for bad in [
        "",
        "5f84c7a1e7d1852db8c4fd35d88bf49a",
        "2-5f84c7a1-e7d1852db8c4fd35d88bf49a",
        "1-5f84c7a1_e7d1852db8c4fd35d88bf49a",
        "1-5f84c7a1-e7d1852db8c4fd35d88bf49",
        "1-5f84c7a1-e7d1852db8c4fd35d88bf49aa",
        "1-5f84c7g1-e7d1852db8c4fd35d88bf49a",
        "1-5f84c7a1-e7d1852db8c4fd35d88bf4éa",
    ] {
        assert!(matches!(decode_trace_id(bad), Err(IdError::TraceId(_))), "{bad:?}");
    }
    assert!(matches!(decode_trace_id("1-00000000-000000000000000000000000"), Err(IdError::Zero { .. })));
}

#[test]
fn decodes_span_ids() {
    assert_eq!(decode_span_id("id", "6226467e3f845502"), Ok([0x62, 0x26, 0x46, 0x7e, 0x3f, 0x84, 0x55, 0x02]));
    assert_eq!(decode_span_id("id", "6226467E3F845502"), Ok([0x62, 0x26, 0x46, 0x7e, 0x3f, 0x84, 0x55, 0x02]));
    for bad in ["", "6226467e3f84550", "6226467e3f8455021", "6226467e3f84550z"] {
        assert!(matches!(decode_span_id("id", bad), Err(IdError::SpanId { .. })), "{bad:?}");
    }
    assert!(matches!(decode_span_id("id", "0000000000000000"), Err(IdError::Zero { .. })));
}

#[test]
fn converts_float_seconds_to_nanos_exact_to_the_microsecond() {
    assert_eq!(seconds_to_unix_nanos(1478293361.271), Some(1_478_293_361_271_000_000));
    assert_eq!(seconds_to_unix_nanos(1795238901.722551), Some(1_795_238_901_722_551_000));
    // Python writes 7 decimals; the 7th is below the float's resolution and is rounded.
    assert_eq!(seconds_to_unix_nanos(1795238901.7225506), Some(1_795_238_901_722_551_000));
    assert_eq!(seconds_to_unix_nanos(0.000001), Some(1_000));
    assert_eq!(seconds_to_unix_nanos(0.0), Some(0));
    assert_eq!(seconds_to_unix_nanos(-1.0), None);
    assert_eq!(seconds_to_unix_nanos(1e300), None);
    // Every microsecond of a day survives the round trip through f64.
    let base = 1_795_238_901_u64;
    for micros in (0..1_000_000).step_by(7) {
        let seconds: f64 = format!("{base}.{micros:06}").parse().expect("float");
        assert_eq!(seconds_to_unix_nanos(seconds), Some((base * 1_000_000 + micros) * 1000), "{seconds}");
    }
}

#[test]
fn sets_ids_name_and_times() {
    let converted = convert_one(segment(json!({})));
    let span = &spans(&converted)[0];
    assert_eq!(span.trace_id, TRACE_BYTES);
    assert_eq!(span.span_id, [0x62, 0x26, 0x46, 0x7e, 0x3f, 0x84, 0x55, 0x02]);
    assert!(span.parent_span_id.is_empty());
    assert_eq!(span.name, "api");
    assert_eq!(span.start_time_unix_nano, 1_478_293_361_271_000_000);
    assert_eq!(span.end_time_unix_nano, 1_478_293_361_449_000_000);
    assert_eq!(resource_attribute(&converted, "service.name"), Some(&string("api")));
}

#[test]
fn nested_subsegments_get_the_enclosing_span_as_parent() {
    let converted = convert_one(segment(json!({
        "subsegments": [{
            "id": "1111111111111111", "name": "outer", "start_time": 1478293361.3, "end_time": 1478293361.4,
            // The enclosing span is the parent, whatever the subsegment's own field says.
            "parent_id": "9999999999999999",
            "subsegments": [{"id": "2222222222222222", "name": "inner", "start_time": 1478293361.31, "end_time": 1478293361.32}]
        }, {"id": "3333333333333333", "name": "sibling", "start_time": 1478293361.33, "end_time": 1478293361.34}]
    })));
    let spans = spans(&converted);
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["api", "outer", "inner", "sibling"]);
    assert_eq!(spans[1].parent_span_id, spans[0].span_id);
    assert_eq!(spans[2].parent_span_id, spans[1].span_id);
    assert_eq!(spans[3].parent_span_id, spans[0].span_id);
    assert!(spans.iter().all(|s| s.trace_id == TRACE_BYTES));
}

#[test]
fn a_segment_keeps_its_upstream_parent() {
    let converted = convert_one(segment(json!({"parent_id": "abcdefabcdefabcd"})));
    let span = &spans(&converted)[0];
    assert_eq!(span.parent_span_id, [0xab, 0xcd, 0xef, 0xab, 0xcd, 0xef, 0xab, 0xcd]);
    assert_eq!(kind(span), SpanKind::Internal, "no client IP, no remote namespace");
}

#[test]
fn streamed_subsegments_get_their_parent_and_their_segments_service() {
    let streamed = segment(json!({
        "id": "225413e44dc641fe", "name": "db-query", "type": "subsegment",
        "parent_id": "6226467e3f845502", "namespace": "remote",
    }));
    let nested_streamed = segment(json!({
        "id": "335413e44dc641fe", "name": "row-fetch", "type": "subsegment", "parent_id": "225413e44dc641fe",
    }));
    let root = segment(json!({"name": "checkout"}));
    let (converted, rejected) = convert(&[segment_of(&streamed), segment_of(&nested_streamed), segment_of(&root)]);
    assert!(rejected.is_empty());
    assert_eq!(spans(&converted[0])[0].parent_span_id, [0x62, 0x26, 0x46, 0x7e, 0x3f, 0x84, 0x55, 0x02]);
    assert_eq!(kind(&spans(&converted[0])[0]), SpanKind::Client);
    assert_eq!(kind(&spans(&converted[1])[0]), SpanKind::Internal);
    for resource_spans in &converted {
        assert_eq!(resource_attribute(resource_spans, "service.name"), Some(&string("checkout")));
    }
    // Without its segment in the batch, the service is unknown.
    let alone = convert_one(streamed);
    assert_eq!(resource_attribute(&alone, "service.name"), Some(&string("unknown_service")));
    // Another trace's segment with the same id does not count.
    let mut other_trace = segment(json!({"name": "other"}));
    other_trace["trace_id"] = json!("1-5f84c7a1-000000000000000000000001");
    let streamed =
        segment(json!({"id": "225413e44dc641fe", "name": "q", "type": "subsegment", "parent_id": "6226467e3f845502"}));
    let (converted, _) = convert(&[segment_of(&streamed), segment_of(&other_trace)]);
    assert_eq!(resource_attribute(&converted[0], "service.name"), Some(&string("unknown_service")));
}

#[test]
fn a_subsegment_type_without_parent_is_a_segment() {
    let converted = convert_one(segment(json!({"type": "subsegment"})));
    assert_eq!(spans(&converted)[0].parent_span_id, Vec::<u8>::new());
    assert_eq!(resource_attribute(&converted, "service.name"), Some(&string("api")));
}

#[test]
fn span_kind_follows_segment_namespace_and_client_ip() {
    let sub = |extra: serde_json::Value| {
        let mut subsegment = json!({"id": "1111111111111111", "name": "DynamoDB", "start_time": 1478293361.3});
        if let (Some(base), serde_json::Value::Object(extra)) = (subsegment.as_object_mut(), extra) {
            base.extend(extra);
        }
        let converted = convert_one(segment(json!({"subsegments": [subsegment]})));
        spans(&converted)[1].clone()
    };
    let aws = sub(json!({"namespace": "aws"}));
    assert_eq!(kind(&aws), SpanKind::Client);
    assert_eq!(attribute(&aws.attributes, "aws.service"), Some(&string("DynamoDB")));
    let remote = sub(json!({"namespace": "remote"}));
    assert_eq!(kind(&remote), SpanKind::Client);
    assert_eq!(attribute(&remote.attributes, "aws.service"), None);
    assert_eq!(kind(&sub(json!({"namespace": "local"}))), SpanKind::Internal);
    assert_eq!(kind(&sub(json!({"namespace": "something-else"}))), SpanKind::Internal);
    assert_eq!(kind(&sub(json!({}))), SpanKind::Internal);
    assert_eq!(kind(&sub(json!({"http": {"request": {"client_ip": "10.0.0.1"}}}))), SpanKind::Server);
    let remote_with_ip = sub(json!({"namespace": "remote", "http": {"request": {"client_ip": "10.0.0.1"}}}));
    assert_eq!(kind(&remote_with_ip), SpanKind::Client, "the namespace wins, as in the awsxrayreceiver");
    // Segments follow the same rule: a request received from a client is SERVER.
    assert_eq!(kind(&spans(&convert_one(segment(json!({}))))[0]), SpanKind::Internal);
    let served = segment(json!({"http": {"request": {"client_ip": "10.0.0.1"}}}));
    assert_eq!(kind(&spans(&convert_one(served))[0]), SpanKind::Server);
}

#[test]
fn maps_http_fields_to_old_semantic_convention_keys() {
    let converted = convert_one(segment(json!({"http": {
        "request": {"method": "GET", "url": "http://example.com/a?b=1", "user_agent": "curl/8",
                    "client_ip": "10.0.0.1", "x_forwarded_for": true},
        "response": {"status": 200, "content_length": 266}
    }})));
    let attributes = &spans(&converted)[0].attributes;
    assert_eq!(attribute(attributes, "http.method"), Some(&string("GET")));
    assert_eq!(attribute(attributes, "http.url"), Some(&string("http://example.com/a?b=1")));
    assert_eq!(attribute(attributes, "http.user_agent"), Some(&string("curl/8")));
    assert_eq!(attribute(attributes, "http.client_ip"), Some(&string("10.0.0.1")));
    assert_eq!(attribute(attributes, "aws.xray.x_forwarded_for"), Some(&OtlpValue::BoolValue(true)));
    assert_eq!(attribute(attributes, "http.status_code"), Some(&OtlpValue::IntValue(200)));
    assert_eq!(attribute(attributes, "http.response_content_length"), Some(&OtlpValue::IntValue(266)));
    assert_eq!(status_code(&spans(&converted)[0]), StatusCode::Unset);
    // Lenient number types.
    let converted = convert_one(segment(json!({"http": {"response": {"status": "503", "content_length": "12"}}})));
    let attributes = &spans(&converted)[0].attributes;
    assert_eq!(attribute(attributes, "http.status_code"), Some(&OtlpValue::IntValue(503)));
    assert_eq!(attribute(attributes, "http.response_content_length"), Some(&string("12")));
}

#[test]
fn maps_http_status_and_flags_to_span_status() {
    let status_of = |extra: serde_json::Value| status_code(&spans(&convert_one(segment(extra)))[0]);
    let http = |code: i64| json!({"http": {"response": {"status": code}}});
    assert_eq!(status_of(http(200)), StatusCode::Unset);
    assert_eq!(status_of(http(302)), StatusCode::Unset);
    assert_eq!(status_of(http(399)), StatusCode::Unset);
    assert_eq!(status_of(http(404)), StatusCode::Error);
    assert_eq!(status_of(http(99)), StatusCode::Error);
    assert_eq!(
        status_of(json!({"http": {"response": {"status": 429}}, "error": true, "throttle": true})),
        StatusCode::Error
    );
    assert_eq!(status_of(json!({"http": {"response": {"status": 503}}, "fault": true})), StatusCode::Error);
    assert_eq!(status_of(json!({"fault": true})), StatusCode::Error);
    assert_eq!(status_of(json!({"error": true})), StatusCode::Error);
    assert_eq!(status_of(json!({"throttle": true})), StatusCode::Error);
    assert_eq!(status_of(json!({"fault": false, "error": false, "throttle": false})), StatusCode::Unset);
    let converted = convert_one(segment(json!({"cause": "4fd0c2e1bd1d6e07"})));
    let status = spans(&converted)[0].status.clone().expect("status");
    assert_eq!(status.code, StatusCode::Error as i32);
    assert_eq!(status.message, "4fd0c2e1bd1d6e07");
}

#[test]
fn exceptions_become_events_with_a_stacktrace() {
    let converted = convert_one(segment(json!({
        "fault": true,
        "cause": {"working_directory": "/app", "exceptions": [{
            "id": "4fd0c2e1bd1d6e07", "message": "division by zero", "type": "ZeroDivisionError",
            "remote": false, "truncated": 2, "skipped": 1,
            "stack": [{"path": "/app/main.py", "line": 12, "label": "handler"}, {"path": "/app/lib.py", "label": "divide"}]
        }, {"id": "5fd0c2e1bd1d6e07", "message": "wrapped", "cause": "4fd0c2e1bd1d6e07"}]}
    })));
    let span = &spans(&converted)[0];
    assert_eq!(status_code(span), StatusCode::Error);
    assert_eq!(span.events.len(), 2);
    let event = &span.events[0];
    assert_eq!(event.name, "exception");
    assert_eq!(event.time_unix_nano, span.end_time_unix_nano);
    assert_eq!(attribute(&event.attributes, "exception.type"), Some(&string("ZeroDivisionError")));
    assert_eq!(attribute(&event.attributes, "exception.message"), Some(&string("division by zero")));
    assert_eq!(attribute(&event.attributes, "aws.xray.exception.id"), Some(&string("4fd0c2e1bd1d6e07")));
    assert_eq!(attribute(&event.attributes, "aws.xray.exception.remote"), Some(&OtlpValue::BoolValue(false)));
    assert_eq!(attribute(&event.attributes, "aws.xray.exception.truncated"), Some(&OtlpValue::IntValue(2)));
    assert_eq!(attribute(&event.attributes, "aws.xray.exception.skipped"), Some(&OtlpValue::IntValue(1)));
    assert_eq!(
        attribute(&event.attributes, "exception.stacktrace"),
        Some(&string(
            "ZeroDivisionError: division by zero\n\tat handler(/app/main.py: 12)\n\tat divide(/app/lib.py: <unknown>)\n"
        ))
    );
    let wrapped = &span.events[1];
    assert_eq!(attribute(&wrapped.attributes, "aws.xray.exception.cause"), Some(&string("4fd0c2e1bd1d6e07")));
    assert_eq!(attribute(&wrapped.attributes, "exception.stacktrace"), None);
}

#[test]
fn annotations_become_typed_attributes_listed_in_aws_xray_annotations() {
    let converted = convert_one(segment(json!({"annotations": {
        "customer": "acme", "items": 3, "ratio": 0.5, "vip": true, "huge": 18446744073709551615_u64,
        "nothing": null, "SampleRate": 10
    }})));
    let attributes = &spans(&converted)[0].attributes;
    assert_eq!(attribute(attributes, "customer"), Some(&string("acme")));
    assert_eq!(attribute(attributes, "items"), Some(&OtlpValue::IntValue(3)));
    assert_eq!(attribute(attributes, "ratio"), Some(&OtlpValue::DoubleValue(0.5)));
    assert_eq!(attribute(attributes, "vip"), Some(&OtlpValue::BoolValue(true)));
    assert_eq!(attribute(attributes, "huge"), Some(&OtlpValue::DoubleValue(18446744073709551615.0)));
    assert_eq!(attribute(attributes, "nothing"), None);
    assert_eq!(attribute(attributes, "SampleRate"), Some(&OtlpValue::IntValue(10)));
    let mut keys = strings(attributes, "aws.xray.annotations");
    keys.sort();
    assert_eq!(keys, ["SampleRate", "customer", "huge", "items", "ratio", "vip"]);
}

#[test]
fn metadata_namespaces_become_json_strings() {
    let converted = convert_one(segment(json!({"metadata": {
        "default": {"order": {"id": 7, "lines": [1, 2]}},
        "debug": {"sampleRate": 20, "note": "x"}
    }})));
    let attributes = &spans(&converted)[0].attributes;
    let default = match attribute(attributes, "aws.xray.metadata.default") {
        Some(OtlpValue::StringValue(json)) => json.clone(),
        other => panic!("not a string: {other:?}"),
    };
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&default).expect("JSON"),
        json!({"order": {"id": 7, "lines": [1, 2]}})
    );
    assert!(attribute(attributes, "aws.xray.metadata.debug").is_some());
    assert_eq!(attribute(attributes, "sampleRate"), Some(&OtlpValue::IntValue(20)), "sample rate passed through");
    assert_eq!(attribute(attributes, "note"), None, "other metadata stays in the JSON string");
    assert_eq!(attribute(attributes, "aws.xray.annotations"), None);
}

#[test]
fn an_annotated_sample_rate_wins_over_metadata() {
    let converted = convert_one(segment(json!({
        "annotations": {"SampleRate": 5}, "metadata": {"default": {"SampleRate": 50}}
    })));
    assert_eq!(attribute(&spans(&converted)[0].attributes, "SampleRate"), Some(&OtlpValue::IntValue(5)));
}

#[test]
fn in_progress_segments_are_flagged_and_end_at_their_start() {
    let mut document = segment(json!({"in_progress": true}));
    document.as_object_mut().expect("object").remove("end_time");
    let converted = convert_one(document);
    let span = &spans(&converted)[0];
    assert_eq!(attribute(&span.attributes, "aws.xray.inprogress"), Some(&OtlpValue::BoolValue(true)));
    assert_eq!(span.end_time_unix_nano, span.start_time_unix_nano);
}

#[test]
fn maps_user_aws_sql_and_traced_fields() {
    let converted = convert_one(segment(json!({
        "user": "alice", "traced": true,
        "aws": {"account_id": "123456789012", "operation": "PutItem", "region": "eu-west-1",
                "request_id": "R1", "queue_url": "https://sqs/q", "table_name": "orders",
                "table_names": ["a", "b"], "retries": 2,
                "xray": {"sdk": "X-Ray for Go", "sdk_version": "1.8.0", "sampling_rule_name": "Default"}},
        "sql": {"url": "jdbc:postgresql://db.example.com:5432/shop?ssl=true", "database_type": "PostgreSQL",
                "sanitized_query": "SELECT * FROM t WHERE id = ?", "user": "app"}
    })));
    let attributes = &spans(&converted)[0].attributes;
    for (key, value) in [
        ("enduser.id", "alice"),
        ("aws.account_id", "123456789012"),
        ("aws.operation", "PutItem"),
        ("aws.region", "eu-west-1"),
        ("aws.request_id", "R1"),
        ("aws.queue_url", "https://sqs/q"),
        ("aws.table_name", "orders"),
        ("aws.xray.sampling_rule_name", "Default"),
        ("db.connection_string", "jdbc:postgresql://db.example.com:5432"),
        ("db.name", "shop"),
        ("db.system", "PostgreSQL"),
        ("db.statement", "SELECT * FROM t WHERE id = ?"),
        ("db.user", "app"),
    ] {
        assert_eq!(attribute(attributes, key), Some(&string(value)), "{key}");
    }
    assert_eq!(strings(attributes, "aws.table_names"), ["a", "b"]);
    assert_eq!(attribute(attributes, "aws.xray.retries"), Some(&OtlpValue::IntValue(2)));
    assert_eq!(attribute(attributes, "aws.xray.traced"), Some(&OtlpValue::BoolValue(true)));
    for (key, value) in [
        ("telemetry.sdk.name", "X-Ray for Go"),
        ("telemetry.sdk.language", "go"),
        ("telemetry.sdk.version", "1.8.0"),
        ("aws.xray.sdk", "X-Ray for Go"),
        ("aws.xray.sdk_version", "1.8.0"),
        ("cloud.account.id", "123456789012"),
        ("cloud.provider", "aws"),
    ] {
        assert_eq!(resource_attribute(&converted, key), Some(&string(value)), "{key}");
    }
}

#[test]
fn splits_sql_urls_into_connection_and_database() {
    assert_eq!(split_sql_url("postgresql://db:5432/shop"), ("postgresql://db:5432", Some("shop")));
    assert_eq!(split_sql_url("mysql://user@db/shop?ssl=true&x=a/b"), ("mysql://user@db", Some("shop")));
    assert_eq!(split_sql_url("jdbc:oracle:thin://h/a/b"), ("jdbc:oracle:thin://h/a", Some("b")));
    for whole in ["localhost", "db://host", "db://host/", "db:///shop", "a?b//c/d", "é?//ü/ö", ""] {
        assert_eq!(split_sql_url(whole), (whole, None), "{whole:?}");
    }
}

#[test]
fn a_sql_url_without_database_is_kept_whole() {
    let converted = convert_one(segment(json!({"sql": {"url": "localhost"}})));
    assert_eq!(attribute(&spans(&converted)[0].attributes, "db.connection_string"), Some(&string("localhost")));
    let converted = convert_one(segment(json!({"sql": {"connection_string": "Server=db;Database=shop"}})));
    let attributes = &spans(&converted)[0].attributes;
    assert_eq!(attribute(attributes, "db.connection_string"), Some(&string("Server=db;Database=shop")));
    assert_eq!(attribute(attributes, "db.name"), None);
}

#[test]
fn maps_origin_service_and_resource_arn_to_the_resource() {
    let converted = convert_one(segment(json!({
        "origin": "AWS::ECS::Fargate",
        "resource_arn": "arn:aws:ecs:eu-west-1:123456789012:task/abc",
        "service": {"version": "1.2.3", "runtime": "CPython", "runtime_version": "3.11.7"},
        "aws": {"ecs": {"container": "web", "container_id": "c0ffee", "cluster_arn": "arn:cluster"},
                "ec2": {"instance_id": "i-123", "availability_zone": "eu-west-1a", "instance_size": "t3.small", "ami_id": "ami-1"},
                "eks": {"cluster_name": "prod", "pod": "web-1"},
                "elastic_beanstalk": {"environment_name": "env", "version_label": "v9", "deployment_id": 4},
                "cloudwatch_logs": [{"log_group": "/app", "arn": "arn:logs:/app"}]}
    })));
    for (key, value) in [
        ("service.name", "api"),
        ("service.version", "1.2.3"),
        ("process.runtime.name", "CPython"),
        ("process.runtime.version", "3.11.7"),
        ("cloud.provider", "aws"),
        ("cloud.platform", "aws_ecs"),
        ("aws.ecs.launchtype", "fargate"),
        ("container.name", "web"),
        ("aws.ecs.cluster.arn", "arn:cluster"),
        ("host.id", "i-123"),
        ("host.type", "t3.small"),
        ("host.image.id", "ami-1"),
        ("cloud.availability_zone", "eu-west-1a"),
        ("k8s.cluster.name", "prod"),
        ("k8s.pod.name", "web-1"),
        ("service.namespace", "env"),
        ("service.instance.id", "4"),
        ("aws.xray.resource_arn", "arn:aws:ecs:eu-west-1:123456789012:task/abc"),
    ] {
        assert_eq!(resource_attribute(&converted, key), Some(&string(value)), "{key}");
    }
    let resource = &converted.resource.as_ref().expect("resource").attributes;
    assert_eq!(strings(resource, "aws.log.group.names"), ["/app"]);
    assert_eq!(strings(resource, "aws.log.group.arns"), ["arn:logs:/app"]);
    for (origin, platform) in [
        ("AWS::EC2::Instance", "aws_ec2"),
        ("AWS::EKS::Container", "aws_eks"),
        ("AWS::ElasticBeanstalk::Environment", "aws_elastic_beanstalk"),
        ("AWS::Lambda::Function", "aws_lambda"),
    ] {
        let converted = convert_one(segment(json!({"origin": origin})));
        assert_eq!(resource_attribute(&converted, "cloud.platform"), Some(&string(platform)), "{origin}");
    }
    let local = convert_one(segment(json!({})));
    assert_eq!(resource_attribute(&local, "cloud.provider"), None, "not claimed to run on AWS");
}

#[test]
fn converts_links() {
    let converted = convert_one(segment(json!({"links": [
        {"trace_id": "1-5f84c7a1-e7d1852db8c4fd35d88bf49b", "id": "1111111111111111", "attributes": {"kind": "batch"}},
        {"trace_id": "bad", "id": "1111111111111111"}
    ]})));
    let links = &spans(&converted)[0].links;
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].span_id, [0x11; 8]);
    assert_eq!(attribute(&links[0].attributes, "kind"), Some(&string("batch")));
}

#[test]
fn rejects_bad_documents_one_by_one() {
    let good = segment(json!({}));
    let cases = [
        (json!({"trace_id": TRACE, "id": "6226467e3f845502"}), "has no \"name\""),
        (segment(json!({"start_time": null})), "has no \"start_time\""),
        (segment(json!({"start_time": -5.0})), "invalid \"start_time\""),
        (segment(json!({"trace_id": "1-bad"})), "is not 1-<8 hex digits>-<24 hex digits>"),
        (segment(json!({"id": "xyz"})), "\"xyz\" is not 16 hex digits"),
        (segment(json!({"parent_id": "0000000000000000"})), "parent_id is all zeros"),
        (segment(json!({"subsegments": [{"id": "nothex", "name": "s", "start_time": 1.0}]})), "subsegment nothex"),
        (
            segment(json!({"subsegments": [{"id": "1111111111111111", "start_time": 1.0}]})),
            "subsegment 1111111111111111 has no \"name\"",
        ),
        (segment(json!({"start_time": "yesterday"})), "not a segment document"),
    ];
    for (document, why) in &cases {
        let (converted, rejected) = convert(&[segment_of(document)]);
        assert!(converted.is_empty(), "{document}");
        assert_eq!(rejected.len(), 1, "{document}");
        assert_eq!((rejected[0].items, rejected[0].reason), (1, crate::model::LossReason::Invalid));
        assert!(rejected[0].detail.contains(why), "{:?} does not mention {why:?}", rejected[0].detail);
    }
    // In a batch, each bad document is reported alone and the good one still converts.
    let mut batch: Vec<XraySegment> = cases.iter().map(|(document, _)| segment_of(document)).collect();
    batch.push(segment_of(&good));
    batch.push(XraySegment { body: Bytes::from_static(b"x"), trace_id: TRACE.into(), id: "6226467e3f845502".into() });
    let (converted, rejected) = convert(&batch);
    assert_eq!(converted.len(), 1);
    assert_eq!(rejected.len(), cases.len() + 1);
    let not_json = rejected.iter().find(|r| r.detail.contains("expected value")).expect("the body x is reported");
    assert!(
        not_json.detail.starts_with(&format!("6226467e3f845502 {TRACE}: not a segment document")),
        "{}",
        not_json.detail
    );
}

#[test]
fn embedded_subsegments_may_omit_the_trace_id() {
    let converted = convert_one(segment(json!({
        "subsegments": [{"id": "1111111111111111", "name": "s", "start_time": 1478293361.3, "end_time": 1478293361.4}]
    })));
    assert_eq!(spans(&converted)[1].trace_id, TRACE_BYTES);
}

/// Every leaf of `value`, as a JSON pointer.
fn leaf_pointers(value: &serde_json::Value, pointer: String, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                leaf_pointers(child, format!("{pointer}/{key}"), out);
            }
        }
        serde_json::Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                leaf_pointers(child, format!("{pointer}/{index}"), out);
            }
        }
        _ => out.push(pointer),
    }
}

#[test]
fn never_panics_whatever_type_a_field_has() {
    let datagram = include_str!("../../../tests/data/xray_golden/synthetic_fault_aws_sql.datagram");
    let (_, body) = datagram.split_once('\n').expect("header line");
    let original: serde_json::Value = serde_json::from_str(body).expect("JSON");
    let mut pointers = Vec::new();
    leaf_pointers(&original, String::new(), &mut pointers);
    assert!(pointers.len() > 80);
    let replacements = [
        json!(null),
        json!(0),
        json!(-1),
        json!(1e300),
        json!(u64::MAX),
        json!(""),
        json!("x"),
        json!([]),
        json!({}),
        json!(true),
    ];
    let (mut converted, mut rejected) = (0, 0);
    for pointer in &pointers {
        for replacement in &replacements {
            let mut document = original.clone();
            if let Some(leaf) = document.pointer_mut(pointer) {
                *leaf = replacement.clone();
            }
            let (spans, rejections) = convert(&[segment_of(&document)]);
            assert_eq!(spans.len() + rejections.len(), 1, "{pointer} = {replacement}");
            converted += spans.len();
            rejected += rejections.len();
        }
    }
    assert!(converted > 0 && rejected > 0, "{converted} converted, {rejected} rejected");
}
