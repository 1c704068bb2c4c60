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
#[derive(Debug)]
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
    has_events: bool,
    has_links: bool,
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
    fn add_span(&mut self, body: &[u8], group: i64, invalid: &mut Invalid) -> Parsed<()> {
        let span = span_fields(body)?;
        let (Some(trace_id), Some(span_id)) = (id::<16>(span.trace_id), id::<8>(span.span_id)) else {
            invalid.note_invalid_ids(&span);
            return Ok(());
        };
        let Fixed::Spans(columns) = &mut self.fixed else { return Ok(()) };
        let row = self.rows;
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
        self.raw_bytes += span.name.len() + span.status_message.len() + span.trace_state.len();
        let mut events = Vec::new();
        let mut links = Vec::new();
        let mut fields = Fields::new(body);
        while let Some((tag, wire)) = fields.next()? {
            match tag {
                9 => {
                    let attribute = fields.bytes(wire)?;
                    let _ = self.attributes.push_protobuf(row, attribute);
                }
                11 if span.has_events => events.push(Event::decode(fields.bytes(wire)?).map_err(|_| Malformed)?),
                13 if span.has_links => links.push(Link::decode(fields.bytes(wire)?).map_err(|_| Malformed)?),
                _ => fields.skip(wire)?,
            }
        }
        if !events.is_empty() {
            columns.events.push_json(row, &Events(&events));
        }
        if !links.is_empty() {
            columns.links.push_json(row, &Links(&links));
        }
        self.rows += 1;
        Ok(())
    }
}

fn span_fields(body: &[u8]) -> Parsed<SpanFields<'_>> {
    let mut span = SpanFields::default();
    let mut fields = Fields::new(body);
    while let Some((tag, wire)) = fields.next()? {
        match tag {
            1 => span.trace_id = fields.bytes(wire)?,
            2 => span.span_id = fields.bytes(wire)?,
            3 => span.trace_state = fields.bytes(wire)?,
            4 => span.parent_span_id = fields.bytes(wire)?,
            5 => span.name = fields.bytes(wire)?,
            6 => span.kind = i64::from(fields.varint(wire)? as i32),
            7 => span.start = fields.fixed64(wire)?,
            8 => span.end = fields.fixed64(wire)?,
            11 => {
                span.has_events = true;
                fields.skip(wire)?;
            }
            13 => {
                span.has_links = true;
                fields.skip(wire)?;
            }
            15 => (span.status_code, span.status_message) = status(fields.bytes(wire)?)?,
            _ => fields.skip(wire)?,
        }
    }
    Ok(span)
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
