//! The X-Ray datagram target: the daemon protocol parser against `serde_json::Value` as the
//! reference for what a valid datagram is.

use serde_json::Value;

use crate::receiver::xray_udp::{DatagramError, parse_datagram};

/// One UDP datagram. The parser never panics; what it accepts is the datagram after its first
/// newline, with the ids the document holds; what it refuses has a metrics reason, and
/// nothing the reference reads as a valid segment (a header object `"format":"json"`,
/// `"version":1` and a document object with string `trace_id` and `id`) is refused.
pub fn xray_datagram(data: &[u8]) {
    let reference = reference(data);
    match parse_datagram(data) {
        Ok(parsed) => {
            let newline = data.iter().position(|&byte| byte == b'\n').expect("an accepted datagram has a newline");
            assert_eq!(parsed.body, &data[newline + 1..], "the document is kept exactly as received");
            if let Some((trace_id, id)) = reference {
                assert_eq!((&*parsed.trace_id, &*parsed.id), (trace_id.as_str(), id.as_str()));
            }
            let segment = parsed.to_segment();
            assert_eq!(&segment.body[..], parsed.body);
        }
        Err(error) => {
            assert!(!matches!(error, DatagramError::TooLarge), "the parser does not judge the datagram's size");
            assert!(DatagramError::REASONS.contains(&error.reason()));
            assert!(!error.to_string().is_empty());
            assert!(reference.is_none(), "refused a valid datagram ({error}): {:?}", String::from_utf8_lossy(data));
        }
    }
}

/// The document's `trace_id` and `id` when the reference finds the datagram valid.
fn reference(data: &[u8]) -> Option<(String, String)> {
    let newline = data.iter().position(|&byte| byte == b'\n')?;
    let header: Value = serde_json::from_slice(&data[..newline]).ok()?;
    let format_ok = header.get("format")?.as_str()?.eq_ignore_ascii_case("json");
    let version_ok = header.get("version")?.as_u64()? == 1;
    let body: Value = serde_json::from_slice(&data[newline + 1..]).ok()?;
    let header_ok = header.is_object() && format_ok && version_ok;
    let ids = (body.get("trace_id")?.as_str()?.to_owned(), body.get("id")?.as_str()?.to_owned());
    (header_ok && body.is_object()).then_some(ids)
}
