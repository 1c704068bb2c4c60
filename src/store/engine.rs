//! The store engine: the open blocks rows are appended to, the sealed blocks on disk, and the
//! thread that seals, writes and evicts them.
//!
//! Appending happens on the caller's thread under one mutex per request (never per row); when
//! an open block is full it is swapped for an empty one and handed, still readable in memory, to
//! the sealer thread, which compresses and writes it, adds it to the index and evicts what the
//! bounds require. Readers see open, sealing and sealed blocks alike ([`Source`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::logs::v1::ResourceLogs;
use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;

use super::block::{Block, Kind, key};
use super::block_file::{self, BLOCK_SUFFIX, BlockFileError, BlockMeta, TEMPORARY_SUFFIX};
use super::builder::Invalid;
pub(crate) use super::builder::OpenBlock;
use super::directory::{DirectoryCheck, StoreDirectory};
use super::options::StoreOptions;
use super::{StoreError, StoreStats};

/// Blocks waiting to be written before appends are refused (the store is behind).
const MAX_SEALING: usize = 4;
/// Blocks that could not be written (disk full, …) kept readable in memory and tried again;
/// with this many waiting, appends are refused (the lane sheds or answers 429) until one is
/// written.
const MAX_UNWRITTEN: usize = 4;
/// How long after a failed write the blocks waiting in memory are tried again.
const UNWRITTEN_RETRY: Duration = Duration::from_secs(5);
/// How often the sealer looks for open blocks to seal and data to age out.
const TICK: Duration = Duration::from_millis(500);
/// The longest [`EngineHandle::flush`] waits for the blocks it sealed to be written.
const FLUSH_WAIT: Duration = Duration::from_secs(30);

/// Why an append was not made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppendError {
    #[error("the local store is behind: {0} blocks are waiting to be written")]
    Behind(usize),
    #[error("the local store cannot write its blocks ({0}); {MAX_UNWRITTEN} blocks wait in memory")]
    CannotWrite(String),
    #[error("the local store is closed")]
    Closed,
}

/// A block as readers find it.
#[derive(Clone)]
pub(crate) enum Source {
    /// The open block's rows when the sources were listed (a copy of what the reader asked for).
    Open(Arc<Block>),
    /// Sealed, being written: read from memory.
    Sealing(u64, Arc<Block>),
    Sealed(Arc<BlockMeta>),
}

impl Source {
    /// The block's sequence number; open blocks come after every sealed one.
    pub(crate) fn seq(&self) -> u64 {
        match self {
            Source::Open(_) => u64::MAX,
            Source::Sealing(seq, _) => *seq,
            Source::Sealed(meta) => meta.seq,
        }
    }
}

struct OpenBlocks {
    blocks: [OpenBlock; 3],
    opened_at: [Option<Instant>; 3],
}

impl OpenBlocks {
    fn slot(kind: Kind) -> usize {
        match kind {
            Kind::Spans => 0,
            Kind::Logs => 1,
            Kind::Metrics => 2,
        }
    }
}

#[derive(Default)]
struct Index {
    /// Oldest first, every kind.
    sealed: VecDeque<Arc<BlockMeta>>,
    sealing: Vec<(u64, Arc<Block>)>,
    unwritten: VecDeque<(u64, Arc<Block>)>,
    next_seq: u64,
    sealed_bytes: u64,
    /// Trace ids evicted whole, hidden in newer blocks up to and including the given `seq`.
    tombstones: HashMap<[u8; 16], u64>,
    evicted: Removed,
    /// Rows lost to damage from outside: files deleted with the directory, writes that never
    /// succeeded before shutdown.
    lost: Removed,
}

/// Blocks and rows taken out of the store.
#[derive(Clone, Copy, Debug, Default)]
struct Removed {
    bytes: u64,
    blocks: u64,
    traces: u64,
    spans: u64,
    logs: u64,
    metrics: u64,
}

struct SealJob {
    seq: u64,
    block: Arc<Block>,
    sealed_at: i64,
}

/// Whether blocks are being written, and why not.
#[derive(Default)]
struct WriteTrouble {
    /// The last write error, while blocks wait in memory.
    error: Option<String>,
    /// When the blocks waiting in memory are tried again.
    retry_at: Option<Instant>,
}

/// State shared by appenders, readers and the sealer thread.
pub(crate) struct Engine {
    directory: StoreDirectory,
    trouble: Mutex<WriteTrouble>,
    options: StoreOptions,
    open: Mutex<OpenBlocks>,
    index: RwLock<Index>,
    /// Every attribute column (`a:key`, resource attributes included) in the store, with the
    /// types of value seen in it ([`ValueColumn::tag_mask`](super::value::ValueColumn)).
    columns_seen: RwLock<HashMap<Box<str>, u8>>,
    /// Signalled whenever a block has been written (or failed to be).
    written: Condvar,
    written_lock: Mutex<()>,
    /// The same, for appenders on the async runtime waiting for the store to catch up.
    written_async: tokio::sync::Notify,
}

