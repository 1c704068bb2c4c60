//! A lane's disk spool: where a lane keeps what its memory queue cannot hold, and what it could
//! not send before shutdown, until the destination acknowledges it.
//!
//! The spool of lane `<name>` lives in `<data_dir>/spool/<name>/` as numbered segment files
//! (`00000000000000000001.seg`, …) of checksummed records ([`segment`]), each a batch in the
//! envelope of `proto/waggle/spool/v1/spool.proto` ([`envelope`]).
//!
//! - **Appends** ([`Spool::append`]) are synchronous `pwrite`s to the newest segment under a
//!   mutex, from the router's thread: a few microseconds for a small batch (the data goes to
//!   the page cache; see `measure_append_latency` in `tests/spool.rs`), and no `fsync`, so a
//!   receiver never waits on the disk's flush. A segment is closed once it reaches the segment
//!   size and a new one started.
//! - **fsync policy**: every [`SYNC_INTERVAL`] (500 ms, as Vector's disk buffer) the lane's sync
//!   task `fdatasync`s the segment being written and any segment closed since, and the
//!   directory when files were created or deleted; a lane syncs once more when it stops. A
//!   process crash loses nothing that was appended (it is in the page cache); a power loss
//!   may lose the last half second, and what it tore is found at the next start.
//! - **Replay** ([`SpoolReader`]): one reader per lane reads records oldest first (blocking
//!   reads run on tokio's blocking pool, never on the router's thread) and the lane feeds them
//!   to its memory queue as room frees up. While any record waits on disk, [`Spool::has_backlog`]
//!   is true and the lane's new batches are spooled behind it, so each signal keeps its order.
//! - **Deletion**: a segment file is deleted once every record in it was acknowledged
//!   ([`Spool::acknowledge`]: sent, or permanently rejected and counted).
//! - **Bound**: the files never exceed `max_size`; to make room the oldest segment is deleted
//!   and the items in it that were not yet read back are counted as dropped
//!   (`waggle_destination_dropped_items_total{reason="spool_full"}`), with a WARN line.
//! - **Start-up** ([`Spool::open`]): the directory is locked (one waggle per spool), every
//!   segment is scanned; a torn tail is logged, counted and cut off, a file that is not a
//!   segment is logged, counted and removed. Nothing found on disk stops waggle from starting.

pub mod envelope;
pub mod segment;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use bytesize::ByteSize;
use tokio::sync::Notify;

use self::envelope::{DecodedRecord, EncodedBatch, EnvelopeError};
use self::segment::{FILE_HEADER_LEN, FILE_MAGIC, Frame};
use crate::model::{Batch, Destination, LossReason, Signal};
use crate::telemetry::metrics::Metrics;

/// How often written segments are flushed to the disk with `fdatasync`.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(500);

/// Segments are at least this large (unless the whole spool is smaller)…
const MIN_SEGMENT_SIZE: u64 = 64 * 1024;
/// …and at most this large, so dropping the oldest one never throws away too much at once.
const MAX_SEGMENT_SIZE: u64 = 64 * 1024 * 1024;

/// Where a lane keeps its spool under the data directory.
pub fn lane_directory(data_dir: &Path, lane: Destination) -> PathBuf {
    data_dir.join("spool").join(lane.as_str())
}

/// How many segment files a spool directory holds, without opening it (for a lane whose
/// spool is off, to say that data from an earlier run is waiting there).
pub fn count_segment_files(directory: &Path) -> usize {
    let Ok(entries) = fs::read_dir(directory) else { return 0 };
    entries.filter_map(Result::ok).filter(|entry| entry.file_name().to_str().and_then(segment_id).is_some()).count()
}

/// How large a spool and its segments may grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpoolOptions {
    /// Bytes all segment files together may take.
    pub max_size: u64,
    /// A segment is closed (and a new one started) before it would grow past this.
    pub segment_size: u64,
}

impl SpoolOptions {
    /// A spool of `max_size` in segments of an eighth of it (64 KiB to 64 MiB).
    pub fn with_max_size(max_size: ByteSize) -> SpoolOptions {
        let max_size = max_size.as_u64();
        let segment_size = (max_size / 8).clamp(MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE).min(max_size);
        SpoolOptions { max_size, segment_size }
    }
}

