//! The AWS X-Ray destination: PutTraceSegments with at most 50 documents per call.
//!
//! Segments from X-Ray SDKs are sent exactly as received (the daemon header line removed);
//! OpenTelemetry spans are translated to segment documents here, on the lane's task
//! ([`crate::translate::otlp_to_xray`]). An X-Ray SDK segment is never also sent translated.
//! What X-Ray answers, per document, decides what happens next:
//!
//! | outcome | what waggle does |
//! |---|---|
//! | processed | counted as sent; one INFO line per call, as the daemon logs it |
//! | unprocessed, throttling or internal error | retried with backoff (only those documents) |
//! | unprocessed, anything else (`InvalidTraceId`, `MissingParam`, …) | counted as failed, WARN with id, trace id, code and message |
//! | a document over 64 KiB | refused before sending, counted, WARN with its id |
//! | the call throttled (429) or failed (5xx, network, timeout) | retried with backoff |
//! | the call refused (other 4xx) | counted as failed with X-Ray's message |

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_xray::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_xray::operation::put_trace_segments::PutTraceSegmentsError;
use aws_sdk_xray::types::UnprocessedTraceSegment;

use crate::destination::{Built, ExportError, Exporter, Rejected, Sent};
use crate::model::LossReason;
use crate::model::{Payload, SharedBatch, Signal};
use crate::telemetry::ratelimit::LogLimiter;
use crate::translate::otlp_to_xray::XrayTranslation;

/// X-Ray's limit on one segment document ("64 KB"). Raw SDK documents are refused only past
/// 64 KiB (a UDP datagram cannot even carry that much); translated documents are kept under
/// the stricter 64,000 bytes by the translation itself.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// X-Ray's cap on documents per PutTraceSegments call.
pub const MAX_DOCUMENTS_PER_CALL: usize = 50;

/// One segment document on its way to X-Ray.
#[derive(Debug, Clone)]
pub struct Document {
    pub json: String,
    pub id: String,
    pub trace_id: String,
}

/// One PutTraceSegments call.
#[derive(Debug)]
pub struct XrayRequest {
    documents: Vec<Document>,
}

/// Connection problems, as the daemon reports them in its telemetry.
#[derive(Debug, Default)]
pub struct BackendErrors {
    pub timeout: AtomicI32,
    pub connection_refused: AtomicI32,
    pub http_4xx: AtomicI32,
    pub http_5xx: AtomicI32,
    pub unknown_host: AtomicI32,
    pub other: AtomicI32,
}

/// Sends segment documents to X-Ray.
pub struct Xray {
    client: aws_sdk_xray::Client,
    translation: XrayTranslation,
    max_documents: usize,
    timeout: Duration,
    errors: Arc<BackendErrors>,
    unprocessed_log: LogLimiter,
}

impl Xray {
    pub fn new(
        client: aws_sdk_xray::Client,
        translation: XrayTranslation,
        max_documents: usize,
        timeout: Duration,
        errors: Arc<BackendErrors>,
    ) -> Self {
        Xray {
            client,
            translation,
            max_documents: max_documents.clamp(1, MAX_DOCUMENTS_PER_CALL),
            timeout,
            errors,
            unprocessed_log: LogLimiter::new(Duration::from_secs(10)),
        }
    }

    fn classify_failure(&self, error: &SdkError<PutTraceSegmentsError>) -> ExportError {
        let reason = format!("PutTraceSegments failed: {}", crate::telemetry::error_text::chain(error));
        match error {
            SdkError::ServiceError(service) => {
                let status = service.raw().status().as_u16();
                let throttled = service.err().code().is_some_and(is_throttling_code) || status == 429;
                if status >= 500 {
                    self.errors.http_5xx.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.errors.http_4xx.fetch_add(1, Ordering::Relaxed);
                }
                if throttled || status >= 500 {
                    ExportError::retryable(reason)
                } else {
                    ExportError::permanent(LossReason::Rejected, reason)
                }
            }
            SdkError::TimeoutError(_) => {
                self.errors.timeout.fetch_add(1, Ordering::Relaxed);
                ExportError::retryable(reason)
            }
            SdkError::DispatchFailure(failure) => {
                let counter = if reason.contains("dns error") || reason.contains("failed to lookup") {
                    &self.errors.unknown_host
                } else if reason.contains("Connection refused") || reason.contains("connection refused") {
                    &self.errors.connection_refused
                } else if failure.is_timeout() {
                    &self.errors.timeout
                } else {
                    &self.errors.other
                };
                counter.fetch_add(1, Ordering::Relaxed);
                ExportError::retryable(reason)
            }
            SdkError::ConstructionFailure(_) => ExportError::permanent(LossReason::InvalidRequest, reason),
            _ => {
                self.errors.other.fetch_add(1, Ordering::Relaxed);
                ExportError::retryable(reason)
            }
        }
    }

