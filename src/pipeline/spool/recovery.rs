//! Opening a spool at start-up: locking its directory and scanning what an earlier run left:
//! damaged records are stepped over by resynchronising on the next intact one, torn tails are
//! cut off, and a file with nothing readable is set aside (`<name>.damaged`), never deleted.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::envelope;
use super::segment::{self, FILE_HEADER_LEN, FILE_MAGIC, Frame};
use super::{Segment, Spool, SpoolError, SpoolOptions, State, stats_of};
use crate::model::{Destination, LossReason};
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
            match scan_segment(&counts, id, &path) {
                Ok(Scanned::Segment { segment, last_sequence: last, problems }) => {
                    corrupt.inc_by(problems);
                    last_sequence = last_sequence.max(last);
                    state.bytes += segment.end;
                    state.segments.push_back(segment);
                }
                Ok(Scanned::Empty { problems: 0 }) => {
                    segment::remove_file(lane, &path);
                    state.directory_changed = true;
                }
                Ok(Scanned::Empty { problems }) => {
                    corrupt.inc_by(problems);
                    set_aside(lane, &path, "nothing in it is readable");
                    state.directory_changed = true;
                }
                Err(error) => {
                    corrupt.inc();
                    set_aside(lane, &path, &format!("cannot read it: {error}"));
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
    /// Records to replay; `problems`: a bad header, a torn tail cut off (damaged records in
    /// between are counted by the reader).
    Segment { segment: Segment, last_sequence: Option<u64>, problems: u64 },
    /// Nothing readable. Without `problems` (an empty file, or a header alone) it is removed;
    /// with some it is set aside.
    Empty { problems: u64 },
}

/// Renames a segment file that holds nothing readable to `<name>.damaged` (which no spool
/// reads), so it can be looked at; logged.
fn set_aside(lane: Destination, path: &Path, why: &str) {
    let mut aside = path.as_os_str().to_owned();
    aside.push(".damaged");
    let aside = PathBuf::from(aside);
    match fs::rename(path, &aside) {
        Ok(()) => {
            tracing::warn!(destination = %lane, segment = %path.display(), set_aside = %aside.display(), why, "damaged spool segment set aside");
        }
        Err(error) => {
            tracing::warn!(destination = %lane, segment = %path.display(), %error, why, "damaged spool segment could not be set aside; it is ignored");
        }
    }
}

/// Frames every record of a segment left by an earlier run, counting records and items.
/// A damaged record (bad checksum, a length that cannot be) is stepped over by
/// resynchronising on the next intact record and counted as a record, which the reader skips
/// and counts when it gets there; a damaged tail with no intact record after it is counted
/// (its items, when its envelope still says) and cut off.
fn scan_segment(counts: &DestinationCounts, id: u64, path: &Path) -> io::Result<Scanned> {
    let lane = counts.destination();
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let length = file.metadata()?.len();
    if length == 0 {
        tracing::warn!(destination = %lane, segment = %path.display(), "empty spool segment file (nothing in it); removing it");
        return Ok(Scanned::Empty { problems: 0 });
    }
    let mut reader = BufReader::new(&file);
    let mut magic = [0u8; FILE_MAGIC.len()];
    let mut segment = Segment::new(id, path.to_path_buf());
    let mut offset = FILE_HEADER_LEN;
    let mut problems = 0;
    if length < FILE_HEADER_LEN || reader.read_exact(&mut magic).is_err() || magic != FILE_MAGIC {
        problems += 1;
        // From the file's first byte, not the header's nominal end: a header cut short (bytes
        // lost, not only changed) moves the first record before that end.
        match segment::resync(&file, 0, length)? {
            Some(first) => {
                tracing::warn!(destination = %lane, segment = %path.display(), first_record = first, "spool segment with a damaged header (format WGLSPL01); reading the records in it");
                offset = first;
                segment.read_offset = first;
                reader.seek(SeekFrom::Start(first))?;
            }
            None => return Ok(Scanned::Empty { problems }),
        }
    }
    let mut last_sequence = None;
    let mut envelope = Vec::new();
    let damaged_tail = loop {
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
            Frame::End => break None,
            damage @ (Frame::BadChecksum { .. } | Frame::Torn(_)) => {
                // A damaged record is counted by the reader when it gets there; a damaged tail here.
                match segment::resync(&file, offset + 1, length)? {
                    Some(next) => {
                        tracing::warn!(destination = %lane, segment = %path.display(), at = offset, skipped_bytes = next - offset, damage = ?damage, "damaged spool record; resynchronised on the next intact one");
                        segment.records += 1;
                        offset = next;
                        reader.seek(SeekFrom::Start(next))?;
                    }
                    None => {
                        problems += 1;
                        break Some(damage);
                    }
                }
            }
        }
    };
    drop(reader);
    if let Some(damage) = damaged_tail {
        let lost = damaged_items(&file, offset, length);
        if let Some(summary) = lost {
            counts.record_dropped(summary.signal, LossReason::SpoolCorrupt, summary.items);
        }
        tracing::warn!(
            destination = %lane,
            segment = %path.display(),
            at = offset,
            cut = length - offset,
            records_before = segment.records,
            items_lost = lost.map_or(0, |summary| summary.items),
            problem = ?damage,
            "torn or damaged spool segment tail (a crash mid-write?); cut it off"
        );
        file.set_len(offset)?;
    }
    segment.end = offset;
    if segment.records == 0 {
        return Ok(Scanned::Empty { problems });
    }
    Ok(Scanned::Segment { segment, last_sequence, problems })
}

/// What the damaged record at `offset` (running to `end`) held, when its envelope still says.
pub(super) fn damaged_items(file: &File, offset: u64, end: u64) -> Option<envelope::Summary> {
    let start = offset + segment::RECORD_HEADER_LEN;
    let len = usize::try_from(end.checked_sub(start)?).ok()?;
    let mut envelope = vec![0; len];
    file.read_exact_at(&mut envelope, start).ok()?;
    envelope::summary(&envelope).ok().filter(|summary| summary.items > 0)
}