/// The engine and its sealer thread; dropping it seals what is open and waits for the writes.
pub(crate) struct EngineHandle {
    engine: Arc<Engine>,
    jobs: Mutex<Option<mpsc::Sender<SealJob>>>,
    sealer: Option<std::thread::JoinHandle<()>>,
}

impl EngineHandle {
    /// Opens the store in `directory`: reads every block's header, sets aside unreadable files,
    /// and starts the sealer thread.
    pub(crate) fn open(directory: &Path, options: StoreOptions) -> Result<EngineHandle, StoreError> {
        std::fs::create_dir_all(directory)
            .map_err(|source| StoreError::CreateDir { path: directory.to_path_buf(), source })?;
        let index = read_index(directory)?;
        let engine = Arc::new(Engine {
            directory: StoreDirectory::new(directory),
            trouble: Mutex::new(WriteTrouble::default()),
            options,
            open: Mutex::new(OpenBlocks {
                blocks: [OpenBlock::new(Kind::Spans), OpenBlock::new(Kind::Logs), OpenBlock::new(Kind::Metrics)],
                opened_at: [None; 3],
            }),
            index: RwLock::new(index),
            columns_seen: RwLock::new(HashMap::new()),
            written: Condvar::new(),
            written_lock: Mutex::new(()),
            written_async: tokio::sync::Notify::new(),
        });
        engine.note_columns_of_sealed();
        engine.evict(unix_now());
        let (jobs, queue) = mpsc::channel();
        let sealer_engine = Arc::clone(&engine);
        let sealer = std::thread::Builder::new()
            .name("waggle-store".into())
            .spawn(move || sealer_engine.run_sealer(&queue))
            .map_err(StoreError::WriterThread)?;
        Ok(EngineHandle { engine, jobs: Mutex::new(Some(jobs)), sealer: Some(sealer) })
    }

    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Appends the spans of a protobuf `ExportTraceServiceRequest`; those without valid ids
    /// are counted in `invalid`.
    pub(crate) fn append_spans(&self, request: &[u8], invalid: &mut Invalid) -> Result<usize, AppendError> {
        self.append(Kind::Spans, |block| block.add_spans_protobuf(request, invalid))
    }

    pub(crate) fn append_logs(&self, logs: &[ResourceLogs]) -> Result<usize, AppendError> {
        self.append(Kind::Logs, |block| block.add_logs(logs))
    }

    pub(crate) fn append_metrics(&self, metrics: &[ResourceMetrics]) -> Result<usize, AppendError> {
        self.append(Kind::Metrics, |block| block.add_metrics(metrics))
    }

