//! The spool record envelope (`proto/waggle/spool/v1/spool.proto`, compiled by `build.rs`):
//! a batch turned into a record and back.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use prost::Message;

use crate::model::{Batch, OtlpRequest, Payload, Signal, XraySegment};

/// The types generated from `spool.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/waggle.spool.v1.rs"));
}

use proto::spool_record::Payload as RecordPayload;

/// A record that could not be turned back into a batch.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not a spool record: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("the record has no payload")]
    NoPayload,
    #[error("the record's signal ({0}) is unknown")]
    UnknownSignal(i32),
    #[error("X-Ray documents recorded as {0}")]
    XrayNotTraces(Signal),
}

/// A batch's payload encoded once, to be written to one or more spools.
#[derive(Debug, Clone)]
pub struct EncodedBatch {
    pub signal: Signal,
    pub items: u64,
    payload: RecordPayload,
}

impl EncodedBatch {
    /// Encodes the batch's payload (an OTLP request keeps the protobuf it arrived as, or is
    /// serialized; X-Ray documents are shared).
    pub fn new(batch: &Batch) -> EncodedBatch {
        let payload = match &batch.payload {
            Payload::Traces(request) => RecordPayload::OtlpRequest(otlp_bytes(request)),
            Payload::Logs(request) => RecordPayload::OtlpRequest(otlp_bytes(request)),
            Payload::Metrics(request) => RecordPayload::OtlpRequest(otlp_bytes(request)),
            Payload::XraySegments(segments) => RecordPayload::XrayDocuments(proto::XrayDocuments {
                documents: segments
                    .iter()
                    .map(|segment| proto::XrayDocument {
                        body: segment.body.clone(),
                        trace_id: segment.trace_id.clone(),
                        id: segment.id.clone(),
                    })
                    .collect(),
            }),
        };
        EncodedBatch { signal: batch.signal(), items: batch.items as u64, payload }
    }

    /// The envelope bytes of this batch as record `sequence`, written at `written`.
    pub fn to_envelope(&self, sequence: u64, written: SystemTime) -> Vec<u8> {
        self.record(sequence, written).encode_to_vec()
    }

    /// Appends the envelope of this batch as record `sequence` to `buffer`.
    pub(crate) fn encode_envelope(&self, sequence: u64, written: SystemTime, buffer: &mut Vec<u8>) {
        let record = self.record(sequence, written);
        buffer.reserve(record.encoded_len());
        // Encoding into a Vec only fails when it lacks room, and it grows.
        let _ = record.encode(buffer);
    }

    fn record(&self, sequence: u64, written: SystemTime) -> proto::SpoolRecord {
        let written_time_unix_nano =
            written.duration_since(UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX));
        proto::SpoolRecord {
            sequence,
            written_time_unix_nano,
            signal: signal_to_proto(self.signal) as i32,
            items: self.items,
            payload: Some(self.payload.clone()),
        }
    }
}

/// What a scan needs from a record without decoding its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub sequence: u64,
    pub signal: Signal,
    pub items: u64,
}

/// Reads a record's sequence, signal and item count; the payload is skipped, not copied.
pub fn summary(envelope: &[u8]) -> Result<Summary, EnvelopeError> {
    let summary = proto::SpoolRecordSummary::decode(envelope)?;
    Ok(Summary { sequence: summary.sequence, signal: signal_from_proto(summary.signal)?, items: summary.items })
}

/// A record turned back into the batch a receiver accepted.
#[derive(Debug)]
pub struct DecodedRecord {
    pub sequence: u64,
    pub written: SystemTime,
    pub batch: Batch,
}

/// Decodes a whole record, payload included.
pub fn decode(envelope: Bytes) -> Result<DecodedRecord, EnvelopeError> {
    let record = proto::SpoolRecord::decode(envelope)?;
    let signal = signal_from_proto(record.signal)?;
    let written = UNIX_EPOCH + std::time::Duration::from_nanos(record.written_time_unix_nano);
    let batch = match record.payload.ok_or(EnvelopeError::NoPayload)? {
        RecordPayload::OtlpRequest(bytes) => otlp_batch(signal, bytes, record.items),
        RecordPayload::XrayDocuments(documents) => {
            if signal != Signal::Traces {
                return Err(EnvelopeError::XrayNotTraces(signal));
            }
            let segments = documents
                .documents
                .into_iter()
                .map(|document| XraySegment { body: document.body, trace_id: document.trace_id, id: document.id })
                .collect();
            Batch::xray(segments)
        }
    };
    Ok(DecodedRecord { sequence: record.sequence, written, batch })
}

/// The protobuf of an OTLP request: as received when it was kept, else encoded now.
fn otlp_bytes<R: Message + Default>(request: &OtlpRequest<R>) -> Bytes {
    match request.protobuf() {
        Some(bytes) => bytes.clone(),
        // Without protobuf the request was made decoded (OTLP/JSON), so this always encodes.
        None => request.decoded().map(Message::encode_to_vec).unwrap_or_default().into(),
    }
}

/// The batch of an OTLP request read back: its protobuf as the receiver checked it (the record's
/// checksum vouches it is unchanged), decoded only if a lane needs the message, as on arrival.
fn otlp_batch(signal: Signal, bytes: Bytes, items: u64) -> Batch {
    let (items, encoded_len) = (usize::try_from(items).unwrap_or(usize::MAX), bytes.len());
    match signal {
        Signal::Traces => Batch::otlp_traces(OtlpRequest::from_checked_protobuf(bytes), items, encoded_len),
        Signal::Logs => Batch::otlp_logs(OtlpRequest::from_checked_protobuf(bytes), items, encoded_len),
        Signal::Metrics => Batch::otlp_metrics(OtlpRequest::from_checked_protobuf(bytes), items, encoded_len),
    }
}

