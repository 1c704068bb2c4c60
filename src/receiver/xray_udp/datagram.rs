//! Parsing one X-Ray daemon protocol datagram: the header line, the segment document after
//! it, and [`DatagramError`], why a datagram is rejected. No sockets here; see `socket`.
//!
//! A datagram is one JSON header, a `\n`, then one segment document:
//!
//! ```text
//! {"format":"json","version":1}
//! {"trace_id":"1-5f84c7a1-e7d1852db8c4fd35d88bf49a","id":"6226467e3f845502","name":"api",...}
//! ```
//!
//! What is checked, and where waggle differs from the AWS X-Ray daemon:
//!
//! - The datagram is split at the **first** `\n`; later newlines belong to the body (as in the
//!   daemon).
//! - The header is parsed as JSON, not compared as a string: `format` must be `"json"` in any
//!   case, `version` must be the integer `1`; whitespace and extra keys are fine (as in the
//!   daemon, which ignores the header's JSON errors but then finds it invalid).
//! - The body must be a JSON object with a string `trace_id` and a string `id`. The daemon
//!   forwards any body and lets the X-Ray API reject it later; waggle also feeds the documents
//!   to OTLP destinations, so it rejects what cannot be a segment up front. Streamed
//!   subsegments (`"type":"subsegment"` with `parent_id`) are ordinary documents here.
//! - Nothing else in the body is validated (ids are not checked for hex here; the translators
//!   report documents they cannot convert).
//! - Whitespace after the document, including a trailing `\n` or `\r\n`, is accepted (JSON
//!   allows it and the X-Ray API parses the document as JSON). The body is kept exactly as
//!   received, trailing whitespace included: waggle never re-encodes a document.
//!
//! The validation is one serde pass over the body that borrows `id` and `trace_id` and skips
//! every other value without building it ([`serde::de::IgnoredAny`]).

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::model::XraySegment;

/// The largest datagram accepted: the daemon's fixed 64 KiB read buffer. Legal UDP payloads
/// are smaller (65,507 bytes over IPv4, 65,527 over IPv6), so a read that fills the buffer
/// can only be a truncated jumbogram.
pub const MAX_DATAGRAM_BYTES: usize = 64 * 1024;

/// Why a datagram was rejected. Each variant has its own metrics label ([`Self::reason`]).
#[derive(Debug, thiserror::Error)]
pub enum DatagramError {
    #[error("datagram filled the {MAX_DATAGRAM_BYTES}-byte buffer, so it was truncated")]
    TooLarge,
    #[error("no newline: expected a JSON header line, then a segment document")]
    NoNewline,
    #[error("nothing after the header line")]
    EmptyBody,
    #[error("header is not a JSON object like {{\"format\":\"json\",\"version\":1}}: {0}")]
    HeaderNotJson(#[source] serde_json::Error),
    #[error("unsupported header: format {format}, version {version} (expected \"json\" and 1)")]
    UnsupportedHeader {
        /// The `format` found, as JSON, shortened.
        format: String,
        /// The `version` found, as JSON, shortened.
        version: String,
    },
    #[error("segment document is not valid JSON: {0}")]
    BodyNotJson(#[source] serde_json::Error),
    #[error("segment document is JSON but not an object")]
    BodyNotObject,
    #[error("segment document has no string \"trace_id\"")]
    MissingTraceId,
    #[error("segment document has no string \"id\"")]
    MissingId,
}

impl DatagramError {
    /// Every metrics reason a datagram can be rejected for.
    pub const REASONS: [&'static str; 9] = [
        "too_large",
        "no_newline",
        "empty_body",
        "bad_header",
        "unsupported_header",
        "body_not_json",
        "body_not_object",
        "missing_trace_id",
        "missing_id",
    ];

    /// The metrics label: short, fixed, one per variant.
    pub fn reason(&self) -> &'static str {
        match self {
            DatagramError::TooLarge => "too_large",
            DatagramError::NoNewline => "no_newline",
            DatagramError::EmptyBody => "empty_body",
            DatagramError::HeaderNotJson(_) => "bad_header",
            DatagramError::UnsupportedHeader { .. } => "unsupported_header",
            DatagramError::BodyNotJson(_) => "body_not_json",
            DatagramError::BodyNotObject => "body_not_object",
            DatagramError::MissingTraceId => "missing_trace_id",
            DatagramError::MissingId => "missing_id",
        }
    }
}

/// A valid datagram, borrowed from the receive buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedDatagram<'a> {
    /// The segment document exactly as received (everything after the first `\n`).
    pub body: &'a [u8],
    /// The document's `trace_id` (borrowed unless it contained JSON escapes).
    pub trace_id: Cow<'a, str>,
    /// The document's `id`.
    pub id: Cow<'a, str>,
}

