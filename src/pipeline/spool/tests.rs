//! Unit tests of the spool: round trips through segment files, rotation, deletion after
//! acknowledgement, the byte bound, and recovery from damaged files.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use bytesize::ByteSize;

use super::envelope::EncodedBatch;
use super::segment::{segment_file_name, segment_id};
use super::*;
use crate::model::{Batch, Destination, Payload, XraySegment};
use crate::telemetry::counts::DestinationCounts;
use crate::telemetry::metrics::Metrics;

const LANE: Destination = Destination::Honeycomb;

/// One X-Ray document per id, `size` bytes each, so tests can tell batches apart.
fn documents(ids: &[&str], size: usize) -> Batch {
    let segments = ids
        .iter()
        .map(|id| XraySegment { body: Bytes::from(vec![b'x'; size]), trace_id: "1-abc".into(), id: (*id).into() })
        .collect();
    Batch::xray(segments)
}

fn ids(batch: &Batch) -> Vec<String> {
    match &batch.payload {
        Payload::XraySegments(segments) => segments.iter().map(|s| s.id.clone()).collect(),
        other => panic!("not X-Ray documents: {other:?}"),
    }
}

fn open(directory: &Path, max_size: u64, segment_size: u64) -> (Arc<Spool>, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let counts = Arc::new(DestinationCounts::new(LANE, Arc::clone(&metrics)));
    let spool =
        Spool::open(directory, SpoolOptions { max_size, segment_size, when_full: WhenSpoolFull::DropOldest }, counts)
            .unwrap();
    (spool, metrics)
}

fn append(spool: &Spool, id: &str, size: usize) {
    spool.append(&EncodedBatch::new(&documents(&[id], size)), SpoolReason::Accepted).unwrap();
}

/// Reads every record there is now. Time is paused: the timeout fires only once nothing is
/// left to do (a read on the blocking pool holds the clock), so it means "nothing more".
async fn read_all(reader: &mut SpoolReader) -> Vec<(String, RecordTicket)> {
    let mut read = Vec::new();
    while let Ok(replayed) = tokio::time::timeout(Duration::from_millis(200), reader.next()).await {
        reader.handed_over();
        read.push((ids(&replayed.batch).join(","), replayed.ticket));
    }
    read
}

fn segment_files(directory: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = fs::read_dir(directory)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "seg"))
        .collect();
    files.sort();
    files
}

fn metric(metrics: &Metrics, prefix: &str) -> Option<u64> {
    metrics.encode().lines().find(|line| line.starts_with(prefix))?.rsplit(' ').next()?.parse().ok()
}

fn names(read: &[(String, RecordTicket)]) -> Vec<&str> {
    read.iter().map(|(name, _)| name.as_str()).collect()
}

#[tokio::test(start_paused = true)]
async fn records_come_back_in_order_and_the_backlog_follows() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, metrics) = open(dir.path(), 1 << 20, 1 << 16);
    assert!(!spool.has_backlog());
    for id in ["a", "b", "c"] {
        append(&spool, id, 10);
    }
    assert!(spool.has_backlog());
    let mut reader = spool.reader();
    let read = read_all(&mut reader).await;
    assert_eq!(names(&read), ["a", "b", "c"]);
    assert!(!spool.has_backlog());
    assert_eq!(metric(&metrics, r#"waggle_destination_spool_written_records_total{destination="honeycomb"}"#), Some(3));
    assert_eq!(
        metric(&metrics, r#"waggle_destination_spool_replayed_records_total{destination="honeycomb"}"#),
        Some(3)
    );
    let spooled =
        r#"waggle_destination_spooled_items_total{destination="honeycomb",signal="traces",reason="accepted"}"#;
    assert_eq!(metric(&metrics, spooled), Some(3));
}

#[tokio::test(start_paused = true)]
async fn a_record_in_hand_still_counts_as_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path(), 1 << 20, 1 << 16);
    append(&spool, "a", 10);
    let mut reader = spool.reader();
    let _replayed = reader.next().await;
    assert!(spool.has_backlog(), "read but not yet queued: new batches must still go behind it");
    reader.handed_over();
    assert!(!spool.has_backlog());
}

