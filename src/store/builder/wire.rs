//! OTLP trace requests appended to an open block straight from their protobuf bytes, without
//! decoding them into messages first: names, ids and attribute values are copied from the
//! request's bytes into the columns, so a span costs no allocation of its own.
//!
//! The bytes have been checked (by the receiver's wire check or by prost) before they get
//! here; should a field still not parse, the span it is in is skipped and counted invalid.
//! Rare parts (events, links, resources, array/map/bytes values) are decoded with prost.

use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use prost::Message;
use prost::bytes::Buf;
use prost::encoding::{WireType, decode_key, decode_varint};

use super::{Fixed, Invalid, OpenBlock, id, nanos};
use crate::store::encode::{Events, Hex, Links, Value as JsonValue};
use crate::store::value::ValueColumn;

/// A field's bytes could not be read.
#[derive(Clone, Copy, Debug)]
struct Malformed;

type Parsed<T> = Result<T, Malformed>;

/// The fields of one message body, in order.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn new(body: &'a [u8]) -> Fields<'a> {
        Fields { rest: body }
    }

    /// The next field's tag and wire type, `None` at the end.
    fn next(&mut self) -> Parsed<Option<(u32, WireType)>> {
        match self.rest.first() {
            None => Ok(None),
            // Tags below 16 fit in one byte: every field waggle reads.
            Some(&key) if key < 0x80 && key >> 3 != 0 => {
                let wire = WireType::try_from(u64::from(key & 7)).map_err(|_| Malformed)?;
                self.rest = &self.rest[1..];
                Ok(Some((u32::from(key >> 3), wire)))
            }
            Some(_) => decode_key(&mut self.rest).map(Some).map_err(|_| Malformed),
        }
    }

    /// A length: one byte for anything under 128, else a varint.
    fn length(&mut self) -> Parsed<usize> {
        match self.rest.first() {
            Some(&length) if length < 0x80 => {
                self.rest = &self.rest[1..];
                Ok(usize::from(length))
            }
            _ => usize::try_from(decode_varint(&mut self.rest).map_err(|_| Malformed)?).map_err(|_| Malformed),
        }
    }

    fn varint(&mut self, wire: WireType) -> Parsed<u64> {
        if wire != WireType::Varint {
            return Err(Malformed);
        }
        decode_varint(&mut self.rest).map_err(|_| Malformed)
    }

    fn fixed64(&mut self, wire: WireType) -> Parsed<u64> {
        if wire != WireType::SixtyFourBit || self.rest.len() < 8 {
            return Err(Malformed);
        }
        Ok(self.rest.get_u64_le())
    }

    fn bytes(&mut self, wire: WireType) -> Parsed<&'a [u8]> {
        if wire != WireType::LengthDelimited {
            return Err(Malformed);
        }
        let length = self.length()?;
        let (bytes, rest) = self.rest.split_at_checked(length).ok_or(Malformed)?;
        self.rest = rest;
        Ok(bytes)
    }

    fn string(&mut self, wire: WireType) -> Parsed<&'a str> {
        std::str::from_utf8(self.bytes(wire)?).map_err(|_| Malformed)
    }

    fn skip(&mut self, wire: WireType) -> Parsed<()> {
        match wire {
            WireType::Varint => self.varint(wire).map(drop),
            WireType::SixtyFourBit => self.fixed64(wire).map(drop),
            WireType::LengthDelimited => self.bytes(wire).map(drop),
            WireType::ThirtyTwoBit if self.rest.len() >= 4 => {
                self.rest.advance(4);
                Ok(())
            }
            _ => Err(Malformed),
        }
    }
}

/// A span's own fields, borrowed from the request.
#[derive(Default)]
struct SpanFields<'a> {
    trace_id: &'a [u8],
    span_id: &'a [u8],
    parent_span_id: &'a [u8],
    trace_state: &'a [u8],
    name: &'a [u8],
    kind: i64,
    start: u64,
    end: u64,
    status_code: i64,
    status_message: &'a [u8],
}

impl OpenBlock {
    /// Appends every span of a protobuf `ExportTraceServiceRequest` with valid ids; counts the
    /// others in `invalid`. Returns the spans appended.
    pub(crate) fn add_spans_protobuf(&mut self, request: &[u8], invalid: &mut Invalid) -> usize {
        let before = self.rows;
        let attributes_before = self.attributes.raw_bytes();
        let mut fields = Fields::new(request);
        while let Ok(Some((tag, wire))) = fields.next() {
            let parsed = match tag {
                1 => fields.bytes(wire).and_then(|resource_spans| self.add_resource_spans(resource_spans, invalid)),
                _ => fields.skip(wire),
            };
            if parsed.is_err() {
                invalid.note_malformed();
                break;
            }
        }
        let appended = self.rows - before;
        self.raw_bytes += appended * (16 + 8 + 8 + 8 * 5);
        self.raw_bytes += self.attributes.raw_bytes().saturating_sub(attributes_before);
        appended
    }

