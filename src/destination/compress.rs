//! Request body compression (the [`Compression`] setting) with one reusable compressor per thread.
//!
//! A fresh gzip encoder per body was up to 3× slower here (its memory is handed back to the
//! OS after every body and faults back in), so each sender thread keeps its zstd and gzip
//! contexts and resets them between bodies. Both run at level 1: the hot path never pays for
//! gzip level 6.

use std::cell::RefCell;

use flate2::{Compress, FlushCompress, Status};
use serde::{Deserialize, Serialize};

/// Request body compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Zstd,
    Gzip,
    None,
}

thread_local! {
    static ZSTD: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static GZIP: RefCell<Option<Compress>> = const { RefCell::new(None) };
}

/// The `Content-Encoding` value for a compression, if any.
pub(crate) fn content_encoding(compression: Compression) -> Option<&'static str> {
    match compression {
        Compression::Zstd => Some("zstd"),
        Compression::Gzip => Some("gzip"),
        Compression::None => None,
    }
}

/// Compresses a body; `Compression::None` returns it as is.
pub(crate) fn compress(compression: Compression, body: Vec<u8>) -> std::io::Result<Vec<u8>> {
    match compression {
        Compression::None => Ok(body),
        Compression::Zstd => ZSTD.with_borrow_mut(|slot| {
            let compressor = match slot {
                Some(compressor) => compressor,
                None => slot.insert(zstd::bulk::Compressor::new(1)?),
            };
            compressor.compress(&body)
        }),
        Compression::Gzip => GZIP.with_borrow_mut(|slot| {
            let compressor = slot.get_or_insert_with(|| Compress::new_gzip(flate2::Compression::fast(), 15));
            compressor.reset();
            gzip_into(compressor, &body)
        }),
    }
}

fn gzip_into(compressor: &mut Compress, body: &[u8]) -> std::io::Result<Vec<u8>> {
    // Room for the worst case up front: deflate's bound plus the gzip header and trailer.
    let mut out = Vec::with_capacity(body.len() + body.len() / 1000 + 64);
    loop {
        let consumed = usize::try_from(compressor.total_in()).unwrap_or(usize::MAX);
        let status = compressor
            .compress_vec(&body[consumed.min(body.len())..], &mut out, FlushCompress::Finish)
            .map_err(std::io::Error::other)?;
        match status {
            Status::StreamEnd => return Ok(out),
            Status::Ok | Status::BufError => out.reserve(out.capacity().max(64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn sample() -> Vec<u8> {
        (0..200_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect()
    }

    #[test]
    fn zstd_round_trips_and_reuses_its_context() {
        for _ in 0..3 {
            let compressed = compress(Compression::Zstd, sample()).unwrap();
            assert_eq!(zstd::decode_all(compressed.as_slice()).unwrap(), sample());
        }
    }

    #[test]
    fn gzip_round_trips_and_reuses_its_context() {
        for _ in 0..3 {
            let compressed = compress(Compression::Gzip, sample()).unwrap();
            let mut decoded = Vec::new();
            flate2::read::GzDecoder::new(compressed.as_slice()).read_to_end(&mut decoded).unwrap();
            assert_eq!(decoded, sample());
        }
    }

    #[test]
    fn gzip_handles_an_empty_body() {
        let compressed = compress(Compression::Gzip, Vec::new()).unwrap();
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(compressed.as_slice()).read_to_end(&mut decoded).unwrap();
        assert!(decoded.is_empty());
    }

    #[test]
    fn none_is_the_body_itself() {
        assert_eq!(compress(Compression::None, vec![1, 2, 3]).unwrap(), vec![1, 2, 3]);
    }
}
