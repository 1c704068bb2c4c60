//! The local store never holds up the other destinations: a store lane that sheds
//! ([`WhenFull::Shed`]) and cannot keep up is left out of what the others take, its items
//! counted as dropped (`store_behind`); alone, it refuses the caller like any lane. Real lanes
//! with scripted exporters behind a real router (and the OTLP/HTTP app), in paused tokio time.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bytes::Bytes;
use bytesize::ByteSize;
use common::{ScriptedExporter, receive_items};
use tower::ServiceExt;
use waggle::config::OtlpHttpSettings;
use waggle::destination::Exporter;
use waggle::model::{Batch, Destination, LossReason, Signal, XraySegment};
use waggle::pipeline::lane::{self, LaneHandle, LaneSettings, WhenFull};
use waggle::pipeline::retry::RetryPolicy;
use waggle::pipeline::router::Router;
use waggle::pipeline::spool::{Spool, SpoolOptions};
use waggle::receiver::otlp::http as otlp_http;
use waggle::telemetry::metrics::Metrics;

const STALL_TIMEOUT: Duration = Duration::from_secs(30);
const RETRY_AFTER: Duration = Duration::from_secs(3);
const SHED: WhenFull = WhenFull::Shed(LossReason::StoreBehind);
/// Room for one 200-byte batch: a store lane this small is behind as soon as it holds one.
const ONE_BATCH: u64 = 250;
const PYTHON_PROTOBUF: &[u8] = include_bytes!("data/run1_004_otlp_http_v1_traces.bin");

/// Traces, sent at once (one item is a full batch), by one sender.
fn settings(queue: u64) -> LaneSettings {
    LaneSettings {
        signals: vec![Signal::Traces],
        queue_size: ByteSize::b(queue),
        batch_max_items: 1,
        batch_max_size: ByteSize::mib(1),
        batch_timeout: Duration::from_millis(200),
        senders: 1,
        retry: RetryPolicy::default(),
    }
}

/// A lane for `name` that answers `when_full` for traces.
fn start<E: Exporter>(
    name: Destination,
    exporter: E,
    queue: u64,
    when_full: WhenFull,
    metrics: &Arc<Metrics>,
) -> LaneHandle {
    let (mut handle, _task) = common::spawn_lane(name, exporter, settings(queue), metrics);
    handle.set_when_full(Signal::Traces, when_full);
    handle
}

fn router(lanes: Vec<LaneHandle>, metrics: &Arc<Metrics>) -> Router {
    Router::new(lanes, Arc::clone(metrics), RETRY_AFTER, STALL_TIMEOUT)
}

/// One X-Ray document of `size` bytes (a traces batch of one item).
fn segment_batch(size: usize) -> Batch {
    let body = Bytes::from(vec![b'x'; size]);
    Batch::xray(vec![XraySegment { body, trace_id: String::new(), id: String::new() }])
}

fn metric_value(metrics: &Metrics, line_prefix: &str) -> Option<u64> {
    metrics.encode().lines().find(|line| line.starts_with(line_prefix))?.rsplit(' ').next()?.parse().ok()
}

const STORE_BEHIND: &str =
    r#"waggle_destination_dropped_items_total{destination="local",signal="traces",reason="store_behind"}"#;

#[tokio::test(start_paused = true)]
async fn a_hung_store_sheds_and_every_request_reaches_honeycomb() {
    let metrics = Arc::new(Metrics::new());
    let store = start(Destination::Local, ScriptedExporter::hung(), ONE_BATCH, SHED, &metrics);
    let store_counts = Arc::clone(store.counts());
    let (honeycomb, mut delivered) = ScriptedExporter::accepting();
    let honeycomb = start(Destination::Honeycomb, honeycomb, 1_000_000, WhenFull::Refuse, &metrics);
    let honeycomb_counts = Arc::clone(honeycomb.counts());
    let router = router(vec![store, honeycomb], &metrics);

    for n in 0..50 {
        router.accept(segment_batch(200)).unwrap_or_else(|refused| panic!("request {n} refused: {refused}"));
    }

    receive_items(&mut delivered, 50).await;
    // The store holds the first batch (its exporter never answers); the other 49 are shed.
    assert_eq!(store_counts.dropped(Signal::Traces, LossReason::StoreBehind), 49);
    assert_eq!(store_counts.dropped_total(Signal::Traces), 49, "shed as store_behind, nothing else");
    assert_eq!(metric_value(&metrics, STORE_BEHIND), Some(49));
    assert_eq!(honeycomb_counts.dropped_total(Signal::Traces), 0);
    assert_eq!(honeycomb_counts.sent(Signal::Traces), 50);
}

