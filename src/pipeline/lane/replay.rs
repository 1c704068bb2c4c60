//! The replay task of a spooled lane: feeds the spool's records into the memory queue, oldest
//! first, as room frees up, and flushes the spool to disk every [`spool::SYNC_INTERVAL`].

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::queued::Queued;
use crate::pipeline::spool::{self, Spool};

/// The replay task's way into the memory queue. The queue is held weakly, so it closes (and
/// the batcher flushes) once the router is gone, whatever the replay is doing.
pub(super) struct QueueFeed {
    pub(super) queue: mpsc::WeakUnboundedSender<Queued>,
    pub(super) capacity: Arc<Semaphore>,
    pub(super) capacity_bytes: u32,
}

/// Replays until the router is gone: what is still on disk then is replayed at the next start.
pub(super) async fn run_replay(spool: Arc<Spool>, feed: QueueFeed, router_gone: CancellationToken) {
    let sync = tokio::spawn(run_sync(Arc::clone(&spool), router_gone.clone()));
    let mut reader = spool.reader();
    loop {
        let replayed = tokio::select! {
            () = router_gone.cancelled() => break,
            replayed = reader.next() => replayed,
        };
        let wanted = u32::try_from(replayed.batch.bytes).unwrap_or(u32::MAX).clamp(1, feed.capacity_bytes);
        let permit = tokio::select! {
            () = router_gone.cancelled() => None,
            permit = Arc::clone(&feed.capacity).acquire_many_owned(wanted) => permit.ok(),
        };
        let queue = feed.queue.upgrade();
        let (Some(permit), Some(queue)) = (permit, queue) else {
            reader.handed_over();
            break;
        };
        let queued = Queued { batch: Arc::new(replayed.batch), _permit: permit, spooled: Some(replayed.ticket) };
        let _ = queue.send(queued);
        reader.handed_over();
    }
    let _ = sync.await;
}

/// Flushes the spool every [`spool::SYNC_INTERVAL`] until the router is gone.
async fn run_sync(spool: Arc<Spool>, router_gone: CancellationToken) {
    let mut ticks = tokio::time::interval(spool::SYNC_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = router_gone.cancelled() => break,
            _ = ticks.tick() => {
                spool.sync().await;
            }
        }
    }
}
