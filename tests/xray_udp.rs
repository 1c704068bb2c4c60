//! X-Ray UDP receiver and X-Ray → OTLP translation against real captured datagrams: golden
//! translations (rewrite them with `UPDATE_GOLDEN=1 cargo test --test xray_udp`) and the
//! receive loop on a loopback socket, feeding a lane with a recording exporter.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytesize::ByteSize;
use common::ScriptedExporter;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use waggle::destination::Exporter;
use waggle::limits::MemoryBudget;
use waggle::model::{Destination, LossReason, Receiver, Signal, XraySegment};
use waggle::pipeline::lane::{self, LaneSettings};
use waggle::pipeline::retry::RetryPolicy;
use waggle::pipeline::router::Router;
use waggle::receiver::xray_udp::{self, parse_datagram};
use waggle::telemetry::counts::ReceiverCounts;
use waggle::telemetry::metrics::Metrics;
use waggle::translate::xray_to_otlp::convert;

const WAIT: Duration = Duration::from_secs(10);

fn data_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(file)
}

fn read_data(file: &str) -> Vec<u8> {
    std::fs::read(data_path(file)).unwrap_or_else(|error| panic!("reading {file}: {error}"))
}

/// The thirteen datagrams of the streamed run: 12 subsegments, then their segment.
fn streamed_run() -> Vec<String> {
    (1..=13).map(|n| format!("run7stream_{n:03}_xray_udp.bin")).collect()
}

// ---------------------------------------------------------------------------------------------
// Golden translations

/// Converts the datagrams in `files` as one batch and compares the JSON rendering of the
/// spans with `tests/data/xray_golden/<name>.json`.
fn check_golden(name: &str, files: &[String]) -> serde_json::Value {
    let datagrams: Vec<Vec<u8>> = files.iter().map(|file| read_data(file)).collect();
    let segments: Vec<XraySegment> = datagrams
        .iter()
        .zip(files)
        .map(|(datagram, file)| parse_datagram(datagram).unwrap_or_else(|e| panic!("{file}: {e}")).to_segment())
        .collect();
    let (converted, rejected) = convert(&segments);
    assert!(rejected.is_empty(), "{name}: {rejected:?}");
    let rendered = serde_json::to_string_pretty(&converted).expect("spans serialise") + "\n";
    let golden = data_path(&format!("xray_golden/{name}.json"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &rendered).expect("write golden file");
    } else {
        let expected = std::fs::read_to_string(&golden)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", golden.display()));
        assert!(
            expected == rendered,
            "{name}: translation differs from {} (run with UPDATE_GOLDEN=1 to accept):\n{rendered}",
            golden.display()
        );
    }
    serde_json::from_str(&rendered).expect("rendered JSON")
}

fn resource_attribute<'a>(resource_spans: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    attribute(&resource_spans["resource"]["attributes"], key)
}

fn attribute<'a>(attributes: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    let found = attributes.as_array().and_then(|list| list.iter().find(|kv| kv["key"] == key));
    found.map(|kv| &kv["value"]).unwrap_or(&serde_json::Value::Null)
}

#[test]
fn golden_python_segment_with_nested_subsegment() {
    let golden = check_golden("run1_001", &["run1_001_xray_udp.bin".into()]);
    let spans = &golden[0]["scopeSpans"][0]["spans"];
    assert_eq!(spans.as_array().map(Vec::len), Some(2));
    assert_eq!(spans[0]["traceId"], "6b012bf59b8195ff13d654bec0b59aad");
    assert_eq!(spans[0]["spanId"], "edddfb47780d67cb");
    assert_eq!(spans[1]["parentSpanId"], "edddfb47780d67cb");
    assert_eq!(spans[0]["kind"], 2, "SERVER");
    assert_eq!(spans[1]["kind"], 1, "INTERNAL (namespace local)");
    assert_eq!(resource_attribute(&golden[0], "service.name")["stringValue"], "127.0.0.1:4567");
    assert_eq!(
        attribute(&spans[1]["attributes"], "result_length")["intValue"],
        "1",
        "OTLP JSON writes int64 as a string"
    );
}

#[test]
fn golden_python_segment_with_sampling_rule() {
    check_golden("run2json_003", &["run2json_003_xray_udp.bin".into()]);
}

