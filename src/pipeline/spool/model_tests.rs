//! A model-based test of the spool: random sequences of write-ahead and plain appends, reads,
//! acknowledgements, rotations, crashes (the process gone without a flush, sometimes with its
//! last segment torn or one byte flipped anywhere in a segment) and restarts, checked against
//! an in-memory model of what must come back: every record not acknowledged before a crash is
//! replayed after it, in append order, unless the damage hit that very record.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::{self, OpenOptions};
use std::io::Cursor;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::envelope::{self, EncodedBatch};
use super::segment::{self, FILE_HEADER_LEN, Frame};
use super::*;
use crate::model::{Batch, Destination, Payload, XraySegment};
use crate::telemetry::counts::DestinationCounts;
use crate::telemetry::metrics::Metrics;

/// A small deterministic generator (xorshift64*), so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn open(directory: &Path) -> (Arc<Spool>, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let counts = Arc::new(DestinationCounts::new(Destination::Honeycomb, Arc::clone(&metrics)));
    // Small segments, so rotation and deletion happen often; no bound is reached.
    let options = SpoolOptions { max_size: 1 << 24, segment_size: 2_048, when_full: WhenSpoolFull::Refuse };
    (Spool::open(directory, options, counts).expect("the spool opens"), metrics)
}

/// Record `id`: one X-Ray document whose id is the record's number.
fn record(id: u64, size: usize) -> EncodedBatch {
    let document = XraySegment { body: Bytes::from(vec![b'x'; size]), trace_id: "1-abc".into(), id: id.to_string() };
    EncodedBatch::new(&Batch::xray(vec![document]))
}

