//! `annotations`: indexed attributes, with keys and values fixed to X-Ray's rules.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use serde::ser::{Serialize, SerializeMap, Serializer};

/// Annotations per document at most; X-Ray indexes 50 per trace.
pub(crate) const MAX_ANNOTATIONS: usize = 50;
/// X-Ray's limit on annotation keys.
pub(super) const MAX_ANNOTATION_KEY_CHARS: usize = 500;
/// X-Ray's limit on annotation string values, in Unicode characters.
pub(super) const MAX_ANNOTATION_VALUE_CHARS: usize = 1_000;

/// Annotations in the order they were added.
#[derive(Default)]
pub(super) struct Annotations<'a>(Vec<(Cow<'a, str>, AnnotationValue<'a>)>);

/// The value types X-Ray can index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum AnnotationValue<'a> {
    Str(&'a str),
    Int(i64),
    Double(f64),
    Bool(bool),
}

/// Why an attribute could not become an annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NotAnnotated {
    /// Not a string, int, finite double or bool.
    Type,
    /// [`MAX_ANNOTATIONS`] reached.
    Full,
    /// Another attribute already has the same fixed key.
    DuplicateKey,
}

impl<'a> Annotations<'a> {
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds `key` = `value` as an annotation, with the key fixed and long strings cut.
    pub(super) fn add(&mut self, key: &'a str, value: &'a AnyValue) -> Result<(), NotAnnotated> {
        let value = annotation_value(value).ok_or(NotAnnotated::Type)?;
        if self.0.len() >= MAX_ANNOTATIONS {
            return Err(NotAnnotated::Full);
        }
        let key = fix_annotation_key(key);
        if self.0.iter().any(|(existing, _)| *existing == key) {
            return Err(NotAnnotated::DuplicateKey);
        }
        self.0.push((key, value));
        Ok(())
    }
}

/// A scalar OTLP value as an annotation value; strings cut to
/// [`MAX_ANNOTATION_VALUE_CHARS`]. `None` for other types and non-finite doubles.
pub(super) fn annotation_value(value: &AnyValue) -> Option<AnnotationValue<'_>> {
    match value.value.as_ref()? {
        Value::StringValue(text) => Some(AnnotationValue::Str(truncate_chars(text, MAX_ANNOTATION_VALUE_CHARS))),
        Value::IntValue(int) => Some(AnnotationValue::Int(*int)),
        Value::DoubleValue(double) if double.is_finite() => Some(AnnotationValue::Double(*double)),
        Value::BoolValue(flag) => Some(AnnotationValue::Bool(*flag)),
        _ => None,
    }
}

/// X-Ray annotation keys allow `[A-Za-z0-9_.]`; anything else becomes `_`. At most
/// [`MAX_ANNOTATION_KEY_CHARS`]. Borrowed when the key is already valid.
pub(super) fn fix_annotation_key(key: &str) -> Cow<'_, str> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    let valid = key.chars().all(allowed);
    if valid && key.len() <= MAX_ANNOTATION_KEY_CHARS {
        return Cow::Borrowed(key);
    }
    let fixed = key.chars().take(MAX_ANNOTATION_KEY_CHARS).map(|c| if allowed(c) { c } else { '_' }).collect();
    Cow::Owned(fixed)
}

/// The first `max` characters of `text`, cut on a character boundary.
pub(super) fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

impl Serialize for Annotations<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl Serialize for AnnotationValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            AnnotationValue::Str(text) => serializer.serialize_str(text),
            AnnotationValue::Int(int) => serializer.serialize_i64(int),
            AnnotationValue::Double(double) => serializer.serialize_f64(double),
            AnnotationValue::Bool(flag) => serializer.serialize_bool(flag),
        }
    }
}
