//! Lanes with a disk spool: a full queue spills to disk instead of refusing, everything is
//! delivered once and in order when the destination comes back, a restart replays what was
//! left, the shutdown deadline spools instead of dropping, and lanes stay isolated. Real lanes,
//! real files in temporary directories, test exporters, paused tokio time.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use bytesize::ByteSize;
use common::{Delivery, ScriptedExporter};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use waggle::destination::Exporter;
use waggle::model::{Batch, Destination, Payload, SharedBatch, Signal, XraySegment};
use waggle::pipeline::lane::{self, LaneContext, LaneHandle, LaneSettings};
use waggle::pipeline::retry::RetryPolicy;
use waggle::pipeline::router::Router;
use waggle::pipeline::spool::{Spool, SpoolOptions, WhenSpoolFull};
use waggle::telemetry::counts::DestinationCounts;
use waggle::telemetry::metrics::Metrics;
use waggle::telemetry::status::DestinationStatus;

const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// An item a test exporter saw: X-Ray documents by id, log records by body.
type Item = (Signal, String);

fn items_of(batches: &[SharedBatch]) -> Vec<Item> {
    let mut items = Vec::new();
    for batch in batches {
        match &batch.payload {
            Payload::XraySegments(segments) => items.extend(segments.iter().map(|s| (Signal::Traces, s.id.clone()))),
            Payload::Logs(request) => {
                let records = request
                    .decoded()
                    .expect("decodes")
                    .resource_logs
                    .iter()
                    .flat_map(|r| &r.scope_logs)
                    .flat_map(|s| &s.log_records);
                for record in records {
                    if let Some(AnyValue { value: Some(any_value::Value::StringValue(body)) }) = &record.body {
                        items.push((Signal::Logs, body.clone()));
                    }
                }
            }
            other => panic!("unexpected payload {other:?}"),
        }
    }
    items
}

/// A destination that refuses everything (retryably) while `down`, then delivers.
fn switchable(down: &Arc<AtomicBool>) -> (ScriptedExporter, mpsc::UnboundedReceiver<Delivery>) {
    let (exporter, delivered) = ScriptedExporter::accepting();
    (exporter.switchable(down), delivered)
}

fn settings(queue: u64) -> LaneSettings {
    LaneSettings {
        signals: vec![Signal::Traces, Signal::Logs],
        queue_size: ByteSize::b(queue),
        batch_max_items: 1,
        batch_max_size: ByteSize::mib(1),
        batch_timeout: Duration::from_millis(200),
        // One sender, so the destination sees batches in the order the lane has them.
        senders: 1,
        retry: RetryPolicy {
            initial_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(4),
            max_elapsed_time: Duration::ZERO,
            multiplier: 2.0,
            jitter: 0.0,
        },
    }
}

struct Started {
    handle: LaneHandle,
    task: JoinHandle<()>,
    abandon: CancellationToken,
    spool: Arc<Spool>,
}

fn start_spooled<E: Exporter>(
    name: Destination,
    exporter: E,
    settings: LaneSettings,
    directory: &Path,
    metrics: &Arc<Metrics>,
) -> Started {
    let counts = Arc::new(DestinationCounts::new(name, Arc::clone(metrics)));
    let spool = Spool::open(directory, SpoolOptions::with_max_size(ByteSize::mib(1)), Arc::clone(&counts))
        .expect("the spool opens");
    let status = Arc::new(DestinationStatus::new(name, true, "test", vec!["traces", "logs"]));
    let abandon = CancellationToken::new();
    let context = LaneContext { counts, status, abandon: abandon.clone() };
    let (handle, task) = lane::spawn_spooled(name, exporter, settings, context, Arc::clone(&spool));
    Started { handle, task, abandon, spool }
}

fn router(lanes: Vec<LaneHandle>, metrics: &Arc<Metrics>) -> Router {
    Router::new(lanes, Arc::clone(metrics), Duration::from_secs(1), STALL_TIMEOUT)
}

/// One X-Ray document with id `id`, about 100 bytes.
fn document(id: &str) -> Batch {
    let body = Bytes::from(format!("{{\"id\":\"{id}\",\"name\":\"{}\"}}", "x".repeat(80)));
    Batch::xray(vec![XraySegment { body, trace_id: "1-5f0000aa-000000000000000000000001".into(), id: id.into() }])
}

/// An OTLP logs request with one record whose body is `body`.
fn log(body: &str) -> Batch {
    let record = LogRecord {
        body: Some(AnyValue { value: Some(any_value::Value::StringValue(body.into())) }),
        ..LogRecord::default()
    };
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs { log_records: vec![record], ..ScopeLogs::default() }],
            ..ResourceLogs::default()
        }],
    };
    let len = request.encoded_len();
    Batch::logs(request, len)
}