/// Why the spool could not be opened or could not take a batch.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("cannot use the spool directory {path}: {source}")]
    Directory { path: PathBuf, source: io::Error },
    #[error("the spool in {path} is in use by another waggle process")]
    InUse { path: PathBuf },
    #[error("cannot write spool segment {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("a record of {record} bytes does not fit in a spool of {max_size} bytes")]
    TooLarge { record: u64, max_size: u64 },
}

/// Why a batch went to the spool (the `reason` label of `waggle_destination_spooled_items`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpoolReason {
    /// The memory queue was full, or older records were still waiting on disk.
    Overflow,
    /// The shutdown deadline passed before the destination took it.
    Shutdown,
    /// The retry budget ran out; it waits on disk for another round.
    RetriesExhausted,
}

impl SpoolReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SpoolReason::Overflow => "overflow",
            SpoolReason::Shutdown => "shutdown",
            SpoolReason::RetriesExhausted => "retries_exhausted",
        }
    }

    /// What is lost, and counted, when the spool cannot take a batch written for this reason.
    pub fn loss(self) -> crate::model::LossReason {
        match self {
            SpoolReason::Overflow => crate::model::LossReason::QueueFull,
            SpoolReason::Shutdown => crate::model::LossReason::Shutdown,
            SpoolReason::RetriesExhausted => crate::model::LossReason::RetriesExhausted,
        }
    }
}

impl prometheus_client::encoding::EncodeLabelValue for SpoolReason {
    fn encode(&self, encoder: &mut prometheus_client::encoding::LabelValueEncoder<'_>) -> std::fmt::Result {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

/// Which record a replayed batch came from, to acknowledge it once the destination took it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordTicket {
    segment: u64,
}

/// What the spool holds, for tests and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpoolStats {
    /// Bytes of all segment files.
    pub bytes: u64,
    pub segments: usize,
    /// Records on disk not yet acknowledged (read back or not).
    pub records: u64,
    /// Records not yet read back.
    pub unread: u64,
}

/// One lane's disk spool, shared by the router (appends), the lane's senders
/// (acknowledgements, appends at shutdown) and its replay task (reads).
#[derive(Debug)]
pub struct Spool {
    lane: Destination,
    directory: PathBuf,
    options: SpoolOptions,
    state: Mutex<State>,
    /// Records waiting to be read back, plus one while the reader holds a record it has not
    /// yet handed to the memory queue. Read without the lock by the router.
    backlog: AtomicU64,
    next_sequence: AtomicU64,
    /// Woken on every append, for the reader.
    appended: Notify,
    metrics: Arc<Metrics>,
    /// Holds the directory's lock file locked while this spool is open.
    _lock: File,
}

#[derive(Debug)]
struct State {
    /// Oldest first; the last one is written to while `active` is set.
    segments: VecDeque<Segment>,
    active: Option<ActiveSegment>,
    /// Bytes of all segment files.
    bytes: u64,
    next_segment_id: u64,
    /// The reader read a record and has not yet handed it to the memory queue.
    in_hand: bool,
    /// Written since the last sync.
    active_unsynced: bool,
    closed_unsynced: Vec<Arc<File>>,
    directory_changed: bool,
}

#[derive(Debug)]
struct ActiveSegment {
    id: u64,
    file: Arc<File>,
}

#[derive(Debug)]
struct Segment {
    id: u64,
    path: PathBuf,
    /// Where the readable data ends (the file's length).
    end: u64,
    /// Framed records in it, readable or not.
    records: u64,
    /// Records read back so far, and where the next one starts.
    read: u64,
    read_offset: u64,
    /// Records acknowledged (or skipped as unreadable).
    acked: u64,
    /// Items per signal in the records not yet read back: what dropping it would lose.
    unread_items: [u64; 3],
}

impl Segment {
    fn new(id: u64, path: PathBuf) -> Segment {
        Segment {
            id,
            path,
            end: FILE_HEADER_LEN,
            records: 0,
            read: 0,
            read_offset: FILE_HEADER_LEN,
            acked: 0,
            unread_items: [0; 3],
        }
    }

    fn is_settled(&self) -> bool {
        self.acked >= self.records && self.read >= self.records
    }
}

/// Where the reader finds the next record.
#[derive(Debug, Clone)]
struct ReadPlan {
    segment: u64,
    path: PathBuf,
    offset: u64,
    end: u64,
}