    /// Splits X-Ray's unprocessed list into documents to retry and documents refused for good.
    fn settle(&self, request: &mut XrayRequest, unprocessed: &[UnprocessedTraceSegment], elapsed: Duration) -> Sent {
        let total = request.documents.len();
        let by_id: HashMap<&str, &UnprocessedTraceSegment> =
            unprocessed.iter().filter_map(|u| u.id().map(|id| (id, u))).collect();
        let mut rejected = Vec::new();
        let mut retry = Vec::new();
        for document in request.documents.drain(..) {
            let Some(entry) = by_id.get(document.id.as_str()) else { continue };
            let code = entry.error_code().unwrap_or("unknown");
            if is_retryable_code(code) {
                retry.push(document);
                continue;
            }
            let message = entry.message().unwrap_or("");
            if let Some(suppressed) = self.unprocessed_log.check() {
                tracing::warn!(
                    destination = "xray", segment_id = %document.id, trace_id = %document.trace_id,
                    error_code = code, message, suppressed, "Unprocessed segment rejected by X-Ray"
                );
            }
            let detail = format!("segment {} of trace {}: {code}: {message}", document.id, document.trace_id);
            rejected.push(Rejected { items: 1, reason: LossReason::Unprocessed, detail });
        }
        // Entries without an id (X-Ray answers so for documents it cannot parse at all) cannot be
        // matched to a document; count them so nothing is lost silently.
        let anonymous = unprocessed.iter().filter(|u| u.id().is_none()).count();
        if anonymous > 0 {
            let detail = format!("{anonymous} unprocessed segment(s) without an id");
            rejected.push(Rejected { items: anonymous, reason: LossReason::Unprocessed, detail });
        }
        let failed: usize = rejected.iter().map(|r| r.items).sum::<usize>() + retry.len();
        let accepted = total.saturating_sub(failed);
        if unprocessed.is_empty() {
            tracing::info!(
                destination = "xray",
                "Successfully sent batch of {total} segments ({:.3} seconds)",
                elapsed.as_secs_f64()
            );
        } else {
            tracing::info!(
                destination = "xray",
                "Sent batch of {total} segments but had {} Unprocessed segments ({:.3} seconds)",
                unprocessed.len(),
                elapsed.as_secs_f64()
            );
        }
        let retry_remaining =
            (!retry.is_empty()).then(|| format!("{} segments unprocessed with retryable errors", retry.len()));
        request.documents = retry;
        Sent { accepted, rejected, retry_remaining }
    }
}

impl Xray {
    /// OpenTelemetry spans of a batch as segment documents.
    fn translated_documents(&self, batches: &[SharedBatch], rejected: &mut Vec<Rejected>) -> Vec<Document> {
        let mut documents = Vec::new();
        let now = SystemTime::now();
        for batch in batches {
            let Payload::Traces(request) = &batch.payload else { continue };
            let request = match request.decoded() {
                Ok(request) => request,
                Err(error) => {
                    rejected.push(Rejected::undecodable(batch.items, &error));
                    continue;
                }
            };
            let translated = self.translation.translate(&request.resource_spans, now);
            rejected.extend(translated.rejected);
            if translated.trimmed > 0 {
                tracing::debug!(
                    destination = "xray",
                    documents = translated.trimmed,
                    "trimmed metadata to fit X-Ray's document limit"
                );
            }
            for document in translated.documents {
                // serde_json writes UTF-8; a failure here would be a bug, reported not hidden.
                match String::from_utf8(document.json) {
                    Ok(json) => documents.push(Document { json, id: document.id, trace_id: document.trace_id }),
                    Err(_) => rejected.push(Rejected {
                        items: 1,
                        reason: LossReason::Invalid,
                        detail: format!("span {} translated to non-UTF-8", document.id),
                    }),
                }
            }
        }
        documents
    }
}

/// X-Ray's throttling codes.
fn is_throttling_code(code: &str) -> bool {
    code.contains("Throttl") || code == "TooManyRequestsException" || code == "RequestLimitExceeded"
}

/// Unprocessed-segment codes worth sending again.
fn is_retryable_code(code: &str) -> bool {
    is_throttling_code(code) || matches!(code, "InternalFailure" | "InternalError" | "ServiceUnavailable")
}

