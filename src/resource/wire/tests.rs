//! The wire insertion checked against prost: whatever it writes decodes to the request with
//! the attributes added to the decoded message ([`ResourceAttributes::add_to_decoded`]).

use std::collections::BTreeMap;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

use crate::resource::{ResourceAttributes, ResourceGrowthError};

fn attributes(pairs: &[(&str, &str)], override_app: bool) -> ResourceAttributes {
    let pairs: BTreeMap<_, _> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    ResourceAttributes::new(pairs, override_app).unwrap()
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

fn resource(pairs: &[(&str, &str)]) -> Option<Resource> {
    Some(Resource {
        attributes: pairs.iter().map(|(k, v)| kv(k, v)).collect(),
        dropped_attributes_count: 2,
        ..Default::default()
    })
}

fn spans(resource: Option<Resource>, count: u8) -> ResourceSpans {
    let spans = (0..count)
        .map(|n| Span { trace_id: vec![n; 16], span_id: vec![n; 8], name: format!("span {n}"), ..Default::default() })
        .collect();
    ResourceSpans {
        resource,
        scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
        schema_url: "https://s".into(),
    }
}

fn traces(entries: Vec<ResourceSpans>) -> Bytes {
    Bytes::from(ExportTraceServiceRequest { resource_spans: entries }.encode_to_vec())
}

/// The request's attributes per entry, as prost decodes them (key, value).
fn resource_attributes(request: &ExportTraceServiceRequest) -> Vec<Vec<(String, String)>> {
    request
        .resource_spans
        .iter()
        .map(|entry| {
            entry.resource.iter().flat_map(|r| &r.attributes).map(|kv| (kv.key.clone(), string_value(kv))).collect()
        })
        .collect()
}

fn string_value(kv: &KeyValue) -> String {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(text)) => text.clone(),
        other => format!("{other:?}"),
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// What the insertion must produce: the decoded request with the attributes added to it.
fn expected_traces(body: &[u8], attributes: &ResourceAttributes) -> ExportTraceServiceRequest {
    let mut request = ExportTraceServiceRequest::decode(body).unwrap();
    request.resource_spans.iter_mut().for_each(|entry| attributes.add_to_decoded(&mut entry.resource));
    request
}

fn added_traces(body: &Bytes, attributes: &ResourceAttributes) -> ExportTraceServiceRequest {
    let added = attributes.add_to_protobuf(body).unwrap().expect("readable");
    ExportTraceServiceRequest::decode(added).expect("prost decodes what the insertion wrote")
}

#[test]
fn the_attributes_follow_the_apps_own_in_every_entry() {
    let body = traces(vec![spans(resource(&[("service.name", "shop")]), 3), spans(resource(&[]), 1)]);
    let attributes = attributes(&[("deployment.environment.name", "prod"), ("team", "core")], false);
    let added = added_traces(&body, &attributes);
    assert_eq!(
        resource_attributes(&added),
        [
            pairs(&[("service.name", "shop"), ("deployment.environment.name", "prod"), ("team", "core")]),
            pairs(&[("deployment.environment.name", "prod"), ("team", "core")]),
        ]
    );
    assert_eq!(added, expected_traces(&body, &attributes));
    assert_eq!(added.resource_spans[0].scope_spans[0].spans.len(), 3, "spans are copied as they came");
}

#[test]
fn the_apps_value_is_kept_without_override() {
    let body = traces(vec![spans(resource(&[("deployment.environment.name", "dev"), ("a", "1")]), 1)]);
    let added = added_traces(&body, &attributes(&[("deployment.environment.name", "prod"), ("team", "core")], false));
    assert_eq!(
        resource_attributes(&added),
        [pairs(&[("deployment.environment.name", "dev"), ("a", "1"), ("team", "core")])]
    );
}

#[test]
fn override_replaces_the_apps_value() {
    let body = traces(vec![spans(resource(&[("deployment.environment.name", "dev"), ("a", "1")]), 1)]);
    let attributes = attributes(&[("deployment.environment.name", "prod")], true);
    let added = added_traces(&body, &attributes);
    assert_eq!(resource_attributes(&added), [pairs(&[("a", "1"), ("deployment.environment.name", "prod")])]);
    assert_eq!(added, expected_traces(&body, &attributes));
}

#[test]
fn an_entry_without_a_resource_gets_one() {
    let body = traces(vec![spans(None, 2)]);
    let added = added_traces(&body, &attributes(&[("k", "v")], false));
    assert_eq!(resource_attributes(&added), [pairs(&[("k", "v")])]);
    assert_eq!(added.resource_spans[0].resource.as_ref().unwrap().dropped_attributes_count, 0);
}

#[test]
fn a_request_that_has_every_attribute_is_returned_without_a_copy() {
    let body = traces(vec![spans(resource(&[("k", "app")]), 1)]);
    let same = attributes(&[("k", "v")], false).add_to_protobuf(&body).unwrap().unwrap();
    assert_eq!(same.as_ptr(), body.as_ptr());
    let untouched = ResourceAttributes::none().add_to_protobuf(&body).unwrap().unwrap();
    assert_eq!(untouched.as_ptr(), body.as_ptr());
}

#[test]
fn a_resource_sent_in_two_parts_is_read_as_one() {
    // Two `resource` fields in one entry: prost merges them, and so must the key scan.
    let mut entry = spans(resource(&[("k", "app")]), 1).encode_to_vec();
    let second = Resource { attributes: vec![kv("other", "x")], ..Default::default() }.encode_to_vec();
    entry.push(0x0a);
    prost::encoding::encode_varint(second.len() as u64, &mut entry);
    entry.extend_from_slice(&second);
    let mut body = vec![0x0a];
    prost::encoding::encode_varint(entry.len() as u64, &mut body);
    body.extend_from_slice(&entry);
    let body = Bytes::from(body);
    let attributes = attributes(&[("k", "v"), ("new", "n")], false);
    let added = added_traces(&body, &attributes);
    assert_eq!(resource_attributes(&added), [pairs(&[("k", "app"), ("other", "x"), ("new", "n")])]);
}

#[test]
fn logs_and_metrics_get_the_attributes_too() {
    let attributes = attributes(&[("k", "v")], false);
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(&[("service.name", "s")]),
            scope_logs: vec![ScopeLogs { log_records: vec![LogRecord::default()], ..Default::default() }],
            ..Default::default()
        }],
    };
    let added = attributes.add_to_protobuf(&Bytes::from(logs.encode_to_vec())).unwrap().unwrap();
    let added = ExportLogsServiceRequest::decode(added).unwrap();
    let keys: Vec<_> = added.resource_logs[0].resource.as_ref().unwrap().attributes.iter().map(|kv| &kv.key).collect();
    assert_eq!(keys, ["service.name", "k"]);
    assert_eq!(added.resource_logs[0].scope_logs, logs.resource_logs[0].scope_logs);

    let gauge = Metric {
        name: "m".into(),
        data: Some(metric::Data::Gauge(Gauge { data_points: vec![NumberDataPoint::default()] })),
        ..Default::default()
    };
    let metrics = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: None,
            scope_metrics: vec![ScopeMetrics { metrics: vec![gauge], ..Default::default() }],
            ..Default::default()
        }],
    };
    let added = attributes.add_to_protobuf(&Bytes::from(metrics.encode_to_vec())).unwrap().unwrap();
    let added = ExportMetricsServiceRequest::decode(added).unwrap();
    assert_eq!(string_value(&added.resource_metrics[0].resource.as_ref().unwrap().attributes[0]), "v");
    assert_eq!(added.resource_metrics[0].scope_metrics, metrics.resource_metrics[0].scope_metrics);
}

