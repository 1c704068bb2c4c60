//! The embedded store: every signal kept under the data directory in compressed columnar
//! blocks, bounded in bytes and age with whole traces evicted oldest first, and read back by
//! the admin query API.
//!
//! Rows are appended to an open block per signal ([`builder`]) on the caller's thread; a full
//! block is sealed by the store's own thread: compressed column by column and written as one
//! file ([`block_file`]), with a Bloom filter of its trace ids kept in memory to find traces
//! ([`engine`]). [`StoreReader`] reads open, sealing and sealed blocks alike. The local store
//! destination (`destination::local`) is the lane in front of the write side.

mod block;
mod block_file;
mod bloom;
mod builder;
mod dependencies;
mod directory;
mod encode;
mod engine;
mod find;
pub(crate) mod migrate;
mod options;
mod query_source;
mod reader;
mod search;
mod value;
mod views;

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use opentelemetry_proto::tonic::logs::v1::ResourceLogs;
use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;
use serde::Serialize;

pub(crate) use builder::Invalid;
pub use dependencies::{Dependencies, DependencyLink, DependencySearch, MAX_SPANS_READ};
pub(crate) use engine::AppendError;
pub use options::StoreOptions;
pub use reader::StoreReader;
pub use search::{LogSearch, Operation, TraceSearch};
pub use views::{LogEntry, MetricEntry, Scope, SpanStatus, SpanView, TraceDetail, TraceSummary, parse_trace_id};

use engine::EngineHandle;

/// The store's directory name inside the data directory.
pub const STORE_DIR_NAME: &str = "store";
/// The lock file inside the store's directory.
const LOCK_FILE_NAME: &str = "lock";

/// Where the store lives for a given data directory: `<data_dir>/store/`.
pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STORE_DIR_NAME)
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
    #[error("cannot open the local store {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("cannot start the local store's writer thread: {0}")]
    WriterThread(std::io::Error),
    #[error("local store block unreadable: {0}")]
    Block(String),
    #[error("local store query task failed: {0}")]
    QueryTask(String),
}

/// What the store holds now, and what it has evicted (or lost) since start-up.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    /// The bound the store's blocks on disk are kept under.
    pub max_bytes: u64,
    /// Data older than this is evicted.
    pub max_age_seconds: u64,
    /// Bytes of sealed blocks on disk.
    pub bytes: u64,
    /// Bytes of rows in memory, not yet sealed into a block.
    pub buffered_bytes: u64,
    /// Sealed blocks on disk.
    pub blocks: u64,
    /// Bytes on disk per stored span, over the sealed span blocks (`null` before the first).
    pub bytes_per_span: Option<u64>,
    /// Traces in sealed blocks (a trace spread over several blocks counts in each).
    pub traces: u64,
    pub spans: u64,
    pub logs: u64,
    /// Metric rows (one per metric per resource and scope of a request).
    pub metrics: u64,
    pub evicted_bytes: u64,
    pub evicted_blocks: u64,
    pub evicted_traces: u64,
    pub evicted_spans: u64,
    pub evicted_logs: u64,
    pub evicted_metrics: u64,
    /// Blocks that could not be written (disk full, directory unwritable), kept in memory and
    /// tried again; appends are refused while too many wait.
    pub unwritten_blocks: u64,
    /// Why the last block could not be written, while blocks wait in memory (`null` otherwise).
    pub write_error: Option<String>,
    /// Rows lost to damage outside waggle: block files deleted with the store's directory
    /// while waggle ran, or blocks still unwritable at shutdown.
    pub lost_spans: u64,
    pub lost_logs: u64,
    pub lost_metrics: u64,
}

/// The write side of the store. Dropping it seals what is still open, waits for every block
/// to be written, and releases the store's lock.
pub(crate) struct StoreWriter {
    handle: EngineHandle,
    /// Held while the writer lives, so a second waggle cannot write the same store.
    _lock: File,
}

