//! `protocol = "otlp"`: traces to X-Ray's OTLP endpoint (`<endpoint>/v1/traces`, SigV4 service
//! `xray`), which takes W3C trace ids as they are and needs CloudWatch Transaction Search.
//!
//! OpenTelemetry requests are forwarded as received (no translation); X-Ray SDK segments are
//! converted to spans ([`crate::translate::xray_to_otlp`], as for Honeycomb). Bodies are split
//! at the endpoint's limits — 5 MB uncompressed and 10,000 spans per request — and gzipped; a
//! span over 200 KB, which the endpoint would refuse, is taken out before sending and counted
//! as `too_large`. Answers are settled by [`crate::destination::aws_otlp`]: partial success
//! counted and logged, throttling and 5xx retried, 403 shown on `/status`.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::destination::aws_otlp::{AwsOtlpClient, Settler, SignedOtlpClient, unanswered};
use crate::destination::compress::{self, Compression};
use crate::destination::otlp_body::{self, BodyLimits};
use crate::destination::{Built, ExportError, Exporter, Rejected, Sent};
use crate::model::{Batch, Destination, LossReason, Payload, SharedBatch, Signal};
use crate::telemetry::ratelimit::LogLimiter;
use crate::telemetry::status::DestinationStatus;

/// Most bytes in one request before compression ("5 MB").
pub(crate) const MAX_REQUEST_BYTES: usize = 5_000_000;
/// Most spans in one request.
pub(crate) const MAX_SPANS_PER_REQUEST: usize = 10_000;
/// Largest span the endpoint takes ("200 KB"), as encoded protobuf.
pub(crate) const MAX_SPAN_BYTES: usize = 200_000;

/// One request to the OTLP endpoint.
#[derive(Debug)]
pub(crate) struct XrayOtlpRequest {
    /// Gzip OTLP/protobuf.
    body: Bytes,
    spans: usize,
}

/// Sends traces to X-Ray's OTLP endpoint.
pub(crate) struct XrayOtlp<C: AwsOtlpClient = SignedOtlpClient> {
    client: C,
    limits: BodyLimits,
    max_span_bytes: usize,
    settler: Settler,
    too_large_log: LogLimiter,
}

impl<C: AwsOtlpClient> XrayOtlp<C> {
    /// An exporter within the endpoint's limits; credential problems are shown on `status`.
    pub(crate) fn new(client: C, status: Arc<DestinationStatus>) -> Self {
        XrayOtlp {
            client,
            limits: BodyLimits { max_bytes: MAX_REQUEST_BYTES, max_items: MAX_SPANS_PER_REQUEST },
            max_span_bytes: MAX_SPAN_BYTES,
            settler: Settler::new(Destination::Xray, "spans", status),
            too_large_log: LogLimiter::new(Duration::from_secs(10)),
        }
    }

