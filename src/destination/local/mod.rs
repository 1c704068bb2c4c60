//! The local store destination: the lane in front of the embedded store ([`crate::store`]).
//!
//! [`LocalStore`] is the lane's exporter. `build` converts X-Ray segments to OTLP spans (so
//! spans are stored in one shape whatever their source) and keeps the batches, shared with the
//! other lanes; `send` appends their decoded requests to the store's open blocks.

mod settings;
mod setup;

use std::path::Path;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use prost::Message;

use crate::destination::{Built, ExportError, Exporter, Rejected, Sent};
use crate::model::LossReason;
use crate::model::{Payload, SharedBatch, Signal};
use crate::store::{AppendError, Invalid, StoreError, StoreOptions, StoreReader, StoreStats, StoreWriter};
use crate::translate::xray_to_otlp;

pub use settings::LocalStoreSettings;

/// The longest one send waits for a store that is behind before the lane is told to retry.
const BEHIND_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
pub(crate) use setup::{LocalSetup, OpenFailed, setup};

/// The local store's exporter (the write side). Dropping it seals what is open, waits for the
/// writes and releases the store's lock before the drop returns.
pub struct LocalStore {
    writer: StoreWriter,
}

/// What one send appends: the lane's batches (shared with the other lanes; trace requests are
/// read from their protobuf as they arrived, without decoding) and the spans converted from
/// X-Ray segments, as protobuf.
#[derive(Debug)]
pub struct StoreRequest {
    /// Spans, log records or metric data points.
    items: usize,
    xray_spans: Option<Vec<u8>>,
    batches: Vec<SharedBatch>,
    /// Parts appended by an earlier attempt (0 is the X-Ray spans, then each batch), so a
    /// retried send never appends a part twice.
    appended: usize,
    /// Spans left out for want of valid ids, over every attempt.
    invalid: Invalid,
}

impl LocalStore {
    /// Opens (or creates) the store in `directory`. Fails with a [`StoreError`] that says what
    /// is wrong, never panics.
    pub fn open(directory: &Path, options: StoreOptions) -> Result<(LocalStore, StoreReader), StoreError> {
        let (writer, reader) = StoreWriter::open(directory, options)?;
        Ok((LocalStore { writer }, reader))
    }

    /// What the store holds now, and what it has evicted since start-up.
    pub fn stats(&self) -> StoreStats {
        self.writer.stats()
    }

    /// Seals every open block and waits until it is written.
    pub fn flush(&self) {
        self.writer.flush();
    }

    /// Imports a store written by the previous release in `data_dir`, if there is one.
    pub fn import_previous(&self, data_dir: &Path) {
        self.writer.import_previous(data_dir);
    }

    /// Waits until every block already sealed is written: what a send refused as "behind"
    /// waits for.
    pub fn wait_for_writes(&self) {
        self.writer.wait_for_writes();
    }
}

impl Exporter for LocalStore {
    type Request = StoreRequest;

    /// One request per call: the lane hands over batches of one signal.
    fn build(&self, _signal: Signal, batches: &[SharedBatch]) -> Built<StoreRequest> {
        // X-Ray documents are converted together: streamed subsegments find their segment.
        let (xray_spans, mut rejected) = xray_to_otlp::convert_batches(batches);
        let mut items: usize = xray_spans.iter().map(spans_in).sum();
        let xray_spans =
            (!xray_spans.is_empty()).then(|| ExportTraceServiceRequest { resource_spans: xray_spans }.encode_to_vec());
        let mut kept = Vec::with_capacity(batches.len());
        for batch in batches {
            let readable = match &batch.payload {
                // Read from the protobuf when there is one: no need to decode.
                Payload::Traces(request) if request.protobuf().is_some() => Ok(()),
                Payload::Traces(request) => request.decoded().map(|_| ()),
                Payload::Logs(request) => request.decoded().map(|_| ()),
                Payload::Metrics(request) => request.decoded().map(|_| ()),
                Payload::XraySegments(_) => continue,
            };
            match readable {
                Ok(()) => {
                    items += batch.items;
                    kept.push(SharedBatch::clone(batch));
                }
                Err(error) => rejected.push(Rejected::undecodable(batch.items, &error)),
            }
        }
        let requests = if items == 0 {
            Vec::new()
        } else {
            vec![StoreRequest { items, xray_spans, batches: kept, appended: 0, invalid: Invalid::default() }]
        };
        Built { requests, rejected }
    }

