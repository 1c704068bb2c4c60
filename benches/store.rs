//! The local store's own speed, through the library (no HTTP): ingest of `WAGGLE_BENCH_SPANS`
//! spans (1,000,000; the relay benchmark's payload, every id unique), the bytes each span takes
//! on disk, and the time to answer `P90(duration_ms)` + `COUNT` + `HEATMAP(duration_ms)` by
//! `http.route` over all of them and to find one trace by id.
//!
//! ```text
//! cargo bench --bench store
//! ```
//!
//! Each request reaches the store as the receiver hands it over: protobuf bytes, decoded by
//! the store's lane. CPU is the whole process's (the store's sealer thread included) during
//! ingest, from `/proc/self/stat`; generating the payload is timed apart and not counted. The
//! store lives in a temporary directory, removed at the end.
#![forbid(unsafe_code)]

#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/payload.rs"]
mod payload;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use prost::Message;
use waggle::destination::Exporter;
use waggle::destination::local::LocalStore;
use waggle::model::{Batch, OtlpRequest, Signal};
use waggle::query::{QuerySource, QuerySpec};
use waggle::store::StoreOptions;

/// The allocator the waggle binary uses, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const SPANS_PER_REQUEST: usize = 100;
const QUERY_RUNS: usize = 5;
const TRACE_LOOKUPS: usize = 20;

fn main() -> anyhow::Result<()> {
    let spans: usize = match std::env::var("WAGGLE_BENCH_SPANS") {
        Ok(value) => value.parse().with_context(|| format!("WAGGLE_BENCH_SPANS={value}"))?,
        Err(_) => 1_000_000,
    };
    let requests = spans.div_ceil(SPANS_PER_REQUEST);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let directory = tempfile::tempdir()?;
    let options = StoreOptions { max_bytes: 8 << 30, ..StoreOptions::default() };
    let (store, reader) = LocalStore::open(&directory.path().join("store"), options)?;
    println!(
        "local store benchmark: {} spans in {requests} requests of {SPANS_PER_REQUEST}",
        requests * SPANS_PER_REQUEST
    );

    let mut random = payload::XorShift::new();
    let mut trace_ids = Vec::new();
    let mut generating = Duration::ZERO;
    let cpu_before = cpu::cpu_time(std::process::id())?;
    let started = Instant::now();
    for index in 0..requests {
        let generated = Instant::now();
        let start = payload::START_UNIX_NANO + (index * SPANS_PER_REQUEST) as u64 * 1_000_000;
        let request = payload::request(&mut random, SPANS_PER_REQUEST, start);
        if index % (requests / TRACE_LOOKUPS).max(1) == 0 {
            trace_ids
                .push(<[u8; 16]>::try_from(request.resource_spans[0].scope_spans[0].spans[7].trace_id.as_slice())?);
        }
        let body = Bytes::from(request.encode_to_vec());
        let batch = Batch::otlp_traces(OtlpRequest::from_checked_protobuf(body.clone()), SPANS_PER_REQUEST, body.len());
        generating += generated.elapsed();
        runtime.block_on(store_one(&store, batch))?;
    }
    store.flush();
    let wall = started.elapsed() - generating;
    let cpu = cpu::cpu_time(std::process::id())? - cpu_before - generating;
    let stats = reader.stats();
    let stored = stats.spans as f64;
    println!(
        "ingest: {:.0} spans/s on one thread ({:.0} spans per CPU-second, the sealer included); {:.1} s",
        stored / wall.as_secs_f64(),
        stored / cpu.as_secs_f64().max(1e-3),
        wall.as_secs_f64()
    );
    println!(
        "on disk: {} blocks, {:.1} MiB, {} bytes per span (the payload is {:.0} bytes per span as protobuf)",
        stats.blocks,
        stats.bytes as f64 / (1 << 20) as f64,
        stats.bytes_per_span.unwrap_or(0),
        payload_bytes_per_span()
    );

    let spec: QuerySpec = serde_json::from_value(serde_json::json!({
        "calculations": [{"op": "P90", "column": "duration_ms"}, {"op": "COUNT"}, {"op": "HEATMAP", "column": "duration_ms"}],
        "breakdowns": ["http.route"],
        "start_time": payload::START_UNIX_NANO / 1_000_000_000,
        "end_time": payload::START_UNIX_NANO / 1_000_000_000 + (requests * SPANS_PER_REQUEST) as u64 / 1000 + 1,
    }))?;
    let mut query_times = Vec::new();
    let mut counted = 0.0;
    for _ in 0..QUERY_RUNS {
        let begun = Instant::now();
        let result = reader.run_query(spec.clone(), 0)?;
        query_times.push(begun.elapsed());
        counted = result.total_count as f64;
    }
    println!(
        "query P90(duration_ms) + COUNT + HEATMAP(duration_ms) by http.route over {counted} spans: median {:.0} ms, best {:.0} ms",
        median(&mut query_times).as_secs_f64() * 1e3,
        query_times.iter().min().copied().unwrap_or_default().as_secs_f64() * 1e3
    );

    let mut lookup_times = Vec::new();
    for trace_id in &trace_ids {
        let begun = Instant::now();
        let found = runtime.block_on(reader.trace(*trace_id))?;
        lookup_times.push(begun.elapsed());
        anyhow::ensure!(found.is_some(), "trace {} not found", hex::encode(trace_id));
    }
    println!(
        "one trace by id ({} lookups): median {:.1} ms, worst {:.1} ms",
        lookup_times.len(),
        median(&mut lookup_times).as_secs_f64() * 1e3,
        lookup_times.iter().max().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    drop((store, reader));
    Ok(())
}

/// Builds and sends one batch as the store's lane does, waiting when the store is behind.
async fn store_one(store: &LocalStore, batch: Batch) -> anyhow::Result<()> {
    let built = store.build(Signal::Traces, &[Arc::new(batch)]);
    anyhow::ensure!(built.rejected.is_empty(), "rejected: {:?}", built.rejected);
    for mut request in built.requests {
        loop {
            match store.send(&mut request).await {
                Ok(_) => break,
                Err(waggle::destination::ExportError::Retryable { .. }) => store.wait_for_writes(),
                Err(error) => anyhow::bail!("store failed: {error}"),
            }
        }
    }
    Ok(())
}

fn payload_bytes_per_span() -> f64 {
    let request = payload::request(&mut payload::XorShift::new(), SPANS_PER_REQUEST, payload::START_UNIX_NANO);
    request.encoded_len() as f64 / SPANS_PER_REQUEST as f64
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}
