//! A fast check of OTLP/protobuf trace requests without decoding them: walks the wire format
//! by the `ExportTraceServiceRequest` schema, applying prost's own decoding rules (wire types
//! of known fields, varint and length bounds, UTF-8 strings, unknown fields and groups skipped,
//! the nesting limit of 100) and the id-length rules of `codec`, and counts the spans.
//!
//! It answers `Some(spans)` exactly when prost would decode the bytes and every id is the right
//! length (the `otlp_protobuf` fuzz target holds it to that, against prost); for anything else
//! it answers `None` and the caller decodes with prost, which then finds the error and words
//! it. So a request it passes can be decoded later, by the first lane that needs spans, and a
//! lane that forwards OTLP never has to decode it at all.

/// prost's nesting limit: a message body at depth 100 may not hold a nested message or an
/// unknown field.
pub(crate) const RECURSION_LIMIT: u32 = 100;

const TRACE_ID_LEN: usize = 16;
const SPAN_ID_LEN: usize = 8;

/// Spans in a valid `ExportTraceServiceRequest` whose ids are all the right length; `None`
/// when prost must look at it (it may be invalid).
pub(crate) fn check_traces(body: &[u8]) -> Option<usize> {
    let mut spans = 0;
    let mut fields = Fields::new(body);
    while let Some((tag, wire)) = fields.next_key()? {
        match tag {
            1 => resource_spans(fields.message(wire, RECURSION_LIMIT)?, RECURSION_LIMIT - 1, &mut spans)?,
            _ => fields.skip(tag, wire, RECURSION_LIMIT)?,
        }
    }
    Some(spans)
}

/// Wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LENGTH_DELIMITED: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

/// The fields of one message body, in order (also walked by `crate::resource::wire`).
pub(crate) struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    pub(crate) fn new(body: &'a [u8]) -> Self {
        Fields { rest: body }
    }

    /// Bytes of the body not walked yet.
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The next field's tag and wire type; `Some(None)` at the end of the body.
    pub(crate) fn next_key(&mut self) -> Option<Option<(u32, u8)>> {
        if self.rest.is_empty() {
            return Some(None);
        }
        let key = u32::try_from(self.varint()?).ok()?;
        let (tag, wire) = (key >> 3, (key & 7) as u8);
        // Tag 0 and wire types 6 and 7 are errors.
        if tag == 0 || wire > FIXED32 {
            return None;
        }
        Some(Some((tag, wire)))
    }

    /// A varint of at most 10 bytes whose value fits in 64 bits (prost's rule).
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for (i, &byte) in self.rest.iter().take(10).enumerate() {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                if i == 9 && byte > 1 {
                    return None;
                }
                self.rest = &self.rest[i + 1..];
                return Some(value);
            }
        }
        None
    }

    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if len > self.rest.len() {
            return None;
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(taken)
    }

    pub(crate) fn length_delimited(&mut self, wire: u8) -> Option<&'a [u8]> {
        if wire != LENGTH_DELIMITED {
            return None;
        }
        let len = usize::try_from(self.varint()?).ok()?;
        self.take(len)
    }

    /// A nested message's body; `depth_left` is the current body's remaining nesting.
    fn message(&mut self, wire: u8, depth_left: u32) -> Option<&'a [u8]> {
        if depth_left == 0 {
            return None;
        }
        self.length_delimited(wire)
    }

    fn bytes(&mut self, wire: u8) -> Option<&'a [u8]> {
        self.length_delimited(wire)
    }

    fn string(&mut self, wire: u8) -> Option<()> {
        std::str::from_utf8(self.length_delimited(wire)?).ok().map(drop)
    }

    fn varint_field(&mut self, wire: u8) -> Option<()> {
        (wire == VARINT).then_some(())?;
        self.varint().map(drop)
    }

    fn fixed64(&mut self, wire: u8) -> Option<()> {
        (wire == FIXED64).then_some(())?;
        self.take(8).map(drop)
    }

    fn fixed32(&mut self, wire: u8) -> Option<()> {
        (wire == FIXED32).then_some(())?;
        self.take(4).map(drop)
    }

    /// An unknown field `tag`, skipped as prost skips it: a group up to its own end, its
    /// fields one level deeper; an end of group without its start is an error.
    pub(crate) fn skip(&mut self, tag: u32, wire: u8, depth_left: u32) -> Option<()> {
        if depth_left == 0 {
            return None;
        }
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            FIXED32 => self.take(4).map(drop),
            START_GROUP => loop {
                let (inner_tag, inner_wire) = self.next_key()??;
                if inner_wire == END_GROUP {
                    return (inner_tag == tag).then_some(());
                }
                self.skip(inner_tag, inner_wire, depth_left - 1)?;
            },
            END_GROUP => None,
            _ => self.length_delimited(wire).map(drop),
        }
    }
}