#[tokio::test(start_paused = true)]
async fn segments_rotate_at_the_segment_size() {
    let dir = tempfile::tempdir().unwrap();
    // Each record is a little over 1 KiB; a segment takes three.
    let (spool, _) = open(dir.path(), 1 << 20, 3_500);
    for id in ["a", "b", "c", "d", "e", "f", "g"] {
        append(&spool, id, 1_000);
    }
    assert_eq!(segment_files(dir.path()).len(), 3);
    assert_eq!(spool.stats().segments, 3);
    let on_disk: u64 = segment_files(dir.path()).iter().map(|path| fs::metadata(path).unwrap().len()).sum();
    assert_eq!(spool.stats().bytes, on_disk);
    let read = read_all(&mut spool.reader()).await;
    assert_eq!(names(&read), ["a", "b", "c", "d", "e", "f", "g"]);
}

#[tokio::test(start_paused = true)]
async fn a_segment_is_deleted_only_after_every_record_in_it_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, metrics) = open(dir.path(), 1 << 20, 3_500);
    for id in ["a", "b", "c", "d"] {
        append(&spool, id, 1_000);
    }
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 2);
    let read = read_all(&mut spool.reader()).await;
    // Acknowledged out of order, as parallel senders do: b, then a; c is still in flight.
    spool.acknowledge(read[1].1);
    spool.acknowledge(read[0].1);
    assert!(files[0].exists(), "c is not acknowledged yet");
    spool.acknowledge(read[3].1);
    assert!(files[0].exists());
    let bytes = metric(&metrics, r#"waggle_destination_spool_bytes{destination="honeycomb"}"#);
    assert_eq!(bytes, Some(fs::metadata(&files[0]).unwrap().len() + HEADER_ONLY));
    spool.acknowledge(read[2].1);
    assert!(!files[0].exists());
    assert_eq!(spool.stats(), SpoolStats { bytes: HEADER_ONLY, segments: 1, records: 0, unread: 0 });
    let bytes = metric(&metrics, r#"waggle_destination_spool_bytes{destination="honeycomb"}"#);
    assert_eq!(bytes, Some(HEADER_ONLY));
}

/// The length of a segment file holding no record.
const HEADER_ONLY: u64 = 8;

#[tokio::test(start_paused = true)]
async fn the_segment_being_written_is_emptied_not_deleted_once_settled() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path(), 1 << 20, 1 << 16);
    append(&spool, "a", 10);
    let files = segment_files(dir.path());
    let mut reader = spool.reader();
    let read = read_all(&mut reader).await;
    spool.acknowledge(read[0].1);
    assert_eq!(segment_files(dir.path()), files, "the same file is kept");
    assert_eq!(fs::metadata(&files[0]).unwrap().len(), HEADER_ONLY);
    assert_eq!(spool.stats().bytes, HEADER_ONLY);
    append(&spool, "b", 10);
    assert_eq!(segment_files(dir.path()), files, "and written again");
    assert_eq!(names(&read_all(&mut reader).await), ["b"]);
}

#[tokio::test(start_paused = true)]
async fn an_emptied_segment_left_at_a_stop_opens_as_an_empty_spool() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (spool, _) = open(dir.path(), 1 << 20, 1 << 16);
        append(&spool, "a", 10);
        let read = read_all(&mut spool.reader()).await;
        spool.acknowledge(read[0].1);
    }
    let (spool, metrics) = open(dir.path(), 1 << 20, 1 << 16);
    assert_eq!(spool.stats(), SpoolStats::default());
    assert!(segment_files(dir.path()).is_empty(), "a file holding only its header is removed");
    assert_eq!(metric(&metrics, CORRUPT).unwrap_or(0), 0);
}

