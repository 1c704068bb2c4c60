//! Attribute values as the store keeps them, column by column: one tag byte per row, numbers
//! inline, text appended to one buffer per column.
//!
//! Strings stay strings and numbers stay numbers, so queries compare and aggregate them without
//! parsing; bytes, arrays and maps are kept as their natural JSON text (tag `Json`).

use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use serde::{Deserialize, Serialize};

use super::encode::Value as JsonValue;

/// What one row of a [`ValueColumn`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Tag {
    Absent = 0,
    Str = 1,
    Int = 2,
    Float = 3,
    Bool = 4,
    Json = 5,
}

impl Tag {
    fn from_byte(byte: u8) -> Option<Tag> {
        Some(match byte {
            0 => Tag::Absent,
            1 => Tag::Str,
            2 => Tag::Int,
            3 => Tag::Float,
            4 => Tag::Bool,
            5 => Tag::Json,
            _ => return None,
        })
    }
}

/// One stored value, borrowed from its column.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum ValueRef<'a> {
    Str(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Bytes (as base64), arrays and maps, as natural JSON text.
    Json(&'a str),
}

impl ValueRef<'_> {
    /// The value as natural JSON.
    pub(crate) fn to_json(self) -> serde_json::Value {
        match self {
            ValueRef::Str(text) => serde_json::Value::from(text),
            ValueRef::Int(number) => serde_json::Value::from(number),
            ValueRef::Float(number) => serde_json::Value::from(number),
            ValueRef::Bool(flag) => serde_json::Value::from(flag),
            ValueRef::Json(text) => serde_json::from_str(text).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// A value that owns its text: resource attributes, kept once per resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum OwnedValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Json(String),
}

/// The type a column of values with these tags has, Honeycomb's way: integers only →
/// integer; numbers with some floats → float; booleans only → boolean; anything else → string.
pub(crate) fn type_of_mask(mask: u8) -> crate::query::ColumnType {
    use crate::query::ColumnType;
    let bit = |tag: Tag| 1u8 << tag as u8;
    let mask = mask & !bit(Tag::Absent);
    if mask == bit(Tag::Int) {
        ColumnType::Integer
    } else if mask != 0 && mask & !(bit(Tag::Int) | bit(Tag::Float)) == 0 {
        ColumnType::Float
    } else if mask == bit(Tag::Bool) {
        ColumnType::Boolean
    } else {
        ColumnType::String
    }
}

impl OwnedValue {
    /// The [`ValueColumn::tag_mask`] bit of this value's type.
    pub(crate) fn tag_bit(&self) -> u8 {
        1 << match self {
            OwnedValue::Str(_) => Tag::Str,
            OwnedValue::Int(_) => Tag::Int,
            OwnedValue::Float(_) => Tag::Float,
            OwnedValue::Bool(_) => Tag::Bool,
            OwnedValue::Json(_) => Tag::Json,
        } as u8
    }

    pub(crate) fn as_ref(&self) -> ValueRef<'_> {
        match self {
            OwnedValue::Str(text) => ValueRef::Str(text),
            OwnedValue::Int(number) => ValueRef::Int(*number),
            OwnedValue::Float(number) => ValueRef::Float(*number),
            OwnedValue::Bool(flag) => ValueRef::Bool(*flag),
            OwnedValue::Json(text) => ValueRef::Json(text),
        }
    }

    /// An OTLP value; `None` when it holds nothing.
    pub(crate) fn from_any(value: Option<&AnyValue>) -> Option<OwnedValue> {
        Some(match value?.value.as_ref()? {
            any_value::Value::StringValue(text) => OwnedValue::Str(text.clone()),
            any_value::Value::IntValue(number) => OwnedValue::Int(*number),
            any_value::Value::DoubleValue(number) => OwnedValue::Float(*number),
            any_value::Value::BoolValue(flag) => OwnedValue::Bool(*flag),
            _ => OwnedValue::Json(serde_json::to_string(&JsonValue(value)).unwrap_or_default()),
        })
    }
}

/// One column of values, a row at a time. Rows a value was never pushed for are absent.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ValueColumn {
    /// One bit per [`Tag`] ever pushed: which types the column holds.
    tag_mask: u8,
    tags: Vec<u8>,
    /// Per row: the number's bits, or for text `start << 32 | length` in `text`.
    nums: Vec<u64>,
    /// Every row's text, back to back. Kept as bytes: text appended from a request the
    /// receiver checked is not validated again; it is read back as UTF-8 (a row whose bytes
    /// are not reads as empty).
    text: Vec<u8>,
}

