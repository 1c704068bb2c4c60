//! The on-disk framing of spool segment files: a magic header, then checksummed,
//! length-prefixed records; reading tells a good record from a corrupt one and from a torn tail.
//!
//! ```text
//! segment file = "WGLSPL01" record*
//! record       = length: u32 LE | crc: u32 LE | envelope: `length` bytes
//! crc          = CRC-32C over the 4 length bytes, then the envelope
//! ```
//!
//! The checksum covers the length too, so a damaged length is caught rather than followed.
//! A record that does not fit in what is left of the file, or a length past
//! [`MAX_RECORD_LEN`], cannot be framed: a torn tail (a crash mid-write), or damage.
//! After a record that fails its checksum or cannot be framed, [`resync`] finds the next
//! intact record byte by byte (a whole record whose checksum matches), so damage costs only
//! the damaged record; when none follows, the rest is a torn tail.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The first bytes of every segment file: "waggle spool", format 1.
pub(crate) const FILE_MAGIC: [u8; 8] = *b"WGLSPL01";
/// Bytes before the first record.
pub(crate) const FILE_HEADER_LEN: u64 = FILE_MAGIC.len() as u64;
/// Bytes before each record's envelope: length and checksum.
pub(crate) const RECORD_HEADER_LEN: u64 = 8;
/// Longest envelope accepted: well above the largest request a receiver takes (20 MiB).
pub(crate) const MAX_RECORD_LEN: u32 = 256 * 1024 * 1024;

/// A record's length and checksum followed by its envelope, ready to append to a segment.
#[cfg(test)]
pub(crate) fn frame(envelope: &[u8]) -> Option<Vec<u8>> {
    let mut framed = Vec::with_capacity(envelope.len() + RECORD_HEADER_LEN as usize);
    frame_into(&mut framed, |buffer| buffer.extend_from_slice(envelope)).then_some(framed)
}

/// Frames the envelope `encode` appends to `framed` (which it clears first), in place: no
/// second copy of the envelope. False when the envelope is longer than [`MAX_RECORD_LEN`].
pub(crate) fn frame_into(framed: &mut Vec<u8>, encode: impl FnOnce(&mut Vec<u8>)) -> bool {
    const HEADER: usize = RECORD_HEADER_LEN as usize;
    framed.clear();
    framed.extend_from_slice(&[0; HEADER]);
    encode(framed);
    let Some(length) = u32::try_from(framed.len() - HEADER).ok().filter(|&length| length <= MAX_RECORD_LEN) else {
        return false;
    };
    let length_bytes = length.to_le_bytes();
    let crc = checksum(length_bytes, &framed[HEADER..]);
    framed[..4].copy_from_slice(&length_bytes);
    framed[4..HEADER].copy_from_slice(&crc.to_le_bytes());
    true
}

fn checksum(length_bytes: [u8; 4], envelope: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&length_bytes), envelope)
}

/// What was found where a record should start.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A whole record whose checksum matches; its envelope was read into the buffer. The
    /// next record starts `RECORD_HEADER_LEN + length` bytes further on.
    Record { length: u64 },
    /// A whole record whose checksum does not match; it is skipped and the next record
    /// starts `RECORD_HEADER_LEN + length` bytes further on.
    BadChecksum { length: u64 },
    /// The end of the data, exactly at a record boundary.
    End,
    /// Something that cannot be framed: a partial header, a length past what is left or past
    /// [`MAX_RECORD_LEN`]. Nothing after it is readable.
    Torn(TornTail),
}

/// Why the data stops being readable at some offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TornTail {
    #[error("{available} bytes where a record header ({RECORD_HEADER_LEN} bytes) should be")]
    PartialHeader { available: u64 },
    #[error("a record length of {length} bytes, but only {available} bytes follow")]
    Truncated { length: u64, available: u64 },
    #[error("a record length of {length} bytes, more than any record can be")]
    ImpossibleLength { length: u64 },
}

