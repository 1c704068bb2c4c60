//! Delivering a batch: building the destination's requests, sending each with retries, counting
//! what was sent, refused and dropped, acknowledging replayed records, and, for a spooled lane,
//! keeping on disk what could not be sent.

use std::sync::Arc;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::LaneSettings;
use super::not_before::NotBefore;
use super::progress::Progress;
use super::queued::Queued;
use crate::destination::{ExportError, Exporter, Rejected, Sent};
use crate::model::{Destination, LossReason, SharedBatch, Signal};
use crate::pipeline::spool::envelope::EncodedBatch;
use crate::pipeline::spool::{Spool, SpoolReason};
use crate::telemetry::counts::DestinationCounts;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::ratelimit::LogLimiter;
use crate::telemetry::status::DestinationStatus;

/// A running lane, shared by its batcher and its senders.
pub(super) struct Lane<E> {
    pub(super) name: Destination,
    pub(super) exporter: E,
    pub(super) settings: LaneSettings,
    pub(super) metrics: Arc<Metrics>,
    pub(super) counts: Arc<DestinationCounts>,
    pub(super) status: Arc<DestinationStatus>,
    pub(super) abandon: CancellationToken,
    pub(super) warn_limit: LogLimiter,
    pub(super) progress: Arc<Progress>,
    /// The destination's own wait, for every sender.
    pub(super) not_before: NotBefore,
    pub(super) spool: Option<Arc<Spool>>,
}

/// How one request ended.
enum Outcome {
    /// The destination took it, or rejected it for good (counted).
    Settled,
    /// Not sent: the shutdown deadline passed, or the retry budget ran out.
    GaveUp { reason: LossReason, detail: String },
}

impl<E: Exporter> Lane<E> {
    /// Builds the requests for a batch and sends each until it succeeds or is given up on.
    /// The queued items (and so their reserved bytes) are released when this returns.
    /// With a spool, records are acknowledged once settled, and a batch given up on stays on
    /// (or goes back to) the disk whole; when the spool cannot take it back, it is retried in
    /// place instead of being dropped.
    pub(super) async fn deliver(&self, signal: Signal, queued: Vec<Queued>) {
        let _busy = self.progress.busy();
        let mut queued = queued;
        let mut first_pass = true;
        loop {
            if self.spool.is_some() && self.abandon.is_cancelled() {
                // Past the shutdown deadline: straight to disk, without building requests.
                self.keep_on_disk(queued, SpoolReason::Shutdown);
                return;
            }
            let batches: Vec<SharedBatch> = queued.iter().map(|q| Arc::clone(&q.batch)).collect();
            let built = self.exporter.build(signal, &batches);
            drop(batches);
            if first_pass {
                for rejected in &built.rejected {
                    self.count_rejected(signal, rejected);
                }
            }
            first_pass = false;
            let mut gave_up = None;
            for mut request in built.requests {
                let outcome = self.send_with_retry(signal, &mut request).await;
                self.progress.mark();
                if let Outcome::GaveUp { reason, detail } = outcome {
                    if self.spool.is_some() {
                        gave_up = Some((reason, detail));
                        break;
                    }
                    self.give_up(signal, &request, reason, &detail);
                }
            }
            let Some((reason, detail)) = gave_up else {
                if let Some(spool) = &self.spool {
                    for ticket in queued.iter().filter_map(|q| q.spooled) {
                        spool.acknowledge(ticket);
                    }
                }
                return;
            };
            let why =
                if reason == LossReason::Shutdown { SpoolReason::Shutdown } else { SpoolReason::RetriesExhausted };
            if why == SpoolReason::RetriesExhausted
                && let Some(suppressed) = self.warn_limit.check()
            {
                tracing::warn!(destination = %self.name, %signal, detail, suppressed, "giving up for now; back to the spool");
            }
            queued = self.keep_on_disk(queued, why);
            if queued.is_empty() {
                return;
            }
            // The spool could not take them back: they are retried here, never dropped.
        }
    }

    /// Puts batches that were not sent on disk for later: a record still on disk stays there
    /// at shutdown; anything else is appended for the reader. At shutdown what the spool cannot
    /// take is dropped and counted; otherwise it is returned, to be retried in place.
    fn keep_on_disk(&self, queued: Vec<Queued>, why: SpoolReason) -> Vec<Queued> {
        let Some(spool) = &self.spool else { return Vec::new() };
        let mut left = Vec::new();
        for queued in queued {
            if let Some(ticket) = queued.spooled
                && why == SpoolReason::Shutdown
                && spool.holds(ticket)
            {
                continue;
            }
            let signal = queued.batch.signal();
            match spool.append(&EncodedBatch::new(&queued.batch), why) {
                // The copy on disk replaces the record it was read from.
                Ok(()) => {
                    if let Some(ticket) = queued.spooled {
                        spool.acknowledge(ticket);
                    }
                }
                Err(error) if why == SpoolReason::Shutdown => {
                    let reason = why.loss();
                    let items = queued.batch.items;
                    self.counts.record_dropped(signal, reason, items as u64);
                    tracing::warn!(destination = %self.name, %signal, items, %reason, %error, "dropped items: the spool cannot take them");
                    if let Some(ticket) = queued.spooled {
                        spool.acknowledge(ticket);
                    }
                }
                Err(error) => {
                    if let Some(suppressed) = self.warn_limit.check() {
                        tracing::warn!(destination = %self.name, %signal, %error, suppressed, "the spool cannot take the batch back; retrying it in place");
                    }
                    left.push(queued);
                }
            }
        }
        left
    }