#[tokio::test(start_paused = true)]
async fn only_segments_holding_unacknowledged_records_are_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path(), 1 << 20, 3_500);
    for id in ["a", "b", "c", "d"] {
        append(&spool, id, 1_000);
    }
    let read = read_all(&mut spool.reader()).await;
    for (_, ticket) in &read[..3] {
        spool.acknowledge(*ticket);
    }
    assert_eq!(spool.sync().await, 1, "d's segment only: a, b and c were acknowledged");
    assert_eq!(spool.sync().await, 0, "nothing was written since");
    append(&spool, "e", 10);
    spool.acknowledge(read[3].1);
    let e = read_all(&mut spool.reader()).await;
    spool.acknowledge(e[0].1);
    assert_eq!(spool.sync().await, 0, "e was written, but acknowledged before the flush");
}

#[tokio::test(start_paused = true)]
async fn the_byte_bound_drops_the_oldest_segment_and_counts_its_items() {
    let dir = tempfile::tempdir().unwrap();
    // Segments of three ~1 KiB records; room for about two segments.
    let (spool, metrics) = open(dir.path(), 7_000, 3_500);
    for index in 0..9 {
        let batch = documents(&[&format!("{index}-1"), &format!("{index}-2")], 500);
        spool.append(&EncodedBatch::new(&batch), SpoolReason::Accepted).unwrap();
        assert!(spool.stats().bytes <= 7_000, "{:?}", spool.stats());
    }
    let dropped =
        r#"waggle_destination_dropped_items_total{destination="honeycomb",signal="traces",reason="spool_full"}"#;
    let dropped = metric(&metrics, dropped).expect("the drop is counted");
    let read = read_all(&mut spool.reader()).await;
    assert_eq!(dropped as usize + 2 * read.len(), 18, "every item is either still there or counted");
    assert!(dropped >= 6, "at least one segment of three records went: {dropped}");
    // What is left is the newest data, still in order.
    let first_left: usize = read[0].0.split('-').next().unwrap().parse().unwrap();
    let left: Vec<_> = read.iter().map(|(name, _)| name.split('-').next().unwrap().parse::<usize>().unwrap()).collect();
    assert_eq!(left, (first_left..9).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn items_already_read_back_are_not_counted_when_their_segment_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, metrics) = open(dir.path(), 7_000, 3_500);
    for id in ["a", "b", "c"] {
        append(&spool, id, 1_000);
    }
    let mut reader = spool.reader();
    let read = read_all(&mut reader).await;
    assert_eq!(read.len(), 3);
    for id in ["d", "e", "f", "g", "h", "i"] {
        append(&spool, id, 1_000);
    }
    assert!(!spool.holds(read[0].1), "the first segment was dropped for room");
    let dropped =
        r#"waggle_destination_dropped_items_total{destination="honeycomb",signal="traces",reason="spool_full"}"#;
    assert_eq!(metric(&metrics, dropped), None, "its records were in memory already, not lost");
    spool.acknowledge(read[0].1); // an acknowledgement for a dropped segment is ignored
}

#[tokio::test(start_paused = true)]
async fn a_record_larger_than_the_spool_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path(), 2_000, 2_000);
    let error = spool.append(&EncodedBatch::new(&documents(&["big"], 5_000)), SpoolReason::Accepted).unwrap_err();
    assert!(matches!(error, SpoolError::TooLarge { .. }), "{error}");
    assert!(!spool.has_backlog());
}