/// Reads the record that starts at `offset` of data that ends at `end`, from a reader
/// positioned at `offset`. On [`Frame::Record`] the envelope is in `envelope`.
pub(crate) fn read_next(reader: &mut impl Read, offset: u64, end: u64, envelope: &mut Vec<u8>) -> io::Result<Frame> {
    let available = end.saturating_sub(offset);
    if available == 0 {
        return Ok(Frame::End);
    }
    if available < RECORD_HEADER_LEN {
        return Ok(Frame::Torn(TornTail::PartialHeader { available }));
    }
    let mut header = [0u8; RECORD_HEADER_LEN as usize];
    reader.read_exact(&mut header)?;
    let (length_bytes, stored) = split_header(header);
    let length = u32::from_le_bytes(length_bytes);
    if length > MAX_RECORD_LEN {
        return Ok(Frame::Torn(TornTail::ImpossibleLength { length: length.into() }));
    }
    let length = u64::from(length);
    if length > available - RECORD_HEADER_LEN {
        return Ok(Frame::Torn(TornTail::Truncated { length, available: available - RECORD_HEADER_LEN }));
    }
    envelope.clear();
    // `length` is at most MAX_RECORD_LEN, so this fits in usize.
    envelope.resize(usize::try_from(length).unwrap_or(usize::MAX), 0);
    reader.read_exact(envelope)?;
    if checksum(length_bytes, envelope) == stored {
        Ok(Frame::Record { length })
    } else {
        Ok(Frame::BadChecksum { length })
    }
}

/// Where the next intact record starts at or after `from` in data that ends at `end`: the
/// first offset where a whole record's checksum matches. `None` when no intact record follows.
pub(crate) fn resync(file: &File, from: u64, end: u64) -> io::Result<Option<u64>> {
    if end <= from {
        return Ok(None);
    }
    let len = usize::try_from(end - from).map_err(io::Error::other)?;
    let mut data = vec![0; len];
    file.read_exact_at(&mut data, from)?;
    Ok(find_record(&data).map(|at| from + at as u64))
}

/// The first offset in `data` where a whole record with a matching checksum starts.
pub(crate) fn find_record(data: &[u8]) -> Option<usize> {
    const HEADER: usize = RECORD_HEADER_LEN as usize;
    (0..data.len().saturating_sub(HEADER - 1)).find(|&at| {
        let Some(&[a, b, c, d, e, f, g, h]) = data.get(at..at + HEADER) else { return false };
        let (length_bytes, stored) = split_header([a, b, c, d, e, f, g, h]);
        let length = u32::from_le_bytes(length_bytes);
        if length > MAX_RECORD_LEN {
            return false;
        }
        let body_start = at + HEADER;
        let Some(body) = data.get(body_start..body_start + length as usize) else { return false };
        checksum(length_bytes, body) == stored
    })
}

/// [`read_next`] at a position of a file, without moving a shared file cursor.
pub(crate) fn read_at(file: &File, offset: u64, end: u64, envelope: &mut Vec<u8>) -> io::Result<Frame> {
    read_next(&mut PositionalReader { file, position: offset }, offset, end, envelope)
}

fn split_header(header: [u8; 8]) -> ([u8; 4], u32) {
    let [a, b, c, d, e, f, g, h] = header;
    ([a, b, c, d], u32::from_le_bytes([e, f, g, h]))
}

/// Reads a file from a position with `pread`, so a reader and the appender can share a file.
struct PositionalReader<'a> {
    file: &'a File,
    position: u64,
}

impl Read for PositionalReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.file.read_at(buf, self.position)?;
        self.position += read as u64;
        Ok(read)
    }
}

/// The bytes a framed envelope of `envelope_len` bytes takes on disk.
pub(crate) fn framed_len(envelope_len: u64) -> u64 {
    RECORD_HEADER_LEN + envelope_len
}

/// The name of segment file `id`: zero-padded, so names sort by id.
pub(crate) fn segment_file_name(id: u64) -> String {
    format!("{id:020}.seg")
}