impl Spool {
    /// Opens (creating it if needed) the spool in `directory`: locks it and scans what a
    /// previous run left, which will be replayed first.
    pub fn open(
        lane: Destination,
        directory: &Path,
        options: SpoolOptions,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Spool>, SpoolError> {
        let directory_error = |source| SpoolError::Directory { path: directory.to_path_buf(), source };
        fs::create_dir_all(directory).map_err(directory_error)?;
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(directory.join("lock"));
        let lock = lock.map_err(directory_error)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(SpoolError::InUse { path: directory.to_path_buf() }),
            Err(TryLockError::Error(source)) => return Err(directory_error(source)),
        }
        let mut found = Vec::new();
        for entry in fs::read_dir(directory).map_err(directory_error)? {
            let entry = entry.map_err(directory_error)?;
            let name = entry.file_name();
            if let Some(id) = name.to_str().and_then(segment_id) {
                found.push((id, entry.path()));
            }
        }
        found.sort();

        let mut state = State {
            segments: VecDeque::new(),
            active: None,
            bytes: 0,
            next_segment_id: found.last().map_or(1, |(id, _)| id + 1),
            in_hand: false,
            active_unsynced: false,
            closed_unsynced: Vec::new(),
            directory_changed: false,
        };
        let corrupt = metrics.spool_corrupt_records.get_or_create(&Metrics::destination(lane)).clone();
        let mut last_sequence = None;
        for (id, path) in found {
            match scan_segment(lane, id, &path) {
                Ok(Scanned::Segment { segment, last_sequence: last, problem }) => {
                    if problem {
                        corrupt.inc();
                    }
                    last_sequence = last_sequence.max(last);
                    state.bytes += segment.end;
                    state.segments.push_back(segment);
                }
                Ok(Scanned::Empty { problem }) => {
                    if problem {
                        corrupt.inc();
                    }
                    remove_file(lane, &path);
                    state.directory_changed = true;
                }
                Err(error) => {
                    tracing::warn!(destination = %lane, segment = %path.display(), %error, "cannot read spool segment; removing it");
                    corrupt.inc();
                    remove_file(lane, &path);
                    state.directory_changed = true;
                }
            }
        }
        let spool = Spool {
            lane,
            directory: directory.to_path_buf(),
            options,
            state: Mutex::new(state),
            backlog: AtomicU64::new(0),
            next_sequence: AtomicU64::new(last_sequence.map_or(0, |last| last + 1)),
            appended: Notify::new(),
            metrics,
            _lock: lock,
        };
        {
            let state = spool.state();
            spool.publish(&state);
            let stats = stats_of(&state);
            if stats.records > 0 {
                let items: u64 = state.segments.iter().flat_map(|s| s.unread_items).sum();
                tracing::info!(
                    destination = %lane,
                    records = stats.records,
                    items,
                    bytes = stats.bytes,
                    "spool: replaying what the last run left, oldest first"
                );
            }
        }
        Ok(Arc::new(spool))
    }

    /// The lane this spool belongs to.
    pub fn lane(&self) -> Destination {
        self.lane
    }

    /// The directory of the segment files.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// True while records wait on disk to be read back; new batches then go behind them.
    pub fn has_backlog(&self) -> bool {
        self.backlog.load(Ordering::Acquire) > 0
    }

    /// What the spool holds now.
    pub fn stats(&self) -> SpoolStats {
        stats_of(&self.state())
    }

    /// Appends a batch as one record. When the spool would grow past its size, the oldest
    /// segments are dropped first and what they held is counted.
    pub fn append(&self, batch: &EncodedBatch, reason: SpoolReason) -> Result<(), SpoolError> {
        let sequence = self.next_sequence.fetch_add(1, Ordering::Relaxed);
        let envelope = batch.to_envelope(sequence, SystemTime::now());
        let too_large = SpoolError::TooLarge { record: envelope.len() as u64, max_size: self.options.max_size };
        let Some(framed) = segment::frame(&envelope) else { return Err(too_large) };
        drop(envelope);
        let needed = framed.len() as u64;
        if needed + FILE_HEADER_LEN > self.options.max_size {
            return Err(too_large);
        }
        let mut state = self.state();
        if let Some(active) = state.segments.back()
            && state.active.is_some()
            && active.records > 0
            && active.end + needed > self.options.segment_size
        {
            close_active(&mut state);
        }
        loop {
            let header = if state.active.is_some() { 0 } else { FILE_HEADER_LEN };
            if state.bytes + header + needed <= self.options.max_size || state.segments.is_empty() {
                break;
            }
            self.drop_oldest(&mut state);
        }
        let result = self.write_record(&mut state, &framed, batch);
        self.publish(&state);
        drop(state);
        result?;
        self.appended.notify_one();
        let destination = Metrics::destination(self.lane);
        self.metrics.spool_written_records.get_or_create(&destination).inc();
        let labels = Metrics::spooled(self.lane, batch.signal, reason);
        self.metrics.spooled.get_or_create(&labels).inc_by(batch.items);
        Ok(())
    }

