//! Encodes batches of one signal into OTLP/protobuf request bodies no larger than a limit.
//!
//! Concatenated `Export…ServiceRequest` encodings are themselves a valid request (the
//! top-level field is repeated), so a request that arrived as protobuf is copied into the body
//! as it came, without decoding it, and any other is encoded straight from the shared batch,
//! resource entry by resource entry: nothing is cloned on the common path. A request or a
//! single resource entry larger than the limit is split by its items. X-Ray segments are
//! translated to spans here, on the lane's task.

use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message;
use prost::encoding::message;

use crate::destination::Rejected;
use crate::model::{OtlpRequest, Payload, SharedBatch, count};
use crate::translate::xray_to_otlp;

/// One encoded request body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Body {
    /// `Export…ServiceRequest` protobuf, uncompressed.
    pub bytes: Vec<u8>,
    /// Spans, log records or data points in it.
    pub items: usize,
}

/// What one request body may hold: bytes before compression, and items (spans, log records
/// or data points). A single item larger than `max_bytes` still travels alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyLimits {
    pub max_bytes: usize,
    pub max_items: usize,
}

impl BodyLimits {
    /// A size limit only.
    pub(crate) fn bytes(max_bytes: usize) -> Self {
        BodyLimits { max_bytes, max_items: usize::MAX }
    }
}

/// The top-level field number of every `Export…ServiceRequest`.
const RESOURCE_FIELD: u32 = 1;

/// A `Resource…` message that can be written into a request body and split by items.
trait ResourceEntry: Message + Sized {
    fn items(&self) -> usize;
    /// Splits into entries of at most `max_items` items each (resource and scope repeated).
    fn split(&self, max_items: usize) -> Vec<Self>;
}

/// Builds bodies within [`BodyLimits`] (a single item larger than `max_bytes` travels alone).
struct BodyBuilder {
    max_bytes: usize,
    max_items: usize,
    bodies: Vec<Body>,
    current: Body,
}

impl BodyBuilder {
    /// `expected_bytes` (what the batches add up to) sizes the first body's buffer.
    fn new(limits: BodyLimits, expected_bytes: usize) -> Self {
        let BodyLimits { max_bytes, max_items } = limits;
        let current = Body { bytes: Vec::with_capacity(expected_bytes.min(max_bytes)), items: 0 };
        BodyBuilder { max_bytes, max_items: max_items.max(1), bodies: Vec::new(), current }
    }

    /// Whether `bytes` and `items` more would overflow the current body.
    fn would_overflow(&self, bytes: usize, items: usize) -> bool {
        self.current.bytes.len() + bytes > self.max_bytes || self.current.items + items > self.max_items
    }

    /// Adds a whole request as it was received, or its resource entries one by one when it
    /// came as anything but protobuf or does not fit in one body.
    /// A request that must be decoded and does not decode is added to `rejected`.
    fn push_request<R, E>(
        &mut self,
        request: &OtlpRequest<R>,
        items: usize,
        entries: impl Fn(&R) -> &[E],
        rejected: &mut Vec<Rejected>,
    ) where
        R: Message + Default,
        E: ResourceEntry,
    {
        match request.protobuf() {
            Some(protobuf) if protobuf.len() <= self.max_bytes && items <= self.max_items => {
                if self.would_overflow(protobuf.len(), items) {
                    self.finish_current();
                }
                self.current.bytes.extend_from_slice(protobuf);
                self.current.items += items;
            }
            _ => match request.decoded() {
                Ok(request) => entries(request).iter().for_each(|entry| self.push(entry)),
                Err(error) => rejected.push(Rejected::undecodable(items, &error)),
            },
        }
    }

    fn push<R: ResourceEntry>(&mut self, entry: &R) {
        let len = message::encoded_len(RESOURCE_FIELD, entry);
        let items = entry.items();
        if (len > self.max_bytes || items > self.max_items) && items > 1 {
            // Split into pieces that fit, estimating items per piece from the average size.
            let by_size = if len > self.max_bytes { items * self.max_bytes / len } else { items };
            let per_piece = by_size.min(self.max_items).clamp(1, items - 1);
            let pieces = entry.split(per_piece);
            if pieces.len() > 1 {
                pieces.iter().for_each(|piece| self.push(piece));
                return;
            }
        }
        if !self.current.bytes.is_empty() && self.would_overflow(len, items) {
            self.finish_current();
        }
        message::encode(RESOURCE_FIELD, entry, &mut self.current.bytes);
        self.current.items += items;
    }

