//! Decoding OTLP request bodies, protobuf or OTLP/JSON, into checked requests: the generated
//! request types, their item counts and the id checks every decoded request must pass.
//!
//! OTLP/JSON (per the OTLP specification) differs from plain proto3 JSON: trace and span ids
//! are hex (either case), enums are integers, int64 values may be strings or numbers, keys are
//! lowerCamelCase and unknown keys are ignored. `opentelemetry-proto`'s serde derives follow
//! those rules, but ignoring unknown keys means a snake_case `"trace_id"` silently leaves the
//! id empty, and nothing there checks id lengths. So after decoding (JSON *and* protobuf),
//! [`ExportRequest::check_ids`] enforces the lengths the data model requires:
//!
//! | where | trace id | span id |
//! |---|---|---|
//! | span | 16 bytes | 8 bytes (parent: empty or 8) |
//! | span link | 16 bytes | 8 bytes |
//! | log record | empty or 16 | empty or 8 |
//! | metric exemplar | empty or 16 | empty or 8 |
//!
//! All-zero ids are not refused (the data model calls them invalid, but refusing them would
//! drop data the OpenTelemetry Collector passes on).

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::Exemplar;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde::de::DeserializeOwned;

use crate::model::{Batch, OtlpRequest, Signal, count};
use crate::receiver::otlp::wire;
use crate::resource::{ResourceAttributes, ResourceGrowthError};

const TRACE_ID_LEN: usize = 16;
const SPAN_ID_LEN: usize = 8;

/// How a request body (and so its response) is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Protobuf,
    Json,
}

impl Format {
    /// The format named by a `Content-Type` header value; parameters such as
    /// `; charset=utf-8` are ignored. `None` for anything else.
    pub fn from_content_type(value: &[u8]) -> Option<Format> {
        let value = std::str::from_utf8(value).ok()?;
        let media_type = value.split(';').next().unwrap_or_default().trim();
        if media_type.eq_ignore_ascii_case("application/x-protobuf") {
            Some(Format::Protobuf)
        } else if media_type.eq_ignore_ascii_case("application/json") {
            Some(Format::Json)
        } else {
            None
        }
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}

/// Why a body is not a valid OTLP request.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("invalid OTLP/JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    #[error(transparent)]
    ResourceGrowth(#[from] ResourceGrowthError),
}

/// An id of the wrong length, and where it is.
#[derive(Debug, thiserror::Error)]
#[error("{location}.{field} is {found} bytes long; it must be {expected}")]
pub struct InvalidId {
    /// Path to the item, e.g. `resource_spans[0].scope_spans[1].spans[7]`.
    pub location: String,
    pub field: &'static str,
    pub found: usize,
    pub expected: &'static str,
}

/// A checked request (decoded, or for protobuf possibly only checked), its item count and its
/// size as protobuf.
#[derive(Debug)]
pub(crate) struct Decoded<R> {
    pub request: OtlpRequest<R>,
    /// Spans, log records or data points.
    pub items: usize,
    /// Protobuf-encoded length, used to size the batch in the lanes' queues.
    pub encoded_len: usize,
}

/// One of the three OTLP export requests.
pub(crate) trait ExportRequest: prost::Message + Default + DeserializeOwned + Send + Sized + 'static {
    const SIGNAL: Signal;
    /// Spans, log records or data points in the request.
    fn items(&self) -> usize;
    /// Checks every trace and span id in the request (see the module docs for the rules).
    fn check_ids(&self) -> Result<(), InvalidId>;
    /// The resource of every `Resource{Spans,Logs,Metrics}` entry.
    fn resources(&mut self) -> impl Iterator<Item = &mut Option<Resource>>;
    /// Wraps a checked request of `items` items for the router.
    fn into_batch(request: OtlpRequest<Self>, items: usize, encoded_len: usize) -> Batch;
    /// Items in a protobuf body that is certainly valid, checked without decoding it; `None`
    /// when it must be decoded (to find its error, or because this signal has no such check).
    fn check_protobuf(_body: &[u8]) -> Option<usize> {
        None
    }
}

