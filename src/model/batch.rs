//! The unit of work that flows from a receiver, through the router, into every lane that takes it.
//!
//! A [`Batch`] is shared between lanes behind an [`Arc`](std::sync::Arc) ([`SharedBatch`]); no
//! lane copies it. An OTLP request keeps the protobuf it arrived as ([`OtlpRequest`]): a lane
//! that forwards OTLP sends those bytes as they are, and the decoded message is made at most
//! once, by the receiver or by the first lane that needs spans, log records or data points.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::Signal;
use crate::limits::MemoryPermit;

/// One X-Ray segment document exactly as an X-Ray SDK sent it (the daemon header line removed).
#[derive(Clone, Debug)]
pub struct XraySegment {
    /// The document bytes, untouched: forwarded to X-Ray byte-for-byte.
    pub body: Bytes,
    /// The document's `trace_id`, for logs and routing.
    pub trace_id: String,
    /// The document's `id`, for logs.
    pub id: String,
}

impl XraySegment {
    /// What the segment counts for in a batch's [`Batch::bytes`] (and the memory budget): its
    /// document and its two ids.
    pub fn held_bytes(&self) -> usize {
        self.body.len() + self.trace_id.len() + self.id.len()
    }
}

/// What a batch carries. OTLP requests are checked by the receiver and decoded at most once.
#[derive(Debug)]
pub enum Payload {
    Traces(OtlpRequest<ExportTraceServiceRequest>),
    Logs(OtlpRequest<ExportLogsServiceRequest>),
    Metrics(OtlpRequest<ExportMetricsServiceRequest>),
    /// Segments from an X-Ray SDK (UDP). Their signal is traces.
    XraySegments(Vec<XraySegment>),
}

impl Payload {
    /// The OTLP trace request, when this is one.
    pub fn otlp_traces(&self) -> Option<&OtlpRequest<ExportTraceServiceRequest>> {
        match self {
            Payload::Traces(request) => Some(request),
            _ => None,
        }
    }

    /// The OTLP logs request, when this is one.
    pub fn otlp_logs(&self) -> Option<&OtlpRequest<ExportLogsServiceRequest>> {
        match self {
            Payload::Logs(request) => Some(request),
            _ => None,
        }
    }

    pub fn signal(&self) -> Signal {
        match self {
            Payload::Traces(_) | Payload::XraySegments(_) => Signal::Traces,
            Payload::Logs(_) => Signal::Logs,
            Payload::Metrics(_) => Signal::Metrics,
        }
    }
}

/// A unit accepted from a receiver.
#[derive(Debug)]
pub struct Batch {
    pub payload: Payload,
    /// Spans, log records, metric data points or X-Ray documents in the payload.
    pub items: usize,
    /// Approximate in-memory size in bytes, used to bound the lanes' queues.
    pub bytes: usize,
    /// The bytes this batch holds of the memory budget, given back when the last lane lets
    /// the batch go ([`MemoryPermit::none`] where nothing is counted).
    pub memory: MemoryPermit,
}

/// A batch shared between lanes.
pub type SharedBatch = Arc<Batch>;

impl Batch {
    /// A traces batch from an OTLP request; counts spans and sizes it by its encoded length.
    pub fn traces(request: ExportTraceServiceRequest, encoded_len: usize) -> Batch {
        let items = count::spans(&request);
        Batch {
            payload: Payload::Traces(OtlpRequest::from_decoded(request)),
            items,
            bytes: encoded_len,
            memory: MemoryPermit::none(),
        }
    }

    /// A logs batch from an OTLP request.
    pub fn logs(request: ExportLogsServiceRequest, encoded_len: usize) -> Batch {
        let items = count::log_records(&request);
        Batch {
            payload: Payload::Logs(OtlpRequest::from_decoded(request)),
            items,
            bytes: encoded_len,
            memory: MemoryPermit::none(),
        }
    }

    /// A metrics batch from an OTLP request.
    pub fn metrics(request: ExportMetricsServiceRequest, encoded_len: usize) -> Batch {
        let items = count::data_points(&request);
        Batch {
            payload: Payload::Metrics(OtlpRequest::from_decoded(request)),
            items,
            bytes: encoded_len,
            memory: MemoryPermit::none(),
        }
    }

    /// A traces batch of `items` spans from a request a receiver has checked.
    pub fn otlp_traces(request: OtlpRequest<ExportTraceServiceRequest>, items: usize, bytes: usize) -> Batch {
        Batch { payload: Payload::Traces(request), items, bytes, memory: MemoryPermit::none() }
    }

    /// A logs batch of `items` log records from a request a receiver has checked.
    pub fn otlp_logs(request: OtlpRequest<ExportLogsServiceRequest>, items: usize, bytes: usize) -> Batch {
        Batch { payload: Payload::Logs(request), items, bytes, memory: MemoryPermit::none() }
    }

    /// A metrics batch of `items` data points from a request a receiver has checked.
    pub fn otlp_metrics(request: OtlpRequest<ExportMetricsServiceRequest>, items: usize, bytes: usize) -> Batch {
        Batch { payload: Payload::Metrics(request), items, bytes, memory: MemoryPermit::none() }
    }

    /// A batch of X-Ray segment documents.
    pub fn xray(segments: Vec<XraySegment>) -> Batch {
        let bytes = segments.iter().map(XraySegment::held_bytes).sum();
        Batch { items: segments.len(), payload: Payload::XraySegments(segments), bytes, memory: MemoryPermit::none() }
    }