#[tokio::test(start_paused = true)]
async fn a_slow_store_keeps_what_it_can_and_counts_the_rest_as_store_behind() {
    let metrics = Arc::new(Metrics::new());
    let (store, _stored) = ScriptedExporter::accepting();
    let store = store.slow(Duration::from_secs(1));
    let stored = store.accepted_items();
    let store = start(Destination::Local, store, ONE_BATCH, SHED, &metrics);
    let store_counts = Arc::clone(store.counts());
    let (honeycomb, mut delivered) = ScriptedExporter::accepting();
    let honeycomb = start(Destination::Honeycomb, honeycomb, 1_000_000, WhenFull::Refuse, &metrics);
    let router = router(vec![store, honeycomb], &metrics);

    // Ten a second for five seconds, to a store that writes one a second.
    for n in 0..50 {
        router.accept(segment_batch(200)).unwrap_or_else(|refused| panic!("request {n} refused: {refused}"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    receive_items(&mut delivered, 50).await;
    tokio::time::sleep(Duration::from_secs(5)).await;

    let stored = stored.load(Ordering::Relaxed);
    let shed = store_counts.dropped(Signal::Traces, LossReason::StoreBehind);
    assert!((3..=10).contains(&stored), "the store wrote about one a second: {stored}");
    assert_eq!(stored + shed, 50, "every item is either stored or counted as shed");
    assert_eq!(store_counts.sent(Signal::Traces), stored);
}

#[tokio::test(start_paused = true)]
async fn alone_a_hung_store_refuses_the_caller() {
    let metrics = Arc::new(Metrics::new());
    let store = start(Destination::Local, ScriptedExporter::hung(), ONE_BATCH, WhenFull::Refuse, &metrics);
    let store_counts = Arc::clone(store.counts());
    let router = router(vec![store], &metrics);

    router.accept(segment_batch(200)).expect("the first batch fits");
    let refused = router.accept(segment_batch(200)).expect_err("a full store alone refuses");

    assert_eq!((refused.destination, refused.retry_after), (Destination::Local, RETRY_AFTER));
    assert_eq!(store_counts.dropped_total(Signal::Traces), 0, "a refused request is not dropped");
}

#[tokio::test(start_paused = true)]
async fn a_shedding_store_refuses_when_no_other_lane_takes_the_batch() {
    let metrics = Arc::new(Metrics::new());
    let (store, _stored) = ScriptedExporter::accepting();
    let store = start(Destination::Local, store, ONE_BATCH, SHED, &metrics);
    let store_counts = Arc::clone(store.counts());
    let honeycomb = start(Destination::Honeycomb, ScriptedExporter::hung(), ONE_BATCH, WhenFull::Refuse, &metrics);
    let router = router(vec![store, honeycomb], &metrics);
    router.accept(segment_batch(200)).expect("both lanes have room");
    let refused = router.accept(segment_batch(200)).expect_err("a full lane that does not shed still refuses");
    assert_eq!(refused.destination, Destination::Honeycomb);

    // Honeycomb is stalled now, and is skipped; the store has room again and takes a batch.
    tokio::time::sleep(STALL_TIMEOUT).await;
    router.accept(segment_batch(200)).expect("the store takes it");
    // The store is full (and busy, not stalled), and no other lane takes this one.
    let refused = router.accept(segment_batch(200)).expect_err("nothing to shed for");

    assert_eq!(refused.destination, Destination::Local);
    assert_eq!(store_counts.dropped_total(Signal::Traces), 0);
}

#[tokio::test(start_paused = true)]
async fn over_udp_what_a_shedding_store_drops_is_counted_as_store_behind() {
    let metrics = Arc::new(Metrics::new());
    let store = start(Destination::Local, ScriptedExporter::hung(), ONE_BATCH, SHED, &metrics);
    let store_counts = Arc::clone(store.counts());
    let (honeycomb, mut delivered) = ScriptedExporter::accepting();
    let honeycomb = start(Destination::Honeycomb, honeycomb, 1_000_000, WhenFull::Refuse, &metrics);
    let router = router(vec![store, honeycomb], &metrics);

    let taken: usize = (0..10).map(|_| router.offer(segment_batch(200))).sum();

    receive_items(&mut delivered, 10).await;
    assert_eq!(taken, 11, "honeycomb took all ten, the store the first");
    assert_eq!(store_counts.dropped(Signal::Traces, LossReason::StoreBehind), 9);
    assert_eq!(store_counts.dropped(Signal::Traces, LossReason::QueueFull), 0);
}

#[tokio::test(start_paused = true)]
async fn a_store_with_a_spool_sheds_only_what_its_spool_cannot_take() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let context = common::lane_context(Destination::Local, &[Signal::Traces], &metrics);
    let store_counts = Arc::clone(&context.counts);
    let spool = Spool::open(dir.path(), SpoolOptions::with_max_size(ByteSize::kib(64)), Arc::clone(&context.counts))
        .expect("the spool opens");
    let (mut store, _task) =
        lane::spawn_spooled(Destination::Local, ScriptedExporter::hung(), settings(ONE_BATCH), context, spool);
    store.set_when_full(Signal::Traces, SHED);
    let (honeycomb, mut delivered) = ScriptedExporter::accepting();
    let honeycomb = start(Destination::Honeycomb, honeycomb, 1_000_000, WhenFull::Refuse, &metrics);
    let router = router(vec![store, honeycomb], &metrics);

    for _ in 0..20 {
        router.accept(segment_batch(200)).expect("accepted");
    }
    receive_items(&mut delivered, 20).await;
    assert_eq!(store_counts.dropped_total(Signal::Traces), 0, "what the queue could not take went to the spool");

    // Larger than the whole spool: neither the queue nor the spool can take it.
    router.accept(segment_batch(100 * 1024)).expect("accepted");
    receive_items(&mut delivered, 1).await;
    assert_eq!(store_counts.dropped(Signal::Traces, LossReason::StoreBehind), 1);
}

/// What the OTLP/HTTP app answers a protobuf traces request, with its `Retry-After`.
async fn post_traces(app: &axum::Router) -> (StatusCode, Option<String>) {
    let request = Request::post("/v1/traces")
        .header(header::CONTENT_TYPE, "application/x-protobuf")
        .body(Body::from(PYTHON_PROTOBUF))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let retry_after = response.headers().get(header::RETRY_AFTER).map(|value| value.to_str().unwrap().to_owned());
    (response.status(), retry_after)
}

fn otlp_http_app(lanes: Vec<LaneHandle>, metrics: &Arc<Metrics>) -> axum::Router {
    otlp_http::app(&OtlpHttpSettings::default(), Arc::new(router(lanes, metrics)), Arc::clone(metrics))
}

#[tokio::test(start_paused = true)]
async fn over_http_a_full_store_alone_is_a_429_with_retry_after() {
    let metrics = Arc::new(Metrics::new());
    let store = start(Destination::Local, ScriptedExporter::hung(), 1, WhenFull::Refuse, &metrics);
    let app = otlp_http_app(vec![store], &metrics);

    assert_eq!(post_traces(&app).await, (StatusCode::OK, None));
    assert_eq!(post_traces(&app).await, (StatusCode::TOO_MANY_REQUESTS, Some("3".to_owned())));
}

#[tokio::test(start_paused = true)]
async fn over_http_a_full_store_that_sheds_does_not_refuse_the_caller() {
    let metrics = Arc::new(Metrics::new());
    let store = start(Destination::Local, ScriptedExporter::hung(), 1, SHED, &metrics);
    let store_counts = Arc::clone(store.counts());
    let (honeycomb, mut delivered) = ScriptedExporter::accepting();
    let honeycomb = start(Destination::Honeycomb, honeycomb, 1_000_000, WhenFull::Refuse, &metrics);
    let app = otlp_http_app(vec![store, honeycomb], &metrics);

    for _ in 0..3 {
        assert_eq!(post_traces(&app).await, (StatusCode::OK, None));
    }

    let (total, per_request) = (3 * spans_in_request(), spans_in_request() as u64);
    receive_items(&mut delivered, total).await;
    assert_eq!(store_counts.dropped(Signal::Traces, LossReason::StoreBehind), 2 * per_request);
    assert_eq!(metric_value(&metrics, STORE_BEHIND), Some(2 * per_request));
}

/// Spans in [`PYTHON_PROTOBUF`].
fn spans_in_request() -> usize {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    let request = ExportTraceServiceRequest::decode(PYTHON_PROTOBUF).expect("decodes");
    request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum()
}
