//! Request bodies: reading them under a size cap and decompressing gzip or zstd into a buffer
//! capped at the same limit, so neither a huge upload nor a compression bomb can make the
//! receiver hold more than `limit + 1` bytes of it.
//!
//! The raw (still compressed) body is read up to `limit` bytes: a compressed body is never
//! larger than what it expands to in practice, and the cap keeps slow uploads of junk bounded.
//! Decompression then streams into a buffer that grows only up to `limit + 1` bytes and stops
//! the moment it would exceed that.
//!
//! Both take their room from the [`MemoryBudget`](crate::limits::MemoryBudget) through a
//! [`MemoryPermit`] (`read_within`, `decompress_within`): a body that does not fit fails with
//! [`BodyError::OverBudget`] before the bytes are held, and zstd frames may not ask for a
//! window over 8 MiB (RFC 9659's limit for the `zstd` content coding). [`reserve_declared`]
//! takes a body's declared length before it is read; [`discard`] drains a refused one.

use std::io::Read;

use axum::body::Body;
use bytes::{Buf, Bytes, BytesMut};
use http_body_util::BodyExt;

use crate::limits::{BudgetExhausted, MemoryBudget, MemoryPermit};

/// Smallest step the decompression buffer grows by.
const MIN_GROWTH: usize = 64 * 1024;

/// Decompression output produced on the async runtime before the rest is moved to a blocking
/// thread (see [`decompress`]).
pub const INLINE_DECOMPRESS_BYTES: usize = 256 * 1024;

/// Decompressions running at once: two per core.
static DECOMPRESSIONS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    tokio::sync::Semaphore::new(2 * cores)
});

/// The `Content-Encoding` values the OTLP receivers accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentEncoding {
    Identity,
    Gzip,
    Zstd,
}

impl ContentEncoding {
    /// Parses a `Content-Encoding` header; `None` means the coding is not supported. A missing
    /// or empty header is `identity`. A list (`gzip, identity`) is accepted when at most one
    /// entry is not `identity`.
    pub fn parse(header: Option<&[u8]>) -> Option<ContentEncoding> {
        let Some(header) = header else { return Some(ContentEncoding::Identity) };
        let header = std::str::from_utf8(header).ok()?;
        let mut chosen = ContentEncoding::Identity;
        for coding in header.split(',').map(str::trim).filter(|coding| !coding.is_empty()) {
            let parsed = ContentEncoding::from_name(coding)?;
            if parsed != ContentEncoding::Identity {
                if chosen != ContentEncoding::Identity {
                    return None;
                }
                chosen = parsed;
            }
        }
        Some(chosen)
    }

    fn from_name(name: &str) -> Option<ContentEncoding> {
        if name.eq_ignore_ascii_case("identity") {
            Some(ContentEncoding::Identity)
        } else if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            Some(ContentEncoding::Gzip)
        } else if name.eq_ignore_ascii_case("zstd") {
            Some(ContentEncoding::Zstd)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ContentEncoding::Identity => "identity",
            ContentEncoding::Gzip => "gzip",
            ContentEncoding::Zstd => "zstd",
        }
    }
}

