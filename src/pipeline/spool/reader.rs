//! Reading a spool back, oldest record first, on tokio's blocking pool; records that cannot be
//! read are skipped (a damaged one by resynchronising on the next intact record) and counted.

use std::fs::File;
use std::io;
use std::sync::Arc;

use super::envelope::{self, DecodedRecord, EnvelopeError};
use super::segment::{self, Frame};
use super::{ReadPlan, RecordTicket, Spool, close_active};
use crate::model::{Batch, LossReason, Signal};
use crate::telemetry::metrics::Metrics;

impl Spool {
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
        self.counts.metrics().spool_corrupt_records.get_or_create(&Metrics::destination(self.lane)).inc();
        let Some(index) = state.segments.iter().position(|segment| segment.id == plan.segment) else { return };
        let segment = &mut state.segments[index];
        let skipped = segment.records - segment.read;
        let mut lost = 0;
        for signal in Signal::ALL {
            let items = std::mem::take(&mut segment.unread_items[signal.index()]);
            if items > 0 {
                self.counts.record_dropped(signal, LossReason::SpoolCorrupt, items);
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
    /// A record that fails its checksum or cannot be framed; what it held, when its envelope
    /// still says. The next intact record was found by resynchronising.
    Damaged(Option<envelope::Summary>, String),
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
                            .counts
                            .metrics()
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
                ReadOutcome::Damaged(summary, why) => {
                    if self.spool.advance(&plan, next, None) {
                        self.count_unreadable(&plan, summary, &why);
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
        spool.counts.metrics().spool_corrupt_records.get_or_create(&Metrics::destination(spool.lane)).inc();
        if let Some(summary) = summary.filter(|summary| summary.items > 0) {
            spool.counts.record_dropped(summary.signal, LossReason::SpoolCorrupt, summary.items);
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
        Ok(Frame::End) => (ReadOutcome::Unreadable("it ends before its last record".into()), end),
        Ok(damage @ (Frame::BadChecksum { .. } | Frame::Torn(_))) => {
            // Never trust a damaged length: the next record is where one intact starts.
            let next = match segment::resync(file, offset + 1, end) {
                Ok(Some(next)) => next,
                Ok(None) => end,
                Err(error) => return (ReadOutcome::Unreadable(error.to_string()), end),
            };
            let why = match damage {
                Frame::Torn(tail) => format!("{tail}; resynchronised {} bytes on", next - offset),
                _ => format!("its checksum does not match; resynchronised {} bytes on", next - offset),
            };
            (ReadOutcome::Damaged(super::recovery::damaged_items(file, offset, next), why), next)
        }
        Err(error) => (ReadOutcome::Unreadable(error.to_string()), end),
    }
}