/// The id in a segment file's name, `None` for any other file.
pub(crate) fn segment_id(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Deletes a segment file; one already gone is fine, any other failure is logged.
pub(crate) fn remove_file(lane: crate::model::Destination, path: &Path) {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => {
            tracing::warn!(destination = %lane, file = %path.display(), %error, "cannot delete spool segment");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// Reads every frame of `data` (which has no file header) as the scan does.
    fn frames(data: &[u8]) -> Vec<(Frame, Vec<u8>)> {
        let mut reader = Cursor::new(data);
        let mut offset = 0;
        let mut out = Vec::new();
        let mut envelope = Vec::new();
        loop {
            let frame = read_next(&mut reader, offset, data.len() as u64, &mut envelope).unwrap();
            match frame {
                Frame::Record { length } | Frame::BadChecksum { length } => {
                    offset += framed_len(length);
                    out.push((frame, envelope.clone()));
                }
                Frame::End | Frame::Torn(_) => {
                    out.push((frame, Vec::new()));
                    return out;
                }
            }
        }
    }

    fn records(envelopes: &[&[u8]]) -> Vec<u8> {
        envelopes.iter().flat_map(|envelope| frame(envelope).unwrap()).collect()
    }

    #[test]
    fn framed_records_read_back_unchanged() {
        let data = records(&[b"first", b"", b"third record"]);
        let read = frames(&data);
        assert_eq!(
            read,
            vec![
                (Frame::Record { length: 5 }, b"first".to_vec()),
                (Frame::Record { length: 0 }, Vec::new()),
                (Frame::Record { length: 12 }, b"third record".to_vec()),
                (Frame::End, Vec::new()),
            ]
        );
    }

    #[test]
    fn a_flipped_byte_fails_the_checksum_and_the_next_record_is_still_read() {
        let mut data = records(&[b"first", b"second"]);
        data[RECORD_HEADER_LEN as usize + 2] ^= 0x40;
        let read = frames(&data);
        assert_eq!(read[0].0, Frame::BadChecksum { length: 5 });
        assert_eq!(read[1], (Frame::Record { length: 6 }, b"second".to_vec()));
        assert_eq!(read[2].0, Frame::End);
    }

    #[test]
    fn a_damaged_checksum_field_is_caught() {
        let mut data = records(&[b"first", b"second"]);
        data[5] ^= 0x01;
        let read = frames(&data);
        assert_eq!(read[0].0, Frame::BadChecksum { length: 5 });
        assert_eq!(read[1].1, b"second");
    }

    #[test]
    fn a_torn_tail_is_detected_after_the_good_records() {
        let data = records(&[b"first", b"second record"]);
        let torn = &data[..data.len() - 4];
        let read = frames(torn);
        assert_eq!(read[0], (Frame::Record { length: 5 }, b"first".to_vec()));
        assert_eq!(read[1].0, Frame::Torn(TornTail::Truncated { length: 13, available: 9 }));
    }

    #[test]
    fn a_partial_header_is_a_torn_tail() {
        let data = records(&[b"first", b"second"]);
        let torn = &data[..framed_len(5) as usize + 3];
        assert_eq!(frames(torn)[1].0, Frame::Torn(TornTail::PartialHeader { available: 3 }));
    }

    #[test]
    fn an_impossible_length_is_a_torn_tail_not_an_allocation() {
        let mut data = records(&[b"first"]);
        data.extend_from_slice(&u32::MAX.to_le_bytes());
        data.extend_from_slice(&[0; 12]);
        let read = frames(&data);
        assert_eq!(read[1].0, Frame::Torn(TornTail::ImpossibleLength { length: u64::from(u32::MAX) }));
    }

    #[test]
    fn a_changed_length_fails_the_checksum_instead_of_misframing() {
        // A length shortened by damage still frames inside the data; the checksum (which
        // covers the length) catches it.
        let mut data = records(&[b"0123456789", b"next"]);
        data[0] = 4;
        assert_eq!(frames(&data)[0].0, Frame::BadChecksum { length: 4 });
    }

    #[test]
    fn after_a_damaged_length_the_next_intact_record_is_found() {
        let data = records(&[b"first record", b"second", b"third"]);
        let second = framed_len(12) as usize;
        let mut damaged = data;
        damaged[1] ^= 0x01; // the first record's length now runs past the end
        assert!(matches!(frames(&damaged)[0].0, Frame::Torn(_) | Frame::BadChecksum { .. }));
        assert_eq!(find_record(&damaged[1..]).map(|at| at + 1), Some(second));
    }

    #[test]
    fn garbage_holds_no_record() {
        let garbage: Vec<u8> = (0..4096u32).map(|n| (n.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        assert_eq!(find_record(&garbage), None);
    }

    #[test]
    fn reading_at_a_file_offset_matches_the_sequential_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment");
        let mut data = FILE_MAGIC.to_vec();
        data.extend(records(&[b"first", b"second"]));
        fs::write(&path, &data).unwrap();
        let file = File::open(&path).unwrap();
        let mut envelope = Vec::new();
        let second = FILE_HEADER_LEN + framed_len(5);
        let end = data.len() as u64;
        assert_eq!(read_at(&file, second, end, &mut envelope).unwrap(), Frame::Record { length: 6 });
        assert_eq!(envelope, b"second");
        assert_eq!(read_at(&file, end, end, &mut envelope).unwrap(), Frame::End);
    }
}