    fn add_resource_spans(&mut self, body: &[u8], invalid: &mut Invalid) -> Parsed<()> {
        // The resource comes first in practice, but fields may come in any order.
        let mut resource = None;
        let mut fields = Fields::new(body);
        while let Some((tag, wire)) = fields.next()? {
            match tag {
                1 => resource = Some(fields.bytes(wire)?),
                _ => fields.skip(wire)?,
            }
        }
        let mut fields = Fields::new(body);
        while let Some((tag, wire)) = fields.next()? {
            match tag {
                2 => self.add_scope_spans(resource, fields.bytes(wire)?, invalid)?,
                _ => fields.skip(wire)?,
            }
        }
        Ok(())
    }

    fn add_scope_spans(&mut self, resource: Option<&[u8]>, body: &[u8], invalid: &mut Invalid) -> Parsed<()> {
        let (mut scope_name, mut scope_version) = ("", "");
        let mut fields = Fields::new(body);
        while let Some((tag, wire)) = fields.next()? {
            match tag {
                1 => (scope_name, scope_version) = scope(fields.bytes(wire)?)?,
                _ => fields.skip(wire)?,
            }
        }
        let group = self.groups.find_or_add_protobuf(resource, scope_name, scope_version);
        let mut fields = Fields::new(body);
        while let Some((tag, wire)) = fields.next()? {
            match tag {
                2 => {
                    let span = fields.bytes(wire)?;
                    if self.add_span(span, group, invalid).is_err() {
                        invalid.note_malformed();
                    }
                }
                _ => fields.skip(wire)?,
            }
        }
        Ok(())
    }

    /// Appends one span; a span without valid ids is left out and counted in `invalid`.
    ///
    /// One pass: encoders write the ids (fields 1 and 2) before the attributes (field 9), so
    /// attributes go straight into the columns; if they came first, a second pass adds them.
    /// Whatever was added for a span that is then left out is taken back.
    fn add_span(&mut self, body: &[u8], group: i64, invalid: &mut Invalid) -> Parsed<()> {
        let row = self.rows;
        let mut span = SpanFields::default();
        let (mut events, mut links) = (Vec::new(), Vec::new());
        let mut attributes_before_ids = false;
        let mut fields = Fields::new(body);
        let parsed = loop {
            let (tag, wire) = match fields.next() {
                Ok(Some(field)) => field,
                Ok(None) => break Ok(()),
                Err(error) => break Err(error),
            };
            let field = match tag {
                9 if span.trace_id.len() == 16 && span.span_id.len() == 8 => {
                    // An attribute that does not parse is left out; the span stays.
                    fields.bytes(wire).map(|attribute| {
                        let _ = self.attributes.push_protobuf(row, attribute);
                    })
                }
                9 => {
                    attributes_before_ids = true;
                    fields.skip(wire)
                }
                11 => fields
                    .bytes(wire)
                    .and_then(|event| Event::decode(event).map_err(|_| Malformed))
                    .map(|event| events.push(event)),
                13 => fields
                    .bytes(wire)
                    .and_then(|link| Link::decode(link).map_err(|_| Malformed))
                    .map(|link| links.push(link)),
                _ => span.read(&mut fields, tag, wire),
            };
            if let Err(error) = field {
                break Err(error);
            }
        };
        let ids = (id::<16>(span.trace_id), id::<8>(span.span_id));
        let (Ok(()), (Some(trace_id), Some(span_id))) = (parsed, ids) else {
            self.attributes.truncate(row);
            if parsed.is_ok() {
                invalid.note_invalid_ids(&span);
            }
            return parsed;
        };
        if attributes_before_ids {
            let mut fields = Fields::new(body);
            while let Some((tag, wire)) = fields.next()? {
                match tag {
                    9 => {
                        let _ = self.attributes.push_protobuf(row, fields.bytes(wire)?);
                    }
                    _ => fields.skip(wire)?,
                }
            }
        }
        let Fixed::Spans(columns) = &mut self.fixed else { return Ok(()) };
        columns.trace_id.push(trace_id);
        columns.span_id.push(span_id);
        columns.parent_span_id.push(id::<8>(span.parent_span_id).unwrap_or_default());
        columns.start.push(nanos(span.start));
        columns.end.push(nanos(span.end));
        columns.group.push(group);
        columns.kind.push(span.kind);
        columns.status_code.push(span.status_code);
        // Strings go in as the receiver checked them: no second UTF-8 validation.
        columns.name.push_str_bytes(row, span.name);
        if !span.status_message.is_empty() {
            columns.status_message.push_str_bytes(row, span.status_message);
        }
        if !span.trace_state.is_empty() {
            columns.trace_state.push_str_bytes(row, span.trace_state);
        }
        if !events.is_empty() {
            columns.events.push_json(row, &Events(&events));
        }
        if !links.is_empty() {
            columns.links.push_json(row, &Links(&links));
        }
        self.raw_bytes += span.name.len() + span.status_message.len() + span.trace_state.len();
        self.rows += 1;
        Ok(())
    }
}

