//! waggle: a local telemetry relay. OTLP (HTTP and gRPC) and X-Ray segments (UDP) come in;
//! each destination — the embedded store, Honeycomb, AWS X-Ray, CloudWatch Logs, Rollbar — gets them
//! through its own lane, so a slow destination never holds up the others.
//!
//! # A tour, in the order a batch travels
//!
//! 1. **[`receiver`]** parses and checks input and never waits on a destination.
//!    (`receiver::rollbar_relay` takes the Rollbar SDKs' items on the OTLP/HTTP listener and
//!    hands them to the Rollbar lane alone.) Before a request is checked, the OTLP receivers
//!    add the configured [`resource`] attributes to it: protobuf on the wire, without decoding
//!    it (`resource::wire`), and nothing at all when none are configured.
//!    `receiver::otlp` reads a request body (`body`: size limits, gzip/zstd), checks protobuf
//!    on the wire without decoding it (`wire`) or decodes JSON (`codec`), hands the request to
//!    the router (`intake`) and maps every error to its HTTP or gRPC answer in one place
//!    (`error`); `http` and `grpc` are the two servers. `receiver::xray_udp` parses datagrams
//!    (`datagram`) and runs the socket loop (`socket`).
//! 2. What a receiver makes is a [`model::Batch`]: the payload as it arrived (OTLP protobuf
//!    bytes, or X-Ray documents byte-for-byte), its [`model::Signal`] and size. A lane that
//!    needs spans asks for them with `OtlpRequest::decoded()`, which returns a `Result`: a
//!    request that does not decode is counted, never silently emptied. [`model`] also names
//!    the [`model::Destination`]s and the [`model::LossReason`]s metrics are labelled with.
//! 3. **[`pipeline::router`]** shares the batch (an `Arc`, no copies) with every lane that
//!    takes its signal, all or nothing: either every lane takes it and the caller gets 200,
//!    or none does and the caller is asked to retry (429 / `RESOURCE_EXHAUSTED`). A stalled
//!    lane is left out, and so is the local store's when it falls behind (its
//!    [`pipeline::lane::WhenFull`] policy), only while another lane takes the batch: a 200
//!    always means some lane keeps it.
//! 4. **[`pipeline::lane`]** is one destination's lane: `LaneHandle::take` writes the batch
//!    ahead to the lane's disk spool when it has one ([`pipeline::spool`]: writer, reader,
//!    start-up recovery), and puts it in the memory queue (a read-ahead cache) when that has
//!    room; a batcher groups items, senders deliver them with retries ([`pipeline::retry`])
//!    and the destination's own `Retry-After`, and replay feeds the spool back in, oldest
//!    first.
//! 5. **[`destination`]**: each destination implements [`destination::Exporter`] (how a batch
//!    becomes requests, and one send). Each lives in one folder with the same parts:
//!    `settings`, `request` (batch → requests), `client` (a trait over the network calls, so
//!    send and classification are unit-tested with a scripted client), the exporter, and
//!    `setup` (built from settings, or off and why). Translation between formats is pure and
//!    runs on the lane's tasks ([`translate`]). The embedded store ([`store`]) appends rows to
//!    an open block per signal (trace requests straight from their protobuf), seals full
//!    blocks into compressed column files on its own thread, and answers lists, searches, the
//!    Jaeger API and Honeycomb queries from open and sealed blocks alike; [`query`] runs
//!    Honeycomb's query specification (engine-agnostic: the store hands it blocks through
//!    three traits).
//! 6. **[`aws`]** is the one place for AWS: region and credentials, SDK clients, one failure
//!    classifier and one SigV4 signer, shared by the X-Ray and CloudWatch Logs destinations
//!    and by the X-Ray SDKs' [`sampling_proxy`].
//! 7. **[`telemetry`]** is what waggle says about itself: Prometheus metrics, per-destination
//!    counts kept where they happen (`counts`), `/status`, logging and rate-limited warnings;
//!    [`admin`] serves them with health checks and the store's query APIs (`/api/query`).
//!
//! [`limits`] holds what bounds it all: one memory budget that request bodies (before and
//! after decompression), X-Ray datagrams and queued batches take their room from, each TCP listener's
//! connection cap and timeouts, and the open-file limit.
//!
//! [`app`] only wires: it reads [`config`], binds the listeners, starts the destinations'
//! lanes, the receivers and the admin endpoint, and drains the lanes on shutdown. [`cli`] and
//! [`health`] are the command line and `waggle health`; [`cli_docs`] makes shell completions
//! and the man page from it; [`check`] is `waggle check` (every destination verified live, one
//! line each) and [`status`] is `waggle status` (`/status` for people).
//!
//! `fuzzing` (hidden) is what the cargo-fuzz targets in `fuzz/` and their corpus replay test
//! call: each parser of outside bytes with the properties it must keep (see `fuzz/README.md`).
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub(crate) mod aws;
pub mod check;
pub mod cli;
pub mod cli_docs;
pub mod config;
pub mod destination;
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod limits;
pub mod model;
pub mod pipeline;
pub mod query;
pub mod receiver;
pub mod resource;
pub mod sampling_proxy;
pub mod status;
pub mod store;
pub mod telemetry;
pub mod translate;
