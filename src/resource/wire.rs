//! Resource attributes added to an OTLP protobuf request without decoding it.
//!
//! The three export requests share the shape walked here: field 1 of a request is a
//! `ResourceSpans` / `ResourceLogs` / `ResourceMetrics` entry, field 1 of an entry its
//! `Resource`, field 1 of a resource a `KeyValue` attribute, and field 1 of that its key. Only
//! those four levels are read; spans, log records and data points are copied as they came.
//!
//! Each entry's attributes are appended to its last `resource` field (protobuf merges the
//! occurrences of a message field, so a decoder sees them after the app's), or to a new one
//! when the entry has none. An attribute the app already set is kept and not added again;
//! with `override`, the app's attributes of the configured keys are cut out instead and every
//! configured one is added. Only the two lengths around the change are re-encoded. A request
//! that needs no change is returned as it is (no copy); one this walk cannot read is left to
//! the caller, which decodes it (prost then words the error, or adds them to the message).

use std::ops::Range;

use bytes::Bytes;
use prost::encoding::{encode_varint, encoded_len_varint};

use super::attributes::{ResourceAttributes, ResourceGrowthError};
use crate::receiver::otlp::wire::{Fields, RECURSION_LIMIT};

/// `resource` in an entry is field 1, length-delimited.
const RESOURCE_KEY: u8 = 0x0a;

/// One `resource_spans` / `resource_logs` / `resource_metrics` field of the request.
struct Entry {
    /// Its key bytes, as sent (offsets in the request).
    key: Range<usize>,
    body: Range<usize>,
    /// Its `resource` fields, in [`Plan::resources`].
    resources: Range<usize>,
    /// The attributes to add to it (a bit per attribute).
    add: u64,
    /// Whether any of its resources loses an attribute (override).
    cut: bool,
}

/// One `resource` field of an entry.
struct ResourceField {
    key: Range<usize>,
    body: Range<usize>,
    /// The app's attributes to cut out of it, in [`Plan::cuts`].
    cuts: Range<usize>,
}

/// What the walk found, as offsets into the request: nothing is copied until it is written.
#[derive(Default)]
struct Plan {
    entries: Vec<Entry>,
    resources: Vec<ResourceField>,
    cuts: Vec<Range<usize>>,
}

impl ResourceAttributes {
    /// The request with the attributes added, or the same bytes when none is missing;
    /// `Ok(None)` when the walk cannot read it (the caller decodes it instead); an error when
    /// it would grow by more than its own size (or 1 MiB).
    pub(crate) fn add_to_protobuf(&self, body: &Bytes) -> Result<Option<Bytes>, ResourceGrowthError> {
        if self.is_empty() {
            return Ok(Some(body.clone()));
        }
        let Some(plan) = self.plan(body) else { return Ok(None) };
        let (mut grown, mut replaced) = (0, 0);
        for entry in plan.entries.iter().filter(|entry| entry.changes()) {
            grown += field_len(entry.key.len(), self.new_entry_len(&plan, entry));
            replaced += entry.body.end - entry.key.start;
        }
        if grown == 0 && replaced == 0 {
            return Ok(Some(body.clone()));
        }
        let total = body.len() + grown - replaced;
        ResourceAttributes::check_growth(body.len(), total.saturating_sub(body.len()), plan.entries.len())?;
        Ok(Some(Bytes::from(self.write(body, &plan, total))))
    }

    /// Walks the request down to its resources' attribute keys.
    fn plan(&self, body: &[u8]) -> Option<Plan> {
        let mut plan = Plan::default();
        let mut fields = Fields::new(body);
        let end = body.len();
        loop {
            let key_start = end - fields.remaining();
            let Some((tag, wire)) = fields.next_key()? else { return Some(plan) };
            if tag != 1 {
                fields.skip(tag, wire, RECURSION_LIMIT)?;
                continue;
            }
            let key_end = end - fields.remaining();
            let entry_len = fields.length_delimited(wire)?.len();
            let entry_end = end - fields.remaining();
            self.plan_entry(body, key_start..key_end, entry_end - entry_len..entry_end, &mut plan)?;
        }
    }

    fn plan_entry(&self, body: &[u8], key: Range<usize>, entry: Range<usize>, plan: &mut Plan) -> Option<()> {
        let (first_resource, first_cut) = (plan.resources.len(), plan.cuts.len());
        let mut present = 0u64;
        let mut fields = Fields::new(&body[entry.clone()]);
        let end = entry.end;
        loop {
            let key_start = end - fields.remaining();
            let Some((tag, wire)) = fields.next_key()? else { break };
            if tag != 1 {
                fields.skip(tag, wire, RECURSION_LIMIT - 1)?;
                continue;
            }
            let key_end = end - fields.remaining();
            let resource_len = fields.length_delimited(wire)?.len();
            let resource = end - fields.remaining() - resource_len..end - fields.remaining();
            let cuts_start = plan.cuts.len();
            present |= self.scan_resource(body, resource.clone(), &mut plan.cuts)?;
            plan.resources.push(ResourceField {
                key: key_start..key_end,
                body: resource,
                cuts: cuts_start..plan.cuts.len(),
            });
        }
        let add = self.to_add(present);
        let cut = plan.cuts.len() > first_cut;
        plan.entries.push(Entry { key, body: entry, resources: first_resource..plan.resources.len(), add, cut });
        Some(())
    }