/// Decodes and checks a request body, adding `resource`'s attributes first. An empty body is an
/// empty request in either format. Protobuf keeps its bytes (with the attributes added on the
/// wire, see `crate::resource::wire`), for lanes that forward OTLP as it came, and traces are
/// only checked ([`wire`]): the first lane that needs their spans decodes them.
pub(crate) fn decode<R: ExportRequest>(
    body: Bytes,
    format: Format,
    resource: &ResourceAttributes,
) -> Result<Decoded<R>, DecodeError> {
    if body.is_empty() {
        return Ok(Decoded { request: OtlpRequest::from_decoded(R::default()), items: 0, encoded_len: 0 });
    }
    let body_len = body.len();
    // Protobuf the wire walk cannot read gets the attributes once prost has decoded it.
    let (body, add_to_decoded) = match format {
        Format::Protobuf => match resource.add_to_protobuf(&body)? {
            Some(added) => (added, false),
            None => (body, true),
        },
        Format::Json => (body, !resource.is_empty()),
    };
    if !add_to_decoded
        && format == Format::Protobuf
        && let Some(items) = R::check_protobuf(&body)
    {
        let encoded_len = body.len();
        return Ok(Decoded { request: OtlpRequest::from_checked_protobuf(body), items, encoded_len });
    }
    let mut request: R = match format {
        Format::Protobuf => R::decode(&*body)?,
        Format::Json => serde_json::from_slice(&body)?,
    };
    if add_to_decoded {
        let resources = request.resources().count();
        let growth = resources * resource.encoded_len(u64::MAX);
        ResourceAttributes::check_growth(body_len, growth, resources)?;
        request.resources().for_each(|entry| resource.add_to_decoded(entry));
    }
    request.check_ids()?;
    let items = request.items();
    let (request, encoded_len) = match format {
        Format::Protobuf if !add_to_decoded => {
            let encoded_len = body.len();
            (OtlpRequest::from_protobuf_and_decoded(body, request), encoded_len)
        }
        _ => {
            let encoded_len = request.encoded_len();
            (OtlpRequest::from_decoded(request), encoded_len)
        }
    };
    Ok(Decoded { request, items, encoded_len })
}

impl ExportRequest for ExportTraceServiceRequest {
    const SIGNAL: Signal = Signal::Traces;

    fn items(&self) -> usize {
        count::spans(self)
    }

    fn check_ids(&self) -> Result<(), InvalidId> {
        for (r, resource) in self.resource_spans.iter().enumerate() {
            for (s, scope) in resource.scope_spans.iter().enumerate() {
                for (i, span) in scope.spans.iter().enumerate() {
                    let at = || format!("resource_spans[{r}].scope_spans[{s}].spans[{i}]");
                    require(&span.trace_id, Id::Trace, at, "trace_id")?;
                    require(&span.span_id, Id::Span, at, "span_id")?;
                    allow_empty(&span.parent_span_id, Id::Span, at, "parent_span_id")?;
                    for (l, link) in span.links.iter().enumerate() {
                        let at = || format!("{}.links[{l}]", at());
                        require(&link.trace_id, Id::Trace, at, "trace_id")?;
                        require(&link.span_id, Id::Span, at, "span_id")?;
                    }
                }
            }
        }
        Ok(())
    }

    fn resources(&mut self) -> impl Iterator<Item = &mut Option<Resource>> {
        self.resource_spans.iter_mut().map(|entry| &mut entry.resource)
    }

    fn into_batch(request: OtlpRequest<Self>, items: usize, encoded_len: usize) -> Batch {
        Batch::otlp_traces(request, items, encoded_len)
    }

    fn check_protobuf(body: &[u8]) -> Option<usize> {
        wire::check_traces(body)
    }
}

impl ExportRequest for ExportLogsServiceRequest {
    const SIGNAL: Signal = Signal::Logs;

    fn items(&self) -> usize {
        count::log_records(self)
    }

    fn check_ids(&self) -> Result<(), InvalidId> {
        for (r, resource) in self.resource_logs.iter().enumerate() {
            for (s, scope) in resource.scope_logs.iter().enumerate() {
                for (i, record) in scope.log_records.iter().enumerate() {
                    let at = || format!("resource_logs[{r}].scope_logs[{s}].log_records[{i}]");
                    allow_empty(&record.trace_id, Id::Trace, at, "trace_id")?;
                    allow_empty(&record.span_id, Id::Span, at, "span_id")?;
                }
            }
        }
        Ok(())
    }