impl ParsedDatagram<'_> {
    /// The bytes the segment [`to_segment`](Self::to_segment) makes will hold
    /// ([`XraySegment::held_bytes`]), known before it is copied.
    pub fn segment_bytes(&self) -> usize {
        self.body.len() + self.trace_id.len() + self.id.len()
    }

    /// Copies the document out of the receive buffer: the one copy a segment costs.
    pub fn to_segment(&self) -> XraySegment {
        XraySegment {
            body: Bytes::copy_from_slice(self.body),
            trace_id: self.trace_id.clone().into_owned(),
            id: self.id.clone().into_owned(),
        }
    }
}

/// Splits and validates one datagram (see the module documentation for the rules).
pub fn parse_datagram(datagram: &[u8]) -> Result<ParsedDatagram<'_>, DatagramError> {
    let newline = datagram.iter().position(|&byte| byte == b'\n').ok_or(DatagramError::NoNewline)?;
    let (header, body) = (&datagram[..newline], &datagram[newline + 1..]);
    check_header(header)?;
    if body.trim_ascii().is_empty() {
        return Err(DatagramError::EmptyBody);
    }
    let ids = parse_document_ids(body)?;
    let trace_id = ids.trace_id.ok_or(DatagramError::MissingTraceId)?;
    let id = ids.id.ok_or(DatagramError::MissingId)?;
    Ok(ParsedDatagram { body, trace_id, id })
}

/// The daemon protocol header: `{"format":"json","version":1}`.
struct Header<'a> {
    format: Option<JsonString<'a>>,
    version: Option<serde_json::Value>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Header<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Hand-written so that only an object is a header (derived structs also take arrays).
        struct HeaderVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for HeaderVisitor<'a> {
            type Value = Header<'a>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a header object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut header = Header { format: None, version: None };
                while let Some(key) = map.next_key::<HeaderKey>()? {
                    match key {
                        HeaderKey::Format => header.format = Some(map.next_value()?),
                        HeaderKey::Version => header.version = Some(map.next_value()?),
                        HeaderKey::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(header)
            }
        }
        deserializer.deserialize_map(HeaderVisitor(std::marker::PhantomData))
    }
}

/// A key of the header, compared without allocating.
enum HeaderKey {
    Format,
    Version,
    Other,
}

impl<'de> Deserialize<'de> for HeaderKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeaderKeyVisitor;
        impl Visitor<'_> for HeaderKeyVisitor {
            type Value = HeaderKey;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("an object key")
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<HeaderKey, E> {
                Ok(match key {
                    "format" => HeaderKey::Format,
                    "version" => HeaderKey::Version,
                    _ => HeaderKey::Other,
                })
            }
        }
        deserializer.deserialize_str(HeaderKeyVisitor)
    }
}

fn check_header(header: &[u8]) -> Result<(), DatagramError> {
    let header: Header<'_> = serde_json::from_slice(header).map_err(DatagramError::HeaderNotJson)?;
    let format_ok = header.format.as_ref().and_then(|f| f.0.as_deref()).is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let version_ok = header.version.as_ref().and_then(serde_json::Value::as_u64) == Some(1);
    if format_ok && version_ok {
        return Ok(());
    }
    let format = match header.format.and_then(|f| f.0) {
        Some(format) => shorten(&serde_json::Value::String(format.into_owned()).to_string()),
        None => "missing or not a string".to_owned(),
    };
    let version = match header.version {
        Some(version) => shorten(&version.to_string()),
        None => "missing".to_owned(),
    };
    Err(DatagramError::UnsupportedHeader { format, version })
}