    /// The batches with every span over the per-span limit taken out (and reported). Only a
    /// request larger than the limit can hold such a span, so smaller ones are not decoded; a
    /// batch is copied only when a span is taken out of it.
    fn without_oversized_spans<'a>(
        &self,
        batches: &'a [SharedBatch],
        rejected: &mut Vec<Rejected>,
    ) -> Cow<'a, [SharedBatch]> {
        let mut checked: Cow<'a, [SharedBatch]> = Cow::Borrowed(batches);
        for (index, batch) in batches.iter().enumerate() {
            let Payload::Traces(request) = &batch.payload else { continue };
            if batch.bytes <= self.max_span_bytes {
                continue;
            }
            // A request that does not decode is reported by the body builder.
            let Ok(decoded) = request.decoded() else { continue };
            let Some((kept, refused)) = self.take_out_oversized(decoded) else { continue };
            if let Some(suppressed) = self.too_large_log.check() {
                let first = refused.first().map_or("", String::as_str);
                tracing::warn!(destination = %Destination::Xray, spans = refused.len(), suppressed, "spans over X-Ray's 200 KB limit not sent ({first})");
            }
            for detail in refused {
                rejected.push(Rejected { items: 1, reason: LossReason::TooLarge, detail });
            }
            let len = kept.encoded_len();
            checked.to_mut()[index] = Arc::new(Batch::traces(kept, len));
        }
        checked
    }

    /// `request` without its oversized spans and a line about each, or `None` when none is.
    fn take_out_oversized(
        &self,
        request: &ExportTraceServiceRequest,
    ) -> Option<(ExportTraceServiceRequest, Vec<String>)> {
        let oversized = |span: &opentelemetry_proto::tonic::trace::v1::Span| span.encoded_len() > self.max_span_bytes;
        let any = request.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans).any(oversized);
        if !any {
            return None;
        }
        let mut kept = request.clone();
        let mut refused = Vec::new();
        for scope in kept.resource_spans.iter_mut().flat_map(|r| r.scope_spans.iter_mut()) {
            scope.spans.retain(|span| {
                if !oversized(span) {
                    return true;
                }
                refused.push(format!(
                    "span {} of trace {} is {} bytes; X-Ray's OTLP endpoint takes at most {}",
                    hex::encode(&span.span_id),
                    hex::encode(&span.trace_id),
                    span.encoded_len(),
                    self.max_span_bytes
                ));
                false
            });
        }
        Some((kept, refused))
    }
}

impl<C: AwsOtlpClient> Exporter for XrayOtlp<C> {
    type Request = XrayOtlpRequest;

    fn build(&self, signal: Signal, batches: &[SharedBatch]) -> Built<XrayOtlpRequest> {
        let mut rejected = Vec::new();
        if signal != Signal::Traces {
            return Built { requests: Vec::new(), rejected };
        }
        let checked = self.without_oversized_spans(batches, &mut rejected);
        let (bodies, refused) = otlp_body::traces_within(&checked, self.limits);
        rejected.extend(refused);
        let mut requests = Vec::with_capacity(bodies.len());
        for body in bodies {
            match compress::compress(Compression::Gzip, body.bytes) {
                Ok(gzip) => requests.push(XrayOtlpRequest { body: gzip.into(), spans: body.items }),
                Err(error) => rejected.push(Rejected {
                    items: body.items,
                    reason: LossReason::CompressionFailed,
                    detail: error.to_string(),
                }),
            }
        }
        Built { requests, rejected }
    }

    fn items(request: &XrayOtlpRequest) -> usize {
        request.spans
    }

    async fn send(&self, request: &mut XrayOtlpRequest) -> Result<Sent, ExportError> {
        let started = Instant::now();
        let answer = self.client.post(&[], request.body.clone()).await.map_err(unanswered)?;
        self.settler.settle(Signal::Traces, request.spans, "", &answer, started.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::io::Read;
    use std::sync::Mutex;

    use http::{HeaderMap, StatusCode};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    use super::*;
    use crate::destination::aws_otlp::{OtlpAnswer, PostError};

    /// Answers from a script (200 when it runs out) and keeps every posted body, unzipped.
    #[derive(Default)]
    struct ScriptedEndpoint {
        answers: Mutex<VecDeque<u16>>,
        posted: Mutex<Vec<ExportTraceServiceRequest>>,
    }

    impl AwsOtlpClient for Arc<ScriptedEndpoint> {
        async fn post(&self, headers: &[(&'static str, &str)], body: Bytes) -> Result<OtlpAnswer, PostError> {
            assert!(headers.is_empty());
            let mut protobuf = Vec::new();
            flate2::read::GzDecoder::new(body.as_ref()).read_to_end(&mut protobuf).expect("gzip");
            self.posted.lock().unwrap().push(ExportTraceServiceRequest::decode(protobuf.as_slice()).expect("OTLP"));
            let status = self.answers.lock().unwrap().pop_front().unwrap_or(200);
            Ok(OtlpAnswer {
                status: StatusCode::from_u16(status).unwrap(),
                headers: HeaderMap::new(),
                body: Bytes::new(),
            })
        }
    }

    fn exporter() -> (Arc<ScriptedEndpoint>, XrayOtlp<Arc<ScriptedEndpoint>>) {
        let endpoint = Arc::new(ScriptedEndpoint::default());
        let status = Arc::new(DestinationStatus::new(Destination::Xray, true, "test", vec!["traces"]));
        (Arc::clone(&endpoint), XrayOtlp::new(endpoint, status))
    }

    fn span(index: usize, attribute_bytes: usize) -> Span {
        let mut span = Span {
            trace_id: vec![7; 16],
            span_id: (index as u64 + 1).to_be_bytes().to_vec(),
            name: format!("span-{index}"),
            ..Default::default()
        };
        if attribute_bytes > 0 {
            span.attributes.push(opentelemetry_proto::tonic::common::v1::KeyValue {
                key: "big".into(),
                value: Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                    value: Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                        "x".repeat(attribute_bytes),
                    )),
                }),
                ..Default::default()
            });
        }
        span
    }

