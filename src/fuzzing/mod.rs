//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz) and for the test that replays
//! their corpora on the stable toolchain (`tests/fuzz_corpus.rs`). Not an API: hidden from the
//! docs, and nothing in waggle calls it.
//!
//! Each function feeds arbitrary bytes to one parser of outside bytes, the way waggle feeds
//! it what arrives, and checks what must hold whatever the bytes; it panics when something
//! does not (a panic is what the fuzzer reports). Parsers must never panic themselves:
//!
//! - [`otlp_protobuf`]: the receiver's protobuf wire check against prost (differential);
//! - [`otlp_json`]: OTLP/JSON decoding;
//! - [`xray_datagram`]: the X-Ray daemon protocol datagram parser;
//! - [`sampling_proxy`]: the X-Ray sampling proxy's handling of an SDK's request;
//! - [`spool_segment`]: a spool segment file read back at start-up;
//! - [`daemon_config`]: the X-Ray daemon's `cfg.yaml` and command-line flags.

mod daemon;
mod otlp;
mod sampling;
mod spool;
mod xray;

pub use self::daemon::daemon_config;
pub use self::otlp::{otlp_json, otlp_protobuf};
pub use self::sampling::sampling_proxy;
pub use self::spool::spool_segment;
pub use self::xray::xray_datagram;

/// A target's name in `fuzz/Cargo.toml` (and its corpus folder, `fuzz/corpus/<name>`) and its
/// function.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: [Target; 6] = [
    ("otlp_protobuf", otlp_protobuf),
    ("otlp_json", otlp_json),
    ("xray_datagram", xray_datagram),
    ("sampling_proxy", sampling_proxy),
    ("spool_segment", spool_segment),
    ("daemon_config", daemon_config),
];
