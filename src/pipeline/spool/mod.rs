//! A lane's disk spool: a write-ahead log of everything the lane accepted, kept until the
//! destination acknowledges it.
//!
//! The spool of lane `<name>` lives in `<data_dir>/spool/<name>/` as numbered segment files
//! (`00000000000000000001.seg`, …) of checksummed records ([`segment`]), each a batch in the
//! envelope of `proto/waggle/spool/v1/spool.proto` ([`envelope`]).
//!
//! - **Write-ahead appends** ([`Spool::append_ahead`]) are synchronous `pwrite`s to the newest
//!   segment under a mutex, on the receiver's thread, before the caller is answered: every
//!   batch a spooled lane accepts is on disk (in the page cache) first, and its memory queue
//!   is only a read-ahead cache. When nothing waits on disk to be read back, the appender
//!   claims the record (it goes straight to the memory queue, with its [`RecordTicket`]);
//!   otherwise it goes behind the backlog and the reader replays it. A few microseconds for a
//!   small batch (see `measure_append_latency` in `tests/spool.rs`), and no `fsync`, so a
//!   receiver never waits on the disk's flush. [`Spool::append`] writes a record for the
//!   reader alone (retries exhausted, shutdown). A segment is closed once it reaches the
//!   segment size and a new one started.
//! - **fsync policy**: every [`SYNC_INTERVAL`] (500 ms, as Vector's disk buffer) the lane's sync
//!   task `fdatasync`s the segment being written and any segment closed since, when it holds a
//!   record not yet acknowledged (what the destination took needs no flush), and then the
//!   directory when files were created or deleted; a lane syncs once more when it stops. A
//!   process crash loses nothing that was appended (it is in the page cache); a power loss
//!   may lose the last half second, and what it tore is found at the next start.
//! - **Replay** ([`SpoolReader`]): one reader per lane reads records oldest first (blocking
//!   reads run on tokio's blocking pool, never on a receiver's thread) and the lane feeds them
//!   to its memory queue as room frees up. While any record waits on disk, [`Spool::has_backlog`]
//!   is true and the lane's new batches are spooled behind it, so each signal keeps its order.
//! - **Deletion**: a segment file is deleted once every record in it was acknowledged
//!   ([`Spool::acknowledge`]: sent, or permanently rejected and counted). The segment being
//!   written is instead cut back to its header and kept: a lane that keeps up neither creates
//!   nor deletes files, and what it delivered leaves the page cache unwritten.
//! - **Bound**: the files never exceed `max_size`. What happens at the bound is
//!   [`WhenSpoolFull`]: `refuse` (the default) turns the new batch away
//!   ([`SpoolError::Full`]; the caller gets 429 and retries), `drop_oldest` deletes the oldest
//!   segment and counts the items in it that were not yet read back as dropped
//!   (`waggle_destination_dropped_items_total{reason="spool_full"}`), with a WARN line.
//! - **Start-up** ([`Spool::open`]): the directory is locked (one waggle per spool), every
//!   segment is scanned. A damaged record is skipped by resynchronising on the next record
//!   whose checksum matches (never by trusting a damaged length); a torn tail is cut off; a
//!   file with a bad header is scanned for intact records all the same, and one with none is
//!   set aside as `<name>.damaged`, never deleted. Every loss is logged and counted. Nothing
//!   found on disk stops waggle from starting.
//!
//! `writer` appends and flushes, `reader` reads back, `recovery` scans at start-up;
//! this module holds the shared state and the acknowledgements.

pub mod envelope;
mod reader;
mod recovery;
pub(crate) mod segment;
mod writer;

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytesize::ByteSize;
use tokio::sync::Notify;

pub use self::reader::{Replayed, SpoolReader};
use self::segment::FILE_HEADER_LEN;
use crate::model::Destination;
pub use crate::model::SpoolReason;
use crate::telemetry::counts::DestinationCounts;

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
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_str().and_then(segment::segment_id).is_some())
        .count()
}

/// How large a spool and its segments may grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpoolOptions {
    /// Bytes all segment files together may take.
    pub max_size: u64,
    /// A segment is closed (and a new one started) before it would grow past this.
    pub segment_size: u64,
    /// What an append does when the spool is at `max_size`.
    pub when_full: WhenSpoolFull,
}

impl SpoolOptions {
    /// A spool of `max_size` in segments of an eighth of it (64 KiB to 64 MiB), refusing new
    /// batches when full.
    pub fn with_max_size(max_size: ByteSize) -> SpoolOptions {
        let max_size = max_size.as_u64();
        let segment_size = (max_size / 8).clamp(MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE).min(max_size);
        SpoolOptions { max_size, segment_size, when_full: WhenSpoolFull::Refuse }
    }

