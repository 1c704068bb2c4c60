//! The unit of work that flows from a receiver, through the router, into every lane that takes it.
//!
//! A [`Batch`] is decoded once by the receiver and then shared between lanes behind an
//! [`Arc`](std::sync::Arc) ([`SharedBatch`]); no lane copies it.

use std::sync::Arc;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde::{Deserialize, Serialize};

/// The three kinds of telemetry waggle relays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    Traces,
    Logs,
    Metrics,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Logs, Signal::Metrics];

    /// Lower-case name used in metrics labels, logs and config.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
        }
    }

    /// Dense index, for per-signal arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// What a batch carries. OTLP requests are decoded once, in the receiver.
#[derive(Debug)]
pub enum Payload {
    Traces(ExportTraceServiceRequest),
    Logs(ExportLogsServiceRequest),
    Metrics(ExportMetricsServiceRequest),
    /// Segments from an X-Ray SDK (UDP). Their signal is traces.
    XraySegments(Vec<XraySegment>),
}

impl Payload {
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
}

/// A batch shared between lanes.
pub type SharedBatch = Arc<Batch>;

impl Batch {
    /// A traces batch from an OTLP request; counts spans and sizes it by its encoded length.
    pub fn traces(request: ExportTraceServiceRequest, encoded_len: usize) -> Batch {
        let items = count::spans(&request);
        Batch { payload: Payload::Traces(request), items, bytes: encoded_len }
    }

    /// A logs batch from an OTLP request.
    pub fn logs(request: ExportLogsServiceRequest, encoded_len: usize) -> Batch {
        let items = count::log_records(&request);
        Batch { payload: Payload::Logs(request), items, bytes: encoded_len }
    }

    /// A metrics batch from an OTLP request.
    pub fn metrics(request: ExportMetricsServiceRequest, encoded_len: usize) -> Batch {
        let items = count::data_points(&request);
        Batch { payload: Payload::Metrics(request), items, bytes: encoded_len }
    }

    /// A batch of X-Ray segment documents.
    pub fn xray(segments: Vec<XraySegment>) -> Batch {
        let bytes = segments.iter().map(|s| s.body.len() + s.trace_id.len() + s.id.len()).sum();
        Batch { items: segments.len(), payload: Payload::XraySegments(segments), bytes }
    }

    pub fn signal(&self) -> Signal {
        self.payload.signal()
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
