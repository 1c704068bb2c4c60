//! Never acknowledging what nothing kept, and waiting out faults that heal: the lane-level rows
//! of the fault table. Real lanes and spools in temporary directories, scripted destinations,
//! paused tokio time.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use bytesize::ByteSize;
use common::ScriptedExporter;
use tokio_util::sync::CancellationToken;
use waggle::model::{Batch, Destination, Signal, XraySegment};
use waggle::pipeline::lane::{self, LaneContext, LaneHandle, LaneSettings};
use waggle::pipeline::retry::RetryPolicy;
use waggle::pipeline::router::Router;
use waggle::pipeline::spool::{Spool, SpoolOptions, WhenSpoolFull};
use waggle::telemetry::counts::DestinationCounts;
use waggle::telemetry::metrics::Metrics;
use waggle::telemetry::status::DestinationStatus;

const STALL_TIMEOUT: Duration = Duration::from_secs(30);

fn settings(queue: u64, retry: RetryPolicy) -> LaneSettings {
    LaneSettings {
        signals: vec![Signal::Traces],
        queue_size: ByteSize::b(queue),
        batch_max_items: 1,
        batch_max_size: ByteSize::mib(1),
        batch_timeout: Duration::from_millis(100),
        senders: 1,
        retry,
    }
}

fn retry(max_interval: u64, budget: u64) -> RetryPolicy {
    RetryPolicy {
        initial_interval: Duration::from_secs(1),
        max_interval: Duration::from_secs(max_interval),
        max_elapsed_time: Duration::from_secs(budget),
        multiplier: 2.0,
        jitter: 0.0,
    }
}

/// One X-Ray document with id `id`, about 100 bytes.
fn document(id: &str) -> Batch {
    let body = Bytes::from(format!("{{\"id\":\"{id}\",\"name\":\"{}\"}}", "x".repeat(80)));
    Batch::xray(vec![XraySegment { body, trace_id: "1-5f0000aa-000000000000000000000001".into(), id: id.into() }])
}

fn router(lanes: Vec<LaneHandle>, metrics: &Arc<Metrics>) -> Router {
    Router::new(lanes, Arc::clone(metrics), Duration::from_secs(1), STALL_TIMEOUT)
}

/// A Honeycomb lane with a spool in `directory` of `options`; its status too.
fn spooled(
    exporter: ScriptedExporter,
    settings: LaneSettings,
    directory: &std::path::Path,
    options: SpoolOptions,
    metrics: &Arc<Metrics>,
) -> (LaneHandle, Arc<Spool>, Arc<DestinationStatus>) {
    let name = Destination::Honeycomb;
    let counts = Arc::new(DestinationCounts::new(name, Arc::clone(metrics)));
    let spool = Spool::open(directory, options, Arc::clone(&counts)).expect("the spool opens");
    let status = Arc::new(DestinationStatus::new(name, true, "test", vec!["traces"]));
    let context = LaneContext { counts, status: Arc::clone(&status), abandon: CancellationToken::new() };
    let (handle, _task) = lane::spawn_spooled(name, exporter, settings, context, Arc::clone(&spool));
    (handle, spool, status)
}

fn lost_lines(metrics: &Metrics) -> Vec<String> {
    let text = metrics.encode();
    text.lines()
        .filter(|line| {
            line.starts_with("waggle_destination_dropped_items_total")
                || line.starts_with("waggle_destination_failed_items_total")
        })
        .map(String::from)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_only_lane_stalled_with_its_spool_off_keeps_answering_429_and_drops_nothing() {
    let metrics = Arc::new(Metrics::new());
    let (lane, _task) =
        common::spawn_lane(Destination::Honeycomb, ScriptedExporter::hung(), settings(300, retry(5, 0)), &metrics);
    let router = router(vec![lane], &metrics);
    let mut taken = 0;
    while router.accept(document(&format!("T{taken:03}"))).is_ok() {
        taken += 1;
        assert!(taken < 100, "the queue is bounded");
    }
    tokio::time::sleep(STALL_TIMEOUT * 2).await;

    for n in 0..10 {
        let refused = router.accept(document(&format!("U{n:03}"))).expect_err("nothing would keep it");
        assert_eq!((refused.destination, refused.retry_after), (Destination::Honeycomb, Duration::from_secs(1)));
    }
    assert!(lost_lines(&metrics).is_empty(), "{:?}", lost_lines(&metrics));
}

#[tokio::test(start_paused = true)]
async fn a_full_spool_refuses_new_batches_and_keeps_every_one_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let options = SpoolOptions { max_size: 4_000, segment_size: 1_000, when_full: WhenSpoolFull::Refuse };
    let (lane, spool, status) =
        spooled(ScriptedExporter::hung(), settings(300, retry(5, 0)), dir.path(), options, &metrics);
    let router = router(vec![lane], &metrics);
    let mut taken = 0;
    let refused = loop {
        match router.accept(document(&format!("T{taken:03}"))) {
            Ok(()) => taken += 1,
            Err(refused) => break refused,
        }
        assert!(taken < 200, "the spool is bounded");
    };
    assert_eq!(refused.destination, Destination::Honeycomb);
    tokio::time::sleep(STALL_TIMEOUT * 2).await;
    router.accept(document("late")).expect_err("still full, and stalled: still refused");

    assert!(taken > 10, "the spool took what fits first: {taken}");
    assert_eq!(spool.stats().records, taken, "every acknowledged batch is on disk");
    assert!(lost_lines(&metrics).is_empty(), "{:?}", lost_lines(&metrics));
    let report = serde_json::to_value(status.report()).unwrap();
    assert!(report["problem"].as_str().is_some_and(|p| p.contains("spool is full")), "{report}");
}