async fn receive(delivered: &mut mpsc::UnboundedReceiver<Delivery>, count: usize) -> Vec<Item> {
    let mut items = Vec::with_capacity(count);
    while items.len() < count {
        items.extend(items_of(&delivered.recv().await.expect("the lane is running").batches));
    }
    assert_eq!(items.len(), count, "no more than expected");
    items
}

fn metric(metrics: &Metrics, prefix: &str) -> Option<u64> {
    metrics.encode().lines().find(|line| line.starts_with(prefix))?.rsplit(' ').next()?.parse().ok()
}

fn dropped_lines(metrics: &Metrics) -> Vec<String> {
    metrics
        .encode()
        .lines()
        .filter(|line| line.starts_with("waggle_destination_dropped_items_total"))
        .map(String::from)
        .collect()
}

fn per_signal(items: &[Item], signal: Signal) -> Vec<String> {
    items.iter().filter(|(s, _)| *s == signal).map(|(_, id)| id.clone()).collect()
}

fn numbered(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|n| format!("{prefix}{n:03}")).collect()
}

#[tokio::test(start_paused = true)]
async fn a_full_lane_spools_instead_of_refusing_and_delivers_everything_once_in_order_when_back() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let down = Arc::new(AtomicBool::new(true));
    let (exporter, mut delivered) = switchable(&down);
    // Room for about two small batches in memory.
    let lane = start_spooled(Destination::Honeycomb, exporter, settings(300), dir.path(), &metrics);
    let router = router(vec![lane.handle.clone()], &metrics);

    for n in 0..40 {
        router.accept(document(&format!("T{n:03}"))).expect("a spooled lane is never full");
        router.accept(log(&format!("L{n:03}"))).expect("a spooled lane is never full");
    }
    let written = metric(&metrics, r#"waggle_destination_spool_written_records_total{destination="honeycomb"}"#);
    assert_eq!(written, Some(80), "every batch is written ahead to disk");
    assert!(lane.spool.stats().bytes > 0);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(delivered.try_recv().is_err(), "nothing gets through while the destination is down");

    down.store(false, Ordering::SeqCst);
    let items = receive(&mut delivered, 80).await;
    assert_eq!(per_signal(&items, Signal::Traces), numbered("T", 40), "traces in order, each once");
    assert_eq!(per_signal(&items, Signal::Logs), numbered("L", 40), "logs in order, each once");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(delivered.try_recv().is_err(), "nothing twice");
    assert_eq!(lane.spool.stats().records, 0, "every record acknowledged");
    assert!(dropped_lines(&metrics).is_empty(), "{:?}", dropped_lines(&metrics));
    let replayed = metric(&metrics, r#"waggle_destination_spool_replayed_records_total{destination="honeycomb"}"#);
    assert!(replayed.unwrap_or(0) >= 70, "what memory could not hold was read back from disk: {replayed:?}");
    assert_eq!(
        metric(&metrics, r#"waggle_destination_sent_items_total{destination="honeycomb",signal="logs"}"#),
        Some(40)
    );
}

#[tokio::test(start_paused = true)]
async fn new_batches_queue_behind_older_ones_on_disk_even_when_memory_has_room() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let down = Arc::new(AtomicBool::new(true));
    let (exporter, mut delivered) = switchable(&down);
    let lane = start_spooled(Destination::Honeycomb, exporter, settings(300), dir.path(), &metrics);
    let router = router(vec![lane.handle.clone()], &metrics);
    for n in 0..10 {
        router.accept(document(&format!("T{n:03}"))).unwrap();
    }
    down.store(false, Ordering::SeqCst);
    // While the backlog drains, more arrives; it must not overtake what is on disk.
    for n in 10..20 {
        router.accept(document(&format!("T{n:03}"))).unwrap();
        tokio::task::yield_now().await;
    }
    let items = receive(&mut delivered, 20).await;
    assert_eq!(per_signal(&items, Signal::Traces), numbered("T", 20));
}

#[tokio::test(start_paused = true)]
async fn a_restart_on_the_same_directory_replays_what_was_left_and_delivers_it() {
    let dir = tempfile::tempdir().unwrap();
    let first_metrics = Arc::new(Metrics::new());
    let down = Arc::new(AtomicBool::new(true));
    let (exporter, _never) = switchable(&down);
    let first = start_spooled(Destination::Honeycomb, exporter, settings(300), dir.path(), &first_metrics);
    let router1 = router(vec![first.handle.clone()], &first_metrics);
    for n in 0..15 {
        router1.accept(document(&format!("T{n:03}"))).unwrap();
        router1.accept(log(&format!("L{n:03}"))).unwrap();
    }
    // Shut the first lane down: the router goes, then the deadline passes.
    drop(router1);
    drop(first.handle);
    tokio::time::sleep(Duration::from_secs(5)).await;
    first.abandon.cancel();
    first.task.await.unwrap();
    assert!(dropped_lines(&first_metrics).is_empty(), "{:?}", dropped_lines(&first_metrics));
    drop(first.spool);

    let metrics = Arc::new(Metrics::new());
    let up = Arc::new(AtomicBool::new(false));
    let (exporter, mut delivered) = switchable(&up);
    let second = start_spooled(Destination::Honeycomb, exporter, settings(300), dir.path(), &metrics);
    assert_eq!(second.spool.stats().unread, 30, "every batch was left on disk");
    let _router2 = router(vec![second.handle.clone()], &metrics);

    let items = receive(&mut delivered, 30).await;
    let mut traces = per_signal(&items, Signal::Traces);
    let mut logs = per_signal(&items, Signal::Logs);
    traces.sort();
    logs.sort();
    assert_eq!(traces, numbered("T", 15), "every trace, once");
    assert_eq!(logs, numbered("L", 15), "every log record, once");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(delivered.try_recv().is_err(), "nothing twice");
    assert_eq!(second.spool.stats(), Default::default(), "delivered records are deleted");
}

#[tokio::test(start_paused = true)]
async fn what_the_memory_queue_holds_is_on_disk_already_and_stays_there_at_the_shutdown_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    // A roomy queue: everything is in memory when shutdown comes.
    let lane =
        start_spooled(Destination::Honeycomb, ScriptedExporter::hung(), settings(1_000_000), dir.path(), &metrics);
    let router = router(vec![lane.handle.clone()], &metrics);
    for n in 0..3 {
        router.accept(document(&format!("T{n:03}"))).unwrap();
    }
    router.accept(log("L000")).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(lane.spool.stats().records, 4, "written ahead: on disk before anything else");
    assert_eq!(lane.spool.stats().unread, 0, "and in memory too (the read-ahead cache)");

    drop(router);
    drop(lane.handle);
    tokio::time::sleep(Duration::from_secs(5)).await;
    lane.abandon.cancel();
    lane.task.await.unwrap();

    assert!(dropped_lines(&metrics).is_empty(), "{:?}", dropped_lines(&metrics));
    let spooled =
        r#"waggle_destination_spooled_items_total{destination="honeycomb",signal="traces",reason="accepted"}"#;
    assert_eq!(metric(&metrics, spooled), Some(3));
    let spooled = r#"waggle_destination_spooled_items_total{destination="honeycomb",signal="logs",reason="accepted"}"#;
    assert_eq!(metric(&metrics, spooled), Some(1));
    assert!(!metrics.encode().contains(r#"reason="shutdown""#), "not written twice");
    assert_eq!(lane.spool.stats().records, 4);
}

#[tokio::test(start_paused = true)]
async fn a_spooled_hung_lane_neither_refuses_nor_slows_another_lane() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let hung = start_spooled(Destination::Honeycomb, ScriptedExporter::hung(), settings(300), dir.path(), &metrics);
    let up = Arc::new(AtomicBool::new(false));
    let (exporter, mut delivered) = switchable(&up);
    let (live, _live_task) = lane::spawn(
        Destination::Xray,
        exporter,
        settings(1_000_000),
        common::lane_context(Destination::Xray, &[Signal::Traces, Signal::Logs], &metrics),
    );
    let router = router(vec![hung.handle.clone(), live], &metrics);
    let started = tokio::time::Instant::now();
    for n in 0..100 {
        router.accept(document(&format!("T{n:03}"))).expect("neither lane refuses");
    }
    // UDP overflow goes to the spool too.
    for n in 100..110 {
        assert_eq!(router.offer(document(&format!("T{n:03}"))), 2, "both lanes took the datagram");
    }
    let items = receive(&mut delivered, 110).await;
    assert_eq!(per_signal(&items, Signal::Traces), numbered("T", 110));
    assert!(started.elapsed() < Duration::from_secs(1), "the live lane did not wait: {:?}", started.elapsed());
    assert!(hung.spool.stats().unread >= 100, "{:?}", hung.spool.stats());
    assert!(dropped_lines(&metrics).is_empty(), "{:?}", dropped_lines(&metrics));
}

#[tokio::test(start_paused = true)]
async fn with_a_spool_exhausted_retries_go_back_to_disk_and_are_delivered_later() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let down = Arc::new(AtomicBool::new(true));
    let (exporter, mut delivered) = switchable(&down);
    let mut settings = settings(1_000_000);
    settings.retry.max_elapsed_time = Duration::from_secs(10);
    let lane = start_spooled(Destination::Honeycomb, exporter, settings, dir.path(), &metrics);
    let router = router(vec![lane.handle.clone()], &metrics);
    router.accept(document("T000")).unwrap();
    tokio::time::sleep(Duration::from_secs(15)).await;

    let spooled =
        r#"waggle_destination_spooled_items_total{destination="honeycomb",signal="traces",reason="retries_exhausted"}"#;
    assert!(metric(&metrics, spooled).unwrap_or(0) >= 1, "{}", metrics.encode());
    down.store(false, Ordering::SeqCst);
    let items = receive(&mut delivered, 1).await;
    assert_eq!(items, [(Signal::Traces, "T000".to_string())]);
    assert!(dropped_lines(&metrics).is_empty(), "{:?}", dropped_lines(&metrics));
}

