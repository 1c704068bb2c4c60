//! Relay benchmark: OTLP/HTTP protobuf (and optionally OTLP/gRPC) into a release waggle, OTLP/HTTP
//! out (zstd, the Honeycomb lane's default) to an in-process sink; reports waggle's spans per
//! CPU-second, wall throughput and RSS.
//!
//! ```text
//! cargo build --release --locked --bin waggle
//! cargo bench --bench relay
//! ```
//!
//! The waggle binary is `$WAGGLE_BENCH_BIN`, else `release/waggle` under `$CARGO_TARGET_DIR` or
//! `target/`. Knobs (environment): `WAGGLE_BENCH_ROUNDS` (5), `WAGGLE_BENCH_REQUESTS` per round
//! (2000, of 100 spans each), `WAGGLE_BENCH_CLIENTS` (4), `WAGGLE_BENCH_INPUT` (`http`, `grpc`
//! or `both`; `http`), `WAGGLE_BENCH_ARGS` (extra waggle arguments, whitespace-separated, e.g.
//! `--set destinations.honeycomb.senders=2`), `WAGGLE_BENCH_IDLE` (`0` skips the idle
//! measurement of the default configuration), `WAGGLE_BENCH_COMPRESSION` (`zstd`, the default
//! configuration's, or `gzip`, what most peer relays send), `WAGGLE_BENCH_DISTINCT` (distinct requests the
//! clients cycle through: 16, or 2000 with the store on, so a block never holds a span twice).
//!
//! `WAGGLE_BENCH_STORE` adds the local store:
//! - `on`: the store beside the Honeycomb lane (the default configuration plus Honeycomb); a
//!   round ends when the sink has every span *and* the store has stored every span.
//! - `only`: the store as the only destination, loaded as fast as the clients go for
//!   `WAGGLE_BENCH_SECONDS` (60); reports spans stored per second and the 429s answered.
//!
//! `WAGGLE_BENCH_RATE` (spans/s) paces the load instead of sending flat out: one round of
//! `WAGGLE_BENCH_SECONDS` at that rate, reporting the share of one core waggle used.
//!
//! CPU is waggle's own `utime + stime` from `/proc/<pid>/stat` between the first request of a
//! round and the moment the sink has counted every span of it; the sink's and the load
//! generator's CPU are not waggle's. The kernel counts CPU in clock ticks (10 ms), so a round of
//! ~0.3 CPU-seconds is good to about ±3%: compare medians of several runs, and note the machine's
//! load (printed first). Everything runs on loopback and is bounded in count and time; every
//! process and server started here is stopped before the bench returns.
#![forbid(unsafe_code)]

#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/payload.rs"]
mod payload;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::Notify;

const SPANS_PER_REQUEST: usize = 100;
/// Distinct pre-encoded requests the clients cycle through.
const DISTINCT_REQUESTS: usize = 16;
/// Time allowed for waggle to start, and for one round to arrive at the sink in full.
const START_TIMEOUT: Duration = Duration::from_secs(20);
const ROUND_TIMEOUT: Duration = Duration::from_secs(120);
/// Settling time before idle memory is read.
const IDLE_SETTLE: Duration = Duration::from_secs(2);

fn main() -> anyhow::Result<()> {
    let options = Options::from_env()?;
    let binary = waggle_binary()?;
    println!("waggle relay benchmark: {}", binary.display());
    println!("machine: {} cores; {}", cores(), uptime());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(run(options, binary))
}

struct Options {
    rounds: usize,
    requests: usize,
    clients: usize,
    inputs: Vec<Input>,
    extra_args: Vec<String>,
    idle: bool,
    store: StoreMode,
    compression: OutCompression,
    distinct: usize,
    seconds: u64,
    /// Spans per second, when the load is paced.
    rate: Option<usize>,
}

/// How the Honeycomb lane compresses what it sends (the sink checks it).
#[derive(Clone, Copy, PartialEq)]
enum OutCompression {
    Zstd,
    Gzip,
}

impl OutCompression {
    fn name(self) -> &'static str {
        match self {
            OutCompression::Zstd => "zstd",
            OutCompression::Gzip => "gzip",
        }
    }
}

/// Whether the local store runs beside (or instead of) the Honeycomb lane.
#[derive(Clone, Copy, PartialEq)]
enum StoreMode {
    Off,
    On,
    Only,
}

