//! The lane's batcher: gathers queued batches per signal until a batch trigger (items, bytes
//! or timeout) and hands each full batch to a free sender; at shutdown it flushes what is left
//! and waits for every sender.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

use super::deliver::Lane;
use super::queued::Queued;
use crate::destination::Exporter;
use crate::model::Signal;

/// Items of one signal waiting to be sent together.
#[derive(Default)]
struct Pending {
    queued: Vec<Queued>,
    items: usize,
    bytes: u64,
    deadline: Option<Instant>,
}

/// Runs until every handle is dropped and the queue is empty, then until every delivery ended.
pub(super) async fn run_batcher<E: Exporter>(lane: Arc<Lane<E>>, mut receiver: mpsc::UnboundedReceiver<Queued>) {
    let senders = Arc::new(Semaphore::new(lane.settings.senders.max(1)));
    let mut pending: [Pending; 3] = Default::default();
    loop {
        let next_deadline = pending.iter().filter_map(|p| p.deadline).min();
        tokio::select! {
            received = receiver.recv() => {
                let Some(queued) = received else { break };
                let signal = queued.batch.signal();
                let slot = &mut pending[signal.index()];
                slot.items += queued.batch.items;
                slot.bytes += queued.batch.bytes as u64;
                slot.deadline.get_or_insert_with(|| Instant::now() + lane.settings.batch_timeout);
                slot.queued.push(queued);
                if slot.items >= lane.settings.batch_max_items || slot.bytes >= lane.settings.batch_max_size.as_u64() {
                    let ready = std::mem::take(slot);
                    dispatch(&lane, &senders, signal, ready.queued).await;
                }
            }
            () = sleep_until(next_deadline) => {
                let now = Instant::now();
                for signal in Signal::ALL {
                    let slot = &mut pending[signal.index()];
                    if slot.deadline.is_some_and(|deadline| deadline <= now) {
                        let ready = std::mem::take(slot);
                        dispatch(&lane, &senders, signal, ready.queued).await;
                    }
                }
            }
        }
    }
    // The router is gone (shutdown): send what is left and wait for every sender.
    for signal in Signal::ALL {
        let ready = std::mem::take(&mut pending[signal.index()]);
        if !ready.queued.is_empty() {
            dispatch(&lane, &senders, signal, ready.queued).await;
        }
    }
    let all = u32::try_from(lane.settings.senders.max(1)).unwrap_or(u32::MAX);
    let _ = senders.acquire_many(all).await;
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Waits for a free sender, then delivers the batch on its own task.
async fn dispatch<E: Exporter>(lane: &Arc<Lane<E>>, senders: &Arc<Semaphore>, signal: Signal, ready: Vec<Queued>) {
    let Ok(sender) = senders.clone().acquire_owned().await else { return };
    let lane = Arc::clone(lane);
    tokio::spawn(async move {
        lane.deliver(signal, ready).await;
        // The lane (and its spool) before the sender slot: once the batcher has every slot
        // back, nothing of the lane is left running.
        drop(lane);
        drop(sender);
    });
}