impl StoreWriter {
    /// Opens (or creates) the store in `directory`, creating it, and evicts what the options
    /// no longer allow. Fails with a [`StoreError`] that says what is wrong, never panics.
    pub(crate) fn open(directory: &Path, options: StoreOptions) -> Result<(StoreWriter, StoreReader), StoreError> {
        std::fs::create_dir_all(directory)
            .map_err(|source| StoreError::CreateDir { path: directory.to_path_buf(), source })?;
        let lock = lock_store(directory)?;
        let handle = EngineHandle::open(directory, options)?;
        let reader = StoreReader::new(std::sync::Arc::clone(handle.engine()));
        Ok((StoreWriter { handle, _lock: lock }, reader))
    }

    /// What the store holds now, and what it has evicted since start-up.
    pub(crate) fn stats(&self) -> StoreStats {
        self.handle.engine().stats()
    }

    /// Appends the spans of a protobuf `ExportTraceServiceRequest`; those without valid ids
    /// are counted in `invalid`.
    pub(crate) fn append_spans(&self, request: &[u8], invalid: &mut Invalid) -> Result<usize, AppendError> {
        self.handle.append_spans(request, invalid)
    }

    pub(crate) fn append_logs(&self, logs: &[ResourceLogs]) -> Result<usize, AppendError> {
        self.handle.append_logs(logs)
    }

    pub(crate) fn append_metrics(&self, metrics: &[ResourceMetrics]) -> Result<usize, AppendError> {
        self.handle.append_metrics(metrics)
    }

    /// Seals every open block now and waits until it is written.
    pub(crate) fn flush(&self) {
        self.handle.flush();
    }

    /// Brings a store written by the previous release (SQLite `waggle.db` in `data_dir`) into
    /// this one, oldest first, then renames the old file out of the way. Never fails start-up:
    /// a file it cannot read is set aside, and any other problem is logged and left alone.
    pub(crate) fn import_previous(&self, data_dir: &Path) {
        let append = |chunk: migrate::V1Chunk| -> Result<(), AppendError> {
            loop {
                let appended = match &chunk {
                    migrate::V1Chunk::Traces(request) => {
                        self.append_spans(&prost::Message::encode_to_vec(request), &mut Invalid::default())
                    }
                    migrate::V1Chunk::Logs(request) => self.append_logs(&request.resource_logs),
                    migrate::V1Chunk::Metrics(request) => self.append_metrics(&request.resource_metrics),
                };
                match appended {
                    Ok(_) => return Ok(()),
                    Err(AppendError::Behind(_)) => self.wait_for_writes(),
                    Err(error) => return Err(error),
                }
            }
        };
        match migrate::migrate_v1_store(data_dir, migrate::DEFAULT_CHUNK_ITEMS, append) {
            Ok(None) => {}
            Ok(Some(migrate::V1Migration::Imported { summary, retired_to })) => {
                self.flush();
                tracing::info!(
                    spans = summary.spans,
                    logs = summary.logs,
                    metrics = summary.metrics,
                    skipped = summary.skipped,
                    old_file_kept_at = %retired_to.display(),
                    "local store: imported the previous release's store"
                );
            }
            Ok(Some(migrate::V1Migration::SetAside { reason, moved_to })) => {
                self.flush();
                tracing::debug!(%reason, moved_to = %moved_to.display(), "local store: the previous release's store was set aside");
            }
            Err(error) => {
                tracing::warn!(%error, "local store: the previous release's store was not imported; it is left where it is");
            }
        }
    }

    /// Resolves when the next block has been written; see [`EngineHandle::block_written`].
    pub(crate) fn block_written(&self) -> tokio::sync::futures::Notified<'_> {
        self.handle.block_written()
    }

    /// Waits until every block already sealed is written.
    pub(crate) fn wait_for_writes(&self) {
        self.handle.wait_for_writes();
    }
}

/// Takes `<directory>/lock`, so two waggle processes never write one store.
fn lock_store(directory: &Path) -> Result<File, StoreError> {
    let lock_path = directory.join(LOCK_FILE_NAME);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| StoreError::LockFile { path: lock_path.clone(), source })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StoreError::InUse { path: directory.to_path_buf() }),
        Err(TryLockError::Error(source)) => Err(StoreError::LockFile { path: lock_path, source }),
    }
}
