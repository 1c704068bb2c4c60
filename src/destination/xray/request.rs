//! How a batch becomes PutTraceSegments calls: X-Ray SDK segments as received (refusing
//! those over X-Ray's size limit), OpenTelemetry spans translated, at most 50 documents a call.

use std::time::SystemTime;

use crate::destination::Rejected;
use crate::model::{LossReason, Payload, SharedBatch};
use crate::translate::otlp_to_xray::XrayTranslation;

/// X-Ray's limit on one segment document ("64 KB"). Raw SDK documents are refused only past
/// 64 KiB (a UDP datagram cannot even carry that much); translated documents are kept under
/// the stricter 64,000 bytes by the translation itself.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// X-Ray's cap on documents per PutTraceSegments call.
pub(crate) const MAX_DOCUMENTS_PER_CALL: usize = 50;

/// One segment document on its way to X-Ray.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    pub json: String,
    pub id: String,
    pub trace_id: String,
}

/// One PutTraceSegments call.
#[derive(Debug)]
pub(crate) struct XrayRequest {
    pub(crate) documents: Vec<Document>,
}

/// Documents split into calls of at most `max_documents` each.
pub(super) fn into_requests(documents: Vec<Document>, max_documents: usize) -> Vec<XrayRequest> {
    let mut requests = Vec::with_capacity(documents.len().div_ceil(max_documents));
    let mut documents = documents.into_iter().peekable();
    while documents.peek().is_some() {
        requests.push(XrayRequest { documents: documents.by_ref().take(max_documents).collect() });
    }
    requests
}

/// The raw documents of a batch, refusing those X-Ray would refuse for their size.
pub(super) fn raw_documents(batches: &[SharedBatch], rejected: &mut Vec<Rejected>) -> Vec<Document> {
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

/// OpenTelemetry spans of a batch as segment documents, translated as of `now`.
pub(super) fn translated_documents(
    translation: &XrayTranslation,
    batches: &[SharedBatch],
    now: SystemTime,
    rejected: &mut Vec<Rejected>,
) -> Vec<Document> {
    let mut documents = Vec::new();
    for batch in batches {
        let Payload::Traces(request) = &batch.payload else { continue };
        let request = match request.decoded() {
            Ok(request) => request,
            Err(error) => {
                rejected.push(Rejected::undecodable(batch.items, &error));
                continue;
            }
        };
        let translated = translation.translate(&request.resource_spans, now);
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