#[tokio::test(start_paused = true)]
async fn what_is_left_is_replayed_after_a_restart_and_sequences_continue() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (spool, _) = open(dir.path(), 1 << 20, 3_500);
        for id in ["a", "b", "c", "d"] {
            append(&spool, id, 1_000);
        }
        let read = read_all(&mut spool.reader()).await;
        spool.acknowledge(read[0].1);
        spool.sync().await;
    }
    let (spool, _) = open(dir.path(), 1 << 20, 3_500);
    assert!(spool.has_backlog());
    // b, c and d were never acknowledged.
    assert_eq!(spool.stats().unread, 4, "a's segment is still there because b and c were not acknowledged");
    let mut reader = spool.reader();
    let mut sequences = Vec::new();
    let mut read = Vec::new();
    while let Ok(replayed) = tokio::time::timeout(Duration::from_millis(200), reader.next()).await {
        reader.handed_over();
        sequences.push(replayed.sequence);
        read.push(ids(&replayed.batch).join(","));
    }
    // a is replayed again: its segment was not settled. At least once, never lost.
    assert_eq!(read, ["a", "b", "c", "d"]);
    assert_eq!(sequences, [0, 1, 2, 3]);
    append(&spool, "e", 10);
    let replayed = reader.next().await;
    assert_eq!(replayed.sequence, 4);
}

#[tokio::test(start_paused = true)]
async fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_spool, metrics) = open(dir.path(), 1 << 20, 1 << 16);
    let counts = Arc::new(DestinationCounts::new(LANE, metrics));
    let second = Spool::open(dir.path(), SpoolOptions::with_max_size(ByteSize::mib(1)), counts);
    assert!(matches!(second, Err(SpoolError::InUse { .. })), "{second:?}");
}

/// Writes records a, b, c to one segment and returns its path and each record's offset.
async fn one_segment(dir: &Path) -> (PathBuf, Vec<u64>) {
    let (spool, _) = open(dir, 1 << 20, 1 << 16);
    let mut offsets = Vec::new();
    for id in ["a", "b", "c"] {
        offsets.push(spool.stats().bytes);
        append(&spool, id, 100);
    }
    spool.sync().await;
    (segment_files(dir).remove(0), offsets)
}

async fn reopen_and_read(dir: &Path) -> (Vec<String>, Arc<Metrics>) {
    let (spool, metrics) = open(dir, 1 << 20, 1 << 16);
    let read = read_all(&mut spool.reader()).await;
    (read.into_iter().map(|(name, _)| name).collect(), metrics)
}

const CORRUPT: &str = r#"waggle_destination_spool_corrupt_records_total{destination="honeycomb"}"#;

#[tokio::test(start_paused = true)]
async fn a_record_with_a_bad_checksum_is_skipped_and_counted_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let (path, offsets) = one_segment(dir.path()).await;
    let mut data = fs::read(&path).unwrap();
    data[offsets[1] as usize + 20] ^= 0xff;
    fs::write(&path, &data).unwrap();

    let (read, metrics) = reopen_and_read(dir.path()).await;
    assert_eq!(read, ["a", "c"]);
    assert_eq!(metric(&metrics, CORRUPT), Some(1));
}

#[tokio::test(start_paused = true)]
async fn a_torn_tail_is_cut_off_and_counted_and_what_came_before_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let (path, offsets) = one_segment(dir.path()).await;
    let length = fs::metadata(&path).unwrap().len();
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(length - 7).unwrap();

    let (read, metrics) = reopen_and_read(dir.path()).await;
    assert_eq!(read, ["a", "b"]);
    assert_eq!(metric(&metrics, CORRUPT), Some(1));
    assert_eq!(fs::metadata(&path).unwrap().len(), offsets[2], "the torn record was cut off");
}

#[tokio::test(start_paused = true)]
async fn a_truncated_length_field_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (path, offsets) = one_segment(dir.path()).await;
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(offsets[2] + 3).unwrap();

    let (read, metrics) = reopen_and_read(dir.path()).await;
    assert_eq!(read, ["a", "b"]);
    assert_eq!(metric(&metrics, CORRUPT), Some(1));
}

#[tokio::test(start_paused = true)]
async fn garbage_appended_after_the_last_record_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = one_segment(dir.path()).await;
    let mut data = fs::read(&path).unwrap();
    data.extend_from_slice(&[0xff; 40]);
    fs::write(&path, &data).unwrap();

    let (read, metrics) = reopen_and_read(dir.path()).await;
    assert_eq!(read, ["a", "b", "c"]);
    assert_eq!(metric(&metrics, CORRUPT), Some(1));
}

