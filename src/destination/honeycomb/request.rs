//! How batches become Honeycomb requests: merged OTLP/protobuf bodies split under the size
//! limit ([`otlp_body`]), then compressed ([`compress`]).

use bytes::Bytes;

use crate::destination::compress::Compression;
use crate::destination::{Built, Rejected, compress, otlp_body};
use crate::model::{LossReason, SharedBatch, Signal};

/// One request to Honeycomb.
#[derive(Debug)]
pub(crate) struct HoneycombRequest {
    pub(super) signal: Signal,
    /// Compressed OTLP/protobuf.
    pub(super) body: Bytes,
    pub(super) items: usize,
}

/// The requests for a batch of one signal, none larger than `max_request_size` before
/// compression; bodies that fail to compress are reported as rejected.
pub(super) fn build(
    signal: Signal,
    batches: &[SharedBatch],
    max_request_size: usize,
    compression: Compression,
) -> Built<HoneycombRequest> {
    let (bodies, mut rejected) = match signal {
        Signal::Traces => otlp_body::traces(batches, max_request_size),
        Signal::Logs => otlp_body::logs(batches, max_request_size),
        Signal::Metrics => otlp_body::metrics(batches, max_request_size),
    };
    let mut requests = Vec::with_capacity(bodies.len());
    for body in bodies {
        match compress::compress(compression, body.bytes) {
            Ok(compressed) => requests.push(HoneycombRequest { signal, body: compressed.into(), items: body.items }),
            Err(error) => rejected.push(Rejected {
                items: body.items,
                reason: LossReason::CompressionFailed,
                detail: error.to_string(),
            }),
        }
    }
    Built { requests, rejected }
}