/// The raw documents of a batch, refusing those X-Ray would refuse for their size.
fn raw_documents(batches: &[SharedBatch], rejected: &mut Vec<Rejected>) -> Vec<Document> {
    let mut documents = Vec::new();
    for batch in batches {
        let Payload::XraySegments(segments) = &batch.payload else { continue };
        for segment in segments {
            if segment.body.len() > MAX_DOCUMENT_BYTES {
                let detail = format!(
                    "segment {} of trace {} is {} bytes; X-Ray takes at most {MAX_DOCUMENT_BYTES}",
                    segment.id,
                    segment.trace_id,
                    segment.body.len()
                );
                tracing::warn!(destination = "xray", segment_id = %segment.id, trace_id = %segment.trace_id, bytes = segment.body.len(), "segment too large for X-Ray; not sent");
                rejected.push(Rejected { items: 1, reason: LossReason::TooLarge, detail });
                continue;
            }
            // The receiver checked the body is JSON, so it is UTF-8; the bytes stay as they are.
            match std::str::from_utf8(&segment.body) {
                Ok(json) => documents.push(Document {
                    json: json.to_string(),
                    id: segment.id.clone(),
                    trace_id: segment.trace_id.clone(),
                }),
                Err(_) => rejected.push(Rejected {
                    items: 1,
                    reason: LossReason::Invalid,
                    detail: format!("segment {} is not UTF-8", segment.id),
                }),
            }
        }
    }
    documents
}

impl Exporter for Xray {
    type Request = XrayRequest;

    fn build(&self, signal: Signal, batches: &[SharedBatch]) -> Built<XrayRequest> {
        let mut rejected = Vec::new();
        if signal != Signal::Traces {
            return Built { requests: Vec::new(), rejected };
        }
        let mut documents = raw_documents(batches, &mut rejected);
        documents.extend(self.translated_documents(batches, &mut rejected));
        let mut requests = Vec::with_capacity(documents.len().div_ceil(self.max_documents));
        let mut documents = documents.into_iter().peekable();
        while documents.peek().is_some() {
            requests.push(XrayRequest { documents: documents.by_ref().take(self.max_documents).collect() });
        }
        Built { requests, rejected }
    }

    fn items(request: &XrayRequest) -> usize {
        request.documents.len()
    }