fn id_of(batch: &Batch) -> u64 {
    match &batch.payload {
        Payload::XraySegments(segments) => segments[0].id.parse().expect("a numbered record"),
        other => panic!("not the model's record: {other:?}"),
    }
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

/// The oracle for damage: each intact record of a segment file as (start, end, id), past
/// records an earlier round damaged.
fn records_in(path: &Path) -> Vec<(u64, u64, u64)> {
    let data = fs::read(path).unwrap();
    let end = data.len() as u64;
    let mut offset = FILE_HEADER_LEN;
    let mut envelope = Vec::new();
    let mut records = Vec::new();
    while offset < end {
        let mut reader = Cursor::new(&data);
        reader.set_position(offset);
        match segment::read_next(&mut reader, offset, end, &mut envelope).unwrap() {
            Frame::Record { length } => {
                let next = offset + segment::framed_len(length);
                let decoded = envelope::decode(Bytes::from(envelope.clone())).expect("intact records decode");
                records.push((offset, next, id_of(&decoded.batch)));
                offset = next;
            }
            Frame::End => break,
            Frame::BadChecksum { .. } | Frame::Torn(_) => {
                let from = offset as usize + 1;
                match segment::find_record(&data[from..]) {
                    Some(at) => offset = (from + at) as u64,
                    None => break,
                }
            }
        }
    }
    records
}

/// What the model expects of the spool.
#[derive(Default)]
struct Model {
    /// Not yet read back, in append order.
    unread: VecDeque<u64>,
    /// Read back (or claimed by a write-ahead append) and not yet acknowledged.
    in_hand: BTreeMap<u64, RecordTicket>,
    /// Acknowledged: may come back after a crash (its segment was still there), never lost.
    acked: BTreeSet<u64>,
}

/// Reads one record, if there is one now (time is paused: the timeout means "none").
async fn read_one(reader: &mut SpoolReader) -> Option<Replayed> {
    let replayed = tokio::time::timeout(Duration::from_millis(100), reader.next()).await.ok()?;
    reader.handed_over();
    Some(replayed)
}

async fn run(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let (mut spool, _) = open(dir.path());
    let mut reader = spool.reader();
    let mut model = Model::default();
    let mut next_id = 0u64;
    for step in 0..160 {
        let context = format!("seed {seed}, step {step}");
        if std::env::var_os("SPOOL_MODEL_TRACE").is_some() {
            eprintln!(
                "{context}: {:?} unread {:?} in_hand {:?}",
                spool.stats(),
                model.unread,
                model.in_hand.keys().collect::<Vec<_>>()
            );
        }
        match rng.below(100) {
            0..=29 => {
                let size = 10 + rng.below(400) as usize;
                match spool.append_ahead(&record(next_id, size), true).unwrap() {
                    Some(ticket) => {
                        assert!(model.unread.is_empty(), "{context}: claimed although records wait");
                        model.in_hand.insert(next_id, ticket);
                    }
                    None => {
                        assert!(!model.unread.is_empty(), "{context}: not claimed although nothing waits");
                        model.unread.push_back(next_id);
                    }
                }
                next_id += 1;
            }
            30..=44 => {
                spool.append(&record(next_id, 10 + rng.below(400) as usize), SpoolReason::RetriesExhausted).unwrap();
                model.unread.push_back(next_id);
                next_id += 1;
            }
            45..=69 => {
                let replayed = read_one(&mut reader).await;
                let expected = model.unread.pop_front();
                assert_eq!(replayed.as_ref().map(|r| id_of(&r.batch)), expected, "{context}: read in append order");
                if let (Some(replayed), Some(id)) = (replayed, expected) {
                    model.in_hand.insert(id, replayed.ticket);
                }
            }
            70..=91 => {
                if !model.in_hand.is_empty() {
                    let pick = rng.below(model.in_hand.len() as u64) as usize;
                    let id = *model.in_hand.keys().nth(pick).unwrap();
                    spool.acknowledge(model.in_hand.remove(&id).unwrap());
                    model.acked.insert(id);
                }
            }
            _ => {
                // A crash: no flush, no goodbye; sometimes the disk is damaged too.
                drop(reader);
                drop(spool);
                let lost = damage(&mut rng, dir.path());
                (spool, _) = open(dir.path());
                reader = spool.reader();
                let mut replayed = Vec::new();
                while let Some(record) = read_one(&mut reader).await {
                    replayed.push((id_of(&record.batch), record.ticket));
                }
                let ids: Vec<u64> = replayed.iter().map(|(id, _)| *id).collect();
                assert!(
                    ids.windows(2).all(|pair| pair[0] < pair[1]),
                    "{context}: replayed once each, in order: {ids:?}"
                );
                let must: BTreeSet<u64> =
                    model.unread.iter().chain(model.in_hand.keys()).copied().filter(|id| !lost.contains(id)).collect();
                let got: BTreeSet<u64> = ids.iter().copied().collect();
                let missing: Vec<_> = must.difference(&got).collect();
                assert!(missing.is_empty(), "{context}: unacknowledged records lost: {missing:?} (damaged: {lost:?})");
                let unknown: Vec<_> = got.iter().filter(|id| !must.contains(id) && !model.acked.contains(id)).collect();
                assert!(unknown.is_empty(), "{context}: records that were never pending came back: {unknown:?}");
                model = Model::default();
                model.in_hand = replayed.into_iter().collect();
            }
        }
    }
    // Acknowledging everything leaves an empty spool: no files but the segment being written,
    // emptied to its header.
    while let Some(replayed) = read_one(&mut reader).await {
        model.in_hand.insert(id_of(&replayed.batch), replayed.ticket);
    }
    for ticket in model.in_hand.into_values() {
        spool.acknowledge(ticket);
    }
    let stats = spool.stats();
    assert_eq!((stats.records, stats.unread), (0, 0), "seed {seed}: everything acknowledged");
    let files = segment_files(dir.path());
    assert!(files.len() <= 1, "seed {seed}: no segment files left but the one being written: {files:?}");
    let bytes: u64 = files.iter().map(|file| fs::metadata(file).unwrap().len()).sum();
    assert_eq!(bytes, 8 * files.len() as u64, "seed {seed}: emptied to its header");
    assert_eq!(stats.bytes, bytes, "seed {seed}");
}

/// Damages the spool files after a crash, or not; returns the ids of the records the damage
/// destroyed (a record whose bytes were cut off or changed).
fn damage(rng: &mut Rng, directory: &Path) -> BTreeSet<u64> {
    let files = segment_files(directory);
    let Some(last) = files.last() else { return BTreeSet::new() };
    match rng.below(3) {
        0 => BTreeSet::new(),
        1 => {
            // A torn write: the newest segment cut short somewhere after its header.
            let length = fs::metadata(last).unwrap().len();
            if length <= FILE_HEADER_LEN {
                return BTreeSet::new();
            }
            let cut = FILE_HEADER_LEN + rng.below(length - FILE_HEADER_LEN);
            let lost = records_in(last).into_iter().filter(|&(_, end, _)| end > cut).map(|(_, _, id)| id).collect();
            OpenOptions::new().write(true).open(last).unwrap().set_len(cut).unwrap();
            lost
        }
        _ => {
            // One byte flipped anywhere in any segment, its header included.
            let path = &files[rng.below(files.len() as u64) as usize];
            let length = fs::metadata(path).unwrap().len();
            if length == 0 {
                return BTreeSet::new();
            }
            let at = rng.below(length);
            let lost = records_in(path)
                .into_iter()
                .filter(|&(start, end, _)| (start..end).contains(&at))
                .map(|(_, _, id)| id)
                .collect();
            let file = OpenOptions::new().read(true).write(true).open(path).unwrap();
            let mut byte = [0u8; 1];
            file.read_exact_at(&mut byte, at).unwrap();
            byte[0] ^= 1 << rng.below(8);
            file.write_all_at(&byte, at).unwrap();
            lost
        }
    }
}

#[tokio::test(start_paused = true)]
async fn random_operations_crashes_and_damage_lose_only_what_the_damage_hit() {
    for seed in 1..=40 {
        run(seed).await;
    }
}
