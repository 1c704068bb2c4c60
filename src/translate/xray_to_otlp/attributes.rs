//! A small builder for OTLP attribute lists, and JSON value → attribute value conversion.

use opentelemetry_proto::tonic::common::v1::any_value::Value as OtlpValue;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue};
use serde_json::Value;

/// Attributes in the order they were added (so the output is deterministic).
#[derive(Debug, Default)]
pub(super) struct Attributes(Vec<KeyValue>);

impl Attributes {
    pub(super) fn into_vec(self) -> Vec<KeyValue> {
        self.0
    }

    pub(super) fn contains(&self, key: &str) -> bool {
        self.0.iter().any(|kv| kv.key == key)
    }

    /// Adds or replaces an attribute.
    pub(super) fn put(&mut self, key: impl Into<String>, value: OtlpValue) {
        let key = key.into();
        let value = Some(AnyValue { value: Some(value) });
        match self.0.iter_mut().find(|kv| kv.key == key) {
            Some(existing) => existing.value = value,
            None => self.0.push(KeyValue { key, value, ..Default::default() }),
        }
    }

    pub(super) fn string(&mut self, key: &str, value: &str) {
        self.put(key, OtlpValue::StringValue(value.to_owned()));
    }

    pub(super) fn opt_string(&mut self, key: &str, value: Option<&String>) {
        if let Some(value) = value {
            self.string(key, value);
        }
    }

    pub(super) fn int(&mut self, key: &str, value: i64) {
        self.put(key, OtlpValue::IntValue(value));
    }

    pub(super) fn opt_int(&mut self, key: &str, value: Option<i64>) {
        if let Some(value) = value {
            self.int(key, value);
        }
    }

    pub(super) fn opt_bool(&mut self, key: &str, value: Option<bool>) {
        if let Some(value) = value {
            self.put(key, OtlpValue::BoolValue(value));
        }
    }

    pub(super) fn strings(&mut self, key: &str, values: impl IntoIterator<Item = String>) {
        let values = values.into_iter().map(|s| AnyValue { value: Some(OtlpValue::StringValue(s)) }).collect();
        self.put(key, OtlpValue::ArrayValue(ArrayValue { values }));
    }
}

/// An annotation-like JSON scalar as a typed attribute value: strings, booleans, integers
/// (that fit i64) and other numbers (as doubles). `None` for null, arrays and objects.
pub(super) fn scalar_value(value: &Value) -> Option<OtlpValue> {
    match value {
        Value::String(text) => Some(OtlpValue::StringValue(text.clone())),
        Value::Bool(flag) => Some(OtlpValue::BoolValue(*flag)),
        Value::Number(number) => match number.as_i64() {
            Some(int) => Some(OtlpValue::IntValue(int)),
            None => number.as_f64().map(OtlpValue::DoubleValue),
        },
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}