    /// Resolves when the next block has been written (it counts as waiting from the moment it
    /// is made, so make it before the append that may be refused).
    pub(crate) fn block_written(&self) -> tokio::sync::futures::Notified<'_> {
        self.engine.written_async.notified()
    }

    /// Waits (up to a bound) until every sealed block has been written.
    pub(crate) fn wait_for_writes(&self) {
        let deadline = Instant::now() + FLUSH_WAIT;
        let mut guard = self.engine.written_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while !self.engine.read_index().sealing.is_empty() {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else { break };
            guard = match self.engine.written.wait_timeout(guard, left.min(TICK)) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Seals every open block now and waits until every sealed block is written (shutdown,
    /// tests).
    pub(crate) fn flush(&self) {
        {
            let mut open = self.engine.lock_open();
            for kind in [Kind::Spans, Kind::Logs, Kind::Metrics] {
                self.seal(&mut open, kind);
            }
        }
        self.wait_for_writes();
    }

    fn append(&self, kind: Kind, add: impl FnOnce(&mut OpenBlock) -> usize) -> Result<usize, AppendError> {
        let (sealing, unwritten) = {
            let index = self.engine.read_index();
            (index.sealing.len(), index.unwritten.len())
        };
        if unwritten >= MAX_UNWRITTEN {
            return Err(AppendError::CannotWrite(self.engine.write_error().unwrap_or_default()));
        }
        if sealing >= MAX_SEALING {
            return Err(AppendError::Behind(sealing));
        }
        let mut open = self.engine.lock_open();
        let slot = OpenBlocks::slot(kind);
        let types_before = open.blocks[slot].type_signature();
        let added = add(&mut open.blocks[slot]);
        if added > 0 && open.opened_at[slot].is_none() {
            open.opened_at[slot] = Some(Instant::now());
        }
        if open.blocks[slot].type_signature() != types_before {
            self.engine.note_columns(open.blocks[slot].column_types());
        }
        let block = &open.blocks[slot];
        if block.rows() >= self.engine.options.block_rows || block.raw_bytes() >= self.engine.options.block_bytes {
            if self.seal(&mut open, kind) {
                return Ok(added);
            }
            return Err(AppendError::Closed);
        }
        Ok(added)
    }

    /// Hands the open block of `kind` to the sealer. False when the sealer has stopped.
    fn seal(&self, open: &mut OpenBlocks, kind: Kind) -> bool {
        seal_open(&self.engine, open, kind, |job| match &*self.jobs.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(jobs) => jobs.send(job).is_ok(),
            None => false,
        })
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.flush();
        self.engine.retry_unwritten(None);
        self.engine.count_unwritten_as_lost();
        drop(self.jobs.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take());
        if let Some(sealer) = self.sealer.take()
            && sealer.join().is_err()
        {
            tracing::error!("the local store's sealer thread panicked");
        }
    }
}

/// Moves the open block of `kind` (if it has rows) into the sealing list and sends it.
fn seal_open(engine: &Engine, open: &mut OpenBlocks, kind: Kind, send: impl FnOnce(SealJob) -> bool) -> bool {
    let slot = OpenBlocks::slot(kind);
    if open.blocks[slot].rows() == 0 {
        return true;
    }
    let block = Arc::new(open.blocks[slot].take());
    open.opened_at[slot] = None;
    let seq = {
        let mut index = engine.write_index();
        let seq = index.next_seq;
        index.next_seq += 1;
        index.sealing.push((seq, Arc::clone(&block)));
        seq
    };
    let sent = send(SealJob { seq, block, sealed_at: unix_now() });
    if !sent {
        engine.write_index().sealing.retain(|(sealing, _)| *sealing != seq);
    }
    sent
}

impl Engine {
    fn lock_open(&self) -> MutexGuard<'_, OpenBlocks> {
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read_index(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_index(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes blocks as they come; seals open blocks that have waited long enough and evicts
    /// by age between writes. Returns once every sender is gone and the queue is empty.
    fn run_sealer(&self, queue: &mpsc::Receiver<SealJob>) {
        loop {
            match queue.recv_timeout(TICK) {
                Ok(job) => self.write_block(job),
                Err(RecvTimeoutError::Timeout) => {
                    let mut due = Vec::new();
                    {
                        let mut open = self.lock_open();
                        for kind in [Kind::Spans, Kind::Logs, Kind::Metrics] {
                            let slot = OpenBlocks::slot(kind);
                            if open.opened_at[slot].is_some_and(|at| at.elapsed() >= self.options.seal_after) {
                                seal_open(self, &mut open, kind, |job| {
                                    due.push(job);
                                    true
                                });
                            }
                        }
                    }
                    due.into_iter().for_each(|job| self.write_block(job));
                    self.retry_unwritten(Some(Instant::now()));
                    self.evict(unix_now());
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn write_block(&self, job: SealJob) {
        let SealJob { seq, block, sealed_at } = job;
        let written = self.write_file(seq, &block, sealed_at);
        {
            let mut index = self.write_index();
            index.sealing.retain(|(sealing, _)| *sealing != seq);
            match written {
                Ok(meta) => add_sealed(&mut index, meta),
                // The rows stay readable in memory and the write is tried again.
                Err(error) => {
                    index.unwritten.push_back((seq, block));
                    drop(index);
                    self.note_write_failed(&error);
                }
            }
        }
        self.evict(unix_now());
        self.announce_written();
    }

    /// Writes one block's file, first making the directory again if it was deleted.
    fn write_file(&self, seq: u64, block: &Block, sealed_at: i64) -> std::io::Result<BlockMeta> {
        if self.directory.check()? == DirectoryCheck::MadeAgain {
            self.forget_deleted_blocks();
        }
        let meta = block_file::write(self.directory.path(), seq, block, sealed_at)?;
        self.note_write_succeeded();
        Ok(meta)
    }

    /// Tries the blocks waiting in memory again, oldest first, when their time has come (`None`:
    /// now, whatever the time).
    fn retry_unwritten(&self, now: Option<Instant>) {
        if let Some(now) = now {
            let due = self.lock_trouble().retry_at.is_none_or(|at| now >= at);
            if !due {
                return;
            }
        }
        let mut wrote_any = false;
        loop {
            let Some((seq, block)) = self.read_index().unwritten.front().cloned() else { break };
            match self.write_file(seq, &block, unix_now()) {
                Ok(meta) => {
                    let mut index = self.write_index();
                    index.unwritten.retain(|(unwritten, _)| *unwritten != seq);
                    add_sealed(&mut index, meta);
                    wrote_any = true;
                }
                Err(error) => {
                    self.note_write_failed(&error);
                    break;
                }
            }
        }
        if wrote_any {
            self.evict(unix_now());
            self.announce_written();
        }
    }

    fn announce_written(&self) {
        let _guard = self.written_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.written.notify_all();
        self.written_async.notify_waiters();
    }

    fn lock_trouble(&self) -> MutexGuard<'_, WriteTrouble> {
        self.trouble.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Why blocks are waiting in memory, if they are.
    fn write_error(&self) -> Option<String> {
        self.lock_trouble().error.clone()
    }

    /// Logs the first failure of a streak (later ones only at debug) and schedules a retry.
    fn note_write_failed(&self, error: &std::io::Error) {
        let mut trouble = self.lock_trouble();
        if trouble.error.is_none() {
            tracing::error!(%error, directory = %self.directory.path().display(), "local store: cannot write a block; its rows are kept in memory and the write is tried again every {}s (new data is refused once {MAX_UNWRITTEN} blocks wait)", UNWRITTEN_RETRY.as_secs());
        } else {
            tracing::debug!(%error, "local store: still cannot write a block");
        }
        trouble.error = Some(error.to_string());
        trouble.retry_at = Some(Instant::now() + UNWRITTEN_RETRY);
    }

    fn note_write_succeeded(&self) {
        let mut trouble = self.lock_trouble();
        if let Some(error) = trouble.error.take() {
            tracing::info!(was = %error, "local store: blocks are written again");
        }
        trouble.retry_at = None;
    }

    /// After the directory was deleted or replaced: the blocks whose files went with it leave
    /// the index, counted as lost.
    fn forget_deleted_blocks(&self) {
        let mut index = self.write_index();
        let (kept, gone): (VecDeque<_>, VecDeque<_>) = index.sealed.drain(..).partition(|meta| meta.path.exists());
        index.sealed = kept;
        let mut lost = Removed::default();
        for meta in &gone {
            index.sealed_bytes = index.sealed_bytes.saturating_sub(meta.file_bytes);
            lost.add(meta.kind, meta.rows, meta.traces, meta.file_bytes);
        }
        index.lost.merge(lost);
        drop(index);
        tracing::warn!(
            directory = %self.directory.path().display(),
            blocks = lost.blocks,
            spans = lost.spans,
            logs = lost.logs,
            metrics = lost.metrics,
            "local store: its directory was deleted or replaced while waggle ran; made it again and goes on storing. The blocks that were in it are gone (counted as lost)"
        );
    }

    /// At shutdown: rows of blocks that could never be written are lost; say how many.
    fn count_unwritten_as_lost(&self) {
        let mut index = self.write_index();
        let unwritten: Vec<_> = index.unwritten.drain(..).collect();
        if unwritten.is_empty() {
            return;
        }
        let mut lost = Removed::default();
        for (_, block) in &unwritten {
            lost.add(block.kind, block.rows as u64, 0, 0);
        }
        index.lost.merge(lost);
        tracing::error!(
            error = self.write_error().unwrap_or_default(),
            spans = lost.spans,
            logs = lost.logs,
            metrics = lost.metrics,
            "local store: blocks that could not be written are lost at shutdown"
        );
    }

    /// Evicts the oldest blocks while the store is over its size or they are over its age.
    fn evict(&self, now: i64) {
        let max_age = i64::try_from(self.options.max_age.as_nanos()).unwrap_or(i64::MAX);
        loop {
            let oldest = {
                let index = self.read_index();
                let Some(oldest) = index.sealed.front() else { return };
                let too_big = index.sealed_bytes > self.options.max_bytes;
                let too_old = now.saturating_sub(oldest.sealed_at) > max_age;
                if !too_big && !too_old {
                    return;
                }
                Arc::clone(oldest)
            };
            self.evict_block(&oldest);
        }
    }

    /// Removes one block, hiding the rest of its traces wherever newer blocks hold them, so
    /// every trace is either whole or gone.
    fn evict_block(&self, oldest: &Arc<BlockMeta>) {
        let continuing = if oldest.kind == Kind::Spans { self.traces_continuing_after(oldest) } else { Vec::new() };
        if let Err(error) = std::fs::remove_file(&oldest.path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%error, path = %oldest.path.display(), "local store: cannot delete an evicted block");
        }
        let mut index = self.write_index();
        if index.sealed.front().is_some_and(|front| Arc::ptr_eq(front, oldest)) {
            index.sealed.pop_front();
        }
        index.sealed_bytes = index.sealed_bytes.saturating_sub(oldest.file_bytes);
        index.tombstones.retain(|_, until| *until > oldest.seq);
        for (trace_id, until) in continuing {
            index.tombstones.insert(trace_id, until);
        }
        index.evicted.add(oldest.kind, oldest.rows, oldest.traces, oldest.file_bytes);
    }

    /// The trace ids of `oldest` that newer blocks (may) hold, each with the newest such block.
    fn traces_continuing_after(&self, oldest: &BlockMeta) -> Vec<([u8; 16], u64)> {
        let block = match block_file::load(oldest, &|name| name == key::TRACE_ID) {
            Ok(block) => block,
            Err(error) => {
                tracing::warn!(%error, "local store: cannot read an evicted block's trace ids");
                return Vec::new();
            }
        };
        let ids: HashSet<[u8; 16]> = block.id16(key::TRACE_ID).iter().copied().collect();
        let in_memory: HashSet<[u8; 16]> = {
            let open = self.lock_open();
            let snapshot = open.blocks[OpenBlocks::slot(Kind::Spans)].snapshot(&|name| name == key::TRACE_ID);
            let index = self.read_index();
            let sealing = index.sealing.iter().flat_map(|(_, block)| block.id16(key::TRACE_ID).iter().copied());
            snapshot.id16(key::TRACE_ID).iter().copied().chain(sealing).filter(|id| ids.contains(id)).collect()
        };
        let index = self.read_index();
        let beyond_sealed = index.next_seq + MAX_SEALING as u64;
        let newer: Vec<&Arc<BlockMeta>> =
            index.sealed.iter().rev().filter(|meta| meta.kind == Kind::Spans && meta.seq > oldest.seq).collect();
        ids.into_iter()
            .filter_map(|id| {
                if in_memory.contains(&id) {
                    return Some((id, beyond_sealed));
                }
                newer.iter().find(|meta| meta.bloom.may_contain(&id)).map(|meta| (id, meta.seq))
            })
            .collect()
    }

    /// Blocks of `kind`, newest first, with the open block's rows copied out by `open_rows`
    /// at the same moment: a block sealed while the caller reads is never missed or read twice.
    pub(crate) fn sources(&self, kind: Kind, open_rows: &dyn Fn(&OpenBlock) -> Block) -> Vec<Source> {
        let open = self.lock_open();
        let index = self.read_index();
        let mut sources = vec![Source::Open(Arc::new(open_rows(&open.blocks[OpenBlocks::slot(kind)])))];
        drop(open);
        let mut sealing: Vec<&(u64, Arc<Block>)> =
            index.sealing.iter().chain(&index.unwritten).filter(|(_, block)| block.kind == kind).collect();
        sealing.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        sources.extend(sealing.into_iter().map(|(seq, block)| Source::Sealing(*seq, Arc::clone(block))));
        sources.extend(index.sealed.iter().rev().filter(|meta| meta.kind == kind).cloned().map(Source::Sealed));
        sources
    }

    /// The block behind `source`, with the columns `wanted` says yes to (a block in memory
    /// comes whole, or as its open rows were copied).
    pub(crate) fn load(&self, source: &Source, wanted: &dyn Fn(&str) -> bool) -> Result<Arc<Block>, StoreError> {
        match source {
            Source::Open(block) | Source::Sealing(_, block) => Ok(Arc::clone(block)),
            Source::Sealed(meta) => match block_file::load(meta, wanted) {
                Ok(block) => Ok(Arc::new(block)),
                // Evicted since it was listed: nothing there any more.
                Err(BlockFileError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    Ok(Arc::new(Block { kind: meta.kind, rows: 0, groups: Arc::from([]), columns: HashMap::new() }))
                }
                Err(error) => Err(StoreError::Block(error.to_string())),
            },
        }
    }

    /// Trace ids evicted whole: rows of these in blocks up to the given `seq` are hidden.
    pub(crate) fn tombstones(&self) -> HashMap<[u8; 16], u64> {
        self.read_index().tombstones.clone()
    }

    /// Every (service, span name, kind) in the store.
    pub(crate) fn operations(&self) -> HashSet<block_file::OperationKey> {
        let sealed: Vec<Arc<BlockMeta>> = self.read_index().sealed.iter().cloned().collect();
        let mut operations: HashSet<block_file::OperationKey> =
            sealed.iter().flat_map(|meta| meta.operations.iter().cloned()).collect();
        let wanted = |name: &str| matches!(name, key::NAME | key::GROUP | key::SPAN_KIND);
        for source in self.sources(Kind::Spans, &|open| open.snapshot(&wanted)) {
            if matches!(source, Source::Sealed(_)) {
                break;
            }
            if let Ok(block) = self.load(&source, &wanted) {
                operations.extend(block_operations(&block));
            }
        }
        operations
    }

    /// The types of value ever seen in attribute column `name` (`a:key`), `None` if never.
    pub(crate) fn column_tags(&self, name: &str) -> Option<u8> {
        self.columns_seen.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(name).copied()
    }

    fn note_columns(&self, types: Vec<(Box<str>, u8)>) {
        let known = {
            let seen = self.columns_seen.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            types.iter().all(|(name, mask)| seen.get(name).is_some_and(|seen| seen | mask == *seen))
        };
        if known {
            return;
        }
        let mut seen = self.columns_seen.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (name, mask) in types {
            *seen.entry(name).or_insert(0) |= mask;
        }
    }

    fn note_columns_of_sealed(&self) {
        let sealed: Vec<Arc<BlockMeta>> = self.read_index().sealed.iter().cloned().collect();
        let types =
            sealed.iter().flat_map(|meta| meta.column_tags.iter().map(|(name, mask)| (name.as_str().into(), *mask)));
        self.note_columns(types.collect());
    }

    /// What the store holds now and has evicted since start-up.
    pub(crate) fn stats(&self) -> StoreStats {
        let open = self.lock_open();
        let open_rows = |kind: Kind| open.blocks[OpenBlocks::slot(kind)].rows() as u64;
        let buffered_bytes: usize = open.blocks.iter().map(OpenBlock::raw_bytes).sum();
        let (open_spans, open_logs, open_metrics) =
            (open_rows(Kind::Spans), open_rows(Kind::Logs), open_rows(Kind::Metrics));
        let open_traces = open.blocks[OpenBlocks::slot(Kind::Spans)].distinct_traces() as u64;
        drop(open);
        let index = self.read_index();
        let mut stats = StoreStats {
            max_bytes: self.options.max_bytes,
            max_age_seconds: self.options.max_age.as_secs(),
            bytes: index.sealed_bytes,
            buffered_bytes: buffered_bytes as u64,
            blocks: index.sealed.len() as u64,
            spans: open_spans,
            traces: open_traces,
            logs: open_logs,
            metrics: open_metrics,
            evicted_bytes: index.evicted.bytes,
            evicted_blocks: index.evicted.blocks,
            evicted_traces: index.evicted.traces,
            evicted_spans: index.evicted.spans,
            evicted_logs: index.evicted.logs,
            evicted_metrics: index.evicted.metrics,
            unwritten_blocks: index.unwritten.len() as u64,
            lost_spans: index.lost.spans,
            lost_logs: index.lost.logs,
            lost_metrics: index.lost.metrics,
            ..StoreStats::default()
        };
        if !index.unwritten.is_empty() {
            stats.write_error = self.write_error();
        }
        let mut span_bytes = 0;
        let mut sealed_spans = 0;
        for meta in &index.sealed {
            match meta.kind {
                Kind::Spans => {
                    stats.spans += meta.rows;
                    stats.traces += meta.traces;
                    sealed_spans += meta.rows;
                    span_bytes += meta.file_bytes;
                }
                Kind::Logs => stats.logs += meta.rows,
                Kind::Metrics => stats.metrics += meta.rows,
            }
        }
        for (_, block) in index.sealing.iter().chain(&index.unwritten) {
            match block.kind {
                Kind::Spans => stats.spans += block.rows as u64,
                Kind::Logs => stats.logs += block.rows as u64,
                Kind::Metrics => stats.metrics += block.rows as u64,
            }
        }
        stats.bytes_per_span = span_bytes.checked_div(sealed_spans);
        stats
    }
}

impl Removed {
    /// Counts one block of `kind` with its rows (and traces and bytes, when known).
    fn add(&mut self, kind: Kind, rows: u64, traces: u64, bytes: u64) {
        self.blocks += 1;
        self.bytes += bytes;
        match kind {
            Kind::Spans => {
                self.spans += rows;
                self.traces += traces;
            }
            Kind::Logs => self.logs += rows,
            Kind::Metrics => self.metrics += rows,
        }
    }

    fn merge(&mut self, other: Removed) {
        self.bytes += other.bytes;
        self.blocks += other.blocks;
        self.traces += other.traces;
        self.spans += other.spans;
        self.logs += other.logs;
        self.metrics += other.metrics;
    }
}

/// Adds a written block to the index in sequence order (a block written late, after a
/// failure, goes where its number says).
fn add_sealed(index: &mut Index, meta: BlockMeta) {
    index.sealed_bytes += meta.file_bytes;
    let at = index.sealed.partition_point(|sealed| sealed.seq < meta.seq);
    index.sealed.insert(at, Arc::new(meta));
}

/// The distinct (service, name, kind) of a block's spans.
pub(crate) fn block_operations(block: &Block) -> HashSet<block_file::OperationKey> {
    let kinds = block.ints(key::SPAN_KIND);
    (0..block.rows)
        .map(|row| block_file::OperationKey {
            service: block.group(row).and_then(super::block::Group::service).unwrap_or("").to_owned(),
            name: block.text(key::NAME, row).to_owned(),
            kind: kinds.get(row).copied().unwrap_or(0),
        })
        .collect()
}

/// Reads the headers of every block in `directory`, oldest first. Files that are not readable
/// blocks are renamed `*.corrupt` (with a warning) so they are neither read nor lost; leftover
/// temporary files of an interrupted write are deleted.
fn read_index(directory: &Path) -> Result<Index, StoreError> {
    let entries =
        std::fs::read_dir(directory).map_err(|source| StoreError::Open { path: directory.to_path_buf(), source })?;
    let mut blocks = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|name| name.to_str()) else { continue };
        if name.ends_with(TEMPORARY_SUFFIX) {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        let Some(seq) = name.strip_suffix(BLOCK_SUFFIX).and_then(|seq| seq.parse::<u64>().ok()) else { continue };
        match block_file::read_meta(seq, &path) {
            Ok(meta) => blocks.push(meta),
            Err(error) => set_aside(&path, &error),
        }
    }
    blocks.sort_by_key(|meta| meta.seq);
    let next_seq = blocks.last().map_or(0, |meta| meta.seq + 1);
    let sealed_bytes = blocks.iter().map(|meta| meta.file_bytes).sum();
    Ok(Index { sealed: blocks.into_iter().map(Arc::new).collect(), next_seq, sealed_bytes, ..Index::default() })
}

fn set_aside(path: &Path, error: &BlockFileError) {
    let mut aside = path.as_os_str().to_owned();
    aside.push(".corrupt");
    match std::fs::rename(path, &aside) {
        Ok(()) => {
            tracing::warn!(%error, moved_to = %Path::new(&aside).display(), "local store: a block file is unreadable; moved aside, the rest of the store is served");
        }
        Err(rename_error) => {
            tracing::warn!(%error, %rename_error, "local store: a block file is unreadable and could not be moved aside; it is ignored");
        }
    }
}

/// Now, in Unix nanos.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| i64::try_from(since.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;

    use std::path::PathBuf;

    use super::*;

    fn one_span(trace: u8, span: u8) -> Vec<u8> {
        let span = Span {
            trace_id: vec![trace; 16],
            span_id: vec![span; 8],
            name: format!("span {span}"),
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            ..Span::default()
        };
        let resource_spans = vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans: vec![span], ..ScopeSpans::default() }],
            ..ResourceSpans::default()
        }];
        ExportTraceServiceRequest { resource_spans }.encode_to_vec()
    }

    fn append(handle: &EngineHandle, request: &[u8]) -> Result<usize, AppendError> {
        handle.append_spans(request, &mut Invalid::default())
    }

    fn open(directory: &Path) -> EngineHandle {
        let options = StoreOptions { max_age: Duration::from_secs(3600), ..StoreOptions::default() };
        EngineHandle::open(directory, options).expect("store opens")
    }

    fn sealed_at(handle: &EngineHandle) -> Vec<i64> {
        handle.engine().read_index().sealed.iter().map(|meta| meta.sealed_at).collect()
    }

    const HOUR: i64 = 3600 * 1_000_000_000;

    #[test]
    fn blocks_younger_than_max_age_stay() {
        let directory = tempfile::tempdir().expect("temp dir");
        let handle = open(directory.path());
        append(&handle, &one_span(1, 1)).expect("appends");
        handle.flush();

        handle.engine().evict(sealed_at(&handle)[0] + HOUR);
        assert_eq!(handle.engine().stats().blocks, 1);
    }

    #[test]
    fn blocks_older_than_max_age_are_evicted() {
        let directory = tempfile::tempdir().expect("temp dir");
        let handle = open(directory.path());
        append(&handle, &one_span(1, 1)).expect("appends");
        handle.flush();

        handle.engine().evict(sealed_at(&handle)[0] + HOUR + 1);
        let stats = handle.engine().stats();
        assert_eq!((stats.blocks, stats.spans, stats.evicted_spans), (0, 0, 1), "{stats:?}");
        assert_eq!(std::fs::read_dir(directory.path()).expect("lists").flatten().filter(is_block).count(), 0);
    }

    #[test]
    fn age_eviction_takes_a_trace_whole_with_its_spans_in_younger_blocks() {
        let directory = tempfile::tempdir().expect("temp dir");
        let handle = open(directory.path());
        append(&handle, &one_span(1, 1)).expect("appends");
        handle.flush();
        append(&handle, &one_span(1, 2)).expect("appends");
        append(&handle, &one_span(2, 3)).expect("appends");
        handle.flush();
        let [older, younger] = sealed_at(&handle)[..] else { panic!("two blocks") };
        assert!(younger > older);

        handle.engine().evict(older + HOUR + 1);
        assert_eq!(handle.engine().stats().blocks, 1);
        let engine = handle.engine();
        assert_eq!(super::super::reader::trace_spans(engine, [1; 16]).expect("reads").len(), 0);
        assert_eq!(super::super::reader::trace_spans(engine, [2; 16]).expect("reads").len(), 1);
    }

    #[test]
    fn a_hidden_trace_reappears_nowhere_once_its_last_block_is_gone() {
        let directory = tempfile::tempdir().expect("temp dir");
        let handle = open(directory.path());
        append(&handle, &one_span(1, 1)).expect("appends");
        handle.flush();
        append(&handle, &one_span(1, 2)).expect("appends");
        handle.flush();
        let [older, younger] = sealed_at(&handle)[..] else { panic!("two blocks") };

        handle.engine().evict(older + HOUR + 1);
        assert_eq!(handle.engine().tombstones().len(), 1);
        handle.engine().evict(younger + HOUR + 1);
        assert!(handle.engine().tombstones().is_empty());
    }

    #[test]
    fn appends_are_refused_while_too_many_blocks_wait_to_be_written() {
        let directory = tempfile::tempdir().expect("temp dir");
        let handle = open(directory.path());
        {
            let mut index = handle.engine().write_index();
            for seq in 0..MAX_SEALING as u64 {
                let block = Block { kind: Kind::Spans, rows: 0, groups: Arc::from([]), columns: HashMap::new() };
                index.sealing.push((1000 + seq, Arc::new(block)));
            }
        }
        let refused = append(&handle, &one_span(1, 1));
        assert!(matches!(refused, Err(AppendError::Behind(MAX_SEALING))), "{refused:?}");
        handle.engine().write_index().sealing.clear();
    }

    fn block_files(directory: &Path) -> usize {
        std::fs::read_dir(directory).map_or(0, |entries| entries.flatten().filter(is_block).count())
    }

    fn stored_spans(handle: &EngineHandle) -> u64 {
        handle.engine().stats().spans
    }

    /// A store whose directory has been replaced by a file: nothing can be written.
    fn unwritable(root: &Path) -> (PathBuf, EngineHandle) {
        let directory = root.join("store");
        let handle = open(&directory);
        std::fs::remove_dir_all(&directory).expect("directory deleted");
        std::fs::write(&directory, b"in the way").expect("a file in its place");
        (directory, handle)
    }

    #[test]
    fn a_deleted_directory_is_made_again_and_new_blocks_are_written_to_it() {
        let root = tempfile::tempdir().expect("temp dir");
        let directory = root.path().join("store");
        let handle = open(&directory);
        append(&handle, &one_span(1, 1)).expect("appended");
        handle.flush();
        std::fs::remove_dir_all(&directory).expect("directory deleted");

        append(&handle, &one_span(2, 2)).expect("appended after the deletion");
        handle.flush();

        assert_eq!(block_files(&directory), 1);
        let stats = handle.engine().stats();
        assert_eq!((stats.spans, stats.lost_spans, stats.blocks), (1, 1, 1));
    }

    #[test]
    fn a_block_that_cannot_be_written_stays_readable_and_is_reported() {
        let root = tempfile::tempdir().expect("temp dir");
        let (_, handle) = unwritable(root.path());
        append(&handle, &one_span(1, 1)).expect("appended");
        handle.flush();

        let stats = handle.engine().stats();
        assert_eq!((stats.unwritten_blocks, stats.spans), (1, 1));
        assert!(stats.write_error.is_some_and(|error| !error.is_empty()));
    }

    #[test]
    fn blocks_waiting_in_memory_are_written_once_the_directory_can_be_made() {
        let root = tempfile::tempdir().expect("temp dir");
        let (directory, handle) = unwritable(root.path());
        append(&handle, &one_span(1, 1)).expect("appended");
        handle.flush();
        std::fs::remove_file(&directory).expect("the obstacle removed");

        handle.engine().retry_unwritten(Some(Instant::now() + UNWRITTEN_RETRY));

        assert_eq!(block_files(&directory), 1);
        let stats = handle.engine().stats();
        assert_eq!((stats.unwritten_blocks, stats.blocks, stats.write_error), (0, 1, None));
        assert_eq!(stored_spans(&handle), 1);
    }

    #[test]
    fn blocks_waiting_in_memory_are_not_tried_again_before_their_time() {
        let root = tempfile::tempdir().expect("temp dir");
        let (directory, handle) = unwritable(root.path());
        append(&handle, &one_span(1, 1)).expect("appended");
        handle.flush();
        std::fs::remove_file(&directory).expect("the obstacle removed");

        handle.engine().retry_unwritten(Some(Instant::now()));

        assert_eq!(handle.engine().stats().unwritten_blocks, 1);
    }

    #[test]
    fn appends_are_refused_while_too_many_blocks_cannot_be_written() {
        let root = tempfile::tempdir().expect("temp dir");
        let (_, handle) = unwritable(root.path());
        for span in 1..=MAX_UNWRITTEN as u8 {
            append(&handle, &one_span(span, span)).expect("appended while blocks can wait");
            handle.flush();
        }

        let refused = append(&handle, &one_span(9, 9));

        assert!(matches!(&refused, Err(AppendError::CannotWrite(error)) if !error.is_empty()), "{refused:?}");
        assert_eq!(stored_spans(&handle), MAX_UNWRITTEN as u64);
    }

    #[test]
    fn rows_never_written_are_counted_lost_at_shutdown() {
        let root = tempfile::tempdir().expect("temp dir");
        let (_, handle) = unwritable(root.path());
        append(&handle, &one_span(1, 1)).expect("appended");
        let engine = Arc::clone(handle.engine());

        drop(handle);

        let stats = engine.stats();
        assert_eq!((stats.lost_spans, stats.unwritten_blocks), (1, 0));
    }

    fn is_block(entry: &std::fs::DirEntry) -> bool {
        entry.path().extension().is_some_and(|extension| extension == "block")
    }
}
