//! Appending to a spool: framing a batch into the newest segment (write-ahead, or for the
//! reader), rotating segments, the bound (refuse or drop the oldest), and the periodic flush
//! to disk.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::envelope::EncodedBatch;
use super::segment::{self, FILE_HEADER_LEN, FILE_MAGIC};
use super::{ActiveSegment, RecordTicket, Segment, Spool, SpoolError, SpoolReason, State, WhenSpoolFull, close_active};
use crate::model::{LossReason, Signal};
use crate::telemetry::metrics::Metrics;

impl Spool {
    /// Appends a batch as one record for the reader to replay (retries exhausted, shutdown).
    pub fn append(&self, batch: &EncodedBatch, reason: SpoolReason) -> Result<(), SpoolError> {
        self.append_record(batch, reason, false).map(|_| ())
    }

    /// Writes a batch ahead of acknowledging it (see the module's notes). `Some(ticket)` when
    /// the caller claimed the record: nothing waits on disk before it, so the caller queues
    /// the batch in memory itself and acknowledges the ticket once delivered. `None` when it
    /// went behind older records (or `claim` is false): the reader replays it.
    pub fn append_ahead(&self, batch: &EncodedBatch, claim: bool) -> Result<Option<RecordTicket>, SpoolError> {
        self.append_record(batch, SpoolReason::Accepted, claim)
    }

    fn append_record(
        &self,
        batch: &EncodedBatch,
        reason: SpoolReason,
        claim: bool,
    ) -> Result<Option<RecordTicket>, SpoolError> {
        let sequence = self.next_sequence.fetch_add(1, Ordering::Relaxed);
        let mut framed = Vec::new();
        let framed_ok =
            segment::frame_into(&mut framed, |buffer| batch.encode_envelope(sequence, SystemTime::now(), buffer));
        let needed = framed.len() as u64;
        let too_large = SpoolError::TooLarge { record: needed, max_size: self.options.max_size };
        if !framed_ok || needed + FILE_HEADER_LEN > self.options.max_size {
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
            if self.options.when_full == WhenSpoolFull::Refuse {
                self.publish(&state);
                return Err(SpoolError::Full { max_size: self.options.max_size });
            }
            self.drop_oldest(&mut state);
        }
        // Claimed only when the reader is caught up: the record must not overtake older ones.
        let claim = claim && !state.in_hand && state.segments.iter().all(|segment| segment.read >= segment.records);
        let result = self.write_record(&mut state, &framed, batch, claim);
        self.publish(&state);
        drop(state);
        let ticket = result?;
        if !claim {
            self.appended.notify_one();
        }
        let destination = Metrics::destination(self.lane);
        let metrics = self.counts.metrics();
        metrics.spool_written_records.get_or_create(&destination).inc();
        let labels = Metrics::spooled(self.lane, batch.signal, reason);
        metrics.spooled.get_or_create(&labels).inc_by(batch.items);
        Ok(claim.then_some(ticket))
    }

    fn write_record(
        &self,
        state: &mut State,
        framed: &[u8],
        batch: &EncodedBatch,
        claim: bool,
    ) -> Result<RecordTicket, SpoolError> {
        if state.active.is_none() {
            self.start_segment(state)?;
        }
        let (Some(active), Some(segment)) = (&state.active, state.segments.back_mut()) else {
            // start_segment set both
            return Err(SpoolError::Write { path: self.directory.clone(), source: io::ErrorKind::NotFound.into() });
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
        if claim {
            // The reader was caught up, so its position was this record's start.
            segment.read += 1;
            segment.read_offset = segment.end;
        } else {
            segment.unread_items[batch.signal.index()] += batch.items;
        }
        let ticket = RecordTicket { segment: segment.id };
        state.bytes += framed.len() as u64;
        state.active_unsynced = true;
        Ok(ticket)
    }

    fn start_segment(&self, state: &mut State) -> Result<(), SpoolError> {
        let id = state.next_segment_id;
        state.next_segment_id += 1;
        let path = self.directory.join(segment::segment_file_name(id));
        let write_error = |source| SpoolError::Write { path: path.clone(), source };
        let file = OpenOptions::new().create_new(true).read(true).write(true).open(&path).map_err(write_error)?;
        if let Err(error) = file.write_all_at(&FILE_MAGIC, 0) {
            segment::remove_file(self.lane, &path);
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
        segment::remove_file(self.lane, &oldest.path);
        state.directory_changed = true;
        let mut lost = 0;
        for signal in Signal::ALL {
            let items = oldest.unread_items[signal.index()];
            if items > 0 {
                self.counts.record_dropped(signal, LossReason::SpoolFull, items);
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

    /// Flushes to the disk what was written since the last call and is not yet acknowledged
    /// (what the destination already took needs no flush), and the directory with the first
    /// file flushed after files were created or deleted.
    /// Returns how many files were flushed.
    pub async fn sync(&self) -> usize {
        let (files, directory) = {
            let mut state = self.state();
            let unacknowledged = |state: &State, id: u64| {
                state.segments.iter().any(|segment| segment.id == id && segment.holds_unacknowledged())
            };
            let closed = std::mem::take(&mut state.closed_unsynced);
            let mut files: Vec<Arc<File>> =
                closed.into_iter().filter(|(id, _)| unacknowledged(&state, *id)).map(|(_, file)| file).collect();
            if std::mem::take(&mut state.active_unsynced)
                && let Some(active) = &state.active
                && unacknowledged(&state, active.id)
            {
                files.push(Arc::clone(&active.file));
            }
            // A directory entry matters only for a file that holds something to keep.
            let directory_changed = !files.is_empty() && std::mem::take(&mut state.directory_changed);
            (files, directory_changed.then(|| self.directory.clone()))
        };
        if files.is_empty() {
            return 0;
        }
        let flushed = files.len();
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
        flushed
    }
}
