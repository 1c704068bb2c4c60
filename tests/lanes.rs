//! Lanes and the router: isolation between destinations, batching, retries and refusals,
//! with real lanes and small test exporters, in paused tokio time.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use bytesize::ByteSize;
use common::{ScriptedExporter, receive_items};
use tokio::task::JoinHandle;
use waggle::destination::Exporter;
use waggle::model::{Batch, Destination, LossReason, OtlpRequest, Signal, XraySegment};
use waggle::pipeline::lane::{self, LaneHandle, LaneSettings};
use waggle::pipeline::retry::RetryPolicy;
use waggle::pipeline::router::Router;
use waggle::telemetry::metrics::Metrics;

const STALL_TIMEOUT: Duration = Duration::from_secs(30);

fn settings(queue: u64, batch_max_items: usize) -> LaneSettings {
    LaneSettings {
        signals: vec![Signal::Traces],
        queue_size: ByteSize::b(queue),
        batch_max_items,
        batch_max_size: ByteSize::mib(1),
        batch_timeout: Duration::from_millis(200),
        senders: 2,
        retry: RetryPolicy {
            initial_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(8),
            max_elapsed_time: Duration::from_secs(60),
            multiplier: 2.0,
            jitter: 0.0,
        },
    }
}

fn start<E: Exporter>(
    name: Destination,
    exporter: E,
    settings: LaneSettings,
    metrics: &Arc<Metrics>,
) -> (LaneHandle, JoinHandle<()>) {
    let context = common::lane_context(name, &[Signal::Traces], metrics);
    lane::spawn(name, exporter, settings, context)
}

/// One X-Ray document of `size` bytes.
fn segment_batch(size: usize) -> Batch {
    let body = Bytes::from(vec![b'x'; size]);
    Batch::xray(vec![XraySegment { body, trace_id: String::new(), id: String::new() }])
}

fn metric_value(metrics: &Metrics, line_prefix: &str) -> Option<u64> {
    metrics.encode().lines().find(|line| line.starts_with(line_prefix))?.rsplit(' ').next()?.parse().ok()
}