    fn resources(&mut self) -> impl Iterator<Item = &mut Option<Resource>> {
        self.resource_logs.iter_mut().map(|entry| &mut entry.resource)
    }

    fn into_batch(request: OtlpRequest<Self>, items: usize, encoded_len: usize) -> Batch {
        Batch::otlp_logs(request, items, encoded_len)
    }
}

impl ExportRequest for ExportMetricsServiceRequest {
    const SIGNAL: Signal = Signal::Metrics;

    fn items(&self) -> usize {
        count::data_points(self)
    }

    fn check_ids(&self) -> Result<(), InvalidId> {
        for (r, resource) in self.resource_metrics.iter().enumerate() {
            for (s, scope) in resource.scope_metrics.iter().enumerate() {
                for (m, metric) in scope.metrics.iter().enumerate() {
                    let at = || format!("resource_metrics[{r}].scope_metrics[{s}].metrics[{m}]");
                    check_exemplars(metric.data.as_ref(), at)?;
                }
            }
        }
        Ok(())
    }

    fn resources(&mut self) -> impl Iterator<Item = &mut Option<Resource>> {
        self.resource_metrics.iter_mut().map(|entry| &mut entry.resource)
    }

    fn into_batch(request: OtlpRequest<Self>, items: usize, encoded_len: usize) -> Batch {
        Batch::otlp_metrics(request, items, encoded_len)
    }
}

/// Checks the exemplars of every data point of one metric (summaries have none).
fn check_exemplars(data: Option<&Data>, at: impl Fn() -> String) -> Result<(), InvalidId> {
    let check_point = |p: usize, exemplars: &[Exemplar]| -> Result<(), InvalidId> {
        for (e, exemplar) in exemplars.iter().enumerate() {
            let at = || format!("{}.data_points[{p}].exemplars[{e}]", at());
            allow_empty(&exemplar.trace_id, Id::Trace, at, "trace_id")?;
            allow_empty(&exemplar.span_id, Id::Span, at, "span_id")?;
        }
        Ok(())
    };
    match data {
        Some(Data::Gauge(gauge)) => {
            gauge.data_points.iter().enumerate().try_for_each(|(p, d)| check_point(p, &d.exemplars))
        }
        Some(Data::Sum(sum)) => sum.data_points.iter().enumerate().try_for_each(|(p, d)| check_point(p, &d.exemplars)),
        Some(Data::Histogram(histogram)) => {
            histogram.data_points.iter().enumerate().try_for_each(|(p, d)| check_point(p, &d.exemplars))
        }
        Some(Data::ExponentialHistogram(histogram)) => {
            histogram.data_points.iter().enumerate().try_for_each(|(p, d)| check_point(p, &d.exemplars))
        }
        Some(Data::Summary(_)) | None => Ok(()),
    }
}

/// The two kinds of id and their lengths.
#[derive(Clone, Copy)]
enum Id {
    Trace,
    Span,
}

impl Id {
    fn len(self) -> usize {
        match self {
            Id::Trace => TRACE_ID_LEN,
            Id::Span => SPAN_ID_LEN,
        }
    }

    fn required(self) -> &'static str {
        match self {
            Id::Trace => "16 bytes",
            Id::Span => "8 bytes",
        }
    }

    fn optional(self) -> &'static str {
        match self {
            Id::Trace => "empty or 16 bytes",
            Id::Span => "empty or 8 bytes",
        }
    }
}

/// An id that must be present. `at` builds the location only when the id is wrong.
fn require(id: &[u8], kind: Id, at: impl FnOnce() -> String, field: &'static str) -> Result<(), InvalidId> {
    if id.len() == kind.len() {
        return Ok(());
    }
    Err(InvalidId { location: at(), field, found: id.len(), expected: kind.required() })
}