impl std::fmt::Display for ContentEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a body could not be turned into bytes to decode.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body, compressed or decompressed, is larger than the limit.
    #[error("request body is larger than the limit of {limit} bytes (measured after decompression)")]
    TooLarge { limit: usize },
    /// The compressed data is corrupt, truncated or needs more memory than allowed.
    #[error("could not decompress the {encoding} request body: {source}")]
    Corrupt {
        encoding: ContentEncoding,
        #[source]
        source: std::io::Error,
    },
    /// The connection failed while the body was being read.
    #[error("could not read the request body: {0}")]
    Read(#[source] axum::Error),
    /// Holding or inflating the body would exceed the memory budget.
    #[error("not enough memory for this request body now: {0}")]
    OverBudget(#[source] BudgetExhausted),
}

/// The permit a body takes before anything of it is read: its declared length when that is
/// within `limit` (a longer one is refused as too large by [`read_within`] without reading),
/// else nothing yet ([`read_within`] grows it frame by frame).
pub fn reserve_declared(
    budget: &MemoryBudget,
    declared_len: Option<u64>,
    limit: usize,
) -> Result<MemoryPermit, BudgetExhausted> {
    let up_front = declared_len.filter(|&len| len <= limit as u64).map_or(0, |len| len as usize);
    budget.try_reserve(up_front)
}

/// Reads a refused body to its end without keeping it (at most `limit` bytes), so the client,
/// still sending, gets the answer instead of a reset. Callers bound it with their body timeout.
pub async fn discard(mut body: Body, limit: usize) {
    let mut total = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        total = total.saturating_add(frame.data_ref().map_or(0, Bytes::len));
        if total > limit {
            break;
        }
    }
}

/// Reads a whole request body, failing with [`BodyError::TooLarge`] as soon as more than
/// `limit` bytes have arrived (or at once when `declared_len` already says so).
pub async fn read_capped(body: Body, limit: usize, declared_len: Option<u64>) -> Result<Bytes, BodyError> {
    read_within(body, limit, declared_len, &mut MemoryPermit::none()).await
}

/// [`read_capped`], holding the bytes read in `permit`: it is grown as bytes arrive beyond
/// what it already holds (the caller reserves a declared length up front).
pub async fn read_within(
    mut body: Body,
    limit: usize,
    declared_len: Option<u64>,
    permit: &mut MemoryPermit,
) -> Result<Bytes, BodyError> {
    if declared_len.is_some_and(|len| len > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut first: Option<Bytes> = None;
    let mut rest: Option<BytesMut> = None;
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(chunk) = frame.map_err(BodyError::Read)?.into_data() else { continue };
        total = total.saturating_add(chunk.len());
        if total > limit {
            return Err(BodyError::TooLarge { limit });
        }
        if total > permit.bytes() {
            permit.try_grow(total - permit.bytes()).map_err(BodyError::OverBudget)?;
        }
        match (&mut first, &mut rest) {
            (None, _) => first = Some(chunk),
            (Some(head), None) => {
                let expected = declared_len.map_or(2 * total, |len| len as usize).clamp(total, limit);
                let mut joined = BytesMut::with_capacity(expected);
                joined.extend_from_slice(head);
                joined.extend_from_slice(&chunk);
                rest = Some(joined);
            }
            (Some(_), Some(joined)) => joined.extend_from_slice(&chunk),
        }
    }
    Ok(match (first, rest) {
        (_, Some(joined)) => joined.freeze(),
        (Some(only), None) => only,
        (None, None) => Bytes::new(),
    })
}

/// Decompresses `raw` into at most `limit` bytes. Small outputs are produced in place; once
/// more than [`INLINE_DECOMPRESS_BYTES`] have come out, the rest is finished on a blocking
/// thread so a large body (or a bomb) does not stall the runtime's other requests.
pub async fn decompress(encoding: ContentEncoding, raw: Bytes, limit: usize) -> Result<Bytes, BodyError> {
    decompress_within(encoding, raw, limit, MemoryPermit::none()).await.map(|(plain, _)| plain)
}

/// [`decompress`], taking the output's room (and a zstd frame's window) from `permit`, which
/// comes back holding the compressed input and the output.
pub async fn decompress_within(
    encoding: ContentEncoding,
    raw: Bytes,
    limit: usize,
    permit: MemoryPermit,
) -> Result<(Bytes, MemoryPermit), BodyError> {
    // A zero-byte body is an empty request whatever its Content-Encoding says.
    if encoding == ContentEncoding::Identity || raw.is_empty() {
        return Ok((raw, permit));
    }
    // Bodies are inflated a few at a time: more at once would not inflate faster on the cores
    // there are, and each would hold output buffers (and the allocator's freed ones) of its
    // own. The semaphore is never closed.
    let _turn = DECOMPRESSIONS.acquire().await.ok();
    let mut decompressor = Decompressor::new(encoding, raw, limit)?.within(permit)?;
    if decompressor.advance(INLINE_DECOMPRESS_BYTES)? {
        return Ok(decompressor.finish());
    }
    let finished = tokio::task::spawn_blocking(move || {
        decompressor.advance(usize::MAX)?;
        Ok(decompressor.finish())
    })
    .await;
    match finished {
        Ok(result) => result,
        // The closure cannot panic on input (every error is returned); re-raise a bug as such.
        Err(join_error) => std::panic::resume_unwind(join_error.into_panic()),
    }
}