#[test]
fn golden_streamed_subsegments_with_their_segment() {
    let golden = check_golden("run7stream_batch", &streamed_run());
    for resource_spans in golden.as_array().expect("array") {
        assert_eq!(resource_attribute(resource_spans, "service.name")["stringValue"], "stream-test");
    }
    assert_eq!(golden[0]["scopeSpans"][0]["spans"][0]["parentSpanId"], "f55d0241247db84d");
    assert_eq!(golden[0]["scopeSpans"][0]["spans"][0]["kind"], 3, "CLIENT (namespace remote)");
}

#[test]
fn golden_streamed_subsegment_alone() {
    let golden = check_golden("run7stream_001_alone", &["run7stream_001_xray_udp.bin".into()]);
    assert_eq!(resource_attribute(&golden[0], "service.name")["stringValue"], "unknown_service");
}

#[test]
fn golden_fault_with_exceptions_aws_and_sql_subsegments() {
    let golden = check_golden("synthetic_fault_aws_sql", &["xray_golden/synthetic_fault_aws_sql.datagram".into()]);
    let spans = &golden[0]["scopeSpans"][0]["spans"];
    assert_eq!(spans.as_array().map(Vec::len), Some(7));
    assert_eq!(spans[0]["status"]["code"], 2, "ERROR");
    assert_eq!(spans[0]["events"][0]["name"], "exception");
    assert_eq!(spans[1]["kind"], 3, "CLIENT (namespace aws)");
    assert_eq!(attribute(&spans[1]["attributes"], "aws.service")["stringValue"], "DynamoDB");
}

#[test]
fn golden_in_progress_segment() {
    check_golden("synthetic_in_progress", &["xray_golden/synthetic_in_progress.datagram".into()]);
}

// ---------------------------------------------------------------------------------------------
// The receive loop

/// A destination that accepts everything; what it delivers comes out one X-Ray segment at a time.
fn recording_exporter() -> (ScriptedExporter, mpsc::UnboundedReceiver<XraySegment>) {
    let (exporter, mut deliveries) = ScriptedExporter::accepting();
    let (sender, delivered) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(delivery) = deliveries.recv().await {
            for segment in delivery.xray_segments() {
                let _ = sender.send(segment);
            }
        }
    });
    (exporter, delivered)
}

/// A traces lane that sends every batch (almost) at once.
fn spawn_lane<E: Exporter>(
    name: Destination,
    exporter: E,
    metrics: &Arc<Metrics>,
) -> (lane::LaneHandle, tokio::task::JoinHandle<()>) {
    let settings = LaneSettings {
        batch_max_size: ByteSize::mib(1),
        batch_timeout: Duration::from_millis(5),
        ..common::immediate_lane(&[Signal::Traces], ByteSize::mib(16))
    };
    common::spawn_lane(name, exporter, settings, metrics)
}

/// The X-Ray UDP receiver on a free loopback port, in front of `lanes`; cancel the token to stop it.
async fn serve_on_loopback(
    lanes: Vec<lane::LaneHandle>,
    metrics: &Arc<Metrics>,
) -> (SocketAddr, CancellationToken, tokio::task::JoinHandle<std::io::Result<()>>) {
    serve_on_loopback_within(lanes, metrics, MemoryBudget::unlimited()).await
}

/// [`serve_on_loopback`], the receiver holding its segments in `budget`.
async fn serve_on_loopback_within(
    lanes: Vec<lane::LaneHandle>,
    metrics: &Arc<Metrics>,
    budget: MemoryBudget,
) -> (SocketAddr, CancellationToken, tokio::task::JoinHandle<std::io::Result<()>>) {
    let router = Arc::new(Router::new(lanes, Arc::clone(metrics), Duration::from_secs(1), Duration::from_secs(3600)));
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let address = socket.local_addr().expect("local address");
    let shutdown = CancellationToken::new();
    let counts = Arc::new(ReceiverCounts::default());
    let serving =
        tokio::spawn(xray_udp::serve_within(socket, router, Arc::clone(metrics), counts, budget, shutdown.clone()));
    (address, shutdown, serving)
}

