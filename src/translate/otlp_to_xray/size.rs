//! Serializing a document within X-Ray's 64 KB limit: cut the largest metadata values, then
//! all metadata, then give up.

use std::io;

use serde::Serialize;

use super::document::Document;
use super::metadata::{MetaValue, Metadata, TRUNCATED_MARKER};
use super::outcome::{MAX_DOCUMENT_BYTES, Untranslatable};

/// A serialized document and whether metadata had to give way.
pub(super) struct Serialized {
    pub json: Vec<u8>,
    pub trimmed: bool,
}

/// Serializes `document`, trimming its metadata when it is over [`MAX_DOCUMENT_BYTES`].
pub(super) fn serialize_within_limit(document: &mut Document<'_>) -> Result<Serialized, Untranslatable> {
    let json = serialize(document)?;
    if json.len() <= MAX_DOCUMENT_BYTES {
        return Ok(Serialized { json, trimmed: false });
    }
    let Some(metadata) = document.metadata.as_mut() else {
        return Err(Untranslatable::TooLarge { bytes: json.len() });
    };
    replace_largest_values(metadata, json.len() - MAX_DOCUMENT_BYTES)?;
    let json = serialize(document)?;
    if json.len() <= MAX_DOCUMENT_BYTES {
        return Ok(Serialized { json, trimmed: true });
    }
    document.metadata = None;
    let json = serialize(document)?;
    if json.len() <= MAX_DOCUMENT_BYTES {
        return Ok(Serialized { json, trimmed: true });
    }
    Err(Untranslatable::TooLarge { bytes: json.len() })
}

fn serialize(document: &Document<'_>) -> Result<Vec<u8>, Untranslatable> {
    let mut json = Vec::with_capacity(1024);
    serde_json::to_writer(&mut json, document).map_err(|error| Untranslatable::Serialize(error.to_string()))?;
    Ok(json)
}

/// Replaces metadata values with [`TRUNCATED_MARKER`], largest first, until `excess` bytes
/// are saved or nothing larger than the marker is left.
fn replace_largest_values(metadata: &mut Metadata<'_>, excess: usize) -> Result<(), Untranslatable> {
    let marker = serialized_len(&TRUNCATED_MARKER)?;
    let mut sizes = Vec::new();
    for (index, value) in metadata.values_mut().enumerate() {
        sizes.push((serialized_len(value)?, index));
    }
    sizes.sort_unstable_by(|(size_a, index_a), (size_b, index_b)| size_b.cmp(size_a).then(index_a.cmp(index_b)));
    let mut saved = 0;
    let mut chosen = Vec::new();
    for (size, index) in sizes {
        if saved >= excess || size <= marker {
            break;
        }
        saved += size - marker;
        chosen.push(index);
    }
    chosen.sort_unstable();
    for (index, value) in metadata.values_mut().enumerate() {
        if chosen.binary_search(&index).is_ok() {
            *value = MetaValue::Truncated;
        }
    }
    Ok(())
}

/// Bytes `value` takes as JSON, without building the JSON.
fn serialized_len<T: Serialize + ?Sized>(value: &T) -> Result<usize, Untranslatable> {
    let mut counter = ByteCounter(0);
    serde_json::to_writer(&mut counter, value).map_err(|error| Untranslatable::Serialize(error.to_string()))?;
    Ok(counter.0)
}

struct ByteCounter(usize);

impl io::Write for ByteCounter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
