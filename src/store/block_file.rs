//! Sealed blocks on disk: one file per block, written once (to a temporary name, then renamed)
//! and never changed; deleted whole when evicted.
//!
//! ```text
//! "WAGGLEB1"  header length (u32 LE)  header (JSON)  header CRC-32C (u32 LE)  sections…
//! ```
//! The header lists each section — the groups (resources and scopes), the trace-id Bloom
//! filter, and one per column — with its offset, length and CRC-32C. Each section is compressed
//! with zstd on its own, so a query reads and decompresses only the columns it needs. Integer
//! columns are delta- and zigzag-encoded varints before compression (times grow slowly); ids
//! are raw bytes; value columns use [`ValueColumn::encode`].

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::block::{Block, Column, Group, Kind, key};
use super::bloom::TraceBloom;
use super::value::ValueColumn;

const MAGIC: &[u8; 8] = b"WAGGLEB1";
/// zstd level for every section: level 1 compresses these columns almost as well as level 3
/// at about twice the speed.
const COMPRESSION_LEVEL: i32 = 1;
/// No section of a block decompresses to more than this (a corrupt length is not trusted).
const MAX_SECTION_BYTES: u64 = 1 << 30;
/// Distinct (service, span name, kind) kept per block for listing operations.
const MAX_OPERATIONS: usize = 1000;
/// The file name ending of a sealed block, and of one being written.
pub(crate) const BLOCK_SUFFIX: &str = ".block";
pub(crate) const TEMPORARY_SUFFIX: &str = ".block.tmp";

/// Why a block file could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BlockFileError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a waggle block ({reason})")]
    Malformed { path: PathBuf, reason: String },
}

/// Where a section is in the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Section {
    offset: u64,
    length: u64,
    raw_length: u64,
    crc: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ColumnType {
    Id16,
    Id8,
    Int,
    Values,
}

/// A span name of a service, and its kind (OTLP's number).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct OperationKey {
    pub service: String,
    pub name: String,
    pub kind: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    kind: Kind,
    rows: u64,
    min_time: i64,
    max_time: i64,
    sealed_at: i64,
    traces: u64,
    operations: Vec<OperationKey>,
    /// Every attribute column (`a:key`, resource attributes included) with the types of value
    /// it holds.
    #[serde(default)]
    column_tags: Vec<(String, u8)>,
    groups: Section,
    bloom: Section,
    columns: Vec<(String, ColumnType, Section)>,
}

/// What the store keeps in memory about a sealed block.
#[derive(Debug)]
pub(crate) struct BlockMeta {
    pub seq: u64,
    pub path: PathBuf,
    pub kind: Kind,
    pub rows: u64,
    /// Lowest start (or record) time and highest end time of the rows, Unix nanos.
    pub min_time: i64,
    pub max_time: i64,
    /// When the block was sealed, Unix nanos: what age eviction goes by.
    pub sealed_at: i64,
    pub file_bytes: u64,
    /// Distinct trace ids among the rows (spans).
    pub traces: u64,
    pub operations: Vec<OperationKey>,
    pub column_tags: Vec<(String, u8)>,
    pub bloom: TraceBloom,
    /// Where the sections start in the file.
    body: u64,
    groups: Section,
    columns: HashMap<Box<str>, (ColumnType, Section)>,
}

/// The file name of block `seq`.
pub(crate) fn file_name(seq: u64) -> String {
    format!("{seq:020}{BLOCK_SUFFIX}")
}

/// Writes `block` as block `seq` in `directory` and returns what the store keeps about it.
pub(crate) fn write(directory: &Path, seq: u64, block: &Block, sealed_at: i64) -> std::io::Result<BlockMeta> {
    let mut body = Vec::new();
    let mut raw = Vec::new();
    // One compression context for every section of the block.
    let mut compressor = zstd::bulk::Compressor::new(COMPRESSION_LEVEL)?;
    let mut section = |raw: &[u8], body: &mut Vec<u8>| -> std::io::Result<Section> {
        let compressed = compressor.compress(raw)?;
        let section = Section {
            offset: body.len() as u64,
            length: compressed.len() as u64,
            raw_length: raw.len() as u64,
            crc: crc32c::crc32c(&compressed),
        };
        body.extend_from_slice(&compressed);
        Ok(section)
    };

    let groups = section(&serde_json::to_vec(&*block.groups).map_err(std::io::Error::other)?, &mut body)?;
    let (bloom, traces) = trace_bloom(block);
    let bloom_section = section(&bloom.to_bytes(), &mut body)?;
    let mut columns = Vec::with_capacity(block.columns.len());
    let mut names: Vec<&Box<str>> = block.columns.keys().collect();
    names.sort();
    for name in names {
        let column = &block.columns[name];
        raw.clear();
        let column_type = encode_column(column, block.rows, &mut raw);
        columns.push((name.to_string(), column_type, section(&raw, &mut body)?));
    }
    let (min_time, max_time) = time_bounds(block);
    let header = Header {
        kind: block.kind,
        rows: block.rows as u64,
        min_time,
        max_time,
        sealed_at,
        traces,
        operations: operations(block),
        column_tags: column_tags(block),
        groups,
        bloom: bloom_section,
        columns,
    };
    let header_json = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
    let start = body_start(header_json.len() as u64) as usize;

    let mut file_bytes = Vec::with_capacity(start + body.len());
    file_bytes.extend_from_slice(MAGIC);
    file_bytes.extend_from_slice(&(header_json.len() as u32).to_le_bytes());
    file_bytes.extend_from_slice(&header_json);
    file_bytes.extend_from_slice(&crc32c::crc32c(&header_json).to_le_bytes());
    file_bytes.extend_from_slice(&body);

    let path = directory.join(file_name(seq));
    let temporary = directory.join(format!("{seq:020}{TEMPORARY_SUFFIX}"));
    {
        let mut file = File::create(&temporary)?;
        file.write_all(&file_bytes)?;
        file.sync_data()?;
    }
    std::fs::rename(&temporary, &path)?;
    Ok(meta_from(seq, path, header, bloom, file_bytes.len() as u64, start as u64))
}

