//! The OTLP targets: protobuf bodies through the receiver's wire check and decoding, against
//! prost (the `opentelemetry-proto` types) as the reference; OTLP/JSON bodies through decoding.

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;

use crate::receiver::otlp::codec::{self, DecodeError, ExportRequest, Format};
use crate::receiver::otlp::wire;
use crate::resource::ResourceAttributes;

/// The body as an `ExportTraceServiceRequest`, `ExportLogsServiceRequest` and
/// `ExportMetricsServiceRequest` in turn. For each, waggle accepts exactly what prost decodes
/// with ids of the right lengths, and counts the items prost's message holds; for traces the
/// wire check (which answers without decoding) agrees with prost on every input.
pub fn otlp_protobuf(data: &[u8]) {
    let expected = prost_items::<ExportTraceServiceRequest>(data);
    assert_eq!(wire::check_traces(data), expected, "the wire check and prost disagree on the spans in {data:?}");
    accepted_as_prost_decodes::<ExportTraceServiceRequest>(data, expected);
    accepted_as_prost_decodes::<ExportLogsServiceRequest>(data, prost_items::<ExportLogsServiceRequest>(data));
    accepted_as_prost_decodes::<ExportMetricsServiceRequest>(data, prost_items::<ExportMetricsServiceRequest>(data));
}

/// The body as OTLP/JSON of each signal: decoding never panics, an error is a JSON or id
/// error, and an accepted request counts its items and re-encodes to protobuf that waggle
/// accepts with the same count (lanes forward it as protobuf).
pub fn otlp_json(data: &[u8]) {
    json_accepted_round_trips::<ExportTraceServiceRequest>(data);
    json_accepted_round_trips::<ExportLogsServiceRequest>(data);
    json_accepted_round_trips::<ExportMetricsServiceRequest>(data);
}

/// The reference: items in the request prost decodes from `data` when every id has its
/// length, counted here rather than by waggle's own counting.
fn prost_items<R: ExportRequest + Counted>(data: &[u8]) -> Option<usize> {
    let request = R::decode(data).ok()?;
    request.check_ids().ok()?;
    Some(request.counted())
}

fn accepted_as_prost_decodes<R: ExportRequest + Counted>(data: &[u8], expected: Option<usize>) {
    let signal = R::SIGNAL;
    match (codec::decode::<R>(Bytes::copy_from_slice(data), Format::Protobuf, &ResourceAttributes::none()), expected) {
        (Ok(decoded), Some(items)) => {
            assert_eq!(decoded.items, items, "{signal}: waggle and prost count differently");
            assert_eq!(decoded.encoded_len, data.len());
            // A lane decodes what the receiver only checked: it must decode, to the same items.
            let request = decoded.request.decoded().expect("a request the receiver accepted decodes");
            assert_eq!(request.counted(), items, "{signal}: the lane's decoding counts differently");
        }
        (Err(error), None) => {
            assert!(matches!(error, DecodeError::Protobuf(_) | DecodeError::InvalidId(_)), "{signal}: {error}");
        }
        (Ok(decoded), None) => panic!("{signal}: waggle accepted {} items that prost refuses", decoded.items),
        (Err(error), Some(items)) => panic!("{signal}: waggle refused {items} items prost decodes: {error}"),
    }
}

fn json_accepted_round_trips<R: ExportRequest + Counted>(data: &[u8]) {
    let signal = R::SIGNAL;
    match codec::decode::<R>(Bytes::copy_from_slice(data), Format::Json, &ResourceAttributes::none()) {
        Err(DecodeError::Protobuf(error)) => panic!("{signal}: JSON decoding reported a protobuf error: {error}"),
        Err(DecodeError::ResourceGrowth(error)) => panic!("{signal}: no resource attributes, yet: {error}"),
        Err(error @ (DecodeError::Json(_) | DecodeError::InvalidId(_))) => assert!(!error.to_string().is_empty()),
        Ok(decoded) => {
            let request = decoded.request.decoded().expect("JSON is decoded on arrival");
            assert_eq!(decoded.items, request.counted(), "{signal}: JSON items miscounted");
            let protobuf = request.encode_to_vec();
            assert_eq!(decoded.encoded_len, protobuf.len());
            let again = codec::decode::<R>(protobuf.into(), Format::Protobuf, &ResourceAttributes::none());
            let again =
                again.unwrap_or_else(|error| panic!("{signal}: accepted JSON re-encodes to refused protobuf: {error}"));
            assert_eq!(again.items, decoded.items, "{signal}: JSON and its protobuf count differently");
        }
    }
}

/// Spans, log records or data points, counted from the decoded message.
trait Counted {
    fn counted(&self) -> usize;
}

impl Counted for ExportTraceServiceRequest {
    fn counted(&self) -> usize {
        let scopes = self.resource_spans.iter().flat_map(|resource| &resource.scope_spans);
        scopes.map(|scope| scope.spans.len()).sum()
    }
}

impl Counted for ExportLogsServiceRequest {
    fn counted(&self) -> usize {
        let scopes = self.resource_logs.iter().flat_map(|resource| &resource.scope_logs);
        scopes.map(|scope| scope.log_records.len()).sum()
    }
}

impl Counted for ExportMetricsServiceRequest {
    fn counted(&self) -> usize {
        let metrics =
            self.resource_metrics.iter().flat_map(|resource| &resource.scope_metrics).flat_map(|s| &s.metrics);
        metrics
            .map(|metric| match &metric.data {
                Some(Data::Gauge(gauge)) => gauge.data_points.len(),
                Some(Data::Sum(sum)) => sum.data_points.len(),
                Some(Data::Histogram(histogram)) => histogram.data_points.len(),
                Some(Data::ExponentialHistogram(histogram)) => histogram.data_points.len(),
                Some(Data::Summary(summary)) => summary.data_points.len(),
                None => 0,
            })
            .sum()
    }
}
