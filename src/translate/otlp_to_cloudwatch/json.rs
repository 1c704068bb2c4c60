//! JSON and plain-text writers for OTLP values, appending straight to a `String` (no value trees).

use std::fmt::Write as _;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

/// Appends `text` as a JSON string literal, quotes included.
pub(super) fn push_string(out: &mut String, text: &str) {
    out.push('"');
    let mut unwritten_from = 0;
    for (index, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f => "",
            _ => continue,
        };
        // `byte` is ASCII, so `index` is a character boundary.
        out.push_str(&text[unwritten_from..index]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        unwritten_from = index + 1;
    }
    out.push_str(&text[unwritten_from..]);
    out.push('"');
}

/// Appends `"key":` after a comma when `first` is false, and clears `first`.
pub(super) fn push_key(out: &mut String, first: &mut bool, key: &str) {
    if !*first {
        out.push(',');
    }
    *first = false;
    push_string(out, key);
    out.push(':');
}

/// Appends an OTLP value as natural JSON: a string, number, bool, array or object; bytes as a
/// base64 string; an absent value as `null`.
pub(super) fn push_value(out: &mut String, value: Option<&AnyValue>) {
    match value.and_then(|value| value.value.as_ref()) {
        Some(Value::StringValue(text)) => push_string(out, text),
        Some(Value::BoolValue(flag)) => out.push_str(if *flag { "true" } else { "false" }),
        Some(Value::IntValue(number)) => {
            let _ = write!(out, "{number}");
        }
        Some(Value::DoubleValue(number)) => push_double(out, *number),
        Some(Value::ArrayValue(array)) => {
            out.push('[');
            for (position, element) in array.values.iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                push_value(out, Some(element));
            }
            out.push(']');
        }
        Some(Value::KvlistValue(list)) => push_object(out, &list.values),
        Some(Value::BytesValue(bytes)) => {
            // The base64 alphabet needs no escaping.
            out.push('"');
            out.push_str(&aws_smithy_types::base64::encode(bytes));
            out.push('"');
        }
        // A profiles-only string-table reference means nothing outside a profile.
        Some(Value::StringValueStrindex(_)) | None => out.push_str("null"),
    }
}

/// Appends attributes as a JSON object, in their order.
pub(super) fn push_object(out: &mut String, attributes: &[KeyValue]) {
    out.push('{');
    let mut first = true;
    for attribute in attributes {
        push_key(out, &mut first, &attribute.key);
        push_value(out, attribute.value.as_ref());
    }
    out.push('}');
}

/// Appends a double as a JSON number; NaN and infinities, which JSON cannot express, as the
/// strings `"NaN"`, `"Infinity"` and `"-Infinity"`.
fn push_double(out: &mut String, number: f64) {
    if number.is_finite() {
        // `Debug` is the shortest text that reads back to the same double, with an exponent
        // for very large or small magnitudes (`1e300`), which JSON accepts.
        let _ = write!(out, "{number:?}");
    } else if number.is_nan() {
        out.push_str("\"NaN\"");
    } else if number > 0.0 {
        out.push_str("\"Infinity\"");
    } else {
        out.push_str("\"-Infinity\"");
    }
}

/// Appends an OTLP value as plain text: a string as is, bytes as base64, anything else as its
/// JSON; an absent value appends nothing.
pub(super) fn push_text(out: &mut String, value: Option<&AnyValue>) {
    match value.and_then(|value| value.value.as_ref()) {
        Some(Value::StringValue(text)) => out.push_str(text),
        Some(Value::BytesValue(bytes)) => out.push_str(&aws_smithy_types::base64::encode(bytes)),
        Some(Value::DoubleValue(number)) if !number.is_finite() => {
            out.push_str(if number.is_nan() {
                "NaN"
            } else if *number > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            });
        }
        Some(Value::StringValueStrindex(_)) | None => {}
        Some(_) => push_value(out, value),
    }
}

/// Appends bytes as lowercase hex.
pub(super) fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
}

/// Whether an OTLP trace or span id is set (not empty, not all zeros).
pub(super) fn is_valid_id(id: &[u8]) -> bool {
    id.iter().any(|byte| *byte != 0)
}

/// The first attribute named `key`, if it has a value.
pub(super) fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attributes.iter().find(|attribute| attribute.key == key).and_then(|attribute| attribute.value.as_ref())
}