    fn batch(spans: Vec<Span>) -> SharedBatch {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            }],
        };
        let len = request.encoded_len();
        Arc::new(Batch::traces(request, len))
    }

    #[tokio::test]
    async fn more_than_10000_spans_are_split_into_requests_of_at_most_10000() {
        let (endpoint, exporter) = exporter();
        let built = exporter.build(Signal::Traces, &[batch((0..10_001).map(|i| span(i, 0)).collect())]);
        assert!(built.rejected.is_empty());
        let counts: Vec<usize> = built.requests.iter().map(XrayOtlp::<Arc<ScriptedEndpoint>>::items).collect();
        assert_eq!(counts.iter().sum::<usize>(), 10_001);
        assert!(counts.iter().all(|&c| c <= MAX_SPANS_PER_REQUEST), "{counts:?}");
        for mut request in built.requests {
            exporter.send(&mut request).await.unwrap();
        }
        let posted = endpoint.posted.lock().unwrap();
        let spans: usize = posted.iter().map(crate::model::count::spans).sum();
        assert_eq!((posted.len(), spans), (2, 10_001));
    }

    #[test]
    fn a_span_over_200_kb_is_refused_and_counted_and_the_rest_sent() {
        let (_, exporter) = exporter();
        let built = exporter.build(Signal::Traces, &[batch(vec![span(0, 10), span(1, 210_000), span(2, 10)])]);
        assert_eq!(built.rejected.len(), 1);
        assert_eq!((built.rejected[0].items, built.rejected[0].reason), (1, LossReason::TooLarge));
        assert!(built.rejected[0].detail.contains("0000000000000002"), "{}", built.rejected[0].detail);
        assert_eq!(built.requests.iter().map(|r| r.spans).sum::<usize>(), 2);
    }

    #[test]
    fn a_request_under_the_span_limit_is_not_decoded() {
        let (_, exporter) = exporter();
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans: vec![span(0, 100)], ..Default::default() }],
                ..Default::default()
            }],
        };
        let protobuf = Bytes::from(request.encode_to_vec());
        let len = protobuf.len();
        let otlp = crate::model::OtlpRequest::from_checked_protobuf(protobuf);
        let shared = Arc::new(Batch::otlp_traces(otlp, 1, len));
        let built = exporter.build(Signal::Traces, std::slice::from_ref(&shared));
        assert_eq!(built.requests.len(), 1);
        let Payload::Traces(request) = &shared.payload else { unreachable!() };
        assert!(!request.is_decoded());
    }

    #[tokio::test]
    async fn throttling_is_retryable() {
        let (endpoint, exporter) = exporter();
        endpoint.answers.lock().unwrap().push_back(429);
        let mut request = exporter.build(Signal::Traces, &[batch(vec![span(0, 0)])]).requests.remove(0);
        assert!(matches!(exporter.send(&mut request).await, Err(ExportError::Retryable { .. })));
        assert_eq!(exporter.send(&mut request).await.unwrap().accepted, 1);
    }
}
