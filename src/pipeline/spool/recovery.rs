//! Opening a spool at start-up: locking its directory and scanning what an earlier run left,
//! cutting off torn tails and removing files that are not segments.

use std::collections::VecDeque;
use std::fs::{self, OpenOptions, TryLockError};
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::envelope;
use super::segment::{self, FILE_HEADER_LEN, FILE_MAGIC, Frame};
use super::{Segment, Spool, SpoolError, SpoolOptions, State, stats_of};
use crate::model::Destination;
use crate::telemetry::counts::DestinationCounts;
use crate::telemetry::metrics::Metrics;

impl Spool {
    /// Opens (creating it if needed) the spool in `directory`: locks it and scans what a
    /// previous run left, which will be replayed first.
    pub fn open(
        directory: &Path,
        options: SpoolOptions,
        counts: Arc<DestinationCounts>,
    ) -> Result<Arc<Spool>, SpoolError> {
        let lane = counts.destination();
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
            if let Some(id) = name.to_str().and_then(segment::segment_id) {
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
        let corrupt = counts.metrics().spool_corrupt_records.get_or_create(&Metrics::destination(lane)).clone();
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
                    segment::remove_file(lane, &path);
                    state.directory_changed = true;
                }
                Err(error) => {
                    tracing::warn!(destination = %lane, segment = %path.display(), %error, "cannot read spool segment; removing it");
                    corrupt.inc();
                    segment::remove_file(lane, &path);
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
            counts,
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