/// Decompresses `raw` into at most `limit` bytes on the calling thread.
pub fn decompress_blocking(encoding: ContentEncoding, raw: Bytes, limit: usize) -> Result<Bytes, BodyError> {
    if encoding == ContentEncoding::Identity || raw.is_empty() {
        return if raw.len() > limit { Err(BodyError::TooLarge { limit }) } else { Ok(raw) };
    }
    let mut decompressor = Decompressor::new(encoding, raw, limit)?;
    decompressor.advance(usize::MAX)?;
    Ok(decompressor.into_bytes())
}

/// A decompression in progress, writing into a buffer that never grows past `limit + 1`.
pub struct Decompressor {
    encoding: ContentEncoding,
    reader: Box<dyn Read + Send>,
    /// `out[..filled]` is output; the rest is zeroed room for the next reads.
    out: Vec<u8>,
    filled: usize,
    limit: usize,
    /// Holds the output's room; of no budget unless [`Decompressor::within`] gave one.
    permit: MemoryPermit,
    /// Bytes of `permit` that are not output room (the input, a zstd window).
    permit_base: usize,
    /// The window the first zstd frame asks for (0 for gzip).
    zstd_window: usize,
    /// The output size the body's header or trailer gives (at most `limit`): the first
    /// buffer is made that large (one byte more, to see the end), so an honest body is
    /// inflated into one allocation.
    declared: Option<usize>,
}

