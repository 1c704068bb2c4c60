//! The spool target: arbitrary bytes as a segment file left by an earlier run, opened and read
//! back the way a lane does at start-up, against an independent scan for checksummed records.

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::task::Poll;

use bytes::Bytes;
use bytesize::ByteSize;

use crate::model::{Batch, Destination, Payload, Signal};
use crate::pipeline::spool::envelope;
use crate::pipeline::spool::{Replayed, Spool, SpoolOptions};
use crate::telemetry::counts::DestinationCounts;
use crate::telemetry::metrics::Metrics;

const LANE: Destination = Destination::Honeycomb;
const SEGMENT: &str = "00000000000000000001.seg";
const MAGIC: &[u8] = b"WGLSPL01";
const RECORD_HEADER: usize = 8;
/// Records read back from one file at most (each takes at least a record header).
const MAX_RECORDS: usize = 1 << 20;

/// One segment file. Opening and reading it never panics; every record read back is one of
/// the file's records whose CRC-32C matches (found here by trying every offset), in file
/// order; every stretch of the file not read back (bad header, damaged or undecodable record,
/// torn tail) is counted in `waggle_destination_spool_corrupt_records`, and nothing is counted
/// for a clean file; a file with no intact record is set aside, not deleted; once everything
/// read back is acknowledged the spool is empty.
pub fn spool_segment(data: &[u8]) {
    let harness = harness();
    clear(&harness.directory);
    fs::create_dir(&harness.directory).expect("a scratch directory");
    fs::write(harness.directory.join(SEGMENT), data).expect("the scratch directory takes a segment file");
    let counted_before = corrupt_records(&harness.metrics);
    let counts = Arc::new(DestinationCounts::new(LANE, Arc::clone(&harness.metrics)));
    let options = SpoolOptions::with_max_size(ByteSize::mib(64));
    let spool = Spool::open(&harness.directory, options, counts).expect("a spool opens whatever its files hold");
    let replayed = harness.runtime.block_on(read_back(&spool));
    assert!(!spool.has_backlog(), "records left unread");
    assert_eq!(spool.stats().records, 0, "records left after every one was acknowledged");
    drop(spool);
    let counted = corrupt_records(&harness.metrics) - counted_before;
    let set_aside = harness.directory.join(format!("{SEGMENT}.damaged")).is_file();
    clear(&harness.directory);

    let frames = intact_frames(data);
    let mut covered: Vec<Range<usize>> = Vec::new();
    if data.starts_with(MAGIC) {
        covered.push(0..MAGIC.len());
    }
    let mut after = 0;
    for record in &replayed {
        let wanted = fingerprint(record.sequence, &record.batch);
        let frame = frames
            .iter()
            .filter(|frame| frame.start >= after)
            .find(|frame| decoded_fingerprint(&data[frame.start + RECORD_HEADER..frame.end]) == Some(wanted.clone()));
        let frame = frame
            .unwrap_or_else(|| panic!("record {} read back is no intact record after offset {after}", record.sequence));
        after = frame.end;
        covered.push(frame.clone());
    }
    let gaps = gaps(&covered, data.len());
    assert!(
        counted >= gaps,
        "{gaps} damaged stretches, {counted} counted; frames {frames:?}; covered {covered:?}; set aside {set_aside}; len {}",
        data.len()
    );
    if gaps == 0 {
        assert_eq!(counted, 0, "a clean file counted as damaged");
    }
    // Behind an intact header records start after it; behind a damaged one, anywhere (a header
    // that lost bytes moves them before its nominal end).
    let first_possible = if data.starts_with(MAGIC) { MAGIC.len() } else { 0 };
    let no_record = !frames.iter().any(|frame| frame.start >= first_possible);
    if no_record && !data.is_empty() && data != MAGIC {
        assert!(set_aside, "a segment with nothing intact was not set aside");
    }
}

