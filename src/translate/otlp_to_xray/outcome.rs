//! What a translation gives back: the documents, the spans that could not become one and why.

use crate::destination::Rejected;
use crate::model::LossReason;

/// The largest document sent. X-Ray's quota says "64 KB"; 64,000 is the smaller reading,
/// so a document is never refused over the unit.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 64_000;

/// One segment or subsegment document, ready to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct XrayDocument {
    /// `1-xxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx`, for logs and for matching unprocessed segments.
    pub trace_id: String,
    /// The document's `id` (16 hex digits).
    pub id: String,
    /// The JSON document, at most [`MAX_DOCUMENT_BYTES`].
    pub json: Vec<u8>,
}

/// What came out of one request's spans.
#[derive(Debug, Default)]
pub(crate) struct Translated {
    pub documents: Vec<XrayDocument>,
    /// Spans that could not become a document, one entry each.
    pub rejected: Vec<Rejected>,
    /// Documents that had metadata cut or dropped to fit [`MAX_DOCUMENT_BYTES`].
    pub trimmed: usize,
}

/// Why a span could not be made a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Untranslatable {
    #[error("trace id is {0} bytes, not 16")]
    TraceIdLength(usize),
    #[error("trace id is all zeros")]
    TraceIdZero,
    #[error("trace id {trace_id} is {age_secs} s old, more than the 28 days X-Ray accepts")]
    TraceIdTooOld { trace_id: String, age_secs: u64 },
    #[error("trace id {trace_id} is {ahead_secs} s in the future, more than the 5 min allowed")]
    TraceIdInFuture { trace_id: String, ahead_secs: u64 },
    #[error("{field} is {length} bytes, not 8")]
    SpanIdLength { field: &'static str, length: usize },
    #[error("span id is all zeros")]
    SpanIdZero,
    #[error("document is {bytes} bytes even without metadata, over the {MAX_DOCUMENT_BYTES}-byte limit")]
    TooLarge { bytes: usize },
    #[error("could not serialize the document: {0}")]
    Serialize(String),
}

impl Untranslatable {
    /// The metrics label: `too_large` for size, `invalid` for the rest.
    pub(crate) fn reason(&self) -> LossReason {
        match self {
            Untranslatable::TooLarge { .. } => LossReason::TooLarge,
            _ => LossReason::Invalid,
        }
    }
}