impl Decompressor {
    /// Starts decompressing `raw`. Fails only for a zstd frame header that is already corrupt.
    /// A zstd body whose frame header gives a content size over `limit` is refused here,
    /// before anything is inflated.
    pub fn new(encoding: ContentEncoding, raw: Bytes, limit: usize) -> Result<Decompressor, BodyError> {
        let zstd_window = if encoding == ContentEncoding::Zstd { zstd_frame_window(&raw) } else { 0 };
        let declared = declared_output(encoding, &raw);
        if encoding == ContentEncoding::Zstd && declared.is_some_and(|size| size > limit as u64) {
            return Err(BodyError::TooLarge { limit });
        }
        // A gzip trailer is only checked at the end: it sizes the first buffer, never past what
        // deflate can expand the body to.
        let most = if encoding == ContentEncoding::Gzip { raw.len() as u64 * MAX_DEFLATE_RATIO } else { u64::MAX };
        let declared = declared.map(|size| size.min(most).min(limit as u64) as usize);
        let reader: Box<dyn Read + Send> = match encoding {
            ContentEncoding::Identity => Box::new(raw.reader()),
            ContentEncoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw.reader())),
            ContentEncoding::Zstd => Box::new(zstd_reader(raw, limit).map_err(|source| corrupt(encoding, source))?),
        };
        Ok(Decompressor {
            encoding,
            reader,
            out: Vec::new(),
            filled: 0,
            limit,
            permit: MemoryPermit::none(),
            permit_base: 0,
            zstd_window,
            declared,
        })
    }

    /// Takes the output's room from `permit` (which holds the input already); a zstd body
    /// first takes its frame's window.
    pub fn within(mut self, mut permit: MemoryPermit) -> Result<Decompressor, BodyError> {
        if self.encoding == ContentEncoding::Zstd {
            permit.try_grow(ZSTD_DECODER_OVERHEAD + self.zstd_window.min(self.limit)).map_err(BodyError::OverBudget)?;
        }
        self.permit_base = permit.bytes();
        self.permit = permit;
        Ok(self)
    }

    /// The output and the permit that holds it (the input and a zstd window are given back).
    pub fn finish(mut self) -> (Bytes, MemoryPermit) {
        let mut permit = std::mem::take(&mut self.permit);
        permit.shrink_to(self.out.capacity());
        (self.into_bytes(), permit)
    }

    /// Decompresses up to `budget` more bytes. `Ok(true)` once the input is used up,
    /// `Ok(false)` when the budget ran out first.
    pub fn advance(&mut self, budget: usize) -> Result<bool, BodyError> {
        let stop_at = self.filled.saturating_add(budget);
        while self.filled < stop_at {
            if self.filled == self.out.len() {
                self.grow()?;
            }
            let end = self.out.len().min(stop_at);
            match self.reader.read(&mut self.out[self.filled..end]) {
                Ok(0) => return Ok(true),
                Ok(read) => self.filled += read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => return Err(corrupt(self.encoding, source)),
            }
            if self.filled > self.limit {
                return Err(BodyError::TooLarge { limit: self.limit });
            }
        }
        Ok(false)
    }

    /// Room reserved so far; never more than `limit + 1` bytes.
    pub fn capacity(&self) -> usize {
        self.out.capacity()
    }

    /// The output so far.
    pub fn into_bytes(mut self) -> Bytes {
        self.out.truncate(self.filled);
        Bytes::from(self.out)
    }

    /// Doubles the room for output, up to one byte past the limit (that byte shows the body
    /// is too large without ever holding more of it).
    fn grow(&mut self) -> Result<(), BodyError> {
        let cap = self.limit.saturating_add(1);
        if self.out.len() >= cap {
            return Err(BodyError::TooLarge { limit: self.limit });
        }
        let wanted = match (self.out.is_empty(), self.declared.take()) {
            (true, Some(size)) => size.saturating_add(1),
            _ => self.out.len().saturating_mul(2).max(MIN_GROWTH),
        };
        let wanted = wanted.min(cap);
        // Growing may copy; the old buffer stays counted until the body is done, because the
        // allocator does not hand freed memory back to the system at once.
        self.permit.try_grow(wanted).map_err(BodyError::OverBudget)?;
        self.out.reserve_exact(wanted - self.out.len());
        self.out.resize(wanted, 0);
        Ok(())
    }
}

/// A zstd reader whose window is limited: a window larger than both the largest body we
/// accept and what the standard compression levels use (8 MiB) is never needed, so a frame
/// that asks for more is refused instead of allocating it.
fn zstd_reader(
    raw: Bytes,
    limit: usize,
) -> std::io::Result<zstd::stream::read::Decoder<'static, bytes::buf::Reader<Bytes>>> {
    const STANDARD_LEVELS_WINDOW_LOG: u32 = 23;
    const LARGEST_WINDOW_LOG: u32 = 31;
    let limit_log = usize::BITS - limit.max(1).saturating_sub(1).leading_zeros();
    let window_log_max = limit_log.clamp(STANDARD_LEVELS_WINDOW_LOG, LARGEST_WINDOW_LOG);
    let mut decoder = zstd::stream::read::Decoder::with_buffer(raw.reader())?;
    decoder.window_log_max(window_log_max)?;
    Ok(decoder)
}

/// The most deflate expands its input (RFC 1951: a 258-byte match per ~2 bits, ~1,032 : 1).
const MAX_DEFLATE_RATIO: u64 = 1032;