async fn read_back(spool: &Arc<Spool>) -> Vec<Replayed> {
    let mut reader = spool.reader();
    let mut replayed = Vec::new();
    while spool.has_backlog() && replayed.len() < MAX_RECORDS {
        // The reader waits for appends once nothing is left (nothing is appended here): while
        // it waits with no backlog left, reading is over. Checked each time it waits, not by
        // spinning beside it while the blocking pool reads.
        let next = {
            let mut next = std::pin::pin!(reader.next());
            std::future::poll_fn(|cx| match next.as_mut().poll(cx) {
                Poll::Ready(record) => Poll::Ready(Some(record)),
                Poll::Pending if spool.has_backlog() => Poll::Pending,
                Poll::Pending => Poll::Ready(None),
            })
            .await
        };
        let Some(record) = next else { break };
        reader.handed_over();
        spool.acknowledge(record.ticket);
        replayed.push(record);
    }
    replayed
}

/// Byte ranges of every whole record in `data` whose checksum matches, at any offset.
fn intact_frames(data: &[u8]) -> Vec<Range<usize>> {
    (0..data.len())
        .filter_map(|start| {
            let header = data.get(start..start + RECORD_HEADER)?;
            let length = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
            let stored = u32::from_le_bytes(header[4..].try_into().ok()?);
            let end = start.checked_add(RECORD_HEADER)?.checked_add(length)?;
            let body = data.get(start + RECORD_HEADER..end)?;
            (crc32c::crc32c_append(crc32c::crc32c(&header[..4]), body) == stored).then_some(start..end)
        })
        .collect()
}

/// Stretches of `0..len` no range covers.
fn gaps(covered: &[Range<usize>], len: usize) -> u64 {
    let (mut gaps, mut at) = (0, 0);
    for range in covered {
        if range.start > at {
            gaps += 1;
        }
        at = at.max(range.end);
    }
    gaps + u64::from(at < len)
}

/// What identifies a record: sequence, signal, items and payload.
type Fingerprint = (u64, Signal, usize, Vec<Bytes>);

fn fingerprint(sequence: u64, batch: &Batch) -> Fingerprint {
    let payload = match &batch.payload {
        Payload::Traces(request) => request.protobuf().cloned().into_iter().collect(),
        Payload::Logs(request) => request.protobuf().cloned().into_iter().collect(),
        Payload::Metrics(request) => request.protobuf().cloned().into_iter().collect(),
        Payload::XraySegments(segments) => segments
            .iter()
            .flat_map(|s| [s.body.clone(), Bytes::from(s.trace_id.clone()), Bytes::from(s.id.clone())])
            .collect(),
    };
    (sequence, batch.signal(), batch.items, payload)
}

fn decoded_fingerprint(envelope: &[u8]) -> Option<Fingerprint> {
    let record = envelope::decode(Bytes::copy_from_slice(envelope)).ok()?;
    Some(fingerprint(record.sequence, &record.batch))
}

fn corrupt_records(metrics: &Metrics) -> u64 {
    metrics.spool_corrupt_records.get_or_create(&Metrics::destination(LANE)).get()
}

/// Removes the scratch directory and what is in it (the spool's lock file too), so nothing is
/// left behind once the fuzzer stops; `Spool::open` makes both again.
fn clear(directory: &Path) {
    for entry in fs::read_dir(directory).into_iter().flatten().flatten() {
        let _ = fs::remove_file(entry.path());
    }
    let _ = fs::remove_dir(directory);
}

/// A runtime for the reader, metrics, and where the scratch directory goes (under `TMPDIR`
/// when set, else on the tmpfs `/dev/shm` when there is one: files there cost no disk); made
/// once.
struct Harness {
    runtime: tokio::runtime::Runtime,
    metrics: Arc<Metrics>,
    directory: PathBuf,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let parent = match std::env::var_os("TMPDIR") {
            None if shm.is_dir() => shm.to_path_buf(),
            _ => std::env::temp_dir(),
        };
        let directory = parent.join(format!("waggle-fuzz-spool-{}", std::process::id()));
        Harness {
            runtime: tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime"),
            metrics: Arc::new(Metrics::new()),
            directory,
        }
    })
}