    fn finish_current(&mut self) {
        let full = std::mem::replace(&mut self.current, Body { bytes: Vec::new(), items: 0 });
        self.bodies.push(full);
    }

    fn finish(mut self) -> Vec<Body> {
        if !self.current.bytes.is_empty() {
            self.finish_current();
        }
        self.bodies
    }
}

/// What the batches' OTLP requests add up to as protobuf.
fn expected_bytes(batches: &[SharedBatch]) -> usize {
    batches.iter().filter(|batch| !matches!(batch.payload, Payload::XraySegments(_))).map(|batch| batch.bytes).sum()
}

/// Trace request bodies from OTLP traces and X-Ray segments (translated here).
pub(crate) fn traces(batches: &[SharedBatch], max_bytes: usize) -> (Vec<Body>, Vec<Rejected>) {
    traces_within(batches, BodyLimits::bytes(max_bytes))
}

/// [`traces`] within a size and a span count.
pub(crate) fn traces_within(batches: &[SharedBatch], limits: BodyLimits) -> (Vec<Body>, Vec<Rejected>) {
    let mut builder = BodyBuilder::new(limits, expected_bytes(batches));
    let mut undecodable = Vec::new();
    for batch in batches {
        if let Payload::Traces(request) = &batch.payload {
            builder.push_request(request, batch.items, |request| &request.resource_spans, &mut undecodable);
        }
    }
    // X-Ray documents are converted together: streamed subsegments find their segment.
    let (converted, mut rejected) = xray_to_otlp::convert_batches(batches);
    rejected.extend(undecodable);
    converted.iter().for_each(|entry| builder.push(entry));
    (builder.finish(), rejected)
}

/// Logs request bodies.
pub(crate) fn logs(batches: &[SharedBatch], max_bytes: usize) -> (Vec<Body>, Vec<Rejected>) {
    logs_within(batches, BodyLimits::bytes(max_bytes))
}

/// [`logs`] within a size and a record count.
pub(crate) fn logs_within(batches: &[SharedBatch], limits: BodyLimits) -> (Vec<Body>, Vec<Rejected>) {
    let mut builder = BodyBuilder::new(limits, expected_bytes(batches));
    let mut rejected = Vec::new();
    for batch in batches {
        if let Payload::Logs(request) = &batch.payload {
            builder.push_request(request, batch.items, |request| &request.resource_logs, &mut rejected);
        }
    }
    (builder.finish(), rejected)
}

/// Metrics request bodies.
pub(crate) fn metrics(batches: &[SharedBatch], max_bytes: usize) -> (Vec<Body>, Vec<Rejected>) {
    let mut builder = BodyBuilder::new(BodyLimits::bytes(max_bytes), expected_bytes(batches));
    let mut rejected = Vec::new();
    for batch in batches {
        if let Payload::Metrics(request) = &batch.payload {
            builder.push_request(request, batch.items, |request| &request.resource_metrics, &mut rejected);
        }
    }
    (builder.finish(), rejected)
}

/// Splits `items` into groups of at most `max` (at least one per group).
fn chunks<T: Clone>(items: &[T], max: usize) -> impl Iterator<Item = Vec<T>> + '_ {
    items.chunks(max.max(1)).map(<[T]>::to_vec)
}

impl ResourceEntry for ResourceSpans {
    fn items(&self) -> usize {
        self.scope_spans.iter().map(|s| s.spans.len()).sum()
    }

    fn split(&self, max_items: usize) -> Vec<Self> {
        let mut pieces = Vec::new();
        for scope in &self.scope_spans {
            for spans in chunks(&scope.spans, max_items) {
                let scope_spans = vec![ScopeSpans { spans, ..without_spans(scope) }];
                pieces.push(ResourceSpans { scope_spans, ..without_scopes_spans(self) });
            }
        }
        pieces
    }
}

impl ResourceEntry for ResourceLogs {
    fn items(&self) -> usize {
        self.scope_logs.iter().map(|s| s.log_records.len()).sum()
    }