/// A running receiver on 127.0.0.1 with one recording lane behind it.
struct Harness {
    address: SocketAddr,
    metrics: Arc<Metrics>,
    delivered: mpsc::UnboundedReceiver<XraySegment>,
    shutdown: CancellationToken,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Harness {
    async fn start() -> Harness {
        Harness::start_with(false).await
    }

    /// With `dead_lane`, the router also has a second traces lane whose batcher has stopped,
    /// so it can never take a batch.
    async fn start_with(dead_lane: bool) -> Harness {
        let metrics = Arc::new(Metrics::new());
        let (exporter, delivered) = recording_exporter();
        let (recorder, _recorder_task) = spawn_lane(Destination::Xray, exporter, &metrics);
        let mut lanes = vec![recorder];
        if dead_lane {
            let (dead, dead_task) = spawn_lane(Destination::Honeycomb, ScriptedExporter::default(), &metrics);
            dead_task.abort();
            let _ = dead_task.await;
            lanes.push(dead);
        }
        let (address, shutdown, serving) = serve_on_loopback(lanes, &metrics).await;
        Harness { address, metrics, delivered, shutdown, serving }
    }

    /// The receiver under `budget`, in front of one lane whose exporter records what it
    /// delivers, or, with `hung`, never finishes sending (so the lane keeps what it took).
    async fn start_within(budget: MemoryBudget, hung: bool) -> Harness {
        let metrics = Arc::new(Metrics::new());
        let (exporter, delivered) = recording_exporter();
        let exporter = exporter.hanging(hung);
        let (recorder, _recorder_task) = spawn_lane(Destination::Xray, exporter, &metrics);
        let (address, shutdown, serving) = serve_on_loopback_within(vec![recorder], &metrics, budget).await;
        Harness { address, metrics, delivered, shutdown, serving }
    }

    fn send(&self, datagram: &[u8]) {
        let client = std::net::UdpSocket::bind("127.0.0.1:0").expect("client socket");
        client.send_to(datagram, self.address).expect("send");
    }

    async fn next_delivered(&mut self) -> XraySegment {
        tokio::time::timeout(WAIT, self.delivered.recv())
            .await
            .expect("a segment is delivered in time")
            .expect("the lane is running")
    }

    /// Stops the receiver and waits for it, so every counter is final.
    async fn stop(self) -> Arc<Metrics> {
        self.shutdown.cancel();
        let result = tokio::time::timeout(WAIT, self.serving).await.expect("serve stops in time");
        result.expect("serve did not panic").expect("serve returns Ok");
        self.metrics
    }
}

fn received(metrics: &Metrics) -> u64 {
    metrics.received.get_or_create(&Metrics::receiver(Receiver::XrayUdp, Signal::Traces)).get()
}

fn accepted(metrics: &Metrics) -> u64 {
    metrics.accepted.get_or_create(&Metrics::receiver(Receiver::XrayUdp, Signal::Traces)).get()
}

fn rejected(metrics: &Metrics, reason: &'static str) -> u64 {
    metrics.rejected_requests.get_or_create(&Metrics::refusal(Receiver::XrayUdp, Signal::Traces, reason)).get()
}

fn body_of(datagram: &[u8]) -> &[u8] {
    let newline = datagram.iter().position(|&b| b == b'\n').expect("captured datagrams have a header line");
    &datagram[newline + 1..]
}

#[tokio::test]
async fn relays_captured_datagrams_byte_for_byte_and_survives_garbage() {
    let mut harness = Harness::start().await;
    let client = std::net::UdpSocket::bind("127.0.0.1:0").expect("client socket");
    let header = "{\"format\":\"json\",\"version\":1}\n";
    let garbage: Vec<(Vec<u8>, &'static str)> = vec![
        (b"{\"format\":\"json\",\"version\":1}".to_vec(), "no_newline"),
        (Vec::new(), "no_newline"),
        (header.as_bytes().to_vec(), "empty_body"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), "bad_header"),
        (b"{\"format\":\"xml\",\"version\":1}\n{}".to_vec(), "unsupported_header"),
        // aws-xray-daemon issue #120: this body crashed the daemon before v3.3.1.
        (format!("{header}x").into_bytes(), "body_not_json"),
        (format!("{header}[1,2]").into_bytes(), "body_not_object"),
        (format!("{header}{{\"id\":\"6226467e3f845502\"}}").into_bytes(), "missing_trace_id"),
        (format!("{header}{{\"trace_id\":\"1-5f84c7a1-e7d1852db8c4fd35d88bf49a\"}}").into_bytes(), "missing_id"),
        (vec![0xff; 1000], "no_newline"),
    ];
    let mut valid_files = vec!["run1_001_xray_udp.bin".to_owned(), "run2json_003_xray_udp.bin".to_owned()];
    valid_files.extend(streamed_run());
    let valid: Vec<Vec<u8>> = valid_files.iter().map(|file| read_data(file)).collect();

    // Valid, then every kind of garbage, then the rest of the valid ones.
    client.send_to(&valid[0], harness.address).expect("send");
    for (datagram, _) in &garbage {
        client.send_to(datagram, harness.address).expect("send");
    }
    for datagram in &valid[1..] {
        client.send_to(datagram, harness.address).expect("send");
    }

