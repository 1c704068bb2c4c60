//! A block: a few thousand rows of one signal, column by column — the unit the store seals,
//! writes, evicts and reads. The open (still growing) block and a block read back from disk
//! have this same shape, so every read path works on both.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::value::{OwnedValue, ValueColumn, ValueRef};

/// Which signal a block holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    Spans,
    Logs,
    Metrics,
}

/// Column names. Fixed columns start with `f:`, attributes with `a:` followed by their key, so
/// no attribute key can collide with a fixed column.
pub(crate) mod key {
    pub(crate) const TRACE_ID: &str = "f:trace_id";
    pub(crate) const SPAN_ID: &str = "f:span_id";
    /// Spans: all zeros for a root span.
    pub(crate) const PARENT_SPAN_ID: &str = "f:parent_span_id";
    /// Spans: start; logs: the record's time (or observed time); metrics: the latest point.
    pub(crate) const TIME: &str = "f:time";
    pub(crate) const END: &str = "f:end";
    /// Index into the block's groups (resource and scope).
    pub(crate) const GROUP: &str = "f:group";
    pub(crate) const SPAN_KIND: &str = "f:kind";
    pub(crate) const STATUS_CODE: &str = "f:status_code";
    pub(crate) const STATUS_MESSAGE: &str = "f:status_message";
    pub(crate) const NAME: &str = "f:name";
    pub(crate) const TRACE_STATE: &str = "f:trace_state";
    pub(crate) const EVENTS: &str = "f:events";
    pub(crate) const LINKS: &str = "f:links";
    pub(crate) const OBSERVED_TIME: &str = "f:observed_time";
    /// Logs: the record's own time (0 when it has none).
    pub(crate) const RECORD_TIME: &str = "f:record_time";
    pub(crate) const SEVERITY_NUMBER: &str = "f:severity_number";
    pub(crate) const SEVERITY_TEXT: &str = "f:severity_text";
    pub(crate) const BODY: &str = "f:body";
    pub(crate) const DESCRIPTION: &str = "f:description";
    pub(crate) const UNIT: &str = "f:unit";
    pub(crate) const METRIC_TYPE: &str = "f:metric_type";
    pub(crate) const TEMPORALITY: &str = "f:temporality";
    pub(crate) const MONOTONIC: &str = "f:monotonic";
    pub(crate) const DATA_POINTS: &str = "f:data_points";
    pub(crate) const ATTRIBUTE_PREFIX: &str = "a:";
}

/// One column's rows.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Column {
    Id16(Vec<[u8; 16]>),
    Id8(Vec<[u8; 8]>),
    Int(Vec<i64>),
    Values(ValueColumn),
}

impl Column {}

/// A resource and instrumentation scope shared by many rows of a block.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Group {
    pub resource: Vec<(String, OwnedValue)>,
    pub scope_name: String,
    pub scope_version: String,
}

impl Group {
    pub(crate) fn attribute(&self, key: &str) -> Option<ValueRef<'_>> {
        self.resource.iter().find(|(name, _)| name == key).map(|(_, value)| value.as_ref())
    }

    /// The resource's `service.name`, when it is a string.
    pub(crate) fn service(&self) -> Option<&str> {
        match self.attribute("service.name")? {
            ValueRef::Str(name) => Some(name),
            _ => None,
        }
    }

    /// The resource attributes as one JSON object.
    pub(crate) fn resource_json(&self) -> serde_json::Value {
        self.resource.iter().map(|(key, value)| (key.clone(), value.as_ref().to_json())).collect()
    }
}

/// Rows of one signal with some or all of their columns.
#[derive(Clone, Debug)]
pub(crate) struct Block {
    pub kind: Kind,
    pub rows: usize,
    pub groups: Arc<[Group]>,
    pub columns: HashMap<Box<str>, Column>,
}

impl Block {
    pub(crate) fn id16(&self, key: &str) -> &[[u8; 16]] {
        match self.columns.get(key) {
            Some(Column::Id16(ids)) => ids,
            _ => &[],
        }
    }

    pub(crate) fn id8(&self, key: &str) -> &[[u8; 8]] {
        match self.columns.get(key) {
            Some(Column::Id8(ids)) => ids,
            _ => &[],
        }
    }

    pub(crate) fn ints(&self, key: &str) -> &[i64] {
        match self.columns.get(key) {
            Some(Column::Int(numbers)) => numbers,
            _ => &[],
        }
    }

    pub(crate) fn values(&self, key: &str) -> Option<&ValueColumn> {
        match self.columns.get(key) {
            Some(Column::Values(values)) => Some(values),
            _ => None,
        }
    }

    /// The string in column `key` at `row`, or `""`.
    pub(crate) fn text(&self, key: &str, row: usize) -> &str {
        self.values(key).and_then(|values| values.str(row)).unwrap_or("")
    }

    pub(crate) fn int(&self, key: &str, row: usize) -> i64 {
        self.ints(key).get(row).copied().unwrap_or(0)
    }

    /// The group (resource and scope) of `row`.
    pub(crate) fn group(&self, row: usize) -> Option<&Group> {
        let index = usize::try_from(self.int(key::GROUP, row)).ok()?;
        self.groups.get(index)
    }

    /// The attribute columns present, with their keys (without the `a:` prefix).
    pub(crate) fn attributes(&self) -> impl Iterator<Item = (&str, &ValueColumn)> {
        self.columns.iter().filter_map(|(name, column)| {
            let key = name.strip_prefix(key::ATTRIBUTE_PREFIX)?;
            match column {
                Column::Values(values) => Some((key, values)),
                _ => None,
            }
        })
    }

    /// The attributes of one row as a JSON object.
    pub(crate) fn attributes_json(&self, row: usize) -> serde_json::Value {
        let mut attributes: Vec<(&str, serde_json::Value)> =
            self.attributes().filter_map(|(key, values)| Some((key, values.get(row)?.to_json()))).collect();
        attributes.sort_by(|a, b| a.0.cmp(b.0));
        attributes.into_iter().map(|(key, value)| (key.to_owned(), value)).collect()
    }

    /// The JSON text in column `key` at `row`, parsed; `default` when absent.
    pub(crate) fn json(&self, key: &str, row: usize, default: serde_json::Value) -> serde_json::Value {
        match self.values(key).and_then(|values| values.get(row)) {
            Some(value) => value.to_json(),
            None => default,
        }
    }
}

/// The column name of attribute `key`.
pub(crate) fn attribute_key(key: &str) -> Box<str> {
    let mut name = String::with_capacity(key::ATTRIBUTE_PREFIX.len() + key.len());
    name.push_str(key::ATTRIBUTE_PREFIX);
    name.push_str(key);
    name.into_boxed_str()
}