    async fn send_with_retry(&self, signal: Signal, request: &mut E::Request) -> Outcome {
        let destination = Metrics::destination(self.name);
        let started = Instant::now();
        let mut backoff = self.settings.retry.start();
        loop {
            tokio::select! {
                () = self.not_before.wait() => {}
                () = self.abandon.cancelled() => {
                    let detail = "shutdown deadline passed while waiting for the destination's Retry-After".into();
                    return Outcome::GaveUp { reason: LossReason::Shutdown, detail };
                }
            }
            let attempt = tokio::select! {
                result = self.exporter.send(request) => result,
                () = self.abandon.cancelled() => {
                    return Outcome::GaveUp { reason: LossReason::Shutdown, detail: "shutdown deadline passed during a send".into() };
                }
            };
            let attempt = match attempt {
                Ok(mut sent) => match sent.retry_remaining.take() {
                    // Part went through; the request now holds only what must be sent again.
                    Some(reason) => {
                        self.count_sent(signal, sent);
                        Err(ExportError::Retryable { reason, retry_after: None })
                    }
                    None => Ok(sent),
                },
                Err(error) => Err(error),
            };
            match attempt {
                Ok(sent) => {
                    self.metrics.export_duration.get_or_create(&destination).observe(started.elapsed().as_secs_f64());
                    self.count_sent(signal, sent);
                    return Outcome::Settled;
                }
                Err(ExportError::Permanent { reason, label }) => {
                    self.metrics.export_duration.get_or_create(&destination).observe(started.elapsed().as_secs_f64());
                    let rejected = Rejected { items: E::items(request), reason: label, detail: reason };
                    self.status.record_error(format!("rejected: {}", rejected.detail));
                    self.count_rejected(signal, &rejected);
                    return Outcome::Settled;
                }
                Err(ExportError::Blocked { reason }) => {
                    self.status.record_error(reason.clone());
                    self.metrics.retries.get_or_create(&destination).inc();
                    let delay = self.settings.retry.max_interval;
                    if let Some(suppressed) = self.warn_limit.check() {
                        tracing::warn!(destination = %self.name, %signal, error = %reason, retry_in = ?delay, suppressed, "the destination refuses the credentials; keeping the data and retrying until it is fixed");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.abandon.cancelled() => {
                            let detail = "shutdown deadline passed while the credentials were refused".into();
                            return Outcome::GaveUp { reason: LossReason::Shutdown, detail };
                        }
                    }
                }
                Err(ExportError::Retryable { reason, retry_after }) => {
                    self.status.record_error(reason.clone());
                    self.metrics.retries.get_or_create(&destination).inc();
                    if let Some(asked) = retry_after {
                        self.not_before.extend(asked);
                    }
                    let Some(delay) = backoff.next_delay(retry_after) else {
                        let detail = format!("retries exhausted after {:?}: {reason}", started.elapsed());
                        return Outcome::GaveUp { reason: LossReason::RetriesExhausted, detail };
                    };
                    if let Some(suppressed) = self.warn_limit.check() {
                        tracing::warn!(destination = %self.name, %signal, error = %reason, retry_in = ?delay, suppressed, "send failed; will retry");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.abandon.cancelled() => {
                            let detail = "shutdown deadline passed while waiting to retry".into();
                            return Outcome::GaveUp { reason: LossReason::Shutdown, detail };
                        }
                    }
                }
            }
        }
    }

    fn count_sent(&self, signal: Signal, sent: Sent) {
        self.counts.record_sent(signal, sent.accepted as u64);
        for rejected in &sent.rejected {
            self.count_rejected(signal, rejected);
        }
        self.status.record_success();
    }

    fn count_rejected(&self, signal: Signal, rejected: &Rejected) {
        if rejected.items == 0 {
            return;
        }
        self.counts.record_failed(signal, rejected.reason, rejected.items as u64);
        if let Some(suppressed) = self.warn_limit.check() {
            tracing::warn!(destination = %self.name, %signal, items = rejected.items, reason = %rejected.reason, detail = %rejected.detail, suppressed, "destination rejected items");
        }
    }

    fn give_up(&self, signal: Signal, request: &E::Request, reason: LossReason, detail: &str) {
        let items = E::items(request);
        self.counts.record_dropped(signal, reason, items as u64);
        tracing::warn!(destination = %self.name, %signal, items, %reason, detail, "dropped items");
    }
}