#[tokio::test(start_paused = true)]
async fn retry_after_600_is_waited_out_across_respooling_without_a_replay_loop() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    // Every answer is 429 with Retry-After: 600, longer than the 300 s retry budget.
    let (exporter, mut delivered) = ScriptedExporter::accepting();
    let exporter = exporter.failing(3, Some(Duration::from_secs(600)));
    let attempts = exporter.attempts();
    let options = SpoolOptions::with_max_size(ByteSize::mib(1));
    let (lane, _spool, _) = spooled(exporter, settings(1_000_000, retry(30, 300)), dir.path(), options, &metrics);
    let router = router(vec![lane], &metrics);
    router.accept(document("T000")).unwrap();

    tokio::time::sleep(Duration::from_secs(1_790)).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 3, "one attempt per Retry-After, not a loop");
    let written = metrics
        .encode()
        .lines()
        .find(|line| line.starts_with(r#"waggle_destination_spool_written_records_total{destination="honeycomb"}"#))
        .and_then(|line| line.rsplit(' ').next()?.parse::<u64>().ok());
    assert!(written.is_some_and(|written| written <= 4), "respooled at most once per wait: {written:?}");
    assert!(delivered.try_recv().is_err(), "not before the destination's time");

    let delivery = tokio::time::timeout(Duration::from_secs(60), delivered.recv()).await.expect("sent at 1800 s");
    assert_eq!(delivery.unwrap().items, 1);
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
    assert!(lost_lines(&metrics).is_empty(), "{:?}", lost_lines(&metrics));
}

#[tokio::test(start_paused = true)]
async fn refused_credentials_keep_the_data_until_the_key_is_fixed_then_it_flows() {
    let metrics = Arc::new(Metrics::new());
    let blocked = Arc::new(AtomicBool::new(true));
    let (exporter, mut delivered) = ScriptedExporter::accepting();
    let exporter = exporter.blocked_while(&blocked);
    let attempts = exporter.attempts();
    // No spool, and a retry budget far shorter than the outage: neither may discard the data.
    let (lane, _task) =
        common::spawn_lane(Destination::Honeycomb, exporter, settings(1_000_000, retry(20, 10)), &metrics);
    let router = router(vec![lane], &metrics);
    for n in 0..5 {
        router.accept(document(&format!("T{n:03}"))).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(delivered.try_recv().is_err());
    let tried = attempts.load(Ordering::SeqCst);
    assert!((20..=40).contains(&tried), "retried slowly (every 20 s): {tried}");
    assert!(lost_lines(&metrics).is_empty(), "nothing discarded: {:?}", lost_lines(&metrics));

    blocked.store(false, Ordering::SeqCst);
    common::receive_items(&mut delivered, 5).await;
    assert!(lost_lines(&metrics).is_empty(), "{:?}", lost_lines(&metrics));
}

#[tokio::test(start_paused = true)]
async fn a_spool_that_cannot_write_answers_429_says_why_and_flows_again_once_it_can() {
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("spool");
    let metrics = Arc::new(Metrics::new());
    let (exporter, mut delivered) = ScriptedExporter::accepting();
    let options = SpoolOptions { max_size: 1 << 20, segment_size: 1_000, when_full: WhenSpoolFull::Refuse };
    let (lane, _spool, status) = spooled(exporter, settings(1_000_000, retry(5, 0)), &spool_dir, options, &metrics);
    let router = router(vec![lane], &metrics);
    router.accept(document("T000")).unwrap();
    common::receive_items(&mut delivered, 1).await;

    // The directory goes away (as a disk that fills up or turns read-only): the next segment
    // cannot be created.
    std::fs::remove_dir_all(&spool_dir).unwrap();
    let mut accepted = 1;
    let refused = loop {
        match router.accept(document(&format!("T{accepted:03}"))) {
            Ok(()) => accepted += 1,
            Err(refused) => break refused,
        }
        assert!(accepted < 50, "a new segment is needed within a few batches");
    };
    assert_eq!(refused.destination, Destination::Honeycomb);
    let report = serde_json::to_value(status.report()).unwrap();
    assert!(report["problem"].as_str().is_some_and(|p| p.contains("cannot write spool segment")), "{report}");

    std::fs::create_dir_all(&spool_dir).unwrap();
    router.accept(document("after")).expect("it takes batches again by itself");
    common::receive_items(&mut delivered, accepted).await;
    assert!(lost_lines(&metrics).is_empty(), "{:?}", lost_lines(&metrics));
}