#[tokio::test(start_paused = true)]
async fn a_file_with_nothing_readable_is_set_aside_not_deleted_and_the_spool_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = one_segment(dir.path()).await;
    let stranger = dir.path().join(segment_file_name(99));
    fs::write(&stranger, b"not a spool segment at all").unwrap();
    let empty = dir.path().join(segment_file_name(100));
    fs::write(&empty, b"").unwrap();
    fs::write(dir.path().join("notes.txt"), b"left alone").unwrap();

    let (read, metrics) = reopen_and_read(dir.path()).await;
    assert_eq!(read, ["a", "b", "c"]);
    assert_eq!(metric(&metrics, CORRUPT), Some(1), "the stranger counts; an empty file (a crash at creation) does not");
    assert!(path.exists());
    assert!(!stranger.exists() && !empty.exists());
    let aside = dir.path().join(format!("{}.damaged", segment_file_name(99)));
    assert_eq!(fs::read(&aside).unwrap(), b"not a spool segment at all", "set aside unchanged");
    assert!(dir.path().join("notes.txt").exists());
}

#[tokio::test(start_paused = true)]
async fn a_damaged_file_header_loses_nothing_the_records_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = one_segment(dir.path()).await;
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(b"XXXX", 0).unwrap();

    let (read, metrics) = reopen_and_read(dir.path()).await;
    assert_eq!(read, ["a", "b", "c"]);
    assert_eq!(metric(&metrics, CORRUPT), Some(1));
    assert_eq!(metric(&metrics, "waggle_destination_dropped_items_total"), None, "nothing lost");
}

#[tokio::test(start_paused = true)]
async fn a_file_header_cut_short_loses_nothing_the_first_record_is_found_where_it_moved() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = one_segment(dir.path()).await;
    let mut bytes = fs::read(&path).unwrap();
    bytes.drain(2..5); // three bytes of the magic lost: every record now starts 3 bytes early
    fs::write(&path, &bytes).unwrap();

    let (read, metrics) = reopen_and_read(dir.path()).await;
    assert_eq!(read, ["a", "b", "c"], "a, now before the header's nominal end, is read too");
    assert_eq!(metric(&metrics, CORRUPT), Some(1));
    assert_eq!(metric(&metrics, "waggle_destination_dropped_items_total"), None, "nothing lost");
}

#[tokio::test(start_paused = true)]
async fn a_flipped_bit_in_a_records_length_costs_that_record_only_and_its_items_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (path, offsets) = one_segment(dir.path()).await;
    let file = OpenOptions::new().read(true).write(true).open(&path).unwrap();
    let mut length = [0u8; 4];
    file.read_exact_at(&mut length, offsets[1]).unwrap();
    length[2] ^= 0x10; // b's length now claims ~1 MiB more than the file holds
    file.write_all_at(&length, offsets[1]).unwrap();

    let (read, metrics) = reopen_and_read(dir.path()).await;
    assert_eq!(read, ["a", "c"], "c, after the damaged record, is found by resynchronising");
    assert_eq!(metric(&metrics, CORRUPT), Some(1));
    let dropped =
        r#"waggle_destination_dropped_items_total{destination="honeycomb",signal="traces",reason="spool_corrupt"}"#;
    assert_eq!(metric(&metrics, dropped), Some(1), "b's one document counted as lost");
}

#[tokio::test(start_paused = true)]
async fn a_write_ahead_record_is_claimed_only_when_nothing_waits_on_disk_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path(), 1 << 20, 1 << 16);
    let ahead = |id: &str| spool.append_ahead(&EncodedBatch::new(&documents(&[id], 10)), true).unwrap();
    let claimed = ahead("a").expect("nothing waits: claimed");
    assert!(!spool.has_backlog());
    append(&spool, "b", 10);
    assert_eq!(ahead("c"), None, "behind b: the reader replays it");
    let read = read_all(&mut spool.reader()).await;
    assert_eq!(names(&read), ["b", "c"], "a was claimed, so it is not read back");
    assert!(ahead("d").is_some(), "caught up again");
    assert_eq!(spool.stats().records, 4, "on disk until acknowledged");
    spool.acknowledge(claimed);
    assert_eq!(spool.stats().records, 3);
}