/// The output size a body says it has: a gzip trailer's ISIZE (the last member's size modulo
/// 2^32, so a total at least that large), or a zstd frame header's content size.
fn declared_output(encoding: ContentEncoding, raw: &[u8]) -> Option<u64> {
    match encoding {
        ContentEncoding::Gzip if raw.len() >= 18 && raw[..2] == [0x1f, 0x8b] => {
            let trailer: [u8; 4] = raw[raw.len() - 4..].try_into().ok()?;
            Some(u64::from(u32::from_le_bytes(trailer)))
        }
        ContentEncoding::Zstd => zstd_frame_content_size(raw),
        _ => None,
    }
}

/// A zstd frame header's Frame_Content_Size, when it has one (RFC 8878, 3.1.1.1.4).
fn zstd_frame_content_size(raw: &[u8]) -> Option<u64> {
    const MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
    if raw.len() < 6 || raw[..4] != MAGIC {
        return None;
    }
    let descriptor = raw[4];
    let single_segment = descriptor & 0x20 != 0;
    let flag = usize::from(descriptor >> 6);
    if flag == 0 && !single_segment {
        return None;
    }
    let dictionary_id_len = [0, 1, 2, 4][usize::from(descriptor & 3)];
    let content_size_len = [1, 2, 4, 8][flag];
    let start = 5 + usize::from(!single_segment) + dictionary_id_len;
    let field = raw.get(start..start + content_size_len)?;
    let mut le = [0u8; 8];
    le[..content_size_len].copy_from_slice(field);
    Some(u64::from_le_bytes(le) + if content_size_len == 2 { 256 } else { 0 })
}

/// What a zstd decoder holds besides its window (block buffer and tables), roughly.
const ZSTD_DECODER_OVERHEAD: usize = 256 * 1024;

/// The window a zstd frame's header asks for (RFC 8878, 3.1.1.1): the window descriptor, or
/// for a single-segment frame its content size. 0 when the bytes start no zstd frame.
fn zstd_frame_window(raw: &[u8]) -> usize {
    const MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
    if raw.len() < 6 || raw[..4] != MAGIC {
        return 0;
    }
    let descriptor = raw[4];
    let single_segment = descriptor & 0x20 != 0;
    if !single_segment {
        let window = raw[5];
        let base = 1usize << (10 + u32::from(window >> 3)).min(usize::BITS - 2);
        return base + (base / 8) * usize::from(window & 7);
    }
    let dictionary_id_len = [0, 1, 2, 4][usize::from(descriptor & 3)];
    let content_size_len = [1, 2, 4, 8][usize::from(descriptor >> 6)];
    let start = 5 + dictionary_id_len;
    let Some(field) = raw.get(start..start + content_size_len) else { return 0 };
    let mut le = [0u8; 8];
    le[..content_size_len].copy_from_slice(field);
    let size = u64::from_le_bytes(le) + if content_size_len == 2 { 256 } else { 0 };
    usize::try_from(size).unwrap_or(usize::MAX)
}