    fn items(request: &StoreRequest) -> usize {
        request.items
    }

    /// Appends every part of the request. While the store is behind (blocks waiting to be
    /// written), it waits for the next block to be written rather than failing, up to
    /// [`BEHIND_WAIT`]; the lane's queue holds what arrives meanwhile.
    async fn send(&self, request: &mut StoreRequest) -> Result<Sent, ExportError> {
        let deadline = tokio::time::Instant::now() + BEHIND_WAIT;
        loop {
            let written = self.writer.block_written();
            match self.append(request) {
                Err(AppendError::Behind(_)) if tokio::time::Instant::now() < deadline => {
                    // Bounded: a write that never finishes must not hold the lane for ever.
                    let _ = tokio::time::timeout_at(deadline, written).await;
                }
                Err(error) => return Err(export_error(error)),
                Ok(()) => break,
            }
        }
        let invalid = &request.invalid;
        let mut sent = Sent::all(request.items.saturating_sub(invalid.spans));
        if invalid.spans > 0 {
            sent.rejected.push(Rejected {
                items: invalid.spans,
                reason: LossReason::Invalid,
                detail: format!(
                    "{} span(s) without a valid trace or span id; first: {}",
                    invalid.spans,
                    invalid.first.as_deref().unwrap_or_default()
                ),
            });
        }
        Ok(sent)
    }
}

impl LocalStore {
    /// Appends the parts of `request` not appended yet.
    fn append(&self, request: &mut StoreRequest) -> Result<(), AppendError> {
        if request.appended == 0 {
            if let Some(xray_spans) = &request.xray_spans {
                self.writer.append_spans(xray_spans, &mut request.invalid)?;
            }
            request.appended = 1;
        }
        while let Some(batch) = request.batches.get(request.appended - 1) {
            match &batch.payload {
                Payload::Traces(otlp) => match otlp.protobuf() {
                    Some(protobuf) => {
                        self.writer.append_spans(protobuf, &mut request.invalid)?;
                    }
                    None => {
                        if let Ok(decoded) = otlp.decoded() {
                            let protobuf = decoded.encode_to_vec();
                            self.writer.append_spans(&protobuf, &mut request.invalid)?;
                        }
                    }
                },
                Payload::Logs(otlp) => {
                    if let Ok(decoded) = otlp.decoded() {
                        self.writer.append_logs(&decoded.resource_logs)?;
                    }
                }
                Payload::Metrics(otlp) => {
                    if let Ok(decoded) = otlp.decoded() {
                        self.writer.append_metrics(&decoded.resource_metrics)?;
                    }
                }
                Payload::XraySegments(_) => {}
            }
            request.appended += 1;
        }
        Ok(())
    }
}

fn spans_in(resource_spans: &ResourceSpans) -> usize {
    resource_spans.scope_spans.iter().map(|scope| scope.spans.len()).sum()
}

/// How a failed append counts for the lane: a store that is behind or cannot write is retried
/// (the lane backs off and, when full, sheds or refuses; `/status` shows the reason); a closed
/// store loses the rows.
fn export_error(error: AppendError) -> ExportError {
    let reason = error.to_string();
    match error {
        AppendError::Behind(_) | AppendError::CannotWrite(_) => ExportError::retryable(reason),
        AppendError::Closed => ExportError::permanent(LossReason::StoreStopped, reason),
    }
}