    fn write_record(&self, state: &mut State, framed: &[u8], batch: &EncodedBatch) -> Result<(), SpoolError> {
        if state.active.is_none() {
            self.start_segment(state)?;
        }
        let (Some(active), Some(segment)) = (&state.active, state.segments.back_mut()) else {
            return Ok(()); // start_segment set both
        };
        if let Err(source) = active.file.write_all_at(framed, segment.end) {
            let path = segment.path.clone();
            // Cut off what was partly written, so the segment stays readable; if even that
            // fails, write no more to this file (the next start cuts the torn tail).
            if active.file.set_len(segment.end).is_err() {
                close_active(state);
            }
            return Err(SpoolError::Write { path, source });
        }
        segment.end += framed.len() as u64;
        segment.records += 1;
        segment.unread_items[batch.signal.index()] += batch.items;
        state.bytes += framed.len() as u64;
        state.active_unsynced = true;
        Ok(())
    }

    fn start_segment(&self, state: &mut State) -> Result<(), SpoolError> {
        let id = state.next_segment_id;
        state.next_segment_id += 1;
        let path = self.directory.join(segment_file_name(id));
        let write_error = |source| SpoolError::Write { path: path.clone(), source };
        let file = OpenOptions::new().create_new(true).read(true).write(true).open(&path).map_err(write_error)?;
        if let Err(error) = file.write_all_at(&FILE_MAGIC, 0) {
            remove_file(self.lane, &path);
            return Err(write_error(error));
        }
        state.segments.push_back(Segment::new(id, path));
        state.bytes += FILE_HEADER_LEN;
        state.active = Some(ActiveSegment { id, file: Arc::new(file) });
        state.active_unsynced = true;
        state.directory_changed = true;
        Ok(())
    }

    /// Deletes the oldest segment to make room; counts the items in it not yet read back.
    fn drop_oldest(&self, state: &mut State) {
        let Some(oldest) = state.segments.pop_front() else { return };
        if state.active.as_ref().is_some_and(|active| active.id == oldest.id) {
            state.active = None;
        }
        state.bytes = state.bytes.saturating_sub(oldest.end);
        remove_file(self.lane, &oldest.path);
        state.directory_changed = true;
        let mut lost = 0;
        for signal in Signal::ALL {
            let items = oldest.unread_items[signal.index()];
            if items > 0 {
                let labels = Metrics::loss(self.lane, signal, LossReason::SpoolFull);
                self.metrics.dropped.get_or_create(&labels).inc_by(items);
                lost += items;
            }
        }
        tracing::warn!(
            destination = %self.lane,
            segment = %oldest.path.display(),
            items = lost,
            records = oldest.records - oldest.read,
            max_size = self.options.max_size,
            "spool full: dropped its oldest segment"
        );
    }

    /// Marks a replayed record as done with: the destination took it or rejected it for good.
    /// A segment is deleted once every record in it is.
    pub fn acknowledge(&self, ticket: RecordTicket) {
        let mut state = self.state();
        if let Some(index) = state.segments.iter().position(|segment| segment.id == ticket.segment) {
            state.segments[index].acked += 1;
            self.delete_if_settled(&mut state, index);
        }
        self.publish(&state);
    }

    /// True while the record is still on disk (its segment was not dropped to make room).
    pub fn holds(&self, ticket: RecordTicket) -> bool {
        self.state().segments.iter().any(|segment| segment.id == ticket.segment)
    }

    fn delete_if_settled(&self, state: &mut State, index: usize) {
        if !state.segments[index].is_settled() {
            return;
        }
        let Some(segment) = state.segments.remove(index) else { return };
        if state.active.as_ref().is_some_and(|active| active.id == segment.id) {
            state.active = None;
            state.active_unsynced = false;
        }
        state.bytes = state.bytes.saturating_sub(segment.end);
        remove_file(self.lane, &segment.path);
        state.directory_changed = true;
    }