fn signal_to_proto(signal: Signal) -> proto::Signal {
    match signal {
        Signal::Traces => proto::Signal::Traces,
        Signal::Logs => proto::Signal::Logs,
        Signal::Metrics => proto::Signal::Metrics,
    }
}

fn signal_from_proto(value: i32) -> Result<Signal, EnvelopeError> {
    match proto::Signal::try_from(value) {
        Ok(proto::Signal::Traces) => Ok(Signal::Traces),
        Ok(proto::Signal::Logs) => Ok(Signal::Logs),
        Ok(proto::Signal::Metrics) => Ok(Signal::Metrics),
        Ok(proto::Signal::Unspecified) | Err(_) => Err(EnvelopeError::UnknownSignal(value)),
    }
}

/// A batch and its spool envelope, encoded on first use: however many spools take the batch,
/// it is encoded at most once. Lives on the caller's stack; nothing is allocated until a
/// spool asks for the encoding.
#[derive(Debug)]
pub struct EncodeOnce<'a> {
    batch: &'a Batch,
    encoded: std::cell::OnceCell<EncodedBatch>,
}

impl<'a> EncodeOnce<'a> {
    pub fn new(batch: &'a Batch) -> Self {
        EncodeOnce { batch, encoded: std::cell::OnceCell::new() }
    }

    /// The batch encoded for a spool; encodes it on the first call.
    pub fn get(&self) -> &EncodedBatch {
        self.encoded.get_or_init(|| EncodedBatch::new(self.batch))
    }

    /// True once some spool asked for the encoding.
    pub fn is_encoded(&self) -> bool {
        self.encoded.get().is_some()
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    use super::*;

    fn traces(spans: usize) -> Batch {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: (0..spans).map(|i| Span { name: format!("span {i}"), ..Span::default() }).collect(),
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        };
        let len = request.encoded_len();
        Batch::traces(request, len)
    }

    fn round_trip(batch: &Batch) -> DecodedRecord {
        let envelope = EncodedBatch::new(batch).to_envelope(7, UNIX_EPOCH + std::time::Duration::from_secs(1));
        decode(envelope.into()).unwrap()
    }

    #[test]
    fn an_otlp_traces_batch_comes_back_unchanged() {
        let batch = traces(3);
        let decoded = round_trip(&batch);
        assert_eq!(decoded.sequence, 7);
        assert_eq!(decoded.written, UNIX_EPOCH + std::time::Duration::from_secs(1));
        assert_eq!(decoded.batch.items, 3);
        assert_eq!(decoded.batch.bytes, batch.bytes);
        match (&decoded.batch.payload, &batch.payload) {
            (Payload::Traces(got), Payload::Traces(sent)) => assert_eq!(got.decoded(), sent.decoded()),
            other => panic!("unexpected payloads {other:?}"),
        }
    }

    #[test]
    fn an_otlp_logs_batch_keeps_its_signal() {
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs { log_records: vec![LogRecord::default(); 2], ..ScopeLogs::default() }],
                ..ResourceLogs::default()
            }],
        };
        let decoded = round_trip(&Batch::logs(request.clone(), request.encoded_len()));
        assert_eq!(decoded.batch.signal(), Signal::Logs);
        assert_eq!(decoded.batch.items, 2);
    }

    #[test]
    fn xray_documents_come_back_byte_for_byte() {
        let segments = vec![
            XraySegment { body: Bytes::from_static(b"{\"id\":\"a\"}"), trace_id: "1-abc".into(), id: "a".into() },
            XraySegment { body: Bytes::from_static(b"{\"id\":\"b\"}"), trace_id: "1-abc".into(), id: "b".into() },
        ];
        let decoded = round_trip(&Batch::xray(segments.clone()));
        let Payload::XraySegments(got) = decoded.batch.payload else { panic!("not X-Ray") };
        let bodies: Vec<_> = got.iter().map(|s| (s.body.clone(), s.trace_id.clone(), s.id.clone())).collect();
        let sent: Vec<_> = segments.iter().map(|s| (s.body.clone(), s.trace_id.clone(), s.id.clone())).collect();
        assert_eq!(bodies, sent);
    }

    #[test]
    fn the_summary_reads_the_leading_fields_only() {
        let envelope = EncodedBatch::new(&traces(4)).to_envelope(42, SystemTime::now());
        assert_eq!(summary(&envelope).unwrap(), Summary { sequence: 42, signal: Signal::Traces, items: 4 });
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(Bytes::from_static(b"\xff\xff\xff\xff")).is_err());
        assert!(matches!(decode(Bytes::new()), Err(EnvelopeError::UnknownSignal(0))));
        let no_payload = proto::SpoolRecord { signal: proto::Signal::Logs as i32, ..Default::default() };
        assert!(matches!(decode(no_payload.encode_to_vec().into()), Err(EnvelopeError::NoPayload)));
    }

    #[test]
    fn a_batch_is_encoded_once_however_many_spools_ask() {
        let batch = traces(3);
        let once = EncodeOnce::new(&batch);
        assert!(!once.is_encoded(), "nothing is encoded until a spool asks");
        let first: *const EncodedBatch = once.get();
        let second: *const EncodedBatch = once.get();
        assert!(std::ptr::eq(first, second));
        assert_eq!(once.get().items, 3);
    }
}