#[derive(Clone, Copy, PartialEq)]
enum Input {
    Http,
    Grpc,
}

impl Input {
    fn name(self) -> &'static str {
        match self {
            Input::Http => "OTLP/HTTP",
            Input::Grpc => "OTLP/gRPC",
        }
    }
}

impl Options {
    fn from_env() -> anyhow::Result<Options> {
        let number = |name: &str, default: usize| -> anyhow::Result<usize> {
            match std::env::var(name) {
                Ok(value) => value.parse().with_context(|| format!("{name}={value} is not a number")),
                Err(_) => Ok(default),
            }
        };
        let inputs = match std::env::var("WAGGLE_BENCH_INPUT").as_deref() {
            Ok("grpc") => vec![Input::Grpc],
            Ok("both") => vec![Input::Http, Input::Grpc],
            Ok("http") | Err(_) => vec![Input::Http],
            Ok(other) => bail!("WAGGLE_BENCH_INPUT={other}: expected http, grpc or both"),
        };
        let extra_args =
            std::env::var("WAGGLE_BENCH_ARGS").unwrap_or_default().split_whitespace().map(String::from).collect();
        let store = match std::env::var("WAGGLE_BENCH_STORE").as_deref() {
            Ok("on") => StoreMode::On,
            Ok("only") => StoreMode::Only,
            Ok("off") | Err(_) => StoreMode::Off,
            Ok(other) => bail!("WAGGLE_BENCH_STORE={other}: expected off, on or only"),
        };
        let compression = match std::env::var("WAGGLE_BENCH_COMPRESSION").as_deref() {
            Ok("zstd") | Err(_) => OutCompression::Zstd,
            Ok("gzip") => OutCompression::Gzip,
            Ok(other) => bail!("WAGGLE_BENCH_COMPRESSION={other}: expected zstd or gzip"),
        };
        let default_distinct = if store == StoreMode::Off { DISTINCT_REQUESTS } else { 2000 };
        let rate = match std::env::var("WAGGLE_BENCH_RATE") {
            Ok(value) => Some(value.parse::<usize>().with_context(|| format!("WAGGLE_BENCH_RATE={value}"))?.max(1)),
            Err(_) => None,
        };
        Ok(Options {
            store,
            compression,
            distinct: number("WAGGLE_BENCH_DISTINCT", default_distinct)?.max(1),
            seconds: number("WAGGLE_BENCH_SECONDS", 60)?.max(1) as u64,
            rate,
            rounds: number("WAGGLE_BENCH_ROUNDS", 5)?.max(1),
            requests: number("WAGGLE_BENCH_REQUESTS", 2000)?.max(1),
            clients: number("WAGGLE_BENCH_CLIENTS", 4)?.max(1),
            inputs,
            extra_args,
            idle: std::env::var("WAGGLE_BENCH_IDLE").map_or(true, |value| value != "0"),
        })
    }
}

async fn run(options: Options, binary: PathBuf) -> anyhow::Result<()> {
    let bodies = Arc::new(requests(options.distinct));
    let body_bytes: usize = bodies.iter().map(|load| load.body.len()).sum();
    println!(
        "load: {} rounds × {} requests × {SPANS_PER_REQUEST} spans, {} clients, {:.0} B/span protobuf",
        options.rounds,
        options.requests,
        options.clients,
        body_bytes as f64 / (bodies.len() * SPANS_PER_REQUEST) as f64
    );
    let scratch = Scratch::new()?;

    if options.idle {
        let idle = idle_default_config(&binary, &scratch, &options.extra_args).await?;
        println!(
            "\nidle, default configuration (local store on): VmRSS {} (VmHWM {}), {} threads",
            mib(idle.rss),
            mib(idle.hwm),
            idle.threads
        );
    }

    for input in options.inputs.iter().copied() {
        let sink = Sink::start(options.compression).await?;
        let data_dir = scratch.path.join(format!("relay-data-{}", input.name().replace('/', "-")));
        let config = relay_config(&data_dir, sink.address, options.store, options.compression);
        let waggle = Waggle::start(&binary, &scratch, "relay", &config, &options.extra_args)?;
        let target = match input {
            Input::Http => Target::http(waggle.address("otlp_http")?),
            Input::Grpc => Target::grpc(waggle.address("otlp_grpc")?).await?,
        };
        let progress = Progress { sink: &sink, admin: Admin::new(waggle.address("admin")?), store: options.store };
        let result = match (options.rate, options.store) {
            (Some(rate), _) => paced_round(&options, rate, &target, &waggle, &progress, &bodies).await.map(|round| {
                print_paced(input, options.store, options.compression, rate, &round);
            }),
            (None, StoreMode::Only) => {
                store_only_round(&options, &target, &waggle, &progress, &bodies).await.map(|round| {
                    print_store_only(input, &round);
                })
            }
            (None, _) => relay_rounds(&options, &target, &waggle, &progress, &bodies).await.map(|rounds| {
                print_rounds(input, options.store, options.compression, &rounds);
            }),
        };
        let stopped = waggle.stop();
        sink.stop();
        result?;
        stopped?;
        if options.store != StoreMode::Off {
            println!("store on disk: {}", store_summary(&data_dir.join("store")));
        }
    }
    Ok(())
}