    /// Flushes what was written since the last call to the disk.
    pub async fn sync(&self) {
        let (files, directory) = {
            let mut state = self.state();
            let mut files = std::mem::take(&mut state.closed_unsynced);
            if std::mem::take(&mut state.active_unsynced)
                && let Some(active) = &state.active
            {
                files.push(Arc::clone(&active.file));
            }
            let directory = std::mem::take(&mut state.directory_changed).then(|| self.directory.clone());
            (files, directory)
        };
        if files.is_empty() && directory.is_none() {
            return;
        }
        let lane = self.lane;
        let synced = tokio::task::spawn_blocking(move || {
            for file in files {
                file.sync_data()?;
            }
            if let Some(directory) = directory {
                File::open(directory)?.sync_all()?;
            }
            Ok::<(), io::Error>(())
        })
        .await;
        match synced {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(destination = %lane, %error, "cannot flush the spool to disk"),
            Err(error) => tracing::warn!(destination = %lane, %error, "spool flush task failed"),
        }
    }

    /// A reader of the records not yet read back, oldest first. A lane has one.
    pub fn reader(self: &Arc<Self>) -> SpoolReader {
        SpoolReader { spool: Arc::clone(self), open: None }
    }

    fn plan_read(&self) -> Option<ReadPlan> {
        let state = self.state();
        let segment = state.segments.iter().find(|segment| segment.read < segment.records)?;
        Some(ReadPlan {
            segment: segment.id,
            path: segment.path.clone(),
            offset: segment.read_offset,
            end: segment.end,
        })
    }

    /// Moves the read position past the record at `offset`. `read_back` is the record's signal
    /// and items when it goes to the memory queue; `None` when it was skipped as unreadable.
    /// False if the segment is gone (dropped to make room), so the record must not be used.
    fn advance(&self, plan: &ReadPlan, next: u64, read_back: Option<(Signal, u64)>) -> bool {
        let mut state = self.state();
        let Some(index) = state.segments.iter().position(|segment| segment.id == plan.segment) else {
            return false;
        };
        let segment = &mut state.segments[index];
        if segment.read_offset != plan.offset {
            return false;
        }
        segment.read_offset = next;
        segment.read += 1;
        match read_back {
            Some((signal, items)) => {
                let unread = &mut segment.unread_items[signal.index()];
                *unread = unread.saturating_sub(items);
                state.in_hand = true;
            }
            None => {
                segment.acked += 1;
                self.delete_if_settled(&mut state, index);
            }
        }
        self.publish(&state);
        true
    }

    /// The reader gave its record to the memory queue (or gave up on handing it over).
    fn handed_over(&self) {
        let mut state = self.state();
        state.in_hand = false;
        self.publish(&state);
    }