impl<'a> SpanFields<'a> {
    /// Reads one of the span's own fields (anything else is skipped).
    fn read(&mut self, fields: &mut Fields<'a>, tag: u32, wire: WireType) -> Parsed<()> {
        match tag {
            1 => self.trace_id = fields.bytes(wire)?,
            2 => self.span_id = fields.bytes(wire)?,
            3 => self.trace_state = fields.bytes(wire)?,
            4 => self.parent_span_id = fields.bytes(wire)?,
            5 => self.name = fields.bytes(wire)?,
            6 => self.kind = i64::from(fields.varint(wire)? as i32),
            7 => self.start = fields.fixed64(wire)?,
            8 => self.end = fields.fixed64(wire)?,
            15 => (self.status_code, self.status_message) = status(fields.bytes(wire)?)?,
            _ => fields.skip(wire)?,
        }
        Ok(())
    }
}

fn status(body: &[u8]) -> Parsed<(i64, &[u8])> {
    let (mut code, mut message): (i64, &[u8]) = (0, &[]);
    let mut fields = Fields::new(body);
    while let Some((tag, wire)) = fields.next()? {
        match tag {
            2 => message = fields.bytes(wire)?,
            3 => code = i64::from(fields.varint(wire)? as i32),
            _ => fields.skip(wire)?,
        }
    }
    Ok((code, message))
}

fn scope(body: &[u8]) -> Parsed<(&str, &str)> {
    let (mut name, mut version) = ("", "");
    let mut fields = Fields::new(body);
    while let Some((tag, wire)) = fields.next()? {
        match tag {
            1 => name = fields.string(wire)?,
            2 => version = fields.string(wire)?,
            _ => fields.skip(wire)?,
        }
    }
    Ok((name, version))
}

impl super::AttributeColumns {
    /// Pushes one protobuf `KeyValue`; one that does not parse is left out.
    fn push_protobuf(&mut self, row: usize, key_value: &[u8]) -> Parsed<()> {
        let (mut key, mut value): (&[u8], _) = (&[], None);
        let mut fields = Fields::new(key_value);
        while let Some((tag, wire)) = fields.next()? {
            match tag {
                1 => key = fields.bytes(wire)?,
                2 => value = Some(fields.bytes(wire)?),
                _ => fields.skip(wire)?,
            }
        }
        let column = self.column_of_bytes(key).ok_or(Malformed)?;
        match value {
            Some(value) => push_any_value(column, row, value),
            None => {
                column.push_json(row, &());
                Ok(())
            }
        }
    }
}

/// Pushes a protobuf `AnyValue`: strings, ints, doubles and booleans straight from the bytes,
/// anything else (arrays, maps, bytes) through prost, as JSON.
fn push_any_value(column: &mut ValueColumn, row: usize, body: &[u8]) -> Parsed<()> {
    let mut last = None;
    let mut fields = Fields::new(body);
    while let Some((tag, wire)) = fields.next()? {
        last = Some(match tag {
            1 => Simple::Str(fields.bytes(wire)?),
            2 => Simple::Bool(fields.varint(wire)? != 0),
            3 => Simple::Int(fields.varint(wire)? as i64),
            4 => Simple::Float(f64::from_bits(fields.fixed64(wire)?)),
            _ => {
                fields.skip(wire)?;
                Simple::Other
            }
        });
    }
    match last {
        Some(Simple::Str(text)) => column.push_str_bytes(row, text),
        Some(Simple::Bool(flag)) => column.push_bool(row, flag),
        Some(Simple::Int(number)) => column.push_ref(row, crate::store::value::ValueRef::Int(number)),
        Some(Simple::Float(number)) => column.push_ref(row, crate::store::value::ValueRef::Float(number)),
        Some(Simple::Other) => {
            let value = AnyValue::decode(body).map_err(|_| Malformed)?;
            column.push_json(row, &JsonValue(Some(&value)));
        }
        // An empty AnyValue: the attribute has no value.
        None => column.push_json(row, &()),
    }
    Ok(())
}

/// The kinds of `AnyValue` read straight from the bytes.
enum Simple<'a> {
    /// A string's bytes, as the receiver checked them.
    Str(&'a [u8]),
    Bool(bool),
    Int(i64),
    Float(f64),
    Other,
}