#[tokio::test(start_paused = true)]
async fn when_a_spool_cannot_take_a_batch_the_request_is_refused_and_no_lane_gets_it() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let counts = Arc::new(DestinationCounts::new(Destination::Honeycomb, Arc::clone(&metrics)));
    let small = SpoolOptions { max_size: 2_000, segment_size: 2_000, when_full: WhenSpoolFull::Refuse };
    let spool = Spool::open(dir.path(), small, Arc::clone(&counts)).expect("the spool opens");
    let status = Arc::new(DestinationStatus::new(Destination::Honeycomb, true, "test", vec!["traces", "logs"]));
    let context = LaneContext { counts, status, abandon: CancellationToken::new() };
    let (hung, _hung_task) =
        lane::spawn_spooled(Destination::Honeycomb, ScriptedExporter::hung(), settings(300), context, spool);
    let (exporter, mut delivered) = ScriptedExporter::accepting();
    let live_context = common::lane_context(Destination::Xray, &[Signal::Traces, Signal::Logs], &metrics);
    let (live, _live_task) = lane::spawn(Destination::Xray, exporter, settings(1_000_000), live_context);
    let router = router(vec![hung, live], &metrics);
    let large = |id: &str| {
        let body = Bytes::from(vec![b'x'; 5_000]);
        Batch::xray(vec![XraySegment { body, trace_id: "1-5f0000aa-000000000000000000000001".into(), id: id.into() }])
    };
    let refused = router.accept(large("T000")).expect_err("larger than the hung lane's spool");

    assert_eq!(refused.destination, Destination::Honeycomb);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(delivered.try_recv().is_err(), "the live lane did not get it: a retry cannot duplicate it");
}