/// Walks a message body whose fields `field` handles; `field` returns `Some(false)` for a tag
/// it does not know, which is then skipped.
fn walk<'a>(body: &'a [u8], depth: u32, mut field: impl FnMut(&mut Fields<'a>, u32, u8) -> Option<bool>) -> Option<()> {
    let mut fields = Fields::new(body);
    while let Some((tag, wire)) = fields.next_key()? {
        if !field(&mut fields, tag, wire)? {
            fields.skip(tag, wire, depth)?;
        }
    }
    Some(())
}

fn resource_spans(body: &[u8], depth: u32, spans: &mut usize) -> Option<()> {
    walk(body, depth, |fields, tag, wire| {
        match tag {
            1 => resource(fields.message(wire, depth)?, depth - 1)?,
            2 => scope_spans(fields.message(wire, depth)?, depth - 1, spans)?,
            3 => fields.string(wire)?,
            _ => return Some(false),
        }
        Some(true)
    })
}

fn resource(body: &[u8], depth: u32) -> Option<()> {
    walk(body, depth, |fields, tag, wire| {
        match tag {
            1 => key_value(fields.message(wire, depth)?, depth - 1)?,
            2 => fields.varint_field(wire)?,
            3 => entity_ref(fields.message(wire, depth)?, depth - 1)?,
            _ => return Some(false),
        }
        Some(true)
    })
}

fn entity_ref(body: &[u8], depth: u32) -> Option<()> {
    walk(body, depth, |fields, tag, wire| {
        match tag {
            1..=4 => fields.string(wire)?,
            _ => return Some(false),
        }
        Some(true)
    })
}

fn scope_spans(body: &[u8], depth: u32, spans: &mut usize) -> Option<()> {
    walk(body, depth, |fields, tag, wire| {
        match tag {
            1 => scope(fields.message(wire, depth)?, depth - 1)?,
            2 => {
                span(fields.message(wire, depth)?, depth - 1)?;
                *spans += 1;
            }
            3 => fields.string(wire)?,
            _ => return Some(false),
        }
        Some(true)
    })
}

fn scope(body: &[u8], depth: u32) -> Option<()> {
    walk(body, depth, |fields, tag, wire| {
        match tag {
            1 | 2 => fields.string(wire)?,
            3 => key_value(fields.message(wire, depth)?, depth - 1)?,
            4 => fields.varint_field(wire)?,
            _ => return Some(false),
        }
        Some(true)
    })
}

/// A span, whose ids must be the right length. A repeated scalar field keeps its last value,
/// as prost does, so the ids are checked at the end.
fn span(body: &[u8], depth: u32) -> Option<()> {
    let (mut trace_id, mut span_id, mut parent_span_id): (&[u8], &[u8], &[u8]) = (&[], &[], &[]);
    walk(body, depth, |fields, tag, wire| {
        match tag {
            1 => trace_id = fields.bytes(wire)?,
            2 => span_id = fields.bytes(wire)?,
            4 => parent_span_id = fields.bytes(wire)?,
            3 | 5 => fields.string(wire)?,
            6 | 10 | 12 | 14 => fields.varint_field(wire)?,
            7 | 8 => fields.fixed64(wire)?,
            16 => fields.fixed32(wire)?,
            9 => key_value(fields.message(wire, depth)?, depth - 1)?,
            11 => event(fields.message(wire, depth)?, depth - 1)?,
            13 => link(fields.message(wire, depth)?, depth - 1)?,
            15 => status(fields.message(wire, depth)?, depth - 1)?,
            _ => return Some(false),
        }
        Some(true)
    })?;
    let parent_ok = parent_span_id.is_empty() || parent_span_id.len() == SPAN_ID_LEN;
    (trace_id.len() == TRACE_ID_LEN && span_id.len() == SPAN_ID_LEN && parent_ok).then_some(())
}

fn event(body: &[u8], depth: u32) -> Option<()> {
    walk(body, depth, |fields, tag, wire| {
        match tag {
            1 => fields.fixed64(wire)?,
            2 => fields.string(wire)?,
            3 => key_value(fields.message(wire, depth)?, depth - 1)?,
            4 => fields.varint_field(wire)?,
            _ => return Some(false),
        }
        Some(true)
    })
}

