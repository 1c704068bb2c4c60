//! The embedded local store: every signal kept in SQLite under the data directory, bounded in
//! bytes with the oldest data evicted first, and read back by the admin query API.
//!
//! [`LocalStore`] is the lane's exporter. `build` flattens a batch into rows on the lane's task
//! (X-Ray segments are converted to OTLP spans there first), so spans are stored in one shape
//! whatever their source; `send` hands the rows to a dedicated writer thread that owns the only
//! write connection and commits each request in one transaction. [`StoreReader`] queries the
//! same file through its own read connections (WAL mode: readers never wait for the writer).

mod encode;
mod query;
mod rows;
mod schema;
mod write;

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use serde::Serialize;
use tokio::sync::oneshot;

use crate::destination::{Built, ExportError, Exporter, Rejected, Sent};
use crate::model::LossReason;
use crate::model::{Payload, SharedBatch, Signal};
use crate::translate::xray_to_otlp;

pub use query::{
    LogEntry, MetricEntry, Scope, SpanStatus, SpanView, StoreReader, TraceDetail, TraceSummary, parse_trace_id,
};

use rows::{Flattener, Rows};
use write::{WriteJob, WriteReply, Writer};

/// The store's file name inside the data directory.
pub const DB_FILE_NAME: &str = "waggle.db";

/// Where the store lives for a given data directory: `<data_dir>/waggle.db`.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DB_FILE_NAME)
}

/// Why the store could not be opened or queried.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the local store's directory {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("cannot lock the local store {path}: {source}")]
    LockFile { path: PathBuf, source: std::io::Error },
    #[error("the local store {path} is already in use by another waggle process")]
    InUse { path: PathBuf },
    #[error("the local store {path} is busy (locked by another program): {source}")]
    Busy { path: PathBuf, source: rusqlite::Error },
    #[error("the local store {path} is not a valid database (corrupt?); move it aside or delete it: {source}")]
    Corrupt { path: PathBuf, source: rusqlite::Error },
    #[error("the local store {path} has schema version {found}, this waggle knows {known}; move it aside or delete it")]
    UnknownSchema { path: PathBuf, found: i64, known: i64 },
    #[error("cannot open the local store {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("cannot prepare the local store {path}: {source}")]
    Prepare { path: PathBuf, source: rusqlite::Error },
    #[error("cannot start the local store's writer thread: {0}")]
    WriterThread(std::io::Error),
    #[error("local store query failed: {0}")]
    Query(rusqlite::Error),
    #[error("local store query task failed: {0}")]
    QueryTask(String),
}

/// What the store holds now, and what it has evicted since start-up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    /// The bound the store is kept under.
    pub max_bytes: u64,
    /// Approximate bytes held (the sum of the rows' counted sizes).
    pub bytes: u64,
    pub traces: u64,
    pub spans: u64,
    pub logs: u64,
    /// Metric rows (one per metric per resource and scope of a request).
    pub metrics: u64,
    pub evicted_bytes: u64,
    pub evicted_traces: u64,
    pub evicted_spans: u64,
    pub evicted_logs: u64,
    pub evicted_metrics: u64,
}

/// The local store's exporter (the write side). Dropping it lets the writer finish the write
/// in progress, close the database and release its lock before the drop returns.
pub struct LocalStore {
    /// `None` only while dropping.
    jobs: Option<mpsc::Sender<WriteJob>>,
    writer_thread: Option<std::thread::JoinHandle<()>>,
    stats: Arc<Mutex<StoreStats>>,
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
        if let Some(directory) = path.parent().filter(|directory| !directory.as_os_str().is_empty()) {
            std::fs::create_dir_all(directory)
                .map_err(|source| StoreError::CreateDir { path: directory.to_path_buf(), source })?;
        }
        let lock = lock_store(path)?;
        let connection = schema::open_writer(path, max_size)?;
        let stats = Arc::new(Mutex::new(StoreStats { max_bytes: max_size, ..StoreStats::default() }));
        let prepare = |source| StoreError::Prepare { path: path.to_path_buf(), source };
        let mut writer = Writer::new(connection, max_size, Arc::clone(&stats), lock).map_err(prepare)?;
        writer.shrink_to_bound().map_err(prepare)?;
        let reader = StoreReader::new(path.to_path_buf(), schema::open_reader(path)?, Arc::clone(&stats));

        let (jobs, queue) = mpsc::channel();
        let writer_thread = std::thread::Builder::new()
            .name("waggle-store".into())
            .spawn(move || writer.run(queue))
            .map_err(StoreError::WriterThread)?;
        Ok((LocalStore { jobs: Some(jobs), writer_thread: Some(writer_thread), stats }, reader))
    }

    /// What the store holds now, and what it has evicted since start-up.
    pub fn stats(&self) -> StoreStats {
        *self.stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for LocalStore {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(writer_thread) = self.writer_thread.take() {
            // Waits at most for the one write in progress.
            if writer_thread.join().is_err() {
                tracing::error!("the local store's writer thread panicked");
            }
        }
    }
}

/// Takes `<path>.lock`, so two waggle processes never write one store.
fn lock_store(path: &Path) -> Result<File, StoreError> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| StoreError::LockFile { path: lock_path.clone(), source })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StoreError::InUse { path: path.to_path_buf() }),
        Err(TryLockError::Error(source)) => Err(StoreError::LockFile { path: lock_path, source }),
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
        let Some(jobs) = &self.jobs else {
            return Err(ExportError::permanent(LossReason::StoreStopped, "the local store is closed"));
        };
        let (reply, answer) = oneshot::channel();
        let rows = std::mem::take(&mut request.rows);
        if jobs.send(WriteJob { rows, reply }).is_err() {
            return Err(ExportError::permanent(LossReason::StoreStopped, "the local store's writer has stopped"));
        }
        let Ok(WriteReply { rows, result }) = answer.await else {
            return Err(ExportError::permanent(
                LossReason::StoreStopped,
                "the local store's writer stopped during a write",
            ));
        };
        request.rows = rows;
        match result {
            Ok(()) => Ok(Sent::all(request.items)),
            Err(error) if schema::is_busy(&error) => Err(ExportError::retryable(format!("local store busy: {error}"))),
            Err(error) => {
                Err(ExportError::permanent(LossReason::StoreError, format!("local store write failed: {error}")))
            }
        }
    }
}