    /// Gives up on the rest of a segment that cannot be read; counts what it held.
    fn skip_rest(&self, plan: &ReadPlan, why: &str) {
        let mut state = self.state();
        self.metrics.spool_corrupt_records.get_or_create(&Metrics::destination(self.lane)).inc();
        let Some(index) = state.segments.iter().position(|segment| segment.id == plan.segment) else { return };
        let segment = &mut state.segments[index];
        let skipped = segment.records - segment.read;
        let mut lost = 0;
        for signal in Signal::ALL {
            let items = std::mem::take(&mut segment.unread_items[signal.index()]);
            if items > 0 {
                let labels = Metrics::loss(self.lane, signal, LossReason::SpoolCorrupt);
                self.metrics.dropped.get_or_create(&labels).inc_by(items);
                lost += items;
            }
        }
        tracing::warn!(destination = %self.lane, segment = %segment.path.display(), records = skipped, items = lost, why, "cannot read the rest of a spool segment; skipped it");
        segment.records = segment.read;
        if state.active.as_ref().is_some_and(|active| active.id == plan.segment) {
            close_active(&mut state);
        }
        self.delete_if_settled(&mut state, index);
        self.publish(&state);
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves counts, not broken invariants, behind.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Updates the backlog flag and the bytes gauge.
    fn publish(&self, state: &State) {
        let unread: u64 = state.segments.iter().map(|segment| segment.records - segment.read).sum();
        self.backlog.store(unread + u64::from(state.in_hand), Ordering::Release);
        let bytes = i64::try_from(state.bytes).unwrap_or(i64::MAX);
        self.metrics.spool_bytes.get_or_create(&Metrics::destination(self.lane)).set(bytes);
    }
}

fn stats_of(state: &State) -> SpoolStats {
    SpoolStats {
        bytes: state.bytes,
        segments: state.segments.len(),
        records: state.segments.iter().map(|segment| segment.records - segment.acked).sum(),
        unread: state.segments.iter().map(|segment| segment.records - segment.read).sum(),
    }
}

fn close_active(state: &mut State) {
    if let Some(active) = state.active.take()
        && std::mem::take(&mut state.active_unsynced)
    {
        state.closed_unsynced.push(active.file);
    }
}

fn segment_file_name(id: u64) -> String {
    format!("{id:020}.seg")
}

/// The id in a segment file's name, `None` for any other file.
fn segment_id(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn remove_file(lane: Destination, path: &Path) {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => {
            tracing::warn!(destination = %lane, file = %path.display(), %error, "cannot delete spool segment")
        }
    }
}

/// What scanning a segment file at start-up found.
enum Scanned {
    /// Records to replay; `problem` when a torn tail was cut off.
    Segment { segment: Segment, last_sequence: Option<u64>, problem: bool },
    /// Nothing readable; the file goes. `problem` when it was not a segment or torn.
    Empty { problem: bool },
}

/// Frames every record of a segment left by an earlier run, counting records and items; cuts
/// off a torn tail.
fn scan_segment(lane: Destination, id: u64, path: &Path) -> io::Result<Scanned> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let length = file.metadata()?.len();
    let mut reader = BufReader::new(&file);
    let mut magic = [0u8; FILE_MAGIC.len()];
    if length < FILE_HEADER_LEN || reader.read_exact(&mut magic).is_err() || magic != FILE_MAGIC {
        if length > 0 {
            tracing::warn!(destination = %lane, segment = %path.display(), "not a waggle spool segment (format WGLSPL01); removing it");
        }
        return Ok(Scanned::Empty { problem: length > 0 });
    }
    let mut segment = Segment::new(id, path.to_path_buf());
    let mut last_sequence = None;
    let mut envelope = Vec::new();
    let mut offset = FILE_HEADER_LEN;
    let torn = loop {
        match segment::read_next(&mut reader, offset, length, &mut envelope)? {
            Frame::Record { length } => {
                // A record that frames but does not decode is counted as a record: the reader
                // skips (and counts) it when it gets there.
                if let Ok(summary) = envelope::summary(&envelope) {
                    segment.unread_items[summary.signal.index()] += summary.items;
                    last_sequence = last_sequence.max(Some(summary.sequence));
                }
                segment.records += 1;
                offset += segment::framed_len(length);
            }
            Frame::BadChecksum { length } => {
                segment.records += 1;
                offset += segment::framed_len(length);
            }
            Frame::End => break None,
            Frame::Torn(tail) => break Some(tail),
        }
    };
    drop(reader);
    if let Some(tail) = torn {
        tracing::warn!(
            destination = %lane,
            segment = %path.display(),
            at = offset,
            cut = length - offset,
            records_before = segment.records,
            problem = %tail,
            "torn spool segment tail (a crash mid-write?); cut it off"
        );
        file.set_len(offset)?;
    }
    segment.end = offset;
    if segment.records == 0 {
        return Ok(Scanned::Empty { problem: torn.is_some() });
    }
    Ok(Scanned::Segment { segment, last_sequence, problem: torn.is_some() })
}

/// A batch read back from the spool, and the ticket to acknowledge it with.
#[derive(Debug)]
pub struct Replayed {
    pub batch: Batch,
    pub ticket: RecordTicket,
    pub sequence: u64,
}

/// Reads the spool's records back, oldest first.
#[derive(Debug)]
pub struct SpoolReader {
    spool: Arc<Spool>,
    /// The segment file being read.
    open: Option<(u64, Arc<File>)>,
}

/// What reading one record gave.
enum ReadOutcome {
    Record(Result<DecodedRecord, EnvelopeError>, Option<envelope::Summary>),
    BadChecksum,
    Unreadable(String),
}