fn link(body: &[u8], depth: u32) -> Option<()> {
    let (mut trace_id, mut span_id): (&[u8], &[u8]) = (&[], &[]);
    walk(body, depth, |fields, tag, wire| {
        match tag {
            1 => trace_id = fields.bytes(wire)?,
            2 => span_id = fields.bytes(wire)?,
            3 => fields.string(wire)?,
            4 => key_value(fields.message(wire, depth)?, depth - 1)?,
            5 => fields.varint_field(wire)?,
            6 => fields.fixed32(wire)?,
            _ => return Some(false),
        }
        Some(true)
    })?;
    (trace_id.len() == TRACE_ID_LEN && span_id.len() == SPAN_ID_LEN).then_some(())
}

fn status(body: &[u8], depth: u32) -> Option<()> {
    walk(body, depth, |fields, tag, wire| {
        match tag {
            2 => fields.string(wire)?,
            3 => fields.varint_field(wire)?,
            _ => return Some(false),
        }
        Some(true)
    })
}

fn key_value(body: &[u8], depth: u32) -> Option<()> {
    walk(body, depth, |fields, tag, wire| {
        match tag {
            1 => fields.string(wire)?,
            2 => any_value(fields.message(wire, depth)?, depth - 1)?,
            3 => fields.varint_field(wire)?,
            _ => return Some(false),
        }
        Some(true)
    })
}

fn any_value(body: &[u8], depth: u32) -> Option<()> {
    walk(body, depth, |fields, tag, wire| {
        match tag {
            1 => fields.string(wire)?,
            2 | 3 | 8 => fields.varint_field(wire)?,
            4 => fields.fixed64(wire)?,
            5 => array_value(fields.message(wire, depth)?, depth - 1)?,
            6 => key_value_list(fields.message(wire, depth)?, depth - 1)?,
            7 => fields.bytes(wire).map(drop)?,
            _ => return Some(false),
        }
        Some(true)
    })
}

fn array_value(body: &[u8], depth: u32) -> Option<()> {
    walk(body, depth, |fields, tag, wire| {
        match tag {
            1 => any_value(fields.message(wire, depth)?, depth - 1)?,
            _ => return Some(false),
        }
        Some(true)
    })
}