/// How far delivery has got: spans the sink has, and spans the store has stored.
struct Progress<'a> {
    sink: &'a Sink,
    admin: Admin,
    store: StoreMode,
}

impl Progress<'_> {
    /// Waits until every destination in use has `expected` more spans than at `before`.
    async fn wait_for(&self, before: (u64, u64), spans: u64) -> anyhow::Result<()> {
        if self.store != StoreMode::Only {
            let expected = before.0 + spans;
            tokio::time::timeout(ROUND_TIMEOUT, self.sink.wait_for(expected)).await.with_context(|| {
                format!("the sink got {} of {} spans within {ROUND_TIMEOUT:?}", self.sink.spans(), expected)
            })?;
        }
        if self.store != StoreMode::Off {
            let expected = before.1 + spans;
            let deadline = Instant::now() + ROUND_TIMEOUT;
            loop {
                let stored = self.admin.stored_spans().await?;
                if stored >= expected {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("the store stored {stored} of {expected} spans within {ROUND_TIMEOUT:?}");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }

    async fn now(&self) -> anyhow::Result<(u64, u64)> {
        let stored = if self.store == StoreMode::Off { 0 } else { self.admin.stored_spans().await? };
        Ok((self.sink.spans(), stored))
    }
}

/// waggle's admin port: `/metrics`.
struct Admin {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: hyper::Uri,
}

impl Admin {
    fn new(address: SocketAddr) -> Admin {
        let client = Client::builder(TokioExecutor::new()).build_http();
        let uri = format!("http://{address}/metrics").parse().expect("a valid URI");
        Admin { client, uri }
    }

    /// `waggle_destination_sent_items_total{destination="local",signal="traces"}`.
    async fn stored_spans(&self) -> anyhow::Result<u64> {
        let response = self.client.get(self.uri.clone()).await?;
        let body = response.into_body().collect().await?.to_bytes();
        let text = String::from_utf8_lossy(&body);
        let line = text.lines().find(|line| {
            line.starts_with("waggle_destination_sent_items_total{")
                && line.contains("destination=\"local\"")
                && line.contains("signal=\"traces\"")
        });
        let value = line.and_then(|line| line.rsplit(' ').next()).and_then(|value| value.parse::<f64>().ok());
        Ok(value.unwrap_or(0.0) as u64)
    }
}

/// Block files, their bytes, and bytes per span stored.
fn store_summary(directory: &Path) -> String {
    let Ok(entries) = std::fs::read_dir(directory) else { return "no store directory".into() };
    let (files, bytes) = entries
        .flatten()
        .filter(|entry| entry.path().extension().is_some_and(|extension| extension == "block"))
        .fold((0u64, 0u64), |(files, bytes), entry| (files + 1, bytes + entry.metadata().map_or(0, |m| m.len())));
    format!("{files} block files, {}", mib(bytes))
}

// ---- the relay measurement -------------------------------------------------------------------

struct RoundResult {
    spans: u64,
    wall: Duration,
    cpu: Duration,
    idle_rss: u64,
    hwm: u64,
    threads: usize,
}

async fn relay_rounds(
    options: &Options,
    target: &Target,
    waggle: &Waggle,
    progress: &Progress<'_>,
    bodies: &Arc<Vec<Load>>,
) -> anyhow::Result<Vec<RoundResult>> {
    tokio::time::sleep(IDLE_SETTLE).await;
    let idle_rss = memory(waggle.pid, "VmRSS:")?;
    // Warm-up: connections, pools, allocator and the sender's compressor.
    let warm_up = (options.requests / 4).max(1);
    relay_round(target, waggle, progress, bodies, warm_up, options.clients).await?;
    let mut results = Vec::with_capacity(options.rounds);
    for _ in 0..options.rounds {
        let (spans, wall, cpu) =
            relay_round(target, waggle, progress, bodies, options.requests, options.clients).await?;
        let hwm = memory(waggle.pid, "VmHWM:")?;
        results.push(RoundResult { spans, wall, cpu, idle_rss, hwm, threads: threads(waggle.pid) });
    }
    Ok(results)
}

/// Sends `requests` requests and waits until every destination has every span:
/// `(spans, wall, cpu)`.
async fn relay_round(
    target: &Target,
    waggle: &Waggle,
    progress: &Progress<'_>,
    bodies: &Arc<Vec<Load>>,
    requests: usize,
    clients: usize,
) -> anyhow::Result<(u64, Duration, Duration)> {
    let before = progress.now().await?;
    let cpu_before = cpu::cpu_time(waggle.pid)?;
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (target, next, bodies) = (target.clone(), Arc::clone(&next), Arc::clone(bodies));
        tasks.spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= requests {
                    return Ok::<(), anyhow::Error>(());
                }
                target.send(&bodies[index % bodies.len()]).await?;
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    progress.wait_for(before, (requests * SPANS_PER_REQUEST) as u64).await?;
    let wall = started.elapsed();
    let cpu = cpu::cpu_time(waggle.pid)? - cpu_before;
    Ok(((requests * SPANS_PER_REQUEST) as u64, wall, cpu))
}

fn print_rounds(input: Input, store: StoreMode, compression: OutCompression, rounds: &[RoundResult]) {
    let zip = compression.name();
    let out = match store {
        StoreMode::Off => format!("OTLP/HTTP {zip} out (Honeycomb lane only)"),
        StoreMode::On => format!("OTLP/HTTP {zip} out (Honeycomb lane) and the local store"),
        StoreMode::Only => "the local store only".to_string(),
    };
    println!("\n{} in → {out}", input.name());
    println!(
        "{:>6} {:>9} {:>9} {:>9} {:>15} {:>12} {:>9} {:>9} {:>7}",
        "round", "spans", "wall s", "cpu s", "spans/cpu-s", "spans/s", "idle RSS", "peak RSS", "threads"
    );
    for (i, round) in rounds.iter().enumerate() {
        println!(
            "{:>6} {:>9} {:>9.3} {:>9.3} {:>15.0} {:>12.0} {:>9} {:>9} {:>7}",
            i + 1,
            round.spans,
            round.wall.as_secs_f64(),
            round.cpu.as_secs_f64(),
            per_cpu_second(round),
            round.spans as f64 / round.wall.as_secs_f64(),
            mib(round.idle_rss),
            mib(round.hwm),
            round.threads
        );
    }
    let median = |values: Vec<f64>| -> f64 {
        let mut values = values;
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let per_cpu = median(rounds.iter().map(per_cpu_second).collect());
    let per_wall = median(rounds.iter().map(|r| r.spans as f64 / r.wall.as_secs_f64()).collect());
    let peak = rounds.iter().map(|r| r.hwm).max().unwrap_or(0);
    println!(
        "median: {per_cpu:.0} spans per CPU-second, {per_wall:.0} spans/s wall; idle RSS {}, peak RSS {}",
        mib(rounds[0].idle_rss),
        mib(peak)
    );
}

/// A store-only run: spans stored, for how long, at what CPU, and how many requests got 429.
struct StoreOnlyRound {
    spans: u64,
    wall: Duration,
    cpu: Duration,
    refused: u64,
    hwm: u64,
}

/// Sends flat out for `options.seconds`, then waits until the store has every accepted span.
async fn store_only_round(
    options: &Options,
    target: &Target,
    waggle: &Waggle,
    progress: &Progress<'_>,
    bodies: &Arc<Vec<Load>>,
) -> anyhow::Result<StoreOnlyRound> {
    tokio::time::sleep(IDLE_SETTLE).await;
    let before = progress.now().await?;
    let refused_before = target.refused();
    let cpu_before = cpu::cpu_time(waggle.pid)?;
    let started = Instant::now();
    let until = started + Duration::from_secs(options.seconds);
    let sent = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..options.clients {
        let (target, sent, bodies) = (target.clone(), Arc::clone(&sent), Arc::clone(bodies));
        tasks.spawn(async move {
            while Instant::now() < until {
                let index = sent.fetch_add(1, Ordering::Relaxed);
                target.send(&bodies[index % bodies.len()]).await?;
            }
            Ok::<(), anyhow::Error>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    let spans = (sent.load(Ordering::Relaxed) * SPANS_PER_REQUEST) as u64;
    progress.wait_for(before, spans).await?;
    Ok(StoreOnlyRound {
        spans,
        wall: started.elapsed(),
        cpu: cpu::cpu_time(waggle.pid)? - cpu_before,
        refused: target.refused() - refused_before,
        hwm: memory(waggle.pid, "VmHWM:")?,
    })
}

fn print_store_only(input: Input, round: &StoreOnlyRound) {
    println!("\n{} in → the local store only, flat out", input.name());
    println!(
        "{} spans stored in {:.1} s: {:.0} spans/s, {:.0} spans per CPU-second; {} requests answered 429; peak RSS {}",
        round.spans,
        round.wall.as_secs_f64(),
        round.spans as f64 / round.wall.as_secs_f64(),
        round.spans as f64 / round.cpu.as_secs_f64().max(1e-3),
        round.refused,
        mib(round.hwm)
    );
}

/// A paced run: CPU and memory at a steady rate, and the refusals it met.
struct PacedRound {
    spans: u64,
    wall: Duration,
    cpu: Duration,
    rss: u64,
    refused: u64,
}

/// Sends `rate` spans per second for `options.seconds` (100-span requests on a fixed schedule,
/// spread over the clients), then waits until every destination has every span.
async fn paced_round(
    options: &Options,
    rate: usize,
    target: &Target,
    waggle: &Waggle,
    progress: &Progress<'_>,
    bodies: &Arc<Vec<Load>>,
) -> anyhow::Result<PacedRound> {
    tokio::time::sleep(IDLE_SETTLE).await;
    let requests = (rate * options.seconds as usize).div_ceil(SPANS_PER_REQUEST);
    let per_client = requests.div_ceil(options.clients);
    let interval = Duration::from_secs(options.seconds) * options.clients as u32 / requests as u32;
    let before = progress.now().await?;
    let refused_before = target.refused();
    let cpu_before = cpu::cpu_time(waggle.pid)?;
    let started = Instant::now();
    let clients = options.clients;
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let (target, bodies) = (target.clone(), Arc::clone(bodies));
        tasks.spawn(async move {
            // Clients start spread over one interval, so the load is even.
            tokio::time::sleep(interval * client as u32 / clients as u32).await;
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for index in 0..per_client {
                ticks.tick().await;
                target.send(&bodies[(index * clients + client) % bodies.len()]).await?;
            }
            Ok::<(), anyhow::Error>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    let spans = (per_client * options.clients * SPANS_PER_REQUEST) as u64;
    progress.wait_for(before, spans).await?;
    Ok(PacedRound {
        spans,
        wall: started.elapsed(),
        cpu: cpu::cpu_time(waggle.pid)? - cpu_before,
        rss: memory(waggle.pid, "VmRSS:")?,
        refused: target.refused() - refused_before,
    })
}

fn print_paced(input: Input, store: StoreMode, compression: OutCompression, rate: usize, round: &PacedRound) {
    let zip = compression.name();
    let out = match store {
        StoreMode::Off => format!("Honeycomb lane only ({zip} out)"),
        StoreMode::On => format!("Honeycomb lane ({zip} out) and the local store"),
        StoreMode::Only => "the local store only".to_string(),
    };
    println!("\n{} in at {rate} spans/s → {out}", input.name());
    println!(
        "{} spans in {:.1} s ({:.0} spans/s): {:.1}% of one core, RSS {}; {} requests answered 429",
        round.spans,
        round.wall.as_secs_f64(),
        round.spans as f64 / round.wall.as_secs_f64(),
        100.0 * round.cpu.as_secs_f64() / round.wall.as_secs_f64(),
        mib(round.rss),
        round.refused
    );
}

fn per_cpu_second(round: &RoundResult) -> f64 {
    round.spans as f64 / round.cpu.as_secs_f64().max(1e-3)
}

// ---- idle memory with the default configuration ----------------------------------------------

struct Idle {
    rss: u64,
    hwm: u64,
    threads: usize,
}

/// Starts waggle with the built-in defaults (local store on; ports moved to free ones) and reads
/// its memory once it has settled.
async fn idle_default_config(binary: &Path, scratch: &Scratch, extra_args: &[String]) -> anyhow::Result<Idle> {
    let data_dir = scratch.path.join("idle-data");
    let config = format!(
        r#"data_dir = "{}"
[admin]
endpoint = "127.0.0.1:0"
[receivers.otlp_http]
endpoint = "127.0.0.1:0"
[receivers.otlp_grpc]
endpoint = "127.0.0.1:0"
[receivers.xray_udp]
endpoint = "127.0.0.1:0"
[receivers.xray_tcp]
endpoint = "127.0.0.1:0"
"#,
        data_dir.display()
    );
    let waggle = Waggle::start(binary, scratch, "idle", &config, extra_args)?;
    tokio::time::sleep(IDLE_SETTLE).await;
    let idle = (|| {
        Ok::<_, anyhow::Error>(Idle {
            rss: memory(waggle.pid, "VmRSS:")?,
            hwm: memory(waggle.pid, "VmHWM:")?,
            threads: threads(waggle.pid),
        })
    })();
    waggle.stop()?;
    idle
}

fn relay_config(data_dir: &Path, sink: SocketAddr, store: StoreMode, compression: OutCompression) -> String {
    let local = if store == StoreMode::Off { "false" } else { "true" };
    let honeycomb = if store == StoreMode::Only { "false" } else { "true" };
    format!(
        r#"data_dir = "{}"
[admin]
endpoint = "127.0.0.1:0"
[receivers.otlp_http]
endpoint = "127.0.0.1:0"
[receivers.otlp_grpc]
endpoint = "127.0.0.1:0"
[receivers.xray_udp]
endpoint = "127.0.0.1:0"
[receivers.xray_tcp]
enabled = false
[destinations.local]
enabled = {local}
[destinations.xray]
enabled = false
[destinations.honeycomb]
enabled = {honeycomb}
api_key = "waggle-bench-not-a-key"
endpoint = "http://{sink}"
compression = "{compression}"
"#,
        data_dir.display(),
        compression = compression.name()
    )
}

// ---- the waggle process ----------------------------------------------------------------------

struct Waggle {
    child: Child,
    pid: u32,
    addresses: Vec<(String, String)>,
}

impl Waggle {
    /// Starts waggle with `config` and waits for its `ready` line, collecting the `listening`
    /// addresses. Its output keeps being drained (WARN and ERROR lines are echoed).
    fn start(binary: &Path, scratch: &Scratch, name: &str, config: &str, extra: &[String]) -> anyhow::Result<Waggle> {
        let config_path = scratch.path.join(format!("{name}.toml"));
        std::fs::write(&config_path, config)?;
        let mut command = Command::new(binary);
        command
            .arg("--config")
            .arg(&config_path)
            .args(["--log-format", "json"])
            .args(extra)
            .current_dir(&scratch.path)
            .env_clear()
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", scratch.path.join("aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", scratch.path.join("aws-credentials"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for key in ["PATH", "HOME", "LANG"] {
            if let Ok(value) = std::env::var(key) {
                command.env(key, value);
            }
        }
        let mut child = command.spawn().with_context(|| format!("cannot start {}", binary.display()))?;
        let pid = child.id();
        let stdout = child.stdout.take().context("waggle's stdout")?;
        let stderr = child.stderr.take().context("waggle's stderr")?;
        let (events, ready) = std::sync::mpsc::channel();
        std::thread::spawn(move || read_output(stdout, events));
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut text);
            if !text.trim().is_empty() {
                eprintln!("waggle stderr: {}", text.trim());
            }
        });
        let mut waggle = Waggle { child, pid, addresses: Vec::new() };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match ready.recv_timeout(left) {
                Ok(Event::Listening(listener, address)) => waggle.addresses.push((listener, address)),
                Ok(Event::Ready) => return Ok(waggle),
                Err(_) => {
                    let _ = waggle.stop();
                    bail!("waggle did not log `ready` within {START_TIMEOUT:?}");
                }
            }
        }
    }

    fn address(&self, listener: &str) -> anyhow::Result<SocketAddr> {
        let (_, address) = self
            .addresses
            .iter()
            .find(|(name, _)| name == listener)
            .with_context(|| format!("waggle logged no `listening` line for {listener}"))?;
        address.parse().with_context(|| format!("bad address {address}"))
    }

    /// SIGTERM, then SIGKILL if waggle has not exited within 15 s.
    fn stop(mut self) -> anyhow::Result<()> {
        self.terminate()
    }

    fn terminate(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            bail!("waggle had already exited");
        }
        let _ = Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("waggle exited with {status}");
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        bail!("waggle did not stop within 15 s of SIGTERM; killed")
    }
}

/// A waggle left running (an early return, a panic) is killed.
impl Drop for Waggle {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

enum Event {
    Listening(String, String),
    Ready,
}

fn read_output(stdout: impl Read, events: std::sync::mpsc::Sender<Event>) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { return };
        let Ok(record) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        let fields = &record["fields"];
        match (fields["message"].as_str(), fields["listener"].as_str(), fields["address"].as_str()) {
            (Some("listening"), Some(listener), Some(address)) => {
                let _ = events.send(Event::Listening(listener.to_string(), address.to_string()));
            }
            (Some("ready"), _, _) => {
                let _ = events.send(Event::Ready);
            }
            _ => {
                if matches!(record["level"].as_str(), Some("WARN" | "ERROR")) {
                    eprintln!("waggle: {line}");
                }
            }
        }
    }
}

fn waggle_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("WAGGLE_BENCH_BIN") {
        return Ok(PathBuf::from(path));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let binary = target.join("release").join("waggle");
    if !binary.is_file() {
        bail!(
            "no release waggle at {}: build it first with `cargo build --release --locked --bin waggle` \
             (same CARGO_TARGET_DIR), or point WAGGLE_BENCH_BIN at one",
            binary.display()
        );
    }
    Ok(binary)
}

/// A scratch directory for config files and data, removed when dropped.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new() -> anyhow::Result<Scratch> {
        let path = std::env::temp_dir().join(format!("waggle-bench-{}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        // Empty AWS files: waggle must not read the developer's own profile.
        std::fs::write(path.join("aws-config"), "")?;
        std::fs::write(path.join("aws-credentials"), "")?;
        Ok(Scratch { path })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// ---- /proc -----------------------------------------------------------------------------------

/// A `/proc/<pid>/status` size line (`VmRSS:`, `VmHWM:`) in bytes.
fn memory(pid: u32, key: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|line| line.starts_with(key)).with_context(|| format!("no {key}"))?;
    let kib: u64 = line[key.len()..].trim().trim_end_matches("kB").trim().parse()?;
    Ok(kib * 1024)
}

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, Iterator::count)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn uptime() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| format!("load average {}", text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")))
        .unwrap_or_default()
}

// ---- the load generator ----------------------------------------------------------------------

/// Where the load goes.
#[derive(Clone)]
struct Target {
    kind: TargetKind,
    /// Requests refused (429, RESOURCE_EXHAUSTED, UNAVAILABLE) and retried.
    refused: Arc<AtomicU64>,
}

#[derive(Clone)]
enum TargetKind {
    Http { client: Box<Client<HttpConnector, Full<Bytes>>>, uri: hyper::Uri },
    Grpc { client: TraceServiceClient<tonic::transport::Channel> },
}

impl Target {
    fn http(address: SocketAddr) -> Target {
        let client = Box::new(Client::builder(TokioExecutor::new()).build_http());
        let uri = format!("http://{address}/v1/traces").parse().expect("a valid URI");
        Target { kind: TargetKind::Http { client, uri }, refused: Arc::default() }
    }

    fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    async fn grpc(address: SocketAddr) -> anyhow::Result<Target> {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))?.connect().await?;
        let client = TraceServiceClient::new(channel).max_encoding_message_size(64 << 20);
        Ok(Target { kind: TargetKind::Grpc { client }, refused: Arc::default() })
    }

    /// Sends one request; a refusal (429 / RESOURCE_EXHAUSTED / UNAVAILABLE) is retried.
    async fn send(&self, load: &Load) -> anyhow::Result<()> {
        for _ in 0..2000 {
            let refused = match &self.kind {
                TargetKind::Http { client, uri } => {
                    let request = Request::post(uri.clone())
                        .header("content-type", "application/x-protobuf")
                        .body(Full::new(load.body.clone()))?;
                    let response = client.request(request).await?;
                    let status = response.status();
                    response.into_body().collect().await?;
                    match status {
                        StatusCode::OK => false,
                        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => true,
                        other => bail!("waggle answered {other}"),
                    }
                }
                TargetKind::Grpc { client } => match client.clone().export(load.request.clone()).await {
                    Ok(_) => false,
                    Err(status)
                        if matches!(status.code(), tonic::Code::ResourceExhausted | tonic::Code::Unavailable) =>
                    {
                        true
                    }
                    Err(status) => bail!("waggle answered {status}"),
                },
            };
            if !refused {
                return Ok(());
            }
            self.refused.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        bail!("waggle kept refusing a request")
    }
}