/// Why a stored column could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("malformed value column: {0}")]
pub(crate) struct MalformedColumn(pub &'static str);

impl ValueColumn {
    /// The value of `row`, if it has one.
    pub(crate) fn get(&self, row: usize) -> Option<ValueRef<'_>> {
        let tag = Tag::from_byte(*self.tags.get(row)?)?;
        let bits = self.nums[row];
        Some(match tag {
            Tag::Absent => return None,
            Tag::Str => ValueRef::Str(self.text_at(bits)),
            Tag::Json => ValueRef::Json(self.text_at(bits)),
            Tag::Int => ValueRef::Int(bits as i64),
            Tag::Float => ValueRef::Float(f64::from_bits(bits)),
            Tag::Bool => ValueRef::Bool(bits != 0),
        })
    }

    /// The text of `row` when it holds a string.
    pub(crate) fn str(&self, row: usize) -> Option<&str> {
        match self.get(row)? {
            ValueRef::Str(text) => Some(text),
            _ => None,
        }
    }

    fn text_at(&self, bits: u64) -> &str {
        let start = (bits >> 32) as usize;
        let end = start + (bits & 0xffff_ffff) as usize;
        self.text.get(start..end).and_then(|bytes| std::str::from_utf8(bytes).ok()).unwrap_or("")
    }

    /// Makes `row` the next row to push, leaving the rows before it absent. Returns false when
    /// `row` already has a value (a repeated attribute key: the first one is kept).
    fn reach(&mut self, row: usize) -> bool {
        if self.tags.len() > row {
            return false;
        }
        self.tags.resize(row, Tag::Absent as u8);
        self.nums.resize(row, 0);
        true
    }

    /// Which types of value the column holds: one bit per type, see [`type_of_mask`].
    pub(crate) fn tag_mask(&self) -> u8 {
        self.tag_mask
    }

    fn push(&mut self, row: usize, tag: Tag, bits: u64) {
        if self.reach(row) {
            self.tag_mask |= 1 << tag as u8;
            self.tags.push(tag as u8);
            self.nums.push(bits);
        }
    }

    fn push_text(&mut self, row: usize, tag: Tag, text: &[u8]) {
        if self.reach(row) {
            self.tag_mask |= 1 << tag as u8;
            let start = self.text.len() as u64;
            self.text.extend_from_slice(text);
            self.tags.push(tag as u8);
            self.nums.push(start << 32 | text.len() as u64);
        }
    }

    pub(crate) fn push_str(&mut self, row: usize, text: &str) {
        self.push_text(row, Tag::Str, text.as_bytes());
    }

    /// Pushes a protobuf string's bytes as they are: the caller vouches they are UTF-8 (the
    /// receiver checked them); should they not be, the row reads as empty.
    pub(crate) fn push_str_bytes(&mut self, row: usize, text: &[u8]) {
        self.push_text(row, Tag::Str, text);
    }

    pub(crate) fn push_bool(&mut self, row: usize, flag: bool) {
        self.push(row, Tag::Bool, u64::from(flag));
    }

    pub(crate) fn push_ref(&mut self, row: usize, value: ValueRef<'_>) {
        match value {
            ValueRef::Str(text) => self.push_text(row, Tag::Str, text.as_bytes()),
            ValueRef::Json(text) => self.push_text(row, Tag::Json, text.as_bytes()),
            ValueRef::Int(number) => self.push(row, Tag::Int, number as u64),
            ValueRef::Float(number) => self.push(row, Tag::Float, number.to_bits()),
            ValueRef::Bool(flag) => self.push(row, Tag::Bool, u64::from(flag)),
        }
    }

    /// Pushes an OTLP value; an empty value leaves the row absent.
    pub(crate) fn push_any(&mut self, row: usize, value: Option<&AnyValue>) {
        let Some(inner) = value.and_then(|value| value.value.as_ref()) else { return };
        match inner {
            any_value::Value::StringValue(text) => self.push_text(row, Tag::Str, text.as_bytes()),
            any_value::Value::IntValue(number) => self.push(row, Tag::Int, *number as u64),
            any_value::Value::DoubleValue(number) => self.push(row, Tag::Float, number.to_bits()),
            any_value::Value::BoolValue(flag) => self.push(row, Tag::Bool, u64::from(*flag)),
            _ => self.push_json(row, &JsonValue(value)),
        }
    }

    /// Pushes anything serializable, as JSON text.
    pub(crate) fn push_json(&mut self, row: usize, value: &impl Serialize) {
        if let Ok(text) = serde_json::to_string(value) {
            self.push_text(row, Tag::Json, text.as_bytes());
        }
    }

    /// Empties the column, keeping its memory.
    pub(crate) fn clear(&mut self) {
        self.tag_mask = 0;
        self.tags.clear();
        self.nums.clear();
        self.text.clear();
    }

    /// Takes back the rows from `row` on, and their text.
    pub(crate) fn truncate(&mut self, row: usize) {
        if self.tags.len() <= row {
            return;
        }
        let text_end = (row..self.tags.len())
            .filter(|&later| matches!(Tag::from_byte(self.tags[later]), Some(Tag::Str | Tag::Json)))
            .map(|later| (self.nums[later] >> 32) as usize)
            .min()
            .unwrap_or(self.text.len());
        self.tags.truncate(row);
        self.nums.truncate(row);
        self.text.truncate(text_end);
    }

    /// Bytes this column takes in memory (an estimate of its stored size before compression).
    pub(crate) fn raw_bytes(&self) -> usize {
        self.tags.len() * 9 + self.text.len()
    }

    /// The rows in `rows`, in that order, as a new column.
    pub(crate) fn select(&self, rows: &[usize]) -> ValueColumn {
        let mut selected = ValueColumn::default();
        for (new_row, &row) in rows.iter().enumerate() {
            if let Some(value) = self.get(row) {
                selected.push_ref(new_row, value);
            }
        }
        selected
    }

    /// The on-disk form: every row's tag, then each present value (text as its length), then
    /// the text. Lengths instead of offsets keep the numbers small, which compresses well.
    pub(crate) fn encode(&self, rows: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.tags);
        out.resize(out.len() + rows.saturating_sub(self.tags.len()), Tag::Absent as u8);
        for (&tag, &bits) in self.tags.iter().zip(&self.nums) {
            match Tag::from_byte(tag) {
                Some(Tag::Str | Tag::Json) => out.extend_from_slice(&((bits & 0xffff_ffff) as u32).to_le_bytes()),
                Some(Tag::Int | Tag::Float) => out.extend_from_slice(&bits.to_le_bytes()),
                Some(Tag::Bool) => out.push(bits as u8),
                Some(Tag::Absent) | None => {}
            }
        }
        out.extend_from_slice(&self.text);
    }

    /// Reads back what [`ValueColumn::encode`] wrote for `rows` rows.
    pub(crate) fn decode(rows: usize, bytes: &[u8]) -> Result<ValueColumn, MalformedColumn> {
        let tags = bytes.get(..rows).ok_or(MalformedColumn("tags cut short"))?.to_vec();
        let mut at = rows;
        let mut nums = Vec::with_capacity(rows);
        let mut text_start = 0u64;
        let mut take = |width: usize| -> Result<&[u8], MalformedColumn> {
            let slice = bytes.get(at..at + width).ok_or(MalformedColumn("values cut short"))?;
            at += width;
            Ok(slice)
        };
        for &tag in &tags {
            let bits = match Tag::from_byte(tag).ok_or(MalformedColumn("unknown tag"))? {
                Tag::Absent => 0,
                Tag::Str | Tag::Json => {
                    let length = u32::from_le_bytes(take(4)?.try_into().unwrap_or_default());
                    let bits = text_start << 32 | u64::from(length);
                    text_start += u64::from(length);
                    bits
                }
                Tag::Int | Tag::Float => u64::from_le_bytes(take(8)?.try_into().unwrap_or_default()),
                Tag::Bool => u64::from(take(1)?[0]),
            };
            nums.push(bits);
        }
        let text = bytes.get(at..).ok_or(MalformedColumn("text cut short"))?;
        if text.len() as u64 != text_start || text_start > u64::from(u32::MAX) {
            return Err(MalformedColumn("text length does not match the values"));
        }
        let text = text.to_vec();
        let tag_mask = tags.iter().fold(0u8, |mask, &tag| if tag == 0 { mask } else { mask | 1 << tag });
        Ok(ValueColumn { tag_mask, tags, nums, text })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ValueColumn {
        let mut column = ValueColumn::default();
        column.push_str(0, "GET");
        column.push_ref(2, ValueRef::Int(-7));
        column.push_ref(3, ValueRef::Float(1.5));
        column.push_bool(4, true);
        column.push_ref(5, ValueRef::Json("[1,2]"));
        column.push_str(6, "");
        column
    }

    #[test]
    fn rows_not_pushed_are_absent() {
        let column = sample();
        assert_eq!(column.get(1), None);
        assert_eq!(column.get(99), None);
    }

    #[test]
    fn every_kind_of_value_reads_back() {
        let column = sample();
        assert_eq!(column.get(0), Some(ValueRef::Str("GET")));
        assert_eq!(column.get(2), Some(ValueRef::Int(-7)));
        assert_eq!(column.get(3), Some(ValueRef::Float(1.5)));
        assert_eq!(column.get(4), Some(ValueRef::Bool(true)));
        assert_eq!(column.get(5), Some(ValueRef::Json("[1,2]")));
        assert_eq!(column.get(6), Some(ValueRef::Str("")));
    }

    #[test]
    fn text_that_is_not_utf8_reads_as_empty() {
        let mut column = ValueColumn::default();
        column.push_str_bytes(0, &[0xff, 0xfe]);
        column.push_str_bytes(1, "fine".as_bytes());
        assert_eq!(column.get(0), Some(ValueRef::Str("")));
        assert_eq!(column.get(1), Some(ValueRef::Str("fine")));
    }

    #[test]
    fn truncating_takes_back_the_rows_and_their_text() {
        let mut column = sample();
        column.truncate(3);
        column.push_str(3, "again");
        assert_eq!(column.get(0), Some(ValueRef::Str("GET")));
        assert_eq!(column.get(2), Some(ValueRef::Int(-7)));
        assert_eq!(column.get(3), Some(ValueRef::Str("again")));
        assert_eq!(column.get(5), None);
    }

    #[test]
    fn a_repeated_row_keeps_the_first_value() {
        let mut column = ValueColumn::default();
        column.push_str(0, "first");
        column.push_str(0, "second");
        assert_eq!(column.get(0), Some(ValueRef::Str("first")));
    }

    #[test]
    fn encoding_round_trips_with_trailing_absent_rows() {
        let column = sample();
        let mut bytes = Vec::new();
        column.encode(9, &mut bytes);
        let decoded = ValueColumn::decode(9, &bytes).expect("decodes");
        for row in 0..9 {
            assert_eq!(decoded.get(row), column.get(row), "row {row}");
        }
    }

    #[test]
    fn truncated_encoding_is_an_error() {
        let mut bytes = Vec::new();
        sample().encode(7, &mut bytes);
        bytes.pop();
        assert!(ValueColumn::decode(7, &bytes).is_err());
    }

    #[test]
    fn a_selection_keeps_the_chosen_rows_in_order() {
        let selected = sample().select(&[4, 0, 1]);
        assert_eq!(selected.get(0), Some(ValueRef::Bool(true)));
        assert_eq!(selected.get(1), Some(ValueRef::Str("GET")));
        assert_eq!(selected.get(2), None);
    }
}