impl super::Groups {
    /// The group of a protobuf resource and a scope, added if new (the resource is decoded only
    /// then).
    fn find_or_add_protobuf(&mut self, resource: Option<&[u8]>, scope_name: &str, scope_version: &str) -> i64 {
        self.scratch.clear();
        self.scratch.extend_from_slice(resource.unwrap_or_default());
        self.scratch.push(0xff);
        self.scratch.extend_from_slice(scope_name.as_bytes());
        self.scratch.push(0);
        self.scratch.extend_from_slice(scope_version.as_bytes());
        if let Some(&group) = self.index.get(&self.scratch) {
            return group as i64;
        }
        let resource = resource.and_then(|bytes| Resource::decode(bytes).ok());
        self.add(resource.as_ref(), scope_name, scope_version)
    }
}

impl Invalid {
    /// Notes a span (or request) whose bytes did not parse.
    fn note_malformed(&mut self) {
        self.spans += 1;
        if self.first.is_none() {
            self.first = Some("a span whose protobuf does not parse".to_owned());
        }
    }

    /// Notes a span without a valid trace or span id.
    fn note_invalid_ids(&mut self, span: &SpanFields<'_>) {
        self.spans += 1;
        if self.first.is_none() {
            self.first = Some(format!(
                "span {:?} with trace id {:?} ({} bytes) and span id {:?} ({} bytes)",
                String::from_utf8_lossy(span.name),
                Hex(span.trace_id).to_string(),
                span.trace_id.len(),
                Hex(span.span_id).to_string(),
                span.span_id.len()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
    use opentelemetry_proto::tonic::trace::v1::Span;
    use prost::encoding::encode_varint;

    use super::*;
    use crate::store::block::{Kind, key};
    use crate::store::value::ValueRef;

    fn attribute(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
            ..KeyValue::default()
        }
    }

    /// `bytes` as length-delimited field `tag`.
    fn field(tag: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_varint(tag << 3 | 2, &mut out);
        encode_varint(bytes.len() as u64, &mut out);
        out.extend_from_slice(bytes);
        out
    }

    /// A request of one span whose encoded fields are `span` as given, in that order.
    fn request_of(span: &[u8]) -> Vec<u8> {
        field(1, &field(2, &field(2, span)))
    }

    fn route(block: &OpenBlock, row: usize) -> Option<String> {
        let snapshot = block.snapshot(&|_| true);
        match snapshot.values("a:http.route")?.get(row)? {
            ValueRef::Str(text) => Some(text.to_owned()),
            _ => None,
        }
    }

    #[test]
    fn attributes_written_before_the_ids_are_kept() {
        let attributes_only =
            Span { attributes: vec![attribute("http.route", "/a")], ..Span::default() }.encode_to_vec();
        let mut span = attributes_only;
        span.extend(field(1, &[7; 16]));
        span.extend(field(2, &[7; 8]));
        let mut block = OpenBlock::new(Kind::Spans);

        assert_eq!(block.add_spans_protobuf(&request_of(&span), &mut Invalid::default()), 1);
        assert_eq!(route(&block, 0).as_deref(), Some("/a"));
        assert_eq!(block.snapshot(&|_| true).id16(key::TRACE_ID), [[7; 16]]);
    }

    #[test]
    fn a_span_left_out_takes_its_attributes_with_it() {
        let zero_ids = Span {
            trace_id: vec![0; 16],
            span_id: vec![0; 8],
            attributes: vec![attribute("http.route", "/left-out")],
            ..Span::default()
        };
        let fine = Span {
            trace_id: vec![1; 16],
            span_id: vec![1; 8],
            attributes: vec![attribute("http.route", "/kept")],
            ..Span::default()
        };
        let mut block = OpenBlock::new(Kind::Spans);
        let mut invalid = Invalid::default();

        block.add_spans_protobuf(&request_of(&zero_ids.encode_to_vec()), &mut invalid);
        block.add_spans_protobuf(&request_of(&fine.encode_to_vec()), &mut invalid);
        assert_eq!((block.rows(), invalid.spans), (1, 1));
        assert_eq!(route(&block, 0).as_deref(), Some("/kept"));
    }

    #[test]
    fn a_truncated_request_is_counted_not_stored() {
        let span = Span { trace_id: vec![1; 16], span_id: vec![1; 8], ..Span::default() }.encode_to_vec();
        let mut request = request_of(&span);
        request.truncate(request.len() - 3);
        let mut block = OpenBlock::new(Kind::Spans);
        let mut invalid = Invalid::default();

        assert_eq!(block.add_spans_protobuf(&request, &mut invalid), 0);
        assert_eq!(invalid.spans, 1);
    }
}