/// How long a spool append takes on this machine's disk (page cache; no fsync on this path):
/// the router appends on its own thread, so this is what a spilled request waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check; run in release"]
async fn measure_append_latency() {
    use waggle::pipeline::spool::SpoolReason;
    use waggle::pipeline::spool::envelope::EncodedBatch;

    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let counts = Arc::new(DestinationCounts::new(Destination::Honeycomb, metrics));
    let spool = Spool::open(dir.path(), SpoolOptions::with_max_size(ByteSize::gib(1)), counts).unwrap();
    for (label, batch, count) in [
        ("1 X-Ray document (~130 B)", document("T000"), 20_000),
        ("OTLP logs request, 100 records (~5 KiB)", logs(100), 5_000),
        ("OTLP logs request, 10,000 records (~500 KiB)", logs(10_000), 200),
    ] {
        let encoded = EncodedBatch::new(&batch);
        let started = std::time::Instant::now();
        for _ in 0..count {
            spool.append(&encoded, SpoolReason::Accepted).unwrap();
        }
        let each = started.elapsed() / count;
        let encode_started = std::time::Instant::now();
        let _ = EncodedBatch::new(&batch);
        println!("{label}: append {each:?} each; encoding it once {:?}", encode_started.elapsed());
    }
}

fn logs(count: usize) -> Batch {
    let records = (0..count)
        .map(|n| LogRecord {
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!("log line number {n:06} {}", "x".repeat(20)))),
            }),
            ..LogRecord::default()
        })
        .collect();
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs { log_records: records, ..ScopeLogs::default() }],
            ..ResourceLogs::default()
        }],
    };
    let len = request.encoded_len();
    Batch::logs(request, len)
}