    fn split(&self, max_items: usize) -> Vec<Self> {
        let mut pieces = Vec::new();
        for scope in &self.scope_logs {
            for log_records in chunks(&scope.log_records, max_items) {
                let head = ScopeLogs { scope: scope.scope.clone(), schema_url: scope.schema_url.clone(), log_records };
                let resource = ResourceLogs {
                    resource: self.resource.clone(),
                    schema_url: self.schema_url.clone(),
                    scope_logs: vec![head],
                };
                pieces.push(resource);
            }
        }
        pieces
    }
}

impl ResourceEntry for ResourceMetrics {
    fn items(&self) -> usize {
        count::data_points_in(self)
    }

    /// Metrics are split by whole metric, never inside one.
    fn split(&self, _max_items: usize) -> Vec<Self> {
        let mut pieces = Vec::new();
        for scope in &self.scope_metrics {
            for metric in &scope.metrics {
                let head = ScopeMetrics {
                    scope: scope.scope.clone(),
                    schema_url: scope.schema_url.clone(),
                    metrics: vec![metric.clone()],
                };
                let resource = ResourceMetrics {
                    resource: self.resource.clone(),
                    schema_url: self.schema_url.clone(),
                    scope_metrics: vec![head],
                };
                pieces.push(resource);
            }
        }
        // A single metric cannot be split further; keep the loop from recursing forever.
        if pieces.len() <= 1 { Vec::new() } else { pieces }
    }
}

fn without_spans(scope: &ScopeSpans) -> ScopeSpans {
    ScopeSpans { scope: scope.scope.clone(), schema_url: scope.schema_url.clone(), spans: Vec::new() }
}