#[tokio::test(start_paused = true)]
async fn a_full_spool_refuses_by_default_and_drops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let counts = Arc::new(DestinationCounts::new(LANE, Arc::clone(&metrics)));
    let options = SpoolOptions { max_size: 3_000, segment_size: 1_000, when_full: WhenSpoolFull::Refuse };
    assert_eq!(SpoolOptions::with_max_size(ByteSize::mib(1)).when_full, WhenSpoolFull::Refuse, "the default");
    let spool = Spool::open(dir.path(), options, counts).unwrap();
    let mut taken = 0;
    let refused = loop {
        match spool.append(&EncodedBatch::new(&documents(&["x"], 400)), SpoolReason::Accepted) {
            Ok(()) => taken += 1,
            Err(error) => break error,
        }
        assert!(taken < 100, "the bound holds");
    };
    assert!(matches!(refused, SpoolError::Full { max_size: 3_000 }), "{refused:?}");
    assert_eq!(spool.stats().unread, taken, "every record it took is still there");
    assert!(spool.stats().bytes <= 3_000);
    assert_eq!(metric(&metrics, "waggle_destination_dropped_items_total"), None);
}

#[tokio::test(start_paused = true)]
async fn a_segment_damaged_after_start_up_is_skipped_while_reading() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, metrics) = open(dir.path(), 1 << 20, 1 << 16);
    let mut offsets = Vec::new();
    for id in ["a", "b", "c"] {
        offsets.push(spool.stats().bytes);
        append(&spool, id, 100);
    }
    let path = segment_files(dir.path()).remove(0);
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&[0xff], offsets[1] + 30).unwrap();

    let read = read_all(&mut spool.reader()).await;
    assert_eq!(names(&read), ["a", "c"]);
    assert_eq!(metric(&metrics, CORRUPT), Some(1));
    for (_, ticket) in &read {
        spool.acknowledge(*ticket);
    }
    let length = fs::metadata(&path).unwrap().len();
    assert_eq!(length, HEADER_ONLY, "the skipped record does not keep its records on disk");
}

#[tokio::test(start_paused = true)]
async fn segment_files_are_counted_without_opening_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(count_segment_files(&dir.path().join("missing")), 0);
    let (spool, _) = open(dir.path(), 1 << 20, 3_500);
    for id in ["a", "b", "c", "d"] {
        append(&spool, id, 1_000);
    }
    assert_eq!(count_segment_files(dir.path()), 2, "the lock file is not a segment");
}

#[test]
fn segment_names_sort_by_id_and_other_names_are_ignored() {
    assert_eq!(segment_file_name(42), "00000000000000000042.seg");
    assert_eq!(segment_id("00000000000000000042.seg"), Some(42));
    assert_eq!(segment_id("42.seg"), None);
    assert_eq!(segment_id("0000000000000000004x.seg"), None);
    assert_eq!(segment_id("lock"), None);
}

#[test]
fn segments_are_an_eighth_of_the_spool_within_bounds() {
    assert_eq!(SpoolOptions::with_max_size(ByteSize::mib(256)).segment_size, 32 * 1024 * 1024);
    assert_eq!(SpoolOptions::with_max_size(ByteSize::gib(4)).segment_size, MAX_SEGMENT_SIZE);
    assert_eq!(SpoolOptions::with_max_size(ByteSize::kib(128)).segment_size, MIN_SEGMENT_SIZE);
    assert_eq!(SpoolOptions::with_max_size(ByteSize::kib(16)).segment_size, 16 * 1024);
}