#[tokio::test(start_paused = true)]
async fn a_hung_lane_does_not_stop_another_from_delivering_udp_traffic() {
    let metrics = Arc::new(Metrics::new());
    let (recording, mut delivered) = ScriptedExporter::accepting();
    let (hung, _) = start(Destination::Honeycomb, ScriptedExporter::hung(), settings(1_000, 1), &metrics);
    let (live, _) = start(Destination::Xray, recording, settings(1_000_000, 1), &metrics);
    let router = Router::new(vec![hung, live], Arc::clone(&metrics), Duration::from_secs(1), STALL_TIMEOUT);

    for _ in 0..100 {
        router.offer(segment_batch(100));
    }
    receive_items(&mut delivered, 100).await;
    let dropped = metric_value(&metrics, r#"waggle_destination_dropped_items_total{destination="honeycomb""#);
    assert!(dropped.unwrap_or(0) >= 80, "the hung lane holds at most its queue; the rest is counted: {dropped:?}");
}

#[tokio::test(start_paused = true)]
async fn a_full_busy_lane_refuses_the_whole_request() {
    let metrics = Arc::new(Metrics::new());
    let (recording, mut delivered) = ScriptedExporter::accepting();
    let (hung, _) = start(Destination::Honeycomb, ScriptedExporter::hung(), settings(250, 1), &metrics);
    let (live, _) = start(Destination::Xray, recording, settings(1_000_000, 1), &metrics);
    let router = Router::new(vec![hung, live], Arc::clone(&metrics), Duration::from_secs(3), STALL_TIMEOUT);

    assert!(router.accept(segment_batch(200)).is_ok());
    receive_items(&mut delivered, 1).await;
    let refused = router.accept(segment_batch(200)).unwrap_err();
    assert_eq!((refused.destination, refused.retry_after), (Destination::Honeycomb, Duration::from_secs(3)));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(delivered.try_recv().is_err(), "a refused request reaches no lane, so a retry cannot duplicate it");
}

#[tokio::test(start_paused = true)]
async fn a_stalled_lane_stops_holding_up_the_others_after_the_stall_timeout() {
    let metrics = Arc::new(Metrics::new());
    let (recording, mut delivered) = ScriptedExporter::accepting();
    let (hung, _) = start(Destination::Honeycomb, ScriptedExporter::hung(), settings(250, 1), &metrics);
    let (live, _) = start(Destination::Xray, recording, settings(1_000_000, 1), &metrics);
    let router = Router::new(vec![hung, live], Arc::clone(&metrics), Duration::from_secs(1), STALL_TIMEOUT);
    assert!(router.accept(segment_batch(200)).is_ok());
    receive_items(&mut delivered, 1).await;
    assert!(router.accept(segment_batch(200)).is_err());

    tokio::time::sleep(STALL_TIMEOUT).await;

    assert!(router.accept(segment_batch(200)).is_ok());
    receive_items(&mut delivered, 1).await;
    let dropped = r#"waggle_destination_dropped_items_total{destination="honeycomb",signal="traces",reason="destination_stalled"}"#;
    assert_eq!(metric_value(&metrics, dropped), Some(1));
}

#[tokio::test(start_paused = true)]
async fn a_failing_lane_retries_without_slowing_another() {
    let metrics = Arc::new(Metrics::new());
    let (recording, mut live_delivered) = ScriptedExporter::accepting();
    let (flaky, mut flaky_delivered) = ScriptedExporter::accepting();
    let flaky = flaky.failing(3, None);
    let attempts = flaky.attempts();
    let (flaky, _) = start(Destination::Honeycomb, flaky, settings(1_000_000, 1), &metrics);
    let (live, _) = start(Destination::Xray, recording, settings(1_000_000, 1), &metrics);
    let router = Router::new(vec![flaky, live], Arc::clone(&metrics), Duration::from_secs(1), STALL_TIMEOUT);

    let started = tokio::time::Instant::now();
    router.accept(segment_batch(10)).unwrap();
    receive_items(&mut live_delivered, 1).await;
    assert!(started.elapsed() < Duration::from_secs(1), "the live lane did not wait for the failing one");

    receive_items(&mut flaky_delivered, 1).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
    // 200 ms batch timeout, then waits of 1 s, 2 s and 4 s before the attempts that followed failures.
    assert!(started.elapsed() >= Duration::from_secs(7), "{:?}", started.elapsed());
}

#[tokio::test(start_paused = true)]
async fn a_retry_waits_at_least_the_destinations_retry_after() {
    let metrics = Arc::new(Metrics::new());
    let (flaky, mut delivered) = ScriptedExporter::accepting();
    let flaky = flaky.failing(1, Some(Duration::from_secs(5)));
    let (lane, _) = start(Destination::Honeycomb, flaky, settings(1_000_000, 1), &metrics);
    let router = Router::new(vec![lane], Arc::clone(&metrics), Duration::from_secs(1), STALL_TIMEOUT);

    let started = tokio::time::Instant::now();
    router.accept(segment_batch(10)).unwrap();
    receive_items(&mut delivered, 1).await;
    assert!(started.elapsed() >= Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test(start_paused = true)]
async fn retries_end_at_the_time_budget_and_the_loss_is_counted() {
    let metrics = Arc::new(Metrics::new());
    let (flaky, _delivered) = ScriptedExporter::accepting();
    let flaky = flaky.failing(usize::MAX, None);
    let attempts = flaky.attempts();
    let (lane, task) = start(Destination::Honeycomb, flaky, settings(1_000_000, 1), &metrics);
    let router = Router::new(vec![lane], Arc::clone(&metrics), Duration::from_secs(1), STALL_TIMEOUT);
    router.accept(segment_batch(10)).unwrap();
    drop(router);
    task.await.unwrap();

    let dropped =
        r#"waggle_destination_dropped_items_total{destination="honeycomb",signal="traces",reason="retries_exhausted"}"#;
    assert_eq!(metric_value(&metrics, dropped), Some(1));
    // Waits of 1, 2 and 4 s, then 8 s six times, add up to 55 s; another 8 s would pass 60 s.
    assert_eq!(attempts.load(Ordering::SeqCst), 10);
}

#[tokio::test(start_paused = true)]
async fn a_permanent_rejection_is_counted_and_not_retried() {
    let metrics = Arc::new(Metrics::new());
    let rejecting = ScriptedExporter::rejecting();
    let attempts = rejecting.attempts();
    let (lane, task) = start(Destination::Honeycomb, rejecting, settings(1_000_000, 1), &metrics);
    let router = Router::new(vec![lane], Arc::clone(&metrics), Duration::from_secs(1), STALL_TIMEOUT);
    router.accept(segment_batch(10)).unwrap();
    drop(router);
    task.await.unwrap();

    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    let failed = r#"waggle_destination_failed_items_total{destination="honeycomb",signal="traces",reason="rejected"}"#;
    assert_eq!(metric_value(&metrics, failed), Some(1));
}

#[tokio::test(start_paused = true)]
async fn items_are_batched_until_the_item_trigger() {
    let metrics = Arc::new(Metrics::new());
    let (recording, mut delivered) = ScriptedExporter::accepting();
    let (lane, _) = start(Destination::Honeycomb, recording, settings(1_000_000, 5), &metrics);
    let router = Router::new(vec![lane], Arc::clone(&metrics), Duration::from_secs(1), STALL_TIMEOUT);
    for _ in 0..5 {
        router.accept(segment_batch(10)).unwrap();
    }
    assert_eq!(delivered.recv().await.map(|delivery| delivery.items), Some(5));
}

#[tokio::test(start_paused = true)]
async fn a_partial_batch_is_sent_at_the_batch_timeout() {
    let metrics = Arc::new(Metrics::new());
    let (recording, mut delivered) = ScriptedExporter::accepting();
    let (lane, _) = start(Destination::Honeycomb, recording, settings(1_000_000, 100), &metrics);
    let router = Router::new(vec![lane], Arc::clone(&metrics), Duration::from_secs(1), STALL_TIMEOUT);
    let started = tokio::time::Instant::now();
    router.accept(segment_batch(10)).unwrap();
    router.accept(segment_batch(10)).unwrap();
    assert_eq!(delivered.recv().await.map(|delivery| delivery.items), Some(2));
    assert_eq!(started.elapsed(), Duration::from_millis(200));
}

#[tokio::test(start_paused = true)]
async fn closing_the_router_flushes_what_the_lane_holds() {
    let metrics = Arc::new(Metrics::new());
    let (recording, mut delivered) = ScriptedExporter::accepting();
    let (lane, task) = start(Destination::Honeycomb, recording, settings(1_000_000, 100), &metrics);
    let router = Router::new(vec![lane], Arc::clone(&metrics), Duration::from_secs(1), STALL_TIMEOUT);
    router.accept(segment_batch(10)).unwrap();
    drop(router);
    task.await.unwrap();
    assert_eq!(delivered.recv().await.map(|delivery| delivery.items), Some(1));
}

#[tokio::test(start_paused = true)]
async fn queue_bytes_are_released_once_delivered() {
    let metrics = Arc::new(Metrics::new());
    let (recording, mut delivered) = ScriptedExporter::accepting();
    let (lane, _) = start(Destination::Honeycomb, recording, settings(1_000, 1), &metrics);
    let gauge = lane.gauge();
    let router = Router::new(vec![lane], Arc::clone(&metrics), Duration::from_secs(1), STALL_TIMEOUT);
    router.accept(segment_batch(300)).unwrap();
    assert_eq!(gauge.held_bytes(), 300);
    receive_items(&mut delivered, 1).await;
    tokio::task::yield_now().await;
    assert_eq!(gauge.held_bytes(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_batch_whose_protobuf_does_not_decode_is_counted_as_failed_undecodable() {
    let metrics = Arc::new(Metrics::new());
    let (exporter, mut delivered) = ScriptedExporter::accepting();
    let (lane, task) = start(Destination::Honeycomb, exporter.checking_decodes(), settings(1_000_000, 1), &metrics);
    let counts = Arc::clone(lane.counts());
    let router = Router::new(vec![lane], Arc::clone(&metrics), Duration::from_secs(1), STALL_TIMEOUT);
    // Field 1, then a length whose varint never ends: it does not decode.
    let garbage = Bytes::from_static(&[0x0a, 0xff, 0xff, 0xff]);
    let batch = Batch::otlp_traces(OtlpRequest::from_checked_protobuf(garbage), 3, 4);
    router.accept(batch).unwrap();
    drop(router);
    task.await.unwrap();

    let failed =
        r#"waggle_destination_failed_items_total{destination="honeycomb",signal="traces",reason="undecodable"}"#;
    assert_eq!(metric_value(&metrics, failed), Some(3));
    assert_eq!(counts.failed(Signal::Traces, LossReason::Undecodable), 3);
    assert!(delivered.try_recv().is_err(), "nothing of it was sent");
}

#[tokio::test(start_paused = true)]
async fn what_the_router_drops_for_a_lane_is_in_that_lanes_counts() {
    let metrics = Arc::new(Metrics::new());
    let (hung, _) = start(Destination::Honeycomb, ScriptedExporter::hung(), settings(250, 1), &metrics);
    let counts = Arc::clone(hung.counts());
    let router = Router::new(vec![hung], Arc::clone(&metrics), Duration::from_secs(1), STALL_TIMEOUT);

    assert_eq!(router.offer(segment_batch(200)), 1);
    assert_eq!(router.offer(segment_batch(200)), 0);

    assert_eq!(counts.dropped(Signal::Traces, LossReason::QueueFull), 1);
    let dropped =
        r#"waggle_destination_dropped_items_total{destination="honeycomb",signal="traces",reason="queue_full"}"#;
    assert_eq!(metric_value(&metrics, dropped), Some(1));
}