/// Keeps log lines short whatever a sender put in its header.
fn shorten(text: &str) -> String {
    const LIMIT: usize = 32;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The two fields of a segment document the receiver needs.
struct DocumentIds<'a> {
    trace_id: Option<Cow<'a, str>>,
    id: Option<Cow<'a, str>>,
}

fn parse_document_ids(body: &[u8]) -> Result<DocumentIds<'_>, DatagramError> {
    let starts_as_object = body.trim_ascii_start().first() == Some(&b'{');
    if !starts_as_object {
        // Only the error path pays for telling "not JSON" from "JSON, but not an object".
        return Err(match serde_json::from_slice::<IgnoredAny>(body) {
            Ok(_) => DatagramError::BodyNotObject,
            Err(error) => DatagramError::BodyNotJson(error),
        });
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let ids = deserializer.deserialize_map(DocumentIdsVisitor).map_err(DatagramError::BodyNotJson)?;
    deserializer.end().map_err(DatagramError::BodyNotJson)?;
    Ok(ids)
}

struct DocumentIdsVisitor;

impl<'de> Visitor<'de> for DocumentIdsVisitor {
    type Value = DocumentIds<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a segment document object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut ids = DocumentIds { trace_id: None, id: None };
        // A repeated key: the last one wins, as with Go's encoding/json.
        while let Some(key) = map.next_key::<DocumentKey>()? {
            match key {
                DocumentKey::TraceId => ids.trace_id = map.next_value::<JsonString<'de>>()?.0,
                DocumentKey::Id => ids.id = map.next_value::<JsonString<'de>>()?.0,
                DocumentKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(ids)
    }
}

/// A key of a segment document, compared without allocating.
enum DocumentKey {
    TraceId,
    Id,
    Other,
}

impl<'de> Deserialize<'de> for DocumentKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DocumentKeyVisitor;
        impl Visitor<'_> for DocumentKeyVisitor {
            type Value = DocumentKey;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("an object key")
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<DocumentKey, E> {
                Ok(match key {
                    "trace_id" => DocumentKey::TraceId,
                    "id" => DocumentKey::Id,
                    _ => DocumentKey::Other,
                })
            }
        }
        deserializer.deserialize_str(DocumentKeyVisitor)
    }
}

/// Any JSON value; `Some` (borrowed where possible) when it is a string, `None` otherwise.
struct JsonString<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for JsonString<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonStringVisitor(std::marker::PhantomData))
    }
}

