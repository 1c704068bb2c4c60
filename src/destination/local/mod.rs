//! The local store destination: the lane in front of the embedded store ([`crate::store`]).
//!
//! [`LocalStore`] is the lane's exporter. `build` flattens a batch into rows on the lane's task
//! (X-Ray segments are converted to OTLP spans there first), so spans are stored in one shape
//! whatever their source; `send` hands the rows to the store's writer thread, which commits
//! each request in one transaction.

mod settings;
mod setup;

use std::path::Path;

use crate::destination::{Built, ExportError, Exporter, Rejected, Sent};
use crate::model::LossReason;
use crate::model::{Payload, SharedBatch, Signal};
use crate::store::{Flattener, Rows, StoreError, StoreReader, StoreStats, StoreWriter, WriteError};
use crate::translate::xray_to_otlp;

pub use settings::LocalStoreSettings;
pub(crate) use setup::{LocalSetup, OpenFailed, setup};

/// The local store's exporter (the write side). Dropping it lets the writer finish the write
/// in progress, close the database and release its lock before the drop returns.
pub struct LocalStore {
    writer: StoreWriter,
}

/// Rows ready for one write transaction.
#[derive(Debug)]
pub struct StoreRequest {
    /// Spans, log records or metric data points: kept apart from the rows, which are away at
    /// the writer while a send is in progress.
    items: usize,
    rows: Rows,
}

impl LocalStore {
    /// Opens (or creates) the store at `path`, creating its directory, and brings it under
    /// `max_size` bytes. Fails with a [`StoreError`] that says what is wrong, never panics.
    pub fn open(path: &Path, max_size: u64) -> Result<(LocalStore, StoreReader), StoreError> {
        let (writer, reader) = StoreWriter::open(path, max_size)?;
        Ok((LocalStore { writer }, reader))
    }

    /// What the store holds now, and what it has evicted since start-up.
    pub fn stats(&self) -> StoreStats {
        self.writer.stats()
    }
}

impl Exporter for LocalStore {
    type Request = StoreRequest;

    /// One request per call: the lane hands over batches of one signal, and each payload is
    /// flattened by its own kind (`signal` adds nothing).
    fn build(&self, _signal: Signal, batches: &[SharedBatch]) -> Built<StoreRequest> {
        let mut flattener = Flattener::default();
        // X-Ray documents are converted together: streamed subsegments find their segment.
        let (xray_spans, mut rejected) = xray_to_otlp::convert_batches(batches);
        flattener.add_resource_spans(&xray_spans);
        for batch in batches {
            match &batch.payload {
                Payload::Traces(request) => match request.decoded() {
                    Ok(request) => flattener.add_resource_spans(&request.resource_spans),
                    Err(error) => rejected.push(Rejected::undecodable(batch.items, &error)),
                },
                Payload::XraySegments(_) => {}
                Payload::Logs(request) => match request.decoded() {
                    Ok(request) => flattener.add_resource_logs(&request.resource_logs),
                    Err(error) => rejected.push(Rejected::undecodable(batch.items, &error)),
                },
                Payload::Metrics(request) => match request.decoded() {
                    Ok(request) => flattener.add_resource_metrics(&request.resource_metrics),
                    Err(error) => rejected.push(Rejected::undecodable(batch.items, &error)),
                },
            }
        }
        let (rows, items, invalid) = flattener.finish();
        rejected.extend(invalid);
        let requests = if rows.is_empty() { Vec::new() } else { vec![StoreRequest { items, rows }] };
        Built { requests, rejected }
    }

    fn items(request: &StoreRequest) -> usize {
        request.items
    }

    async fn send(&self, request: &mut StoreRequest) -> Result<Sent, ExportError> {
        self.writer.write(&mut request.rows).await.map_err(export_error)?;
        Ok(Sent::all(request.items))
    }
}

/// How a failed write counts for the lane: a busy database is retried, anything else is lost.
fn export_error(error: WriteError) -> ExportError {
    let reason = error.to_string();
    match error {
        WriteError::Busy(_) => ExportError::retryable(reason),
        WriteError::Failed(_) => ExportError::permanent(LossReason::StoreError, reason),
        WriteError::Closed | WriteError::WriterStopped | WriteError::StoppedDuringWrite => {
            ExportError::permanent(LossReason::StoreStopped, reason)
        }
    }
}