    for (file, datagram) in valid_files.iter().zip(&valid) {
        let segment = harness.next_delivered().await;
        assert_eq!(&segment.body[..], body_of(datagram), "{file}: body relayed byte for byte");
        let parsed = parse_datagram(datagram).expect("valid");
        assert_eq!(segment.id, parsed.id, "{file}");
        assert_eq!(segment.trace_id, parsed.trace_id, "{file}");
    }

    let metrics = harness.stop().await;
    assert_eq!(received(&metrics), valid.len() as u64);
    assert_eq!(accepted(&metrics), valid.len() as u64);
    let mut expected: std::collections::BTreeMap<&'static str, u64> = Default::default();
    for (_, reason) in &garbage {
        *expected.entry(*reason).or_default() += 1;
    }
    for (reason, count) in expected {
        assert_eq!(rejected(&metrics, reason), count, "{reason}");
    }
    let exposition = metrics.encode();
    assert!(exposition.contains("waggle_receiver_rejected_requests_total{receiver=\"xray_udp\",signal=\"traces\",reason=\"body_not_json\"} 1"), "{exposition}");
}

#[tokio::test]
async fn counts_a_batch_a_lane_could_not_take_as_received_not_accepted() {
    let mut harness = Harness::start_with(true).await;
    let datagram = read_data("run1_001_xray_udp.bin");
    let client = std::net::UdpSocket::bind("127.0.0.1:0").expect("client socket");
    client.send_to(&datagram, harness.address).expect("send");
    let segment = harness.next_delivered().await;
    assert_eq!(&segment.body[..], body_of(&datagram), "the live lane still gets it");
    let metrics = harness.stop().await;
    assert_eq!(received(&metrics), 1);
    assert_eq!(accepted(&metrics), 0);
    let dropped = metrics
        .dropped
        .get_or_create(&Metrics::loss(Destination::Honeycomb, Signal::Traces, LossReason::QueueFull))
        .get();
    assert_eq!(dropped, 1, "the router counts the drop in the lane that could not take it");
}

#[tokio::test]
async fn stops_on_shutdown_without_traffic() {
    let harness = Harness::start().await;
    let metrics = harness.stop().await;
    assert_eq!(received(&metrics), 0);
}

#[tokio::test]
async fn takes_the_largest_ipv4_datagram() {
    let mut harness = Harness::start().await;
    let header = "{\"format\":\"json\",\"version\":1}\n";
    let skeleton = "{\"trace_id\":\"1-5f84c7a1-e7d1852db8c4fd35d88bf49a\",\"id\":\"6226467e3f845502\",\"pad\":\"\"}";
    let padding = "p".repeat(65_507 - header.len() - skeleton.len());
    let datagram = format!("{header}{}", skeleton.replace("\"pad\":\"\"", &format!("\"pad\":\"{padding}\"")));
    assert_eq!(datagram.len(), 65_507);
    let client = std::net::UdpSocket::bind("127.0.0.1:0").expect("client socket");
    client.send_to(datagram.as_bytes(), harness.address).expect("send");
    let segment = harness.next_delivered().await;
    assert_eq!(segment.body.len(), 65_507 - header.len());
    harness.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The memory budget (paused time: the waits below advance the clock, they never sleep)

/// Waits until `condition` holds; fails after [`WAIT`] of (paused) time.
async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "{what} within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn segment_bytes(datagram: &[u8]) -> usize {
    parse_datagram(datagram).expect("a valid datagram").segment_bytes()
}

#[tokio::test(start_paused = true)]
async fn a_datagram_the_memory_budget_has_no_room_for_is_dropped_and_counted() {
    let budget = MemoryBudget::new(64 * 1024);
    let mut harness = Harness::start_within(budget.clone(), false).await;
    let held = budget.try_reserve(budget.limit()).expect("the whole budget is free");
    let datagram = read_data("run1_001_xray_udp.bin");
    harness.send(&datagram);
    wait_until("the datagram is counted as dropped", || rejected(&harness.metrics, "memory_limit") == 1).await;

    drop(held);
    harness.send(&datagram);
    let segment = harness.next_delivered().await;
    assert_eq!(&segment.body[..], body_of(&datagram), "with room again, a datagram is relayed");
    let metrics = harness.stop().await;
    assert_eq!(received(&metrics), 1, "the dropped datagram is not counted as received");
    assert_eq!(rejected(&metrics, "memory_limit"), 1);
    let exposition = metrics.encode();
    let line =
        "waggle_receiver_rejected_requests_total{receiver=\"xray_udp\",signal=\"traces\",reason=\"memory_limit\"} 1";
    assert!(exposition.contains(line), "{exposition}");
}

