//! The embedded store: every signal kept in SQLite under the data directory, bounded in bytes
//! with the oldest data evicted first, and read back by the admin query API.
//!
//! [`StoreWriter`] hands rows (flattened from OTLP by [`Flattener`] on the caller's task) to a
//! dedicated writer thread that owns the only write connection and commits each write in one
//! transaction. [`StoreReader`] queries the same file through its own read connections (WAL
//! mode: readers never wait for the writer). The local store destination
//! (`destination::local`) is the lane in front of the write side.

mod encode;
mod query;
mod rows;
mod schema;
mod search;
mod write;

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use serde::Serialize;
use tokio::sync::oneshot;

pub use query::{
    LogEntry, MetricEntry, Scope, SpanStatus, SpanView, StoreReader, TraceDetail, TraceSummary, parse_trace_id,
};
pub(crate) use rows::{Flattener, Rows};
pub use search::{LogSearch, Operation, TraceSearch};

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

/// Why one write did not happen.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    /// The store is being dropped.
    #[error("the local store is closed")]
    Closed,
    #[error("the local store's writer has stopped")]
    WriterStopped,
    #[error("the local store's writer stopped during a write")]
    StoppedDuringWrite,
    /// Another connection holds the database: worth trying again.
    #[error("local store busy: {0}")]
    Busy(rusqlite::Error),
    #[error("local store write failed: {0}")]
    Failed(rusqlite::Error),
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

/// The write side of the store: a handle to its writer thread. Dropping it lets the writer
/// finish the write in progress, close the database and release its lock before the drop
/// returns.
pub(crate) struct StoreWriter {
    /// `None` only while dropping.
    jobs: Option<mpsc::Sender<WriteJob>>,
    writer_thread: Option<std::thread::JoinHandle<()>>,
    stats: Arc<Mutex<StoreStats>>,
}

impl StoreWriter {
    /// Opens (or creates) the store at `path`, creating its directory, and brings it under
    /// `max_size` bytes. Fails with a [`StoreError`] that says what is wrong, never panics.
    pub(crate) fn open(path: &Path, max_size: u64) -> Result<(StoreWriter, StoreReader), StoreError> {
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
        Ok((StoreWriter { jobs: Some(jobs), writer_thread: Some(writer_thread), stats }, reader))
    }

    /// What the store holds now, and what it has evicted since start-up.
    pub(crate) fn stats(&self) -> StoreStats {
        *self.stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes `rows` in one transaction on the writer thread. The rows are handed back into
    /// `rows` when the writer answers, so a failed write can be retried without building them
    /// again.
    pub(crate) async fn write(&self, rows: &mut Rows) -> Result<(), WriteError> {
        let Some(jobs) = &self.jobs else {
            return Err(WriteError::Closed);
        };
        let (reply, answer) = oneshot::channel();
        if jobs.send(WriteJob { rows: std::mem::take(rows), reply }).is_err() {
            return Err(WriteError::WriterStopped);
        }
        let Ok(WriteReply { rows: written, result }) = answer.await else {
            return Err(WriteError::StoppedDuringWrite);
        };
        *rows = written;
        result
            .map_err(|error| if schema::is_busy(&error) { WriteError::Busy(error) } else { WriteError::Failed(error) })
    }
}

impl Drop for StoreWriter {
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