    async fn send(&self, request: &mut XrayRequest) -> Result<Sent, ExportError> {
        let documents: Vec<String> = request.documents.iter().map(|d| d.json.clone()).collect();
        let started = Instant::now();
        let call = self.client.put_trace_segments().set_trace_segment_documents(Some(documents)).send();
        let output = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(output)) => output,
            Ok(Err(error)) => return Err(self.classify_failure(&error)),
            Err(_) => {
                self.errors.timeout.fetch_add(1, Ordering::Relaxed);
                return Err(ExportError::retryable(format!("PutTraceSegments: no answer within {:?}", self.timeout)));
            }
        };
        Ok(self.settle(request, output.unprocessed_trace_segments(), started.elapsed()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc as StdArc;

    use bytes::Bytes;

    use super::*;
    use crate::model::{Batch, XraySegment};

    fn exporter() -> Xray {
        let config = aws_sdk_xray::Config::builder()
            .behavior_version(aws_sdk_xray::config::BehaviorVersion::latest())
            .region(aws_sdk_xray::config::Region::new("us-east-1"))
            .build();
        Xray::new(
            aws_sdk_xray::Client::from_conf(config),
            XrayTranslation::default(),
            50,
            Duration::from_secs(1),
            Arc::default(),
        )
    }

    /// A document of exactly `size` bytes (or its smallest form, if `size` is smaller).
    fn segment(id: &str, size: usize) -> XraySegment {
        let document = |padding: &str| {
            format!(r#"{{"id":"{id}","trace_id":"1-5f84c7a1-e7d1852db8c4fd35d88bf49a","p":"{padding}"}}"#)
        };
        let padding = "x".repeat(size.saturating_sub(document("").len()));
        let body = document(&padding);
        XraySegment { body: Bytes::from(body), trace_id: "1-5f84c7a1-e7d1852db8c4fd35d88bf49a".into(), id: id.into() }
    }

    fn batch(segments: Vec<XraySegment>) -> SharedBatch {
        StdArc::new(Batch::xray(segments))
    }

    fn unprocessed(id: &str, code: &str) -> UnprocessedTraceSegment {
        UnprocessedTraceSegment::builder().id(id).error_code(code).message("because").build()
    }

    fn request(ids: &[&str]) -> XrayRequest {
        let documents =
            ids.iter().map(|id| Document { json: "{}".into(), id: id.to_string(), trace_id: "t".into() }).collect();
        XrayRequest { documents }
    }

    #[test]
    fn documents_pass_through_byte_for_byte() {
        let original = segment("a1", 100);
        let built = exporter().build(Signal::Traces, &[batch(vec![original.clone()])]);
        assert_eq!(built.requests[0].documents[0].json.as_bytes(), &original.body[..]);
    }

    #[test]
    fn at_most_fifty_documents_go_in_one_call() {
        let segments = (0..120).map(|i| segment(&format!("{i:016x}"), 80)).collect();
        let built = exporter().build(Signal::Traces, &[batch(segments)]);
        let sizes: Vec<usize> = built.requests.iter().map(|r| r.documents.len()).collect();
        assert_eq!(sizes, vec![50, 50, 20]);
    }

    #[test]
    fn a_lower_document_cap_is_honoured() {
        let xray = Xray::new(exporter().client, XrayTranslation::default(), 10, Duration::from_secs(1), Arc::default());
        let segments = (0..25).map(|i| segment(&format!("{i:016x}"), 80)).collect();
        let sizes: Vec<usize> =
            xray.build(Signal::Traces, &[batch(segments)]).requests.iter().map(|r| r.documents.len()).collect();
        assert_eq!(sizes, vec![10, 10, 5]);
    }

    #[test]
    fn a_document_of_exactly_64_kib_is_sent_and_one_byte_more_is_refused() {
        let at_limit = segment("fits", MAX_DOCUMENT_BYTES);
        let over = segment("over", MAX_DOCUMENT_BYTES + 1);
        assert_eq!((at_limit.body.len(), over.body.len()), (MAX_DOCUMENT_BYTES, MAX_DOCUMENT_BYTES + 1));
        let built = exporter().build(Signal::Traces, &[batch(vec![at_limit, over])]);
        assert_eq!(built.requests[0].documents.len(), 1);
        assert_eq!(built.requests[0].documents[0].id, "fits");
        assert_eq!((built.rejected[0].reason, built.rejected[0].items), (LossReason::TooLarge, 1));
        assert!(built.rejected[0].detail.contains("over"), "{}", built.rejected[0].detail);
    }

    #[test]
    fn all_processed_is_all_sent() {
        let mut req = request(&["a", "b"]);
        let sent = exporter().settle(&mut req, &[], Duration::ZERO);
        assert_eq!((sent.accepted, sent.rejected.len(), sent.retry_remaining), (2, 0, None));
    }

    #[test]
    fn invalid_documents_are_rejected_and_not_retried() {
        let mut req = request(&["a", "b", "c"]);
        let sent = exporter().settle(&mut req, &[unprocessed("b", "MissingParam")], Duration::ZERO);
        assert_eq!(sent.accepted, 2);
        assert_eq!((sent.rejected[0].reason, sent.rejected[0].items), (LossReason::Unprocessed, 1));
        assert!(sent.rejected[0].detail.contains("MissingParam"));
        assert!(sent.retry_remaining.is_none());
    }

    #[test]
    fn throttled_documents_are_kept_for_a_retry() {
        let mut req = request(&["a", "b", "c"]);
        let answer = [unprocessed("a", "ThrottledException"), unprocessed("c", "InvalidTraceId")];
        let sent = exporter().settle(&mut req, &answer, Duration::ZERO);
        assert_eq!(sent.accepted, 1);
        assert_eq!(sent.rejected.len(), 1);
        assert!(sent.retry_remaining.is_some());
        let left: Vec<&str> = req.documents.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(left, vec!["a"]);
    }

    #[test]
    fn unprocessed_entries_without_an_id_are_counted() {
        let mut req = request(&["a"]);
        let answer = [UnprocessedTraceSegment::builder().error_code("ParseError").build()];
        let sent = exporter().settle(&mut req, &answer, Duration::ZERO);
        assert_eq!(sent.rejected[0].items, 1);
    }

    #[test]
    fn opentelemetry_spans_are_translated_and_sdk_segments_are_not() {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
        let span = Span {
            trace_id: vec![0x5f; 16],
            span_id: vec![0x11; 8],
            name: "GET /api".into(),
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_500_000_000,
            ..Default::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans: vec![span], ..Default::default() }],
                ..Default::default()
            }],
        };
        let otel = StdArc::new(Batch::traces(request, 100));
        let sdk = segment("a1", 100);
        let built = exporter().build(Signal::Traces, &[batch(vec![sdk.clone()]), otel]);
        let documents = &built.requests[0].documents;
        assert_eq!(documents.len(), 2, "one raw, one translated, no duplicate");
        assert_eq!(documents[0].json.as_bytes(), &sdk.body[..]);
        let translated: serde_json::Value = serde_json::from_str(&documents[1].json).unwrap();
        assert_eq!(translated["id"], "1111111111111111");
        assert_eq!(translated["trace_id"], "1-5f5f5f5f-5f5f5f5f5f5f5f5f5f5f5f5f");
    }

    #[test]
    fn other_signals_build_nothing() {
        let built = exporter().build(Signal::Logs, &[batch(vec![segment("a", 80)])]);
        assert!(built.requests.is_empty());
    }
}