    pub fn signal(&self) -> Signal {
        self.payload.signal()
    }

    /// The batch, holding `memory` (shrunk to [`Batch::bytes`]) until it is dropped.
    pub fn with_memory(mut self, mut memory: MemoryPermit) -> Batch {
        memory.shrink_to(self.bytes);
        self.memory = memory;
        self
    }
}

/// An OTLP export request: the protobuf it arrived as (when it came as protobuf) and the
/// decoded message. A lane that needs the message asks for it with [`OtlpRequest::decoded`],
/// which decodes the protobuf on first use when the receiver only checked the bytes
/// (concurrent first uses decode once) and says so when it does not decode.
pub struct OtlpRequest<R> {
    protobuf: Option<Bytes>,
    decoded: OnceLock<Result<R, Undecodable>>,
}

/// A checked OTLP request whose protobuf did not decode after all; the lane that asked counts
/// its items as rejected ([`crate::model::LossReason::Undecodable`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the OTLP request ({bytes} bytes) does not decode: {reason}")]
pub struct Undecodable {
    pub bytes: usize,
    pub reason: String,
}

impl<R: prost::Message + Default> OtlpRequest<R> {
    /// A decoded request with no protobuf kept (OTLP/JSON, or built in code).
    pub fn from_decoded(request: R) -> Self {
        OtlpRequest { protobuf: None, decoded: OnceLock::from(Ok(request)) }
    }

    /// Protobuf and the message decoded from it.
    pub fn from_protobuf_and_decoded(protobuf: Bytes, request: R) -> Self {
        OtlpRequest { protobuf: Some(protobuf), decoded: OnceLock::from(Ok(request)) }
    }

    /// Protobuf the receiver has checked with the same rules prost decodes by (see
    /// `receiver::otlp::wire`), to be decoded only if a lane needs the message.
    pub fn from_checked_protobuf(protobuf: Bytes) -> Self {
        OtlpRequest { protobuf: Some(protobuf), decoded: OnceLock::new() }
    }

    /// The request's protobuf encoding as it arrived, if it arrived as protobuf.
    pub fn protobuf(&self) -> Option<&Bytes> {
        self.protobuf.as_ref()
    }

    /// Whether decoding has been attempted yet.
    pub fn is_decoded(&self) -> bool {
        self.decoded.get().is_some()
    }

    /// The decoded message, decoding the protobuf now if nothing has yet.
    pub fn decoded(&self) -> Result<&R, Undecodable> {
        self.decoded
            .get_or_init(|| {
                let protobuf = self.protobuf.as_deref().unwrap_or_default();
                R::decode(protobuf).map_err(|error| Undecodable { bytes: protobuf.len(), reason: error.to_string() })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The decoded message, by value.
    pub fn into_decoded(self) -> Result<R, Undecodable> {
        let _ = self.decoded();
        self.decoded.into_inner().unwrap_or_else(|| Ok(R::default()))
    }
}

impl<R: std::fmt::Debug> std::fmt::Debug for OtlpRequest<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpRequest")
            .field("protobuf_len", &self.protobuf.as_ref().map(Bytes::len))
            .field("decoded", &self.decoded.get())
            .finish()
    }
}

/// Item counting for OTLP requests.
pub mod count {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;

    pub fn spans(request: &ExportTraceServiceRequest) -> usize {
        request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum()
    }

    pub fn log_records(request: &ExportLogsServiceRequest) -> usize {
        request.resource_logs.iter().flat_map(|r| &r.scope_logs).map(|s| s.log_records.len()).sum()
    }

    pub fn data_points(request: &ExportMetricsServiceRequest) -> usize {
        request.resource_metrics.iter().map(data_points_in).sum()
    }

    pub fn data_points_in(resource: &ResourceMetrics) -> usize {
        resource
            .scope_metrics
            .iter()
            .flat_map(|s| &s.metrics)
            .map(|m| match &m.data {
                Some(Data::Gauge(g)) => g.data_points.len(),
                Some(Data::Sum(s)) => s.data_points.len(),
                Some(Data::Histogram(h)) => h.data_points.len(),
                Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
                Some(Data::Summary(s)) => s.data_points.len(),
                None => 0,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;

    use super::*;

    fn request() -> ExportTraceServiceRequest {
        let span = Span { trace_id: vec![1; 16], span_id: vec![2; 8], name: "s".into(), ..Default::default() };
        let scope_spans = vec![ScopeSpans { spans: vec![span], ..Default::default() }];
        ExportTraceServiceRequest { resource_spans: vec![ResourceSpans { scope_spans, ..Default::default() }] }
    }

    #[test]
    fn checked_protobuf_is_decoded_on_first_use_only() {
        let protobuf = Bytes::from(request().encode_to_vec());
        let lazy = OtlpRequest::<ExportTraceServiceRequest>::from_checked_protobuf(protobuf.clone());
        assert!(!lazy.is_decoded());
        assert_eq!(lazy.protobuf(), Some(&protobuf));
        assert_eq!(count::spans(lazy.decoded().unwrap()), 1);
        assert!(lazy.is_decoded());
        assert_eq!(lazy.decoded(), Ok(&request()));
    }

    #[test]
    fn undecodable_bytes_are_an_error_not_an_empty_request() {
        let broken = OtlpRequest::<ExportTraceServiceRequest>::from_checked_protobuf(Bytes::from_static(b"\xff\xff"));
        let error = broken.decoded().unwrap_err();
        assert_eq!(error.bytes, 2);
        assert_eq!(broken.into_decoded().unwrap_err(), error);
    }
}