    /// The configured attributes this resource has (a bit each); with override, where they
    /// are goes to `cuts`.
    fn scan_resource(&self, body: &[u8], resource: Range<usize>, cuts: &mut Vec<Range<usize>>) -> Option<u64> {
        let mut present = 0u64;
        let mut fields = Fields::new(&body[resource.clone()]);
        let end = resource.end;
        loop {
            let start = end - fields.remaining();
            let Some((tag, wire)) = fields.next_key()? else { return Some(present) };
            if tag != 1 {
                fields.skip(tag, wire, RECURSION_LIMIT - 2)?;
                continue;
            }
            let Some(index) = self.index_of(key_of(fields.length_delimited(wire)?)?) else { continue };
            present |= 1 << index;
            if self.overrides_app() {
                cuts.push(start..end - fields.remaining());
            }
        }
    }

    /// The body length of a resource once cut and, when it is the entry's last, added to.
    fn new_resource_len(&self, plan: &Plan, entry: &Entry, index: usize) -> usize {
        let resource = &plan.resources[index];
        let cut: usize = plan.cuts[resource.cuts.clone()].iter().map(Range::len).sum();
        let added = if index + 1 == entry.resources.end { self.encoded_len(entry.add) } else { 0 };
        resource.body.len() - cut + added
    }

    /// The body length of an entry once its resources are changed.
    fn new_entry_len(&self, plan: &Plan, entry: &Entry) -> usize {
        if entry.resources.is_empty() {
            return entry.body.len() + field_len(1, self.encoded_len(entry.add));
        }
        let (mut grown, mut replaced) = (0, 0);
        for index in entry.resources.clone() {
            let resource = &plan.resources[index];
            grown += field_len(resource.key.len(), self.new_resource_len(plan, entry, index));
            replaced += resource.body.end - resource.key.start;
        }
        entry.body.len() + grown - replaced
    }

    /// The changed request: the unchanged parts copied, the changed lengths re-encoded.
    fn write(&self, body: &[u8], plan: &Plan, total: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(total);
        let mut copied = 0;
        for entry in plan.entries.iter().filter(|entry| entry.changes()) {
            out.extend_from_slice(&body[copied..entry.key.end]);
            encode_varint(self.new_entry_len(plan, entry) as u64, &mut out);
            let mut at = entry.body.start;
            for index in entry.resources.clone() {
                let resource = &plan.resources[index];
                out.extend_from_slice(&body[at..resource.key.end]);
                encode_varint(self.new_resource_len(plan, entry, index) as u64, &mut out);
                let mut from = resource.body.start;
                for cut in &plan.cuts[resource.cuts.clone()] {
                    out.extend_from_slice(&body[from..cut.start]);
                    from = cut.end;
                }
                out.extend_from_slice(&body[from..resource.body.end]);
                if index + 1 == entry.resources.end {
                    self.append(entry.add, &mut out);
                }
                at = resource.body.end;
            }
            out.extend_from_slice(&body[at..entry.body.end]);
            if entry.resources.is_empty() {
                out.push(RESOURCE_KEY);
                encode_varint(self.encoded_len(entry.add) as u64, &mut out);
                self.append(entry.add, &mut out);
            }
            copied = entry.body.end;
        }
        out.extend_from_slice(&body[copied..]);
        debug_assert_eq!(out.len(), total);
        out
    }

    /// The prepared fields of the attributes in `mask`.
    fn append(&self, mask: u64, out: &mut Vec<u8>) {
        for (index, attribute) in self.attributes().iter().enumerate() {
            if mask & (1 << index) != 0 {
                out.extend_from_slice(&attribute.field);
            }
        }
    }
}

impl Entry {
    fn changes(&self) -> bool {
        self.add != 0 || self.cut
    }
}

/// A `KeyValue`'s key (the last one, as prost keeps it; empty when it has none).
fn key_of(key_value: &[u8]) -> Option<&[u8]> {
    let mut key: &[u8] = &[];
    let mut fields = Fields::new(key_value);
    while let Some((tag, wire)) = fields.next_key()? {
        if tag == 1 {
            key = fields.length_delimited(wire)?;
        } else {
            fields.skip(tag, wire, RECURSION_LIMIT - 3)?;
        }
    }
    Some(key)
}

/// A length-delimited field: key, length, body.
fn field_len(key_len: usize, body_len: usize) -> usize {
    key_len + encoded_len_varint(body_len as u64) + body_len
}

#[cfg(test)]
mod tests;