#[tokio::test(start_paused = true)]
async fn a_queued_batch_holds_its_segments_bytes_of_the_budget() {
    let budget = MemoryBudget::new(1024 * 1024);
    let harness = Harness::start_within(budget.clone(), true).await;
    let datagram = read_data("run1_001_xray_udp.bin");
    harness.send(&datagram);
    let expected = segment_bytes(&datagram);
    wait_until("the lane holds the segment", || budget.in_use() == expected).await;
    assert_eq!(budget.in_use(), expected);
    harness.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_delivered_batch_gives_its_bytes_back_to_the_budget() {
    let budget = MemoryBudget::new(1024 * 1024);
    let mut harness = Harness::start_within(budget.clone(), false).await;
    let datagram = read_data("run1_001_xray_udp.bin");
    harness.send(&datagram);
    harness.next_delivered().await;
    wait_until("the delivered batch gives its bytes back", || budget.in_use() == 0).await;
    harness.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Throughput (run with `cargo test --release --test xray_udp -- --ignored --nocapture`)

#[test]
#[ignore = "a measurement, not a check; run in release"]
fn measure_parse_and_convert_throughput() {
    let datagram = read_data("run1_001_xray_udp.bin");
    let rounds = 2_000_000;
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..rounds {
        let parsed = parse_datagram(std::hint::black_box(&datagram)).expect("valid");
        bytes += parsed.body.len();
    }
    let parse_rate = rounds as f64 / started.elapsed().as_secs_f64();
    println!("parse_datagram: {:.2} M datagrams/s ({bytes} bytes)", parse_rate / 1e6);

    let segment = parse_datagram(&datagram).expect("valid").to_segment();
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(parse_datagram(std::hint::black_box(&datagram)).expect("valid").to_segment());
    }
    println!("parse + copy: {:.2} M datagrams/s", rounds as f64 / started.elapsed().as_secs_f64() / 1e6);

    let batch: Vec<XraySegment> = std::iter::repeat_n(segment, 100).collect();
    let started = Instant::now();
    let batches = 5_000;
    for _ in 0..batches {
        std::hint::black_box(convert(std::hint::black_box(&batch)));
    }
    let convert_rate = (batches * batch.len()) as f64 / started.elapsed().as_secs_f64();
    println!("convert: {:.0} k documents/s (2 spans each)", convert_rate / 1e3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check; run in release"]
async fn measure_receive_loop_throughput() {
    let metrics = Arc::new(Metrics::new());
    let settings = LaneSettings {
        signals: vec![Signal::Traces],
        queue_size: ByteSize::mib(256),
        batch_max_items: 2048,
        batch_max_size: ByteSize::mib(4),
        batch_timeout: Duration::from_millis(50),
        senders: 2,
        retry: RetryPolicy::default(),
    };
    let context = common::lane_context(Destination::Xray, &[Signal::Traces], &metrics);
    // Accepts and counts, keeping nothing.
    let exporter = ScriptedExporter::default();
    let (lane, _lane_task) = lane::spawn(Destination::Xray, exporter, settings, context);
    let (address, shutdown, serving) = serve_on_loopback(vec![lane], &metrics).await;

    let datagram = read_data("run1_001_xray_udp.bin");
    let total = 300_000u64;
    let started = Instant::now();
    let sender = std::thread::spawn(move || {
        let client = std::net::UdpSocket::bind("127.0.0.1:0").expect("client socket");
        for _ in 0..total {
            let _ = client.send_to(&datagram, address);
        }
    });
    tokio::task::spawn_blocking(move || sender.join()).await.expect("join").expect("sender");
    let sent_in = started.elapsed();
    // What was taken while the flood lasted (the socket buffer may still hold a few thousand).
    shutdown.cancel();
    serving.await.expect("serve").expect("serve ok");
    let received = received(&metrics);
    println!(
        "sent {total} in {sent_in:?} ({:.0} k/s); received {received} ({:.1}%), {:.0} k/s over the send time",
        total as f64 / sent_in.as_secs_f64() / 1e3,
        received as f64 * 100.0 / total as f64,
        received as f64 / sent_in.as_secs_f64() / 1e3
    );
}