    /// These options with another policy at the bound.
    pub fn when_full(self, when_full: WhenSpoolFull) -> SpoolOptions {
        SpoolOptions { when_full, ..self }
    }
}

/// What a full spool does with a new batch (config `spool_when_full`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenSpoolFull {
    /// Turn it away: the caller gets 429 / `RESOURCE_EXHAUSTED` and retries; nothing the lane
    /// acknowledged is dropped.
    #[default]
    Refuse,
    /// Delete the oldest segment to make room, counting what it held (`spool_full`).
    DropOldest,
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
    #[error("the spool is full ({max_size} bytes) and refuses new batches until the destination catches up")]
    Full { max_size: u64 },
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

/// One lane's disk spool, shared by the lane's handle (appends), the lane's senders
/// (acknowledgements, appends at shutdown) and its replay task (reads).
#[derive(Debug)]
pub struct Spool {
    lane: Destination,
    directory: PathBuf,
    options: SpoolOptions,
    state: Mutex<State>,
    /// Records waiting to be read back, plus one while the reader holds a record it has not
    /// yet handed to the memory queue. Read without the lock by the lane's handle.
    backlog: AtomicU64,
    next_sequence: AtomicU64,
    /// Woken on every append, for the reader.
    appended: Notify,
    /// Sent, failed and dropped items, counted with the lane's.
    counts: Arc<DestinationCounts>,
    /// Holds the directory's lock file locked while this spool is open.
    _lock: File,
}

#[derive(Debug)]
pub(super) struct State {
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
    /// Segments closed since the last sync, by id, with their files.
    closed_unsynced: Vec<(u64, Arc<File>)>,
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

    /// True while some record in it is not yet acknowledged: only then must it reach the disk.
    fn holds_unacknowledged(&self) -> bool {
        self.acked < self.records
    }
}

/// Where the reader finds the next record.
#[derive(Debug, Clone)]
pub(super) struct ReadPlan {
    segment: u64,
    path: PathBuf,
    offset: u64,
    end: u64,
}

impl Spool {
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

    /// The counts this spool's drops go to (the lane's).
    pub fn counts(&self) -> &Arc<DestinationCounts> {
        &self.counts
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

    /// Deletes a segment once every record in it is settled. The segment being written is
    /// emptied instead (cut back to its header) and kept for the next appends: a lane that keeps
    /// up creates and deletes no files, and what it acknowledged is dropped from the page cache
    /// before it is ever written to the disk.
    pub(super) fn delete_if_settled(&self, state: &mut State, index: usize) {
        if !state.segments[index].is_settled() {
            return;
        }
        if let Some(active) = &state.active
            && active.id == state.segments[index].id
            && active.file.set_len(FILE_HEADER_LEN).is_ok()
        {
            let segment = &mut state.segments[index];
            let freed = segment.end - FILE_HEADER_LEN;
            *segment = Segment::new(segment.id, std::mem::take(&mut segment.path));
            state.bytes = state.bytes.saturating_sub(freed);
            return;
        }
        let Some(segment) = state.segments.remove(index) else { return };
        if state.active.as_ref().is_some_and(|active| active.id == segment.id) {
            state.active = None;
            state.active_unsynced = false;
        }
        state.bytes = state.bytes.saturating_sub(segment.end);
        segment::remove_file(self.lane, &segment.path);
        state.directory_changed = true;
    }

    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves counts, not broken invariants, behind.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Updates the backlog flag and the bytes gauge.
    pub(super) fn publish(&self, state: &State) {
        let unread: u64 = state.segments.iter().map(|segment| segment.records - segment.read).sum();
        self.backlog.store(unread + u64::from(state.in_hand), Ordering::Release);
        self.counts.record_spool_bytes(state.bytes);
    }
}

pub(super) fn stats_of(state: &State) -> SpoolStats {
    SpoolStats {
        bytes: state.bytes,
        segments: state.segments.len(),
        records: state.segments.iter().map(|segment| segment.records - segment.acked).sum(),
        unread: state.segments.iter().map(|segment| segment.records - segment.read).sum(),
    }
}

pub(super) fn close_active(state: &mut State) {
    if let Some(active) = state.active.take()
        && std::mem::take(&mut state.active_unsynced)
    {
        state.closed_unsynced.push((active.id, active.file));
    }
}

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;