fn corrupt(encoding: ContentEncoding, source: std::io::Error) -> BodyError {
    BodyError::Corrupt { encoding, source }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::limits::MemoryBudget;

    const LIMIT: usize = 100_000;

    fn gzip(data: &[u8]) -> Bytes {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).expect("gzip into memory");
        Bytes::from(encoder.finish().expect("gzip into memory"))
    }

    /// One zstd frame that gives its content size, as `zstd` and most libraries write it.
    fn zstd(data: &[u8]) -> Bytes {
        Bytes::from(zstd::bulk::compress(data, 1).expect("zstd into memory"))
    }

    fn compress(encoding: ContentEncoding, data: &[u8]) -> Bytes {
        match encoding {
            ContentEncoding::Identity => Bytes::copy_from_slice(data),
            ContentEncoding::Gzip => gzip(data),
            ContentEncoding::Zstd => zstd(data),
        }
    }

    /// Bytes that do not compress to nothing, so the boundary tests exercise real data.
    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ (i / 251) as u8).collect()
    }

    const ENCODINGS: [ContentEncoding; 3] = [ContentEncoding::Identity, ContentEncoding::Gzip, ContentEncoding::Zstd];

    #[test]
    fn parses_content_encoding_headers() {
        assert_eq!(ContentEncoding::parse(None), Some(ContentEncoding::Identity));
        assert_eq!(ContentEncoding::parse(Some(b"")), Some(ContentEncoding::Identity));
        assert_eq!(ContentEncoding::parse(Some(b"identity")), Some(ContentEncoding::Identity));
        assert_eq!(ContentEncoding::parse(Some(b"GZIP")), Some(ContentEncoding::Gzip));
        assert_eq!(ContentEncoding::parse(Some(b"x-gzip")), Some(ContentEncoding::Gzip));
        assert_eq!(ContentEncoding::parse(Some(b"zstd")), Some(ContentEncoding::Zstd));
        assert_eq!(ContentEncoding::parse(Some(b"gzip, identity")), Some(ContentEncoding::Gzip));
        assert_eq!(ContentEncoding::parse(Some(b"br")), None);
        assert_eq!(ContentEncoding::parse(Some(b"gzip, zstd")), None);
        assert_eq!(ContentEncoding::parse(Some(b"\xff")), None);
    }

    #[test]
    fn a_zero_byte_body_is_empty_whatever_its_encoding() {
        for encoding in ENCODINGS {
            let out = decompress_blocking(encoding, Bytes::new(), LIMIT).expect("zero bytes");
            assert!(out.is_empty(), "{encoding}");
        }
    }

    #[test]
    fn a_body_of_exactly_the_limit_decompresses_for_every_encoding() {
        let data = sample(LIMIT);
        for encoding in ENCODINGS {
            let out = decompress_blocking(encoding, compress(encoding, &data), LIMIT)
                .unwrap_or_else(|error| panic!("{encoding}: {error}"));
            assert_eq!(out.len(), LIMIT, "{encoding}");
            assert!(out == data, "{encoding}: output differs");
        }
    }

    #[test]
    fn one_byte_over_the_limit_is_too_large_for_every_encoding() {
        let data = sample(LIMIT + 1);
        for encoding in ENCODINGS {
            let result = decompress_blocking(encoding, compress(encoding, &data), LIMIT);
            assert!(matches!(result, Err(BodyError::TooLarge { limit: LIMIT })), "{encoding}: {result:?}");
        }
    }

    #[test]
    fn an_empty_body_is_empty_for_every_encoding() {
        for encoding in ENCODINGS {
            let out = decompress_blocking(encoding, compress(encoding, b""), LIMIT).expect("empty body");
            assert!(out.is_empty(), "{encoding}");
        }
    }

    /// `mib` MiB of zeros as concatenated compressed members of 1 MiB each (a valid stream for
    /// both decoders), built quickly even in a debug build.
    fn bomb(encoding: ContentEncoding, mib: usize) -> Bytes {
        let member = match encoding {
            ContentEncoding::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                encoder.write_all(&vec![0u8; 1024 * 1024]).expect("gzip into memory");
                encoder.finish().expect("gzip into memory")
            }
            _ => zstd::encode_all(&vec![0u8; 1024 * 1024][..], 19).expect("zstd into memory"),
        };
        Bytes::from(member.repeat(mib))
    }

    #[test]
    fn a_compression_bomb_stops_at_the_buffer_cap() {
        const MIB: usize = 1024 * 1024;
        let limit = 20 * MIB;
        for encoding in [ContentEncoding::Gzip, ContentEncoding::Zstd] {
            let bomb = bomb(encoding, 100);
            assert!(bomb.len() < 200 * 1024, "{encoding}: the bomb is small: {} bytes", bomb.len());
            let mut decompressor = Decompressor::new(encoding, bomb, limit).expect("header");
            let result = decompressor.advance(usize::MAX);
            assert!(matches!(result, Err(BodyError::TooLarge { .. })), "{encoding}: {result:?}");
            assert!(decompressor.capacity() <= limit + 1, "{encoding}: buffer grew to {}", decompressor.capacity());
        }
    }

    #[test]
    fn corrupt_or_truncated_data_is_a_decompression_error() {
        let data = sample(10_000);
        for encoding in [ContentEncoding::Gzip, ContentEncoding::Zstd] {
            let compressed = compress(encoding, &data);
            let truncated = compressed.slice(..compressed.len() / 2);
            let result = decompress_blocking(encoding, truncated, LIMIT);
            assert!(matches!(result, Err(BodyError::Corrupt { .. })), "{encoding} truncated: {result:?}");
            let garbage = Bytes::from_static(b"this is not compressed at all");
            let result = decompress_blocking(encoding, garbage, LIMIT);
            assert!(matches!(result, Err(BodyError::Corrupt { .. })), "{encoding} garbage: {result:?}");
        }
    }

    #[test]
    fn concatenated_gzip_members_are_all_read() {
        let mut both = gzip(b"hello, ").to_vec();
        both.extend_from_slice(&gzip(b"world"));
        let out = decompress_blocking(ContentEncoding::Gzip, Bytes::from(both), LIMIT).expect("two members");
        assert_eq!(&out[..], b"hello, world");
    }

    #[test]
    fn advance_stops_at_its_budget_and_resumes() {
        let data = sample(50_000);
        let mut decompressor = Decompressor::new(ContentEncoding::Gzip, gzip(&data), LIMIT).expect("gzip header");
        assert!(!decompressor.advance(10_000).expect("first part"));
        assert!(decompressor.advance(usize::MAX).expect("the rest"));
        assert!(decompressor.into_bytes() == data);
    }

    #[tokio::test]
    async fn decompress_offloads_large_outputs_and_returns_the_same_bytes() {
        let data = sample(3 * INLINE_DECOMPRESS_BYTES);
        let out = decompress(ContentEncoding::Zstd, zstd(&data), data.len()).await.expect("zstd body");
        assert!(out == data);
        let result = decompress(ContentEncoding::Gzip, gzip(&data), data.len() - 1).await;
        assert!(matches!(result, Err(BodyError::TooLarge { .. })), "{result:?}");
    }

    #[test]
    fn a_zstd_frame_header_gives_its_window() {
        let small = zstd(&sample(1_000));
        assert_eq!(zstd_frame_window(&small), 1_000, "a single-segment frame's window is its content");
        let mut streamed = Vec::new();
        let mut encoder = zstd::stream::write::Encoder::new(&mut streamed, 3).expect("encoder");
        encoder.include_contentsize(false).expect("no content size");
        encoder.write_all(&sample(300_000)).expect("compress");
        encoder.finish().expect("finish");
        let window = zstd_frame_window(&streamed);
        assert!(window.is_power_of_two() && window >= 300_000, "window {window}");
        assert_eq!(zstd_frame_window(b"not zstd"), 0);
    }

    #[test]
    fn a_zstd_frame_declaring_more_than_the_limit_is_refused_before_inflating() {
        let compressed = zstd(&vec![0u8; LIMIT + 1]);
        assert_eq!(declared_output(ContentEncoding::Zstd, &compressed), Some(LIMIT as u64 + 1));
        let refused = Decompressor::new(ContentEncoding::Zstd, compressed, LIMIT).err();
        assert!(matches!(refused, Some(BodyError::TooLarge { .. })), "{refused:?}");
    }

    #[test]
    fn a_gzip_trailer_sizes_the_first_buffer_and_nothing_more() {
        let data = vec![0u8; LIMIT + 1];
        assert_eq!(declared_output(ContentEncoding::Gzip, &gzip(&data)), Some(LIMIT as u64 + 1));
        let mut decompressor = Decompressor::new(ContentEncoding::Gzip, gzip(&data), LIMIT).expect("header");
        let result = decompressor.advance(usize::MAX);
        assert!(matches!(result, Err(BodyError::TooLarge { .. })), "{result:?}");
        assert_eq!(decompressor.capacity(), LIMIT + 1, "one buffer, at the cap");
        let lying = Bytes::from([gzip(b"tiny").to_vec(), vec![0xff; 4]].concat());
        let result = decompress_blocking(ContentEncoding::Gzip, lying, LIMIT);
        assert!(matches!(result, Err(BodyError::Corrupt { .. })), "a bad trailer is corrupt data: {result:?}");
    }

    #[test]
    fn an_honest_body_is_inflated_into_one_buffer_of_its_declared_size() {
        let data = sample(LIMIT / 2);
        for encoding in [ContentEncoding::Gzip, ContentEncoding::Zstd] {
            let mut decompressor = Decompressor::new(encoding, compress(encoding, &data), LIMIT).expect("header");
            assert!(decompressor.advance(usize::MAX).expect("inflates"));
            assert_eq!(decompressor.capacity(), data.len() + 1, "{encoding}");
            assert!(decompressor.into_bytes() == data, "{encoding}");
        }
    }

    #[tokio::test]
    async fn a_bomb_gets_only_the_room_the_budget_has() {
        let budget = MemoryBudget::new(4 * 1024 * 1024);
        for encoding in [ContentEncoding::Gzip, ContentEncoding::Zstd] {
            let bomb = bomb(encoding, 100);
            let permit = budget.try_reserve(bomb.len()).expect("the compressed bomb fits");
            let result = decompress_within(encoding, bomb, 20 * 1024 * 1024, permit).await;
            assert!(matches!(result, Err(BodyError::OverBudget(_))), "{encoding}: {:?}", result.map(|(b, _)| b.len()));
            assert_eq!(budget.in_use(), 0, "{encoding}: a refused body gives its room back");
        }
    }

    #[tokio::test]
    async fn a_decompressed_body_keeps_its_output_counted_and_gives_the_rest_back() {
        let budget = MemoryBudget::new(8 * 1024 * 1024);
        let data = sample(3 * INLINE_DECOMPRESS_BYTES);
        for encoding in [ContentEncoding::Gzip, ContentEncoding::Zstd] {
            let raw = compress(encoding, &data);
            let permit = budget.try_reserve(raw.len()).expect("fits");
            let (plain, permit) = decompress_within(encoding, raw, LIMIT * 10, permit).await.expect("decompresses");
            assert!(plain == data, "{encoding}");
            assert!(permit.bytes() >= data.len() && permit.bytes() < 2 * data.len(), "{encoding}: {}", permit.bytes());
            assert_eq!(budget.in_use(), permit.bytes());
        }
    }

    #[tokio::test]
    async fn reading_past_the_budget_fails_and_counts_only_what_it_held() {
        let budget = MemoryBudget::new(LIMIT / 2);
        let mut permit = budget.try_reserve(0).expect("empty permit");
        let chunks: Vec<Result<Bytes, std::io::Error>> = (0..10).map(|_| Ok(Bytes::from(sample(LIMIT / 10)))).collect();
        let body = Body::from_stream(futures_util::stream::iter(chunks));
        let result = read_within(body, LIMIT, None, &mut permit).await;
        assert!(matches!(result, Err(BodyError::OverBudget(_))), "{result:?}");
        assert!(permit.bytes() <= LIMIT / 2);
    }

    #[tokio::test]
    async fn reading_exactly_the_limit_succeeds_and_one_more_byte_fails() {
        let exact = read_capped(Body::from(sample(LIMIT)), LIMIT, None).await.expect("limit bytes");
        assert_eq!(exact.len(), LIMIT);
        let over = read_capped(Body::from(sample(LIMIT + 1)), LIMIT, None).await;
        assert!(matches!(over, Err(BodyError::TooLarge { limit: LIMIT })), "{over:?}");
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_fails_before_reading() {
        let result = read_capped(Body::empty(), LIMIT, Some(LIMIT as u64 + 1)).await;
        assert!(matches!(result, Err(BodyError::TooLarge { .. })), "{result:?}");
    }
}