/// Where the sections start: section offsets count from there.
fn body_start(header_length: u64) -> u64 {
    MAGIC.len() as u64 + 4 + header_length + 4
}

fn meta_from(seq: u64, path: PathBuf, header: Header, bloom: TraceBloom, file_bytes: u64, body: u64) -> BlockMeta {
    BlockMeta {
        body,
        seq,
        path,
        kind: header.kind,
        rows: header.rows,
        min_time: header.min_time,
        max_time: header.max_time,
        sealed_at: header.sealed_at,
        file_bytes,
        traces: header.traces,
        operations: header.operations,
        column_tags: header.column_tags,
        bloom,
        groups: header.groups,
        columns: header
            .columns
            .into_iter()
            .map(|(name, column_type, section)| (name.into_boxed_str(), (column_type, section)))
            .collect(),
    }
}

/// Reads what the store keeps in memory about the block file at `path` (its header and Bloom
/// filter), checking both.
pub(crate) fn read_meta(seq: u64, path: &Path) -> Result<BlockMeta, BlockFileError> {
    let io = |source| BlockFileError::Io { path: path.to_path_buf(), source };
    let malformed = |reason: &str| BlockFileError::Malformed { path: path.to_path_buf(), reason: reason.to_owned() };
    let file = File::open(path).map_err(io)?;
    let file_bytes = file.metadata().map_err(io)?.len();
    let mut prefix = [0u8; 12];
    file.read_exact_at(&mut prefix, 0).map_err(|_| malformed("too short"))?;
    if &prefix[..8] != MAGIC {
        return Err(malformed("wrong magic number"));
    }
    let header_length = u64::from(u32::from_le_bytes(prefix[8..12].try_into().unwrap_or_default()));
    if header_length + 16 > file_bytes {
        return Err(malformed("header longer than the file"));
    }
    let mut header_bytes = vec![0u8; header_length as usize + 4];
    file.read_exact_at(&mut header_bytes, 12).map_err(io)?;
    let (header_json, crc) = header_bytes.split_at(header_length as usize);
    if crc32c::crc32c(header_json).to_le_bytes() != crc {
        return Err(malformed("header checksum mismatch"));
    }
    let header: Header = serde_json::from_slice(header_json).map_err(|error| malformed(&error.to_string()))?;
    let body = body_start(header_length);
    let bloom = TraceBloom::from_bytes(&read_section(&file, body, header.bloom).map_err(|reason| malformed(&reason))?);
    Ok(meta_from(seq, path.to_path_buf(), header, bloom, file_bytes, body))
}

/// Reads the block's groups and the columns `wanted` says yes to.
pub(crate) fn load(meta: &BlockMeta, wanted: &dyn Fn(&str) -> bool) -> Result<Block, BlockFileError> {
    let malformed = |reason: String| BlockFileError::Malformed { path: meta.path.clone(), reason };
    let file = File::open(&meta.path).map_err(|source| BlockFileError::Io { path: meta.path.clone(), source })?;
    let groups: Vec<Group> =
        serde_json::from_slice(&read_section(&file, meta.body, meta.groups).map_err(malformed)?).map_err(|error| {
            BlockFileError::Malformed { path: meta.path.clone(), reason: format!("groups: {error}") }
        })?;
    let rows = meta.rows as usize;
    let mut columns = HashMap::new();
    for (name, (column_type, section)) in &meta.columns {
        if !wanted(name) {
            continue;
        }
        let raw = read_section(&file, meta.body, *section).map_err(malformed)?;
        let column =
            decode_column(*column_type, rows, &raw).map_err(|reason| malformed(format!("{name}: {reason}")))?;
        columns.insert(name.clone(), column);
    }
    Ok(Block { kind: meta.kind, rows, groups: Arc::from(groups), columns })
}