fn key_value_list(body: &[u8], depth: u32) -> Option<()> {
    walk(body, depth, |fields, tag, wire| {
        match tag {
            1 => key_value(fields.message(wire, depth)?, depth - 1)?,
            _ => return Some(false),
        }
        Some(true)
    })
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
    use prost::Message;

    use super::*;
    use crate::model::count;
    use crate::receiver::otlp::codec::ExportRequest;

    fn attribute(key: &str, value: Value) -> KeyValue {
        KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
    }

    fn span(n: u8) -> Span {
        Span {
            trace_id: vec![n; 16],
            span_id: vec![n; 8],
            parent_span_id: if n.is_multiple_of(2) { vec![] } else { vec![1; 8] },
            trace_state: "k=v".into(),
            flags: 0x101,
            name: format!("span {n}"),
            kind: 2,
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            attributes: vec![
                attribute("s", Value::StringValue("é".into())),
                attribute("b", Value::BoolValue(true)),
                attribute("i", Value::IntValue(-5)),
                attribute("d", Value::DoubleValue(1.5)),
                attribute("x", Value::BytesValue(vec![0, 1, 2])),
                attribute(
                    "a",
                    Value::ArrayValue(ArrayValue {
                        values: vec![AnyValue { value: Some(Value::StringValue("in".into())) }],
                    }),
                ),
                attribute("m", Value::KvlistValue(KeyValueList { values: vec![attribute("k", Value::IntValue(1))] })),
            ],
            dropped_attributes_count: 3,
            events: vec![Event {
                time_unix_nano: 5,
                name: "ev".into(),
                attributes: vec![attribute("e", Value::IntValue(7))],
                dropped_attributes_count: 1,
            }],
            dropped_events_count: 4,
            links: vec![Link {
                trace_id: vec![9; 16],
                span_id: vec![9; 8],
                trace_state: "l".into(),
                attributes: vec![attribute("l", Value::BoolValue(false))],
                dropped_attributes_count: 2,
                flags: 1,
            }],
            dropped_links_count: 5,
            status: Some(Status { message: "bad".into(), code: 2 }),
        }
    }

    fn request(spans: u8) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![attribute("service.name", Value::StringValue("svc".into()))],
                    dropped_attributes_count: 1,
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "scope".into(),
                        version: "1".into(),
                        attributes: vec![attribute("sa", Value::IntValue(1))],
                        dropped_attributes_count: 0,
                    }),
                    spans: (0..spans).map(span).collect(),
                    schema_url: "https://s".into(),
                }],
                schema_url: "https://r".into(),
            }],
        }
    }

    /// What prost and the id checks say about `bytes`: `Some(spans)` when both accept it.
    fn reference(bytes: &[u8]) -> Option<usize> {
        let request = ExportTraceServiceRequest::decode(bytes).ok()?;
        request.check_ids().ok()?;
        Some(count::spans(&request))
    }

    #[test]
    fn a_valid_request_passes_with_its_span_count() {
        let bytes = request(5).encode_to_vec();
        assert_eq!(check_traces(&bytes), Some(5));
        assert_eq!(check_traces(&[]), Some(0));
    }

    #[test]
    fn wrong_length_ids_are_left_to_prost() {
        for change in [
            (|s: &mut Span| s.trace_id.truncate(15)) as fn(&mut Span),
            |s| s.span_id.push(0),
            |s| s.span_id.clear(),
            |s| s.parent_span_id = vec![1; 4],
            |s| s.links[0].trace_id.clear(),
            |s| s.links[0].span_id = vec![1; 9],
        ] {
            let mut bad = request(3);
            change(&mut bad.resource_spans[0].scope_spans[0].spans[1]);
            assert_eq!(check_traces(&bad.encode_to_vec()), None);
        }
    }

    #[test]
    fn invalid_utf8_and_deep_nesting_are_left_to_prost() {
        let mut bytes = request(1).encode_to_vec();
        let at = bytes.windows(3).position(|w| w == b"svc").expect("the service name");
        bytes[at] = 0xff;
        assert_eq!(check_traces(&bytes), None);
        assert!(ExportTraceServiceRequest::decode(bytes.as_slice()).is_err());

        let mut value = AnyValue::default();
        for _ in 0..60 {
            value = AnyValue { value: Some(Value::ArrayValue(ArrayValue { values: vec![value] })) };
        }
        let mut deep = request(1);
        deep.resource_spans[0].scope_spans[0].spans[0].attributes.push(KeyValue {
            key: "deep".into(),
            value: Some(value),
            ..Default::default()
        });
        let bytes = deep.encode_to_vec();
        assert_eq!(check_traces(&bytes), None);
        assert!(ExportTraceServiceRequest::decode(bytes.as_slice()).is_err());
    }

    #[test]
    fn unknown_fields_are_skipped_as_prost_skips_them() {
        let mut bytes = request(2).encode_to_vec();
        // Field 99 as a varint, a fixed64 and a length-delimited field at the top level.
        bytes.extend_from_slice(&[0x98, 0x06, 0x01, 0x99, 0x06, 1, 2, 3, 4, 5, 6, 7, 8, 0x9a, 0x06, 0x02, b'h', b'i']);
        assert_eq!(check_traces(&bytes), Some(2));
        assert_eq!(reference(&bytes), Some(2));
    }

    /// Found writing the `otlp_protobuf` fuzz target's strict differential: prost skips groups in unknown fields, so the
    /// check does too (it used to leave them to prost); a group of a known field, an unended
    /// group, a mismatched end and a stray end are refused by both.
    #[test]
    fn groups_in_unknown_fields_are_skipped_as_prost_skips_them() {
        let mut bytes = request(2).encode_to_vec();
        // Field 99: a group holding a varint field and an empty group (field 5).
        bytes.extend_from_slice(&[0x9b, 0x06, 0x08, 0x01, 0x2b, 0x2c, 0x9c, 0x06]);
        assert_eq!(reference(&bytes), Some(2));
        assert_eq!(check_traces(&bytes), Some(2));
        for refused in [&[0x0b, 0x0c][..], &[0x13][..], &[0x13, 0x1c][..], &[0x14][..]] {
            assert_eq!(reference(refused), None, "{refused:?}");
            assert_eq!(check_traces(refused), None, "{refused:?}");
        }
    }

    /// Every truncation and many single-byte changes of a valid request: whatever the walker
    /// passes, prost decodes with the same span count and good ids.
    #[test]
    fn never_passes_what_prost_or_the_id_checks_refuse() {
        let bytes = request(3).encode_to_vec();
        let mut passed = 0;
        let mut check = |candidate: &[u8]| {
            if let Some(spans) = check_traces(candidate) {
                assert_eq!(reference(candidate), Some(spans), "{candidate:?}");
                passed += 1;
            }
        };
        for len in 0..bytes.len() {
            check(&bytes[..len]);
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for at in 0..bytes.len() {
            for _ in 0..8 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let mut changed = bytes.clone();
                changed[at] = state as u8;
                check(&changed);
            }
        }
        assert!(passed > 100, "only {passed} variants passed");
    }
}