#[test]
fn a_captured_sdk_request_decodes_with_the_attributes() {
    let body = Bytes::from_static(include_bytes!("../../../tests/data/run1_004_otlp_http_v1_traces.bin"));
    for override_app in [false, true] {
        let attributes =
            attributes(&[("service.name", "renamed"), ("deployment.environment.name", "prod")], override_app);
        assert_eq!(added_traces(&body, &attributes), expected_traces(&body, &attributes));
    }
}

#[test]
fn many_tiny_entries_are_refused_rather_than_multiplied() {
    // 300 000 empty entries (2 bytes each): 600 kB that would grow by ~10 MB.
    let body = Bytes::from([0x0a, 0x00].repeat(300_000));
    let attributes = attributes(&[("deployment.environment.name", "production-environment")], false);
    let error = attributes.add_to_protobuf(&body).unwrap_err();
    assert_eq!(error, ResourceGrowthError { resources: 300_000, growth: error.growth });
    assert!(error.growth > 1024 * 1024, "{error}");
}

#[test]
fn bytes_the_walk_cannot_read_are_left_to_prost() {
    let attributes = attributes(&[("k", "v")], false);
    // A wrong wire type for an entry, a length past the end, a bad varint.
    for bad in
        [&[0x08, 0x01][..], &[0x0a, 0x05, 0x0a], &[0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]]
    {
        assert_eq!(attributes.add_to_protobuf(&Bytes::copy_from_slice(bad)), Ok(None), "{bad:?}");
        assert!(ExportTraceServiceRequest::decode(bad).is_err());
    }
}

/// Every truncation and many single-byte changes of a valid request: what prost decodes gets
/// exactly the attributes; what it refuses is left alone or still refused.
#[test]
fn never_differs_from_adding_to_the_decoded_request() {
    let bytes = traces(vec![spans(resource(&[("service.name", "s"), ("k", "app")]), 2), spans(None, 1)]).to_vec();
    let attributes = attributes(&[("k", "v"), ("z", "last")], false);
    let mut readable = 0;
    let mut check = |candidate: &[u8]| {
        let body = Bytes::copy_from_slice(candidate);
        let Ok(added) = attributes.add_to_protobuf(&body) else { return };
        match ExportTraceServiceRequest::decode(candidate) {
            Ok(_) => {
                let added = added.expect("prost reads it, so the walk must");
                assert_eq!(ExportTraceServiceRequest::decode(added).unwrap(), expected_traces(candidate, &attributes));
                readable += 1;
            }
            Err(_) => {
                if let Some(added) = added {
                    assert!(ExportTraceServiceRequest::decode(added).is_err(), "{candidate:?}");
                }
            }
        }
    };
    for len in 0..bytes.len() {
        check(&bytes[..len]);
    }
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for at in 0..bytes.len() {
        for _ in 0..8 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut changed = bytes.clone();
            changed[at] = state as u8;
            check(&changed);
        }
    }
    assert!(readable > 100, "only {readable} variants decoded");
}