fn read_section(file: &File, body: u64, section: Section) -> Result<Vec<u8>, String> {
    if section.raw_length > MAX_SECTION_BYTES || section.length > MAX_SECTION_BYTES {
        return Err("section too large".into());
    }
    let mut compressed = vec![0u8; section.length as usize];
    file.read_exact_at(&mut compressed, body.saturating_add(section.offset)).map_err(|error| error.to_string())?;
    if crc32c::crc32c(&compressed) != section.crc {
        return Err("section checksum mismatch".into());
    }
    let raw = zstd::bulk::decompress(&compressed, section.raw_length as usize).map_err(|error| error.to_string())?;
    if raw.len() as u64 != section.raw_length {
        return Err("section shorter than recorded".into());
    }
    Ok(raw)
}

fn encode_column(column: &Column, rows: usize, out: &mut Vec<u8>) -> ColumnType {
    match column {
        Column::Id16(ids) => {
            ids.iter().for_each(|id| out.extend_from_slice(id));
            ColumnType::Id16
        }
        Column::Id8(ids) => {
            ids.iter().for_each(|id| out.extend_from_slice(id));
            ColumnType::Id8
        }
        Column::Int(numbers) => {
            let mut previous = 0i64;
            for &number in numbers {
                let delta = number.wrapping_sub(previous);
                previous = number;
                prost::encoding::encode_varint(((delta << 1) ^ (delta >> 63)) as u64, out);
            }
            ColumnType::Int
        }
        Column::Values(values) => {
            values.encode(rows, out);
            ColumnType::Values
        }
    }
}

fn decode_column(column_type: ColumnType, rows: usize, mut raw: &[u8]) -> Result<Column, String> {
    fn ids<const N: usize>(raw: &[u8], rows: usize) -> Result<Vec<[u8; N]>, String> {
        if raw.len() != rows * N {
            return Err(format!("{} bytes of ids for {rows} rows", raw.len()));
        }
        Ok(raw.chunks_exact(N).map(|chunk| chunk.try_into().unwrap_or([0; N])).collect())
    }
    Ok(match column_type {
        ColumnType::Id16 => Column::Id16(ids(raw, rows)?),
        ColumnType::Id8 => Column::Id8(ids(raw, rows)?),
        ColumnType::Int => {
            let mut numbers = Vec::with_capacity(rows);
            let mut previous = 0i64;
            for _ in 0..rows {
                let zigzag = prost::encoding::decode_varint(&mut raw).map_err(|error| error.to_string())?;
                let delta = ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
                previous = previous.wrapping_add(delta);
                numbers.push(previous);
            }
            Column::Int(numbers)
        }
        ColumnType::Values => Column::Values(ValueColumn::decode(rows, raw).map_err(|error| error.to_string())?),
    })
}

/// The Bloom filter of the block's trace ids, and how many distinct ones there are.
fn trace_bloom(block: &Block) -> (TraceBloom, u64) {
    // Spans and log records both carry trace ids (a record without one has zeros).
    let ids = block.id16(key::TRACE_ID);
    let distinct: foldhash::HashSet<&[u8; 16]> = ids.iter().filter(|id| **id != [0; 16]).collect();
    if distinct.is_empty() {
        return (TraceBloom::with_capacity(0), 0);
    }
    let mut bloom = TraceBloom::with_capacity(distinct.len());
    distinct.iter().for_each(|id| bloom.insert(id));
    (bloom, distinct.len() as u64)
}

fn time_bounds(block: &Block) -> (i64, i64) {
    let starts = block.ints(key::TIME);
    let ends = block.ints(key::END);
    let min = starts.iter().copied().min().unwrap_or(0);
    let max = starts.iter().chain(ends).copied().max().unwrap_or(0);
    (min, max)
}

fn operations(block: &Block) -> Vec<OperationKey> {
    if block.kind != Kind::Spans {
        return Vec::new();
    }
    let mut seen = foldhash::HashSet::default();
    let kinds = block.ints(key::SPAN_KIND);
    for row in 0..block.rows {
        if seen.len() >= MAX_OPERATIONS {
            break;
        }
        let service = block.group(row).and_then(Group::service).unwrap_or("");
        let name = block.text(key::NAME, row);
        let kind = kinds.get(row).copied().unwrap_or(0);
        seen.insert((service, name, kind));
    }
    seen.into_iter()
        .map(|(service, name, kind)| OperationKey { service: service.to_owned(), name: name.to_owned(), kind })
        .collect()
}

fn column_tags(block: &Block) -> Vec<(String, u8)> {
    let mut tags: HashMap<String, u8> = block
        .attributes()
        .map(|(key, values)| (format!("{}{key}", key::ATTRIBUTE_PREFIX), values.tag_mask()))
        .collect();
    for (key, value) in block.groups.iter().flat_map(|group| group.resource.iter()) {
        *tags.entry(format!("{}{key}", key::ATTRIBUTE_PREFIX)).or_insert(0) |= value.tag_bit();
    }
    tags.into_iter().collect()
}