/// One request to send, encoded for OTLP/HTTP and decoded for the gRPC client.
struct Load {
    body: Bytes,
    request: ExportTraceServiceRequest,
}

/// Realistic server spans from an instrumented web app: one resource, one scope, 100 spans.
fn requests(distinct: usize) -> Vec<Load> {
    let mut random = payload::XorShift::new();
    (0..distinct)
        .map(|_| {
            let request = payload::request(&mut random, SPANS_PER_REQUEST, payload::START_UNIX_NANO);
            Load { body: Bytes::from(request.encode_to_vec()), request }
        })
        .collect()
}

// ---- the sink --------------------------------------------------------------------------------

/// An OTLP/HTTP receiver standing in for Honeycomb: decompresses (the configured encoding, else
/// 400) and decodes each request with prost, counts its spans and answers 200 with an empty
/// protobuf response.
struct Sink {
    address: SocketAddr,
    counts: Arc<SinkCounts>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct SinkCounts {
    spans: AtomicU64,
    changed: Notify,
}

impl Sink {
    async fn start(compression: OutCompression) -> anyhow::Result<Sink> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let counts = Arc::new(SinkCounts::default());
        let shared = Arc::clone(&counts);
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let counts = Arc::clone(&shared);
                connections.spawn(async move {
                    let service = service_fn(move |request| sink_request(Arc::clone(&counts), compression, request));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Ok(Sink { address, counts, task })
    }

    fn spans(&self) -> u64 {
        self.counts.spans.load(Ordering::Acquire)
    }

    async fn wait_for(&self, expected: u64) {
        loop {
            let changed = self.counts.changed.notified();
            if self.spans() >= expected {
                return;
            }
            changed.await;
        }
    }

    /// Stops accepting and drops every connection.
    fn stop(self) {
        self.task.abort();
    }
}

async fn sink_request(
    counts: Arc<SinkCounts>,
    compression: OutCompression,
    request: Request<Incoming>,
) -> anyhow::Result<Response<Full<Bytes>>> {
    let encoded_as_configured =
        request.headers().get("content-encoding").is_some_and(|value| value == compression.name());
    let path_ok = request.uri().path() == "/v1/traces";
    let answer = |status: StatusCode| {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = status;
        response.headers_mut().insert("content-type", "application/x-protobuf".parse().expect("a header value"));
        response
    };
    if request.uri().path() == "/1/auth" {
        // The admin UI's query links ask Honeycomb which team and environment the key is for;
        // the benchmark's key names no account, so it is refused (waggle then does not ask again).
        return Ok(answer(StatusCode::UNAUTHORIZED));
    }
    let body = request.into_body().collect().await?.to_bytes();
    if !encoded_as_configured || !path_ok {
        eprintln!("sink: unexpected request ({}: {encoded_as_configured}, /v1/traces: {path_ok})", compression.name());
        return Ok(answer(StatusCode::BAD_REQUEST));
    }
    let mut plain = Vec::with_capacity(body.len() * 8);
    match compression {
        OutCompression::Gzip => flate2::read::MultiGzDecoder::new(body.as_ref()).read_to_end(&mut plain)?,
        OutCompression::Zstd => zstd::stream::read::Decoder::new(body.as_ref())?.read_to_end(&mut plain)?,
    };
    let decoded = ExportTraceServiceRequest::decode(plain.as_slice())?;
    let spans: usize = decoded.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
    counts.spans.fetch_add(spans as u64, Ordering::AcqRel);
    counts.changed.notify_waiters();
    Ok(answer(StatusCode::OK))
}