impl SpoolReader {
    /// The next record not yet read back; waits for one to be appended when there is none.
    /// Unreadable records are skipped (logged and counted). Cancel-safe: a record is only
    /// taken once this returns it. Call [`SpoolReader::handed_over`] once the batch is queued.
    pub async fn next(&mut self) -> Replayed {
        loop {
            let Some(plan) = self.spool.plan_read() else {
                self.spool.appended.notified().await;
                continue;
            };
            let file = match self.file_for(&plan) {
                Ok(file) => file,
                Err(error) => {
                    self.spool.skip_rest(&plan, &format!("cannot open it: {error}"));
                    continue;
                }
            };
            let (offset, end) = (plan.offset, plan.end);
            let read = tokio::task::spawn_blocking(move || read_record(&file, offset, end)).await;
            let (outcome, next) = match read {
                Ok(read) => read,
                Err(error) => (ReadOutcome::Unreadable(format!("read task failed: {error}")), end),
            };
            match outcome {
                ReadOutcome::Record(Ok(decoded), _) => {
                    let read_back = (decoded.batch.signal(), decoded.batch.items as u64);
                    if self.spool.advance(&plan, next, Some(read_back)) {
                        self.spool
                            .metrics
                            .spool_replayed_records
                            .get_or_create(&Metrics::destination(self.spool.lane))
                            .inc();
                        let ticket = RecordTicket { segment: plan.segment };
                        return Replayed { batch: decoded.batch, ticket, sequence: decoded.sequence };
                    }
                }
                ReadOutcome::Record(Err(error), summary) => {
                    if self.spool.advance(&plan, next, None) {
                        self.count_unreadable(&plan, summary, &error.to_string());
                    }
                }
                ReadOutcome::BadChecksum => {
                    if self.spool.advance(&plan, next, None) {
                        self.count_unreadable(&plan, None, "its checksum does not match");
                    }
                }
                ReadOutcome::Unreadable(why) => self.spool.skip_rest(&plan, &why),
            }
        }
    }

    /// The record last returned by [`SpoolReader::next`] is in the memory queue (or was given
    /// up on): new batches need no longer wait behind it.
    pub fn handed_over(&self) {
        self.spool.handed_over();
    }

    fn file_for(&mut self, plan: &ReadPlan) -> io::Result<Arc<File>> {
        if let Some((segment, file)) = &self.open
            && *segment == plan.segment
        {
            return Ok(Arc::clone(file));
        }
        let file = Arc::new(File::open(&plan.path)?);
        self.open = Some((plan.segment, Arc::clone(&file)));
        Ok(file)
    }

    fn count_unreadable(&self, plan: &ReadPlan, summary: Option<envelope::Summary>, why: &str) {
        let spool = &self.spool;
        spool.metrics.spool_corrupt_records.get_or_create(&Metrics::destination(spool.lane)).inc();
        if let Some(summary) = summary.filter(|summary| summary.items > 0) {
            let labels = Metrics::loss(spool.lane, summary.signal, LossReason::SpoolCorrupt);
            spool.metrics.dropped.get_or_create(&labels).inc_by(summary.items);
        }
        tracing::warn!(destination = %spool.lane, segment = %plan.path.display(), offset = plan.offset, why, "skipped an unreadable spool record");
    }
}

/// Reads and decodes the record at `offset` (on the blocking pool); returns where the next
/// record starts.
fn read_record(file: &File, offset: u64, end: u64) -> (ReadOutcome, u64) {
    let mut envelope = Vec::new();
    match segment::read_at(file, offset, end, &mut envelope) {
        Ok(Frame::Record { length }) => {
            let next = offset + segment::framed_len(length);
            let envelope = bytes::Bytes::from(envelope);
            let outcome = match envelope::decode(envelope.clone()) {
                Ok(decoded) => ReadOutcome::Record(Ok(decoded), None),
                Err(error) => ReadOutcome::Record(Err(error), envelope::summary(&envelope).ok()),
            };
            (outcome, next)
        }
        Ok(Frame::BadChecksum { length }) => (ReadOutcome::BadChecksum, offset + segment::framed_len(length)),
        Ok(Frame::End) => (ReadOutcome::Unreadable("it ends before its last record".into()), end),
        Ok(Frame::Torn(tail)) => (ReadOutcome::Unreadable(tail.to_string()), end),
        Err(error) => (ReadOutcome::Unreadable(error.to_string()), end),
    }
}

#[cfg(test)]
mod tests;
