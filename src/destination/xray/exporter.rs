//! The X-Ray exporter: sends each request with PutTraceSegments and settles X-Ray's answer,
//! retrying only the documents left unprocessed for a reason worth retrying.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_xray::types::UnprocessedTraceSegment;

use super::client::{SdkXrayClient, XrayClient};
use super::request::{MAX_DOCUMENTS_PER_CALL, XrayRequest, into_requests, raw_documents, translated_documents};
use super::telemetry::BackendErrors;
use crate::aws::classify::{classify_and_report, is_retryable_code};
use crate::destination::{Built, ExportError, Exporter, Rejected, Sent};
use crate::model::{LossReason, SharedBatch, Signal};
use crate::telemetry::ratelimit::LogLimiter;
use crate::telemetry::status::DestinationStatus;
use crate::translate::otlp_to_xray::XrayTranslation;

/// Sends segment documents to X-Ray.
pub(crate) struct Xray<C: XrayClient = SdkXrayClient> {
    client: C,
    translation: XrayTranslation,
    max_documents: usize,
    errors: Arc<BackendErrors>,
    status: Arc<DestinationStatus>,
    unprocessed_log: LogLimiter,
}

impl<C: XrayClient> Xray<C> {
    /// An exporter sending at most `max_documents` (1 to 50) per call; connection problems are
    /// counted in `errors` (for the daemon telemetry), credential problems shown on `status`.
    pub(crate) fn new(
        client: C,
        translation: XrayTranslation,
        max_documents: usize,
        errors: Arc<BackendErrors>,
        status: Arc<DestinationStatus>,
    ) -> Self {
        Xray {
            client,
            translation,
            max_documents: max_documents.clamp(1, MAX_DOCUMENTS_PER_CALL),
            errors,
            status,
            unprocessed_log: LogLimiter::new(Duration::from_secs(10)),
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

impl<C: XrayClient> Exporter for Xray<C> {
    type Request = XrayRequest;

    fn build(&self, signal: Signal, batches: &[SharedBatch]) -> Built<XrayRequest> {
        let mut rejected = Vec::new();
        if signal != Signal::Traces {
            return Built { requests: Vec::new(), rejected };
        }
        let mut documents = raw_documents(batches, &mut rejected);
        documents.extend(translated_documents(&self.translation, batches, SystemTime::now(), &mut rejected));
        Built { requests: into_requests(documents, self.max_documents), rejected }
    }

    fn items(request: &XrayRequest) -> usize {
        request.documents.len()
    }

    async fn send(&self, request: &mut XrayRequest) -> Result<Sent, ExportError> {
        let documents: Vec<String> = request.documents.iter().map(|d| d.json.clone()).collect();
        let started = Instant::now();
        match self.client.put_trace_segments(documents).await {
            Ok(unprocessed) => Ok(self.settle(request, &unprocessed, started.elapsed())),
            Err(error) => {
                self.errors.record(&error);
                Err(classify_and_report("PutTraceSegments", "", &error, &self.status))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Arc as StdArc;
    use std::sync::Mutex;

    use aws_sdk_xray::types::TelemetryRecord;
    use bytes::Bytes;

    use super::*;
    use crate::aws::AwsCallError;
    use crate::destination::xray::client::Identity;
    use crate::destination::xray::request::{Document, MAX_DOCUMENT_BYTES};
    use crate::model::{Batch, Destination, XraySegment};

    /// Answers PutTraceSegments from a queue of scripted outcomes (all processed when empty)
    /// and records the ids of every call's documents.
    #[derive(Default)]
    struct ScriptedXray {
        answers: Mutex<VecDeque<Result<Vec<UnprocessedTraceSegment>, AwsCallError>>>,
        calls: Mutex<Vec<Vec<String>>>,
    }

    impl XrayClient for StdArc<ScriptedXray> {
        async fn put_trace_segments(
            &self,
            documents: Vec<String>,
        ) -> Result<Vec<UnprocessedTraceSegment>, AwsCallError> {
            self.calls.lock().unwrap().push(documents);
            self.answers.lock().unwrap().pop_front().unwrap_or_else(|| Ok(Vec::new()))
        }

        async fn put_telemetry_records(&self, _: Vec<TelemetryRecord>, _: &Identity) -> Result<(), AwsCallError> {
            Ok(())
        }
    }

    struct ScriptedXrayLane {
        xray: StdArc<ScriptedXray>,
        exporter: Xray<StdArc<ScriptedXray>>,
        status: Arc<DestinationStatus>,
        errors: Arc<BackendErrors>,
    }

    fn lane_with_cap(max_documents: usize) -> ScriptedXrayLane {
        let xray = StdArc::new(ScriptedXray::default());
        let status = Arc::new(DestinationStatus::new(Destination::Xray, true, "test", vec!["traces"]));
        let errors = Arc::new(BackendErrors::default());
        let exporter = Xray::new(
            StdArc::clone(&xray),
            XrayTranslation::default(),
            max_documents,
            Arc::clone(&errors),
            Arc::clone(&status),
        );
        ScriptedXrayLane { xray, exporter, status, errors }
    }

    fn lane() -> ScriptedXrayLane {
        lane_with_cap(50)
    }

    fn exporter() -> Xray<StdArc<ScriptedXray>> {
        lane().exporter
    }

    impl ScriptedXrayLane {
        fn answer(&self, answer: Result<Vec<UnprocessedTraceSegment>, AwsCallError>) {
            self.xray.answers.lock().unwrap().push_back(answer);
        }

        fn problem(&self) -> Option<String> {
            let report = serde_json::to_value(self.status.report()).expect("status serialises");
            report["problem"].as_str().map(str::to_owned)
        }
    }

    fn service_error(code: &str, status: u16) -> AwsCallError {
        AwsCallError::Service { code: code.into(), message: format!("{code} happened"), status }
    }

    fn label(error: &ExportError) -> Option<LossReason> {
        match error {
            ExportError::Permanent { label, .. } => Some(*label),
            ExportError::Retryable { .. } | ExportError::Blocked { .. } => None,
        }
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
        let xray = lane_with_cap(10).exporter;
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

    // ---- sending, through a scripted X-Ray ---------------------------------------------------

    #[tokio::test]
    async fn a_processed_call_sends_every_document() {
        let lane = lane();
        let sent = lane.exporter.send(&mut request(&["a", "b"])).await.expect("sent");
        assert_eq!((sent.accepted, sent.rejected.len(), sent.retry_remaining), (2, 0, None));
        assert_eq!(lane.xray.calls.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_throttled_call_is_retried() {
        let lane = lane();
        lane.answer(Err(service_error("ThrottlingException", 400)));
        let failure = lane.exporter.send(&mut request(&["a"])).await.expect_err("throttled");
        assert_eq!(label(&failure), None, "{failure}");
        assert_eq!(lane.errors.http_4xx.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_server_error_or_timeout_is_retried() {
        let lane = lane();
        lane.answer(Err(service_error("InternalServerError", 500)));
        lane.answer(Err(AwsCallError::Timeout("PutTraceSegments: no answer within 5s".into())));
        for _ in 0..2 {
            let failure = lane.exporter.send(&mut request(&["a"])).await.expect_err("failed");
            assert_eq!(label(&failure), None, "{failure}");
        }
        assert_eq!(lane.errors.http_5xx.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(lane.errors.timeout.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn bad_credentials_block_the_lane() {
        let lane = lane();
        lane.answer(Err(service_error("UnrecognizedClientException", 400)));
        let failure = lane.exporter.send(&mut request(&["a"])).await.expect_err("refused");
        assert!(matches!(failure, ExportError::Blocked { .. }), "{failure:?}");
    }

    #[tokio::test]
    async fn bad_credentials_are_shown_as_a_problem_on_status() {
        let lane = lane();
        lane.answer(Err(service_error("AccessDeniedException", 403)));
        let _ = lane.exporter.send(&mut request(&["a"])).await;
        assert!(lane.problem().is_some_and(|p| p.contains("AccessDeniedException")), "{:?}", lane.problem());
    }

    #[tokio::test]
    async fn a_bad_request_is_permanent_and_rejected() {
        let lane = lane();
        lane.answer(Err(service_error("InvalidRequestException", 400)));
        let failure = lane.exporter.send(&mut request(&["a"])).await.expect_err("refused");
        assert_eq!(label(&failure), Some(LossReason::Rejected));
        assert!(failure.to_string().contains("PutTraceSegments") && failure.to_string().contains("InvalidRequest"));
        assert_eq!(lane.problem(), None, "not a credentials problem");
    }

    #[tokio::test]
    async fn partly_unprocessed_calls_retry_the_throttled_and_count_the_rest() {
        let lane = lane();
        lane.answer(Ok(vec![unprocessed("a", "ThrottledException"), unprocessed("c", "InvalidTraceId")]));
        let mut req = request(&["a", "b", "c"]);
        let sent = lane.exporter.send(&mut req).await.expect("sent");
        assert_eq!(sent.accepted, 1);
        assert_eq!((sent.rejected[0].reason, sent.rejected[0].items), (LossReason::Unprocessed, 1));
        assert!(sent.retry_remaining.is_some());
        let retried = lane.exporter.send(&mut req).await.expect("sent");
        assert_eq!(retried.accepted, 1);
        let calls = lane.xray.calls.lock().unwrap().clone();
        assert_eq!(calls.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 1], "only the throttled one again");
    }
}