fn without_scopes_spans(resource: &ResourceSpans) -> ResourceSpans {
    ResourceSpans {
        resource: resource.resource.clone(),
        schema_url: resource.schema_url.clone(),
        scope_spans: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::Span;

    use super::*;
    use crate::model::Batch;

    fn span(name: &str) -> Span {
        Span { trace_id: vec![1; 16], span_id: vec![2; 8], name: name.to_string(), ..Default::default() }
    }

    fn trace_batch(resources: usize, spans_each: usize) -> SharedBatch {
        let resource_spans = (0..resources)
            .map(|r| ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: (0..spans_each).map(|s| span(&format!("span-{r}-{s}"))).collect(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect();
        let request = ExportTraceServiceRequest { resource_spans };
        let len = request.encoded_len();
        Arc::new(Batch::traces(request, len))
    }

    fn decode(body: &Body) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest::decode(body.bytes.as_slice()).unwrap()
    }

    #[test]
    fn batches_merge_into_one_body_equal_to_the_concatenated_requests() {
        let (a, b) = (trace_batch(1, 3), trace_batch(2, 2));
        let (bodies, rejected) = traces(&[Arc::clone(&a), Arc::clone(&b)], 1 << 20);
        assert!(rejected.is_empty());
        assert_eq!(bodies.len(), 1);
        assert_eq!(bodies[0].items, 7);
        let merged = decode(&bodies[0]);
        let Payload::Traces(first) = &a.payload else { unreachable!() };
        let Payload::Traces(second) = &b.payload else { unreachable!() };
        let (first, second) = (first.decoded().unwrap(), second.decoded().unwrap());
        let expected: Vec<_> = first.resource_spans.iter().chain(&second.resource_spans).cloned().collect();
        assert_eq!(merged.resource_spans, expected);
    }

    #[test]
    fn bodies_stay_under_the_limit_and_lose_nothing() {
        let batch = trace_batch(50, 20);
        let limit = 4096;
        let (bodies, _) = traces(&[batch], limit);
        assert!(bodies.len() > 1);
        assert!(
            bodies.iter().all(|b| b.bytes.len() <= limit),
            "{:?}",
            bodies.iter().map(|b| b.bytes.len()).collect::<Vec<_>>()
        );
        let total: usize = bodies.iter().map(|b| b.items).sum();
        assert_eq!(total, 1000);
        let decoded: usize = bodies.iter().map(|b| count::spans(&decode(b))).sum();
        assert_eq!(decoded, 1000);
    }

    #[test]
    fn a_resource_larger_than_the_limit_is_split_by_spans() {
        let batch = trace_batch(1, 400);
        let limit = 2000;
        let (bodies, _) = traces(&[batch], limit);
        assert!(bodies.len() > 5);
        assert!(bodies.iter().all(|b| b.bytes.len() <= limit));
        let names: Vec<String> = bodies
            .iter()
            .flat_map(|b| decode(b).resource_spans)
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .map(|s| s.name)
            .collect();
        let expected: Vec<String> = (0..400).map(|s| format!("span-0-{s}")).collect();
        assert_eq!(names, expected, "every span once, in order");
    }

    fn protobuf_batch(resources: usize, spans_each: usize) -> SharedBatch {
        let Payload::Traces(request) = &trace_batch(resources, spans_each).payload else { unreachable!() };
        let protobuf = bytes::Bytes::from(request.decoded().unwrap().encode_to_vec());
        let len = protobuf.len();
        let items = resources * spans_each;
        Arc::new(Batch::otlp_traces(OtlpRequest::from_checked_protobuf(protobuf), items, len))
    }

    #[test]
    fn requests_that_came_as_protobuf_are_forwarded_as_they_came() {
        let (a, b) = (protobuf_batch(1, 3), protobuf_batch(2, 2));
        let (bodies, _) = traces(&[Arc::clone(&a), Arc::clone(&b)], 1 << 20);
        assert_eq!(bodies.len(), 1);
        assert_eq!(bodies[0].items, 7);
        let Payload::Traces(first) = &a.payload else { unreachable!() };
        let Payload::Traces(second) = &b.payload else { unreachable!() };
        let expected = [first.protobuf().unwrap().as_ref(), second.protobuf().unwrap().as_ref()].concat();
        assert_eq!(bodies[0].bytes, expected);
        assert!(!first.is_decoded() && !second.is_decoded(), "forwarding decoded nothing");
    }

    #[test]
    fn a_protobuf_request_larger_than_the_limit_is_split_by_spans() {
        let batch = protobuf_batch(1, 400);
        let limit = 2000;
        let (bodies, _) = traces(&[batch], limit);
        assert!(bodies.len() > 5);
        assert!(bodies.iter().all(|b| b.bytes.len() <= limit));
        assert_eq!(bodies.iter().map(|b| count::spans(&decode(b))).sum::<usize>(), 400);
    }

    #[test]
    fn bodies_stay_under_the_item_limit_whether_forwarded_or_encoded() {
        let limits = BodyLimits { max_bytes: 1 << 20, max_items: 100 };
        for batch in [protobuf_batch(3, 150), trace_batch(3, 150), protobuf_batch(1, 100)] {
            let (bodies, _) = traces_within(std::slice::from_ref(&batch), limits);
            let counts: Vec<usize> = bodies.iter().map(|b| count::spans(&decode(b))).collect();
            assert!(counts.iter().all(|&spans| spans <= 100), "{counts:?}");
            assert_eq!(bodies.iter().map(|b| b.items).collect::<Vec<_>>(), counts);
            assert_eq!(counts.iter().sum::<usize>(), batch.items);
        }
    }

    #[test]
    fn requests_under_both_limits_are_still_forwarded_together() {
        let (a, b) = (protobuf_batch(1, 40), protobuf_batch(1, 60));
        let limits = BodyLimits { max_bytes: 1 << 20, max_items: 100 };
        let (bodies, _) = traces_within(&[Arc::clone(&a), Arc::clone(&b)], limits);
        assert_eq!(bodies.len(), 1);
        let (bodies, _) = traces_within(&[a, b, protobuf_batch(1, 1)], limits);
        assert_eq!(bodies.iter().map(|b| b.items).collect::<Vec<_>>(), vec![100, 1]);
    }

    #[test]
    fn a_body_at_exactly_the_limit_is_not_split() {
        let batch = trace_batch(2, 1);
        let (whole, _) = traces(std::slice::from_ref(&batch), 1 << 20);
        let exact = whole[0].bytes.len();
        assert_eq!(traces(std::slice::from_ref(&batch), exact).0.len(), 1);
        assert_eq!(traces(std::slice::from_ref(&batch), exact - 1).0.len(), 2);
    }
}