/// An id that may be left empty.
fn allow_empty(id: &[u8], kind: Id, at: impl FnOnce() -> String, field: &'static str) -> Result<(), InvalidId> {
    if id.is_empty() || id.len() == kind.len() {
        return Ok(());
    }
    Err(InvalidId { location: at(), field, found: id.len(), expected: kind.optional() })
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValueKind;
    use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
    use prost::Message;

    use super::*;

    /// [`super::decode`] from a slice, adding no attributes.
    fn decode<R: ExportRequest>(body: &[u8], format: Format) -> Result<Decoded<R>, DecodeError> {
        super::decode(Bytes::copy_from_slice(body), format, &ResourceAttributes::none())
    }

    const TRACE_ID: &str = "5b8efff798038103d269b633813fc60c";
    const SPAN_ID: &str = "eee19b7ec3c1b174";

    fn traces_json(span: &str) -> String {
        format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[]}},"scopeSpans":[{{"scope":{{"name":"t"}},"spans":[{span}]}}]}}]}}"#
        )
    }

    fn decode_traces(json: &str) -> Result<ExportTraceServiceRequest, DecodeError> {
        decode::<ExportTraceServiceRequest>(json.as_bytes(), Format::Json)
            .map(|decoded| decoded.request.into_decoded().expect("decoded"))
    }

    fn only_span(request: &ExportTraceServiceRequest) -> &opentelemetry_proto::tonic::trace::v1::Span {
        &request.resource_spans[0].scope_spans[0].spans[0]
    }

    #[test]
    fn parses_content_types_ignoring_parameters_and_case() {
        assert_eq!(Format::from_content_type(b"application/x-protobuf"), Some(Format::Protobuf));
        assert_eq!(Format::from_content_type(b"application/json; charset=utf-8"), Some(Format::Json));
        assert_eq!(Format::from_content_type(b"Application/JSON ;charset=UTF-8"), Some(Format::Json));
        assert_eq!(Format::from_content_type(b"text/plain"), None);
        assert_eq!(Format::from_content_type(b"application/protobuf"), None);
        assert_eq!(Format::from_content_type(b""), None);
        assert_eq!(Format::from_content_type(b"\xff"), None);
    }

    #[test]
    fn hex_ids_decode_in_either_case() {
        for (trace_id, span_id) in [(TRACE_ID, SPAN_ID), (&*TRACE_ID.to_uppercase(), &*SPAN_ID.to_uppercase())] {
            let json = traces_json(&format!(r#"{{"traceId":"{trace_id}","spanId":"{span_id}","name":"x"}}"#));
            let request = decode_traces(&json).expect("valid span");
            assert_eq!(hex::encode(&only_span(&request).trace_id), TRACE_ID);
            assert_eq!(hex::encode(&only_span(&request).span_id), SPAN_ID);
        }
    }

    #[test]
    fn int64_decodes_from_a_string_or_a_number() {
        let json = traces_json(&format!(
            r#"{{"traceId":"{TRACE_ID}","spanId":"{SPAN_ID}","startTimeUnixNano":"1795239301147000000","endTimeUnixNano":1795239301147176674,
               "attributes":[{{"key":"a","value":{{"intValue":"-7"}}}},{{"key":"b","value":{{"intValue":42}}}}]}}"#
        ));
        let request = decode_traces(&json).expect("valid span");
        let span = only_span(&request);
        assert_eq!(span.start_time_unix_nano, 1_795_239_301_147_000_000);
        assert_eq!(span.end_time_unix_nano, 1_795_239_301_147_176_674);
        let ints: Vec<_> = span.attributes.iter().map(|kv| kv.value.as_ref().and_then(|v| v.value.clone())).collect();
        use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
        assert_eq!(ints, vec![Some(Any::IntValue(-7)), Some(Any::IntValue(42))]);
    }

    #[test]
    fn enums_are_integers_and_names_are_refused() {
        let json =
            traces_json(&format!(r#"{{"traceId":"{TRACE_ID}","spanId":"{SPAN_ID}","kind":2,"status":{{"code":2}}}}"#));
        let request = decode_traces(&json).expect("valid span");
        assert_eq!(only_span(&request).kind, SpanKind::Server as i32);
        assert_eq!(only_span(&request).status.as_ref().map(|s| s.code), Some(2));
        let named =
            traces_json(&format!(r#"{{"traceId":"{TRACE_ID}","spanId":"{SPAN_ID}","kind":"SPAN_KIND_SERVER"}}"#));
        assert!(matches!(decode_traces(&named), Err(DecodeError::Json(_))));
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let json = traces_json(&format!(
            r#"{{"traceId":"{TRACE_ID}","spanId":"{SPAN_ID}","futureField":{{"nested":[1,2,3]}},"name":"x"}}"#
        ));
        let request = decode_traces(&json).expect("unknown field ignored");
        assert_eq!(only_span(&request).name, "x");
        let top = format!(r#"{{"somethingNew":true,{}"#, &traces_json("")[1..]);
        assert!(decode_traces(&top).is_ok());
    }

    #[test]
    fn wrong_length_ids_are_refused() {
        let cases = [
            (format!(r#""traceId":"{}","spanId":"{SPAN_ID}""#, &TRACE_ID[..30]), "trace_id is 15 bytes"),
            (format!(r#""traceId":"{TRACE_ID}00","spanId":"{SPAN_ID}""#), "trace_id is 17 bytes"),
            (format!(r#""traceId":"{TRACE_ID}","spanId":"{}""#, &SPAN_ID[..14]), "span_id is 7 bytes"),
            (format!(r#""traceId":"{TRACE_ID}","spanId":"""#), "span_id is 0 bytes"),
            (format!(r#""traceId":"{TRACE_ID}","spanId":"{SPAN_ID}","parentSpanId":"abcd""#), "parent_span_id is 2"),
            (
                format!(
                    r#""traceId":"{TRACE_ID}","spanId":"{SPAN_ID}","links":[{{"traceId":"{TRACE_ID}","spanId":"ab"}}]"#
                ),
                "links[0].span_id is 1 bytes",
            ),
        ];
        for (fields, expected) in cases {
            let error = decode_traces(&traces_json(&format!("{{{fields}}}"))).expect_err(&fields);
            assert!(matches!(error, DecodeError::InvalidId(_)), "{fields}: {error}");
            assert!(error.to_string().contains(expected), "{fields}: {error}");
        }
    }

    #[test]
    fn odd_length_or_non_hex_ids_are_refused() {
        for bad in [&TRACE_ID[..31], "zz8efff798038103d269b633813fc60c"] {
            let json = traces_json(&format!(r#"{{"traceId":"{bad}","spanId":"{SPAN_ID}"}}"#));
            assert!(decode_traces(&json).is_err(), "{bad}");
        }
    }

    #[test]
    fn snake_case_id_keys_leave_ids_empty_and_are_refused() {
        let json = traces_json(&format!(r#"{{"trace_id":"{TRACE_ID}","span_id":"{SPAN_ID}"}}"#));
        let error = decode_traces(&json).expect_err("snake_case keys");
        assert!(error.to_string().contains("spans[0].trace_id is 0 bytes"), "{error}");
    }

    #[test]
    fn a_parent_span_id_may_be_empty() {
        let json = traces_json(&format!(r#"{{"traceId":"{TRACE_ID}","spanId":"{SPAN_ID}","parentSpanId":""}}"#));
        assert!(decode_traces(&json).is_ok());
    }

    #[test]
    fn log_record_ids_may_be_empty_but_not_the_wrong_length() {
        let logs = |record: &str| {
            format!(r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{record}]}}]}}]}}"#).into_bytes()
        };
        let ok = decode::<ExportLogsServiceRequest>(&logs(r#"{"body":{"stringValue":"hi"}}"#), Format::Json)
            .expect("log without ids");
        assert_eq!(ok.items, 1);
        let linked = logs(&format!(r#"{{"traceId":"{TRACE_ID}","spanId":"{SPAN_ID}","timeUnixNano":"1"}}"#));
        assert!(decode::<ExportLogsServiceRequest>(&linked, Format::Json).is_ok());
        let bad = logs(r#"{"traceId":"abcd"}"#);
        let error = decode::<ExportLogsServiceRequest>(&bad, Format::Json).expect_err("short trace id");
        assert!(error.to_string().contains("log_records[0].trace_id is 2 bytes"), "{error}");
    }

    #[test]
    fn metric_exemplar_ids_are_checked() {
        let metrics = |exemplar: &str| {
            format!(
                r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{{"name":"m","sum":{{"dataPoints":[
                    {{"asInt":"5","timeUnixNano":"1","exemplars":[{exemplar}]}}],"aggregationTemporality":2,"isMonotonic":true}}}}]}}]}}]}}"#
            )
            .into_bytes()
        };
        let ok = decode::<ExportMetricsServiceRequest>(
            &metrics(&format!(r#"{{"spanId":"{SPAN_ID}","asDouble":1.5}}"#)),
            Format::Json,
        )
        .expect("valid exemplar");
        assert_eq!(ok.items, 1);
        let Some(Data::Sum(sum)) = &ok.request.decoded().unwrap().resource_metrics[0].scope_metrics[0].metrics[0].data
        else {
            panic!("expected a sum");
        };
        assert_eq!(sum.data_points[0].value, Some(Value::AsInt(5)));
        let bad = metrics(r#"{"spanId":"abcdef"}"#);
        let error = decode::<ExportMetricsServiceRequest>(&bad, Format::Json).expect_err("short span id");
        assert!(error.to_string().contains("data_points[0].exemplars[0].span_id is 3 bytes"), "{error}");
    }

    #[test]
    fn protobuf_input_gets_the_same_id_checks() {
        let json = traces_json(&format!(r#"{{"traceId":"{TRACE_ID}","spanId":"{SPAN_ID}"}}"#));
        let mut request = decode_traces(&json).expect("valid span");
        request.resource_spans[0].scope_spans[0].spans[0].trace_id.truncate(8);
        let bytes = request.encode_to_vec();
        let error = decode::<ExportTraceServiceRequest>(&bytes, Format::Protobuf).expect_err("short trace id");
        assert!(matches!(error, DecodeError::InvalidId(_)), "{error}");
    }

    #[test]
    fn an_empty_body_is_an_empty_request_in_both_formats() {
        for format in [Format::Protobuf, Format::Json] {
            let decoded = decode::<ExportTraceServiceRequest>(b"", format).expect("empty body");
            assert_eq!(decoded.items, 0);
        }
    }

    #[test]
    fn garbage_is_refused_in_both_formats() {
        assert!(matches!(
            decode::<ExportTraceServiceRequest>(b"\xff\xff\xff", Format::Protobuf),
            Err(DecodeError::Protobuf(_))
        ));
        assert!(matches!(decode::<ExportTraceServiceRequest>(b"{not json", Format::Json), Err(DecodeError::Json(_))));
    }

    #[test]
    fn deeply_nested_values_are_refused_not_a_stack_overflow() {
        let depth = 5000;
        let nested = format!("{}{{}}{}", r#"{"arrayValue":{"values":["#.repeat(depth), "]}}".repeat(depth));
        let json = traces_json(&format!(
            r#"{{"traceId":"{TRACE_ID}","spanId":"{SPAN_ID}","attributes":[{{"key":"deep","value":{nested}}}]}}"#
        ));
        assert!(matches!(decode_traces(&json), Err(DecodeError::Json(_))));

        assert!(decode::<ExportTraceServiceRequest>(&nested_protobuf(40), Format::Protobuf).is_ok());
        assert!(matches!(
            decode::<ExportTraceServiceRequest>(&nested_protobuf(200), Format::Protobuf),
            Err(DecodeError::Protobuf(_))
        ));
    }

    /// A one-span request whose attribute value nests `depth` arrays deep (each level is two
    /// protobuf messages, against prost's limit of 100).
    fn nested_protobuf(depth: usize) -> Vec<u8> {
        use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
        use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue};
        let json = traces_json(&format!(r#"{{"traceId":"{TRACE_ID}","spanId":"{SPAN_ID}"}}"#));
        let mut request = decode_traces(&json).expect("valid span");
        let mut value = AnyValue::default();
        for _ in 0..depth {
            value = AnyValue { value: Some(Any::ArrayValue(ArrayValue { values: vec![value] })) };
        }
        let attribute = KeyValue { key: "deep".into(), value: Some(value), ..Default::default() };
        request.resource_spans[0].scope_spans[0].spans[0].attributes.push(attribute);
        request.encode_to_vec()
    }

    #[test]
    fn captured_sdk_payloads_decode() {
        let python_protobuf = include_bytes!("../../../tests/data/run1_004_otlp_http_v1_traces.bin");
        let decoded = decode::<ExportTraceServiceRequest>(python_protobuf, Format::Protobuf).expect("python protobuf");
        assert!(decoded.items > 0);
        assert_eq!(decoded.encoded_len, python_protobuf.len());
        let python_json = include_bytes!("../../../tests/data/run2json_004_otlp_http_v1_traces.bin");
        let decoded = decode::<ExportTraceServiceRequest>(python_json, Format::Json).expect("python json");
        assert!(decoded.items > 0);
        let node_json = include_bytes!("../../../tests/data/run6nodejson_001_otlp_http_v1_traces.bin");
        let decoded = decode::<ExportTraceServiceRequest>(node_json, Format::Json).expect("node json");
        let span = only_span(decoded.request.decoded().unwrap());
        assert_eq!(hex::encode(&span.trace_id), "6e358fd76005134f794386eed9efe581");
        assert_eq!(span.end_time_unix_nano, 1_795_239_301_147_176_674);
        assert_eq!(decoded.encoded_len, decoded.request.decoded().unwrap().encoded_len());
    }

    fn environment(override_app: bool) -> ResourceAttributes {
        let pairs = [("deployment.environment.name".to_string(), "prod".to_string())];
        ResourceAttributes::new(pairs.into_iter().collect(), override_app).unwrap()
    }

    fn resource_keys(request: &ExportTraceServiceRequest) -> Vec<&str> {
        let resource = request.resource_spans[0].resource.as_ref().expect("a resource");
        resource.attributes.iter().map(|kv| kv.key.as_str()).collect()
    }

    #[test]
    fn protobuf_traces_get_the_resource_attributes_and_are_still_only_checked() {
        let json = traces_json(&format!(r#"{{"traceId":"{TRACE_ID}","spanId":"{SPAN_ID}"}}"#));
        let body = Bytes::from(decode_traces(&json).unwrap().encode_to_vec());
        let decoded = super::decode::<ExportTraceServiceRequest>(body.clone(), Format::Protobuf, &environment(false))
            .expect("valid request");
        assert!(!decoded.request.is_decoded(), "the wire check passed it without decoding");
        assert_eq!(decoded.encoded_len, decoded.request.protobuf().unwrap().len());
        assert!(decoded.encoded_len > body.len());
        assert_eq!(resource_keys(decoded.request.decoded().unwrap()), ["deployment.environment.name"]);
    }

    #[test]
    fn json_requests_get_the_resource_attributes_on_the_decoded_message() {
        let json = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"deployment.environment.name","value":{"stringValue":"dev"}}]},
            "scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}]}]}]}"#;
        for (override_app, expected) in [(false, "dev"), (true, "prod")] {
            let decoded = super::decode::<ExportTraceServiceRequest>(
                Bytes::from_static(json.as_bytes()),
                Format::Json,
                &environment(override_app),
            )
            .expect("valid request");
            let request = decoded.request.decoded().unwrap();
            assert_eq!(resource_keys(request), ["deployment.environment.name"]);
            let value = &request.resource_spans[0].resource.as_ref().unwrap().attributes[0];
            assert_eq!(value.value.as_ref().unwrap().value, Some(AnyValueKind::StringValue(expected.into())));
            assert_eq!(decoded.encoded_len, request.encoded_len());
        }
    }

    #[test]
    fn malformed_protobuf_is_refused_as_before_with_attributes_configured() {
        for bad in [&b"\xff\xff\xff"[..], &[0x0a, 0x05, 0x0a]] {
            let error = super::decode::<ExportLogsServiceRequest>(
                Bytes::copy_from_slice(bad),
                Format::Protobuf,
                &environment(false),
            )
            .expect_err("malformed");
            assert!(matches!(error, DecodeError::Protobuf(_)), "{error}");
        }
    }
}