struct JsonStringVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for JsonStringVisitor<'a> {
    type Value = JsonString<'a>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(JsonString(Some(Cow::Borrowed(value))))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(JsonString(Some(Cow::Owned(value.to_owned()))))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
        Ok(JsonString(Some(Cow::Owned(value))))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(JsonString(None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(JsonString(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(JsonString(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(JsonString(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(JsonString(None))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(JsonString(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(JsonString(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(JsonString(None))
    }
}

/// Checks the length of a datagram read into a buffer of `capacity` bytes: one that filled
/// the buffer may have been cut short by the kernel.
pub fn check_received_len(len: usize, capacity: usize) -> Result<(), DatagramError> {
    if len >= capacity { Err(DatagramError::TooLarge) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "{\"format\":\"json\",\"version\":1}\n";
    const DOCUMENT: &str = r#"{"trace_id":"1-5f84c7a1-e7d1852db8c4fd35d88bf49a","id":"6226467e3f845502","name":"api"}"#;

    fn datagram(header: &str, body: &str) -> Vec<u8> {
        format!("{header}{body}").into_bytes()
    }

    #[test]
    fn parses_a_compact_header_and_keeps_the_body_exactly() {
        let bytes = datagram(HEADER, DOCUMENT);
        let parsed = parse_datagram(&bytes).expect("valid");
        assert_eq!(parsed.body, DOCUMENT.as_bytes());
        assert_eq!(parsed.trace_id, "1-5f84c7a1-e7d1852db8c4fd35d88bf49a");
        assert_eq!(parsed.id, "6226467e3f845502");
        assert!(matches!(parsed.id, Cow::Borrowed(_)), "ids are borrowed from the buffer");
        let segment = parsed.to_segment();
        assert_eq!(parsed.segment_bytes(), segment.held_bytes());
        assert_eq!(&segment.body[..], DOCUMENT.as_bytes());
        assert_eq!(segment.id, "6226467e3f845502");
    }

    #[test]
    fn accepts_any_header_whitespace_case_and_extra_keys() {
        for header in [
            "{\"format\": \"json\", \"version\": 1}\n",
            "  { \"version\" : 1 , \"format\" :\t\"json\" }  \n",
            "{\"format\":\"JSON\",\"version\":1}\n",
            "{\"format\":\"Json\",\"version\":1,\"extra\":{\"nested\":[1,2]}}\n",
            "{\"format\":\"json\",\"version\":1}\r\n",
        ] {
            let bytes = datagram(header, DOCUMENT);
            let result = parse_datagram(&bytes);
            assert!(result.is_ok(), "{header:?}: {result:?}");
        }
    }

    #[test]
    fn splits_at_the_first_newline_only() {
        let body = "{\n\"trace_id\": \"1-5f84c7a1-e7d1852db8c4fd35d88bf49a\",\n\"id\": \"6226467e3f845502\"\n}";
        let bytes = datagram(HEADER, body);
        assert_eq!(parse_datagram(&bytes).expect("valid").body, body.as_bytes());
    }

    #[test]
    fn accepts_and_keeps_trailing_whitespace_after_the_document() {
        for trailer in ["\n", "\r\n", "  \n\n"] {
            let body = format!("{DOCUMENT}{trailer}");
            let bytes = datagram(HEADER, &body);
            assert_eq!(parse_datagram(&bytes).expect("valid").body, body.as_bytes());
        }
    }

    #[test]
    fn accepts_a_streamed_subsegment() {
        let body = r#"{"type":"subsegment","parent_id":"f55d0241247db84d","id":"225413e44dc641fe","trace_id":"1-6b012d8d-9f373b4f1d1147d274404944","name":"db"}"#;
        assert!(parse_datagram(&datagram(HEADER, body)).is_ok());
    }

    #[test]
    fn unescapes_ids_that_contain_json_escapes() {
        let body = r#"{"trace_id":"1-5f84c7a1-e7d1852db8c4fd35d88bf49\u0061","id":"6226467e3f845502"}"#;
        let bytes = datagram(HEADER, body);
        let parsed = parse_datagram(&bytes).expect("valid");
        assert_eq!(parsed.trace_id, "1-5f84c7a1-e7d1852db8c4fd35d88bf49a");
    }

    #[test]
    fn last_of_repeated_ids_wins_and_other_keys_of_any_type_are_skipped() {
        let body = r#"{"id":"aaaaaaaaaaaaaaaa","x":[{"id":"nested"}],"n":null,"f":1.5e3,"b":true,"id":"bbbbbbbbbbbbbbbb","trace_id":"t"}"#;
        let bytes = datagram(HEADER, body);
        let parsed = parse_datagram(&bytes).expect("valid");
        assert_eq!(parsed.id, "bbbbbbbbbbbbbbbb");
    }

    #[test]
    fn rejects_a_datagram_without_newline() {
        assert!(matches!(parse_datagram(HEADER.trim_end().as_bytes()), Err(DatagramError::NoNewline)));
        assert!(matches!(parse_datagram(b""), Err(DatagramError::NoNewline)));
    }

    #[test]
    fn rejects_an_empty_body() {
        assert!(matches!(parse_datagram(HEADER.as_bytes()), Err(DatagramError::EmptyBody)));
        assert!(matches!(parse_datagram(&datagram(HEADER, " \r\n ")), Err(DatagramError::EmptyBody)));
    }

    #[test]
    fn rejects_a_header_that_is_not_json() {
        for header in ["\n", "format json\n", "{\"format\":\"json\",\"version\":1\n", "[\"json\",1]\n"] {
            let bytes = datagram(header, DOCUMENT);
            let result = parse_datagram(&bytes);
            assert!(matches!(result, Err(DatagramError::HeaderNotJson(_))), "{header:?}: {result:?}");
        }
    }

    #[test]
    fn rejects_a_wrong_format_or_version() {
        for header in [
            "{\"format\":\"xml\",\"version\":1}\n",
            "{\"format\":\"json\",\"version\":2}\n",
            "{\"format\":\"json\",\"version\":\"1\"}\n",
            "{\"format\":\"json\",\"version\":1.0}\n",
            "{\"format\":\"json\"}\n",
            "{\"version\":1}\n",
            "{\"format\":7,\"version\":1}\n",
            "{}\n",
        ] {
            let bytes = datagram(header, DOCUMENT);
            let result = parse_datagram(&bytes);
            assert!(matches!(result, Err(DatagramError::UnsupportedHeader { .. })), "{header:?}: {result:?}");
        }
        let bytes = datagram("{\"format\":\"xml\",\"version\":2}\n", DOCUMENT);
        let error = parse_datagram(&bytes).expect_err("invalid");
        assert_eq!(error.to_string(), "unsupported header: format \"xml\", version 2 (expected \"json\" and 1)");
    }

    #[test]
    fn shortens_long_header_values_in_the_error() {
        let long = "x".repeat(1000);
        let header = format!("{{\"format\":\"{long}\",\"version\":1}}\n");
        let bytes = datagram(&header, DOCUMENT);
        let error = parse_datagram(&bytes).expect_err("invalid");
        assert!(error.to_string().len() < 120, "{error}");
    }

    #[test]
    fn rejects_a_body_that_is_not_json() {
        for body in
            ["x", "{", "{\"id\":\"6226467e3f845502\"", "{\"id\":}", &format!("{DOCUMENT}x"), &format!("{DOCUMENT}{{}}")]
        {
            let bytes = datagram(HEADER, body);
            let result = parse_datagram(&bytes);
            assert!(matches!(result, Err(DatagramError::BodyNotJson(_))), "{body:?}: {result:?}");
        }
    }

    #[test]
    fn rejects_a_body_that_is_json_but_not_an_object() {
        for body in ["[]", "[{\"id\":\"a\",\"trace_id\":\"b\"}]", "\"segment\"", "42", "null", " true "] {
            let bytes = datagram(HEADER, body);
            let result = parse_datagram(&bytes);
            assert!(matches!(result, Err(DatagramError::BodyNotObject)), "{body:?}: {result:?}");
        }
    }

    #[test]
    fn rejects_a_body_without_string_ids() {
        let missing_trace = r#"{"id":"6226467e3f845502","name":"api"}"#;
        assert!(matches!(parse_datagram(&datagram(HEADER, missing_trace)), Err(DatagramError::MissingTraceId)));
        let numeric_trace = r#"{"id":"6226467e3f845502","trace_id":15}"#;
        assert!(matches!(parse_datagram(&datagram(HEADER, numeric_trace)), Err(DatagramError::MissingTraceId)));
        let missing_id = r#"{"trace_id":"1-5f84c7a1-e7d1852db8c4fd35d88bf49a"}"#;
        assert!(matches!(parse_datagram(&datagram(HEADER, missing_id)), Err(DatagramError::MissingId)));
        let object_id = r#"{"trace_id":"1-5f84c7a1-e7d1852db8c4fd35d88bf49a","id":{"id":"x"}}"#;
        assert!(matches!(parse_datagram(&datagram(HEADER, object_id)), Err(DatagramError::MissingId)));
        assert!(matches!(parse_datagram(&datagram(HEADER, "{}")), Err(DatagramError::MissingTraceId)));
    }

    /// A document of exactly `len` bytes: DOCUMENT with a padding field.
    fn document_of_len(len: usize) -> String {
        let skeleton = r#"{"trace_id":"1-5f84c7a1-e7d1852db8c4fd35d88bf49a","id":"6226467e3f845502","pad":""}"#;
        let padding = "p".repeat(len - skeleton.len());
        let document = skeleton.replace("\"pad\":\"\"", &format!("\"pad\":\"{padding}\""));
        assert_eq!(document.len(), len);
        document
    }

    #[test]
    fn parses_datagrams_up_to_the_size_limits() {
        // The largest datagram the receive buffer takes whole.
        let body = document_of_len(MAX_DATAGRAM_BYTES - 1 - HEADER.len());
        let bytes = datagram(HEADER, &body);
        assert_eq!(bytes.len(), 65_535);
        assert!(check_received_len(bytes.len(), MAX_DATAGRAM_BYTES + 1).is_ok());
        assert_eq!(parse_datagram(&bytes).expect("valid").body.len(), body.len());
        // The largest IPv4 UDP payload.
        let bytes = datagram(HEADER, &document_of_len(65_507 - HEADER.len()));
        assert!(parse_datagram(&bytes).is_ok());
        // The parser itself takes any size: a 64 KiB document (X-Ray's document limit).
        let bytes = datagram(HEADER, &document_of_len(64 * 1024));
        assert_eq!(parse_datagram(&bytes).expect("valid").body.len(), 64 * 1024);
    }

    #[test]
    fn a_read_that_fills_the_buffer_is_truncated() {
        let capacity = MAX_DATAGRAM_BYTES + 1;
        assert!(check_received_len(MAX_DATAGRAM_BYTES, capacity).is_ok());
        assert!(matches!(check_received_len(capacity, capacity), Err(DatagramError::TooLarge)));
    }

    #[test]
    fn every_error_has_its_own_reason() {
        let errors = [
            DatagramError::TooLarge,
            DatagramError::NoNewline,
            DatagramError::EmptyBody,
            parse_datagram(b"x\n{}").expect_err("bad header"),
            DatagramError::UnsupportedHeader { format: String::new(), version: String::new() },
            parse_datagram(&datagram(HEADER, "x")).expect_err("not JSON"),
            DatagramError::BodyNotObject,
            DatagramError::MissingTraceId,
            DatagramError::MissingId,
        ];
        let reasons: std::collections::HashSet<_> = errors.iter().map(DatagramError::reason).collect();
        assert_eq!(reasons.len(), errors.len());
        let listed: std::collections::HashSet<_> = DatagramError::REASONS.into_iter().collect();
        assert_eq!(reasons, listed, "REASONS lists every reason");
    }

    #[test]
    fn never_panics_on_a_truncated_or_corrupted_datagram() {
        let capture = include_bytes!("../../../tests/data/run1_001_xray_udp.bin");
        for cut in 0..capture.len() {
            // A proper prefix of the capture (which ends with its closing brace) is never valid.
            assert!(parse_datagram(&capture[..cut]).is_err(), "cut at {cut}");
            let mut corrupted = capture.to_vec();
            corrupted[cut] = corrupted[cut].wrapping_add(0x55);
            let _ = parse_datagram(&corrupted);
        }
    }

    #[test]
    fn parses_every_captured_datagram() {
        let captures = [
            include_bytes!("../../../tests/data/run1_001_xray_udp.bin").as_slice(),
            include_bytes!("../../../tests/data/run2json_003_xray_udp.bin"),
            include_bytes!("../../../tests/data/run7stream_001_xray_udp.bin"),
            include_bytes!("../../../tests/data/run7stream_013_xray_udp.bin"),
        ];
        for capture in captures {
            let parsed = parse_datagram(capture).expect("captured datagrams are valid");
            assert!(capture.ends_with(parsed.body));
            assert_eq!(parsed.id.len(), 16);
            assert_eq!(parsed.trace_id.len(), 35);
        }
    }
}
