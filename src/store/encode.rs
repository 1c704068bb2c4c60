//! How OTLP values are written into the store's JSON columns: attribute values as natural JSON
//! (int → number, kvlist → object, bytes → base64), ids as lowercase hex, straight into the
//! request's text buffer through `serde::Serialize` wrappers, with no intermediate values.

use std::fmt::{self, Write as _};

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogramDataPoint, HistogramDataPoint, NumberDataPoint, SummaryDataPoint, exemplar, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use serde::ser::{Serialize, SerializeMap, Serializer};

/// Nesting of arrays and kvlists kept; deeper values are replaced by [`TOO_DEEP`], so a
/// pathological value can neither overflow the stack nor exceed the JSON reader's own limit.
const MAX_DEPTH: u8 = 32;
const TOO_DEEP: &str = "[nested too deeply]";

/// A list of attributes as one JSON object, `{key: value}`.
pub(super) struct Attributes<'a>(pub &'a [KeyValue]);

/// One attribute value (or a log body) as natural JSON; an absent value is `null`.
pub(super) struct Value<'a>(pub Option<&'a AnyValue>);

/// Span events: `[{"name", "time_unix_nano", "attributes"}]`.
pub(super) struct Events<'a>(pub &'a [Event]);

/// Span links: `[{"trace_id", "span_id", "trace_state", "attributes"}]`.
pub(super) struct Links<'a>(pub &'a [Link]);

/// A metric's data points as a JSON array, shaped by the metric's type.
pub(super) struct DataPoints<'a>(pub &'a metric::Data);

/// Bytes as lowercase hex, for ids.
pub(crate) struct Hex<'a>(pub &'a [u8]);

/// Bytes as standard, padded base64, for `bytes` attribute values.
pub(crate) struct Base64<'a>(pub &'a [u8]);

impl Serialize for Attributes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        AttributesAt { attributes: self.0, depth: 0 }.serialize(serializer)
    }
}

impl Serialize for Value<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ValueAt { value: self.0, depth: 0 }.serialize(serializer)
    }
}

struct AttributesAt<'a> {
    attributes: &'a [KeyValue],
    depth: u8,
}

struct ValueAt<'a> {
    value: Option<&'a AnyValue>,
    depth: u8,
}

impl Serialize for AttributesAt<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let depth = self.depth;
        serializer.collect_map(
            self.attributes.iter().map(|kv| (kv.key.as_str(), ValueAt { value: kv.value.as_ref(), depth })),
        )
    }
}

impl Serialize for ValueAt<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Some(value) = self.value.and_then(|v| v.value.as_ref()) else {
            return serializer.serialize_unit();
        };
        let nested = self.depth + 1;
        match value {
            any_value::Value::StringValue(text) => serializer.serialize_str(text),
            any_value::Value::BoolValue(flag) => serializer.serialize_bool(*flag),
            any_value::Value::IntValue(number) => serializer.serialize_i64(*number),
            any_value::Value::DoubleValue(number) => Float(*number).serialize(serializer),
            any_value::Value::BytesValue(bytes) => serializer.collect_str(&Base64(bytes)),
            any_value::Value::ArrayValue(_) | any_value::Value::KvlistValue(_) if nested > MAX_DEPTH => {
                serializer.serialize_str(TOO_DEEP)
            }
            any_value::Value::ArrayValue(array) => {
                serializer.collect_seq(array.values.iter().map(|v| ValueAt { value: Some(v), depth: nested }))
            }
            any_value::Value::KvlistValue(list) => {
                AttributesAt { attributes: &list.values, depth: nested }.serialize(serializer)
            }
            // Only meaningful inside the profiling signal: treated as absent, as the spec asks.
            any_value::Value::StringValueStrindex(_) => serializer.serialize_unit(),
        }
    }
}

/// A double as a JSON number; NaN and the infinities, which JSON cannot hold, as strings.
struct Float(f64);

impl Serialize for Float {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let number = self.0;
        if number.is_finite() {
            serializer.serialize_f64(number)
        } else if number.is_nan() {
            serializer.serialize_str("NaN")
        } else if number > 0.0 {
            serializer.serialize_str("Infinity")
        } else {
            serializer.serialize_str("-Infinity")
        }
    }
}

/// An optional double: `null` when absent.
struct OptionalFloat(Option<f64>);

impl Serialize for OptionalFloat {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(number) => Float(number).serialize(serializer),
            None => serializer.serialize_unit(),
        }
    }
}

/// An id as hex, or `null` when empty.
struct OptionalHex<'a>(&'a [u8]);

impl Serialize for OptionalHex<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.is_empty() { serializer.serialize_unit() } else { serializer.collect_str(&Hex(self.0)) }
    }
}

impl Serialize for Events<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(EventJson))
    }
}

struct EventJson<'a>(&'a Event);

impl Serialize for EventJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let event = self.0;
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("name", &event.name)?;
        map.serialize_entry("time_unix_nano", &event.time_unix_nano)?;
        map.serialize_entry("attributes", &Attributes(&event.attributes))?;
        map.end()
    }
}

impl Serialize for Links<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(LinkJson))
    }
}

struct LinkJson<'a>(&'a Link);

impl Serialize for LinkJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let link = self.0;
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("trace_id", &OptionalHex(&link.trace_id))?;
        map.serialize_entry("span_id", &OptionalHex(&link.span_id))?;
        map.serialize_entry("trace_state", &link.trace_state)?;
        map.serialize_entry("attributes", &Attributes(&link.attributes))?;
        map.end()
    }
}

impl Serialize for DataPoints<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            metric::Data::Gauge(gauge) => serializer.collect_seq(gauge.data_points.iter().map(NumberPoint)),
            metric::Data::Sum(sum) => serializer.collect_seq(sum.data_points.iter().map(NumberPoint)),
            metric::Data::Histogram(histogram) => {
                serializer.collect_seq(histogram.data_points.iter().map(HistogramPoint))
            }
            metric::Data::ExponentialHistogram(histogram) => {
                serializer.collect_seq(histogram.data_points.iter().map(ExponentialHistogramPoint))
            }
            metric::Data::Summary(summary) => serializer.collect_seq(summary.data_points.iter().map(SummaryPoint)),
        }
    }
}

/// The fields every data point starts with.
fn point_header<M: SerializeMap>(
    map: &mut M,
    attributes: &[KeyValue],
    start_time_unix_nano: u64,
    time_unix_nano: u64,
) -> Result<(), M::Error> {
    map.serialize_entry("attributes", &Attributes(attributes))?;
    map.serialize_entry("start_time_unix_nano", &start_time_unix_nano)?;
    map.serialize_entry("time_unix_nano", &time_unix_nano)
}

/// `exemplars`, only when there are any.
fn point_exemplars<M: SerializeMap>(map: &mut M, exemplars: &[Exemplar]) -> Result<(), M::Error> {
    if exemplars.is_empty() {
        return Ok(());
    }
    map.serialize_entry("exemplars", &ExemplarsJson(exemplars))
}

struct NumberPoint<'a>(&'a NumberDataPoint);

impl Serialize for NumberPoint<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let point = self.0;
        let mut map = serializer.serialize_map(None)?;
        point_header(&mut map, &point.attributes, point.start_time_unix_nano, point.time_unix_nano)?;
        match point.value {
            Some(number_data_point::Value::AsInt(number)) => map.serialize_entry("value", &number)?,
            Some(number_data_point::Value::AsDouble(number)) => map.serialize_entry("value", &Float(number))?,
            None => map.serialize_entry("value", &())?,
        }
        point_exemplars(&mut map, &point.exemplars)?;
        map.end()
    }
}

struct HistogramPoint<'a>(&'a HistogramDataPoint);

impl Serialize for HistogramPoint<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let point = self.0;
        let mut map = serializer.serialize_map(None)?;
        point_header(&mut map, &point.attributes, point.start_time_unix_nano, point.time_unix_nano)?;
        map.serialize_entry("count", &point.count)?;
        map.serialize_entry("sum", &OptionalFloat(point.sum))?;
        map.serialize_entry("min", &OptionalFloat(point.min))?;
        map.serialize_entry("max", &OptionalFloat(point.max))?;
        map.serialize_entry("bucket_counts", &point.bucket_counts)?;
        map.serialize_entry("explicit_bounds", &Floats(&point.explicit_bounds))?;
        point_exemplars(&mut map, &point.exemplars)?;
        map.end()
    }
}

struct ExponentialHistogramPoint<'a>(&'a ExponentialHistogramDataPoint);

impl Serialize for ExponentialHistogramPoint<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let point = self.0;
        let mut map = serializer.serialize_map(None)?;
        point_header(&mut map, &point.attributes, point.start_time_unix_nano, point.time_unix_nano)?;
        map.serialize_entry("count", &point.count)?;
        map.serialize_entry("sum", &OptionalFloat(point.sum))?;
        map.serialize_entry("min", &OptionalFloat(point.min))?;
        map.serialize_entry("max", &OptionalFloat(point.max))?;
        map.serialize_entry("scale", &point.scale)?;
        map.serialize_entry("zero_count", &point.zero_count)?;
        map.serialize_entry("zero_threshold", &Float(point.zero_threshold))?;
        map.serialize_entry("positive", &BucketsJson(point.positive.as_ref()))?;
        map.serialize_entry("negative", &BucketsJson(point.negative.as_ref()))?;
        point_exemplars(&mut map, &point.exemplars)?;
        map.end()
    }
}

struct BucketsJson<'a>(Option<&'a Buckets>);

impl Serialize for BucketsJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Some(buckets) = self.0 else { return serializer.serialize_unit() };
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("offset", &buckets.offset)?;
        map.serialize_entry("bucket_counts", &buckets.bucket_counts)?;
        map.end()
    }
}

struct SummaryPoint<'a>(&'a SummaryDataPoint);

impl Serialize for SummaryPoint<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let point = self.0;
        let mut map = serializer.serialize_map(None)?;
        point_header(&mut map, &point.attributes, point.start_time_unix_nano, point.time_unix_nano)?;
        map.serialize_entry("count", &point.count)?;
        map.serialize_entry("sum", &Float(point.sum))?;
        map.serialize_entry("quantile_values", &Quantiles(&point.quantile_values))?;
        map.end()
    }
}

struct Quantiles<'a>(&'a [ValueAtQuantile]);

impl Serialize for Quantiles<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|q| QuantileJson { quantile: q.quantile, value: q.value }))
    }
}

struct QuantileJson {
    quantile: f64,
    value: f64,
}

impl Serialize for QuantileJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("quantile", &Float(self.quantile))?;
        map.serialize_entry("value", &Float(self.value))?;
        map.end()
    }
}

struct Floats<'a>(&'a [f64]);

impl Serialize for Floats<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|number| Float(*number)))
    }
}

struct ExemplarsJson<'a>(&'a [Exemplar]);

impl Serialize for ExemplarsJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(ExemplarJson))
    }
}

struct ExemplarJson<'a>(&'a Exemplar);

impl Serialize for ExemplarJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let exemplar = self.0;
        let mut map = serializer.serialize_map(Some(5))?;
        map.serialize_entry("time_unix_nano", &exemplar.time_unix_nano)?;
        match exemplar.value {
            Some(exemplar::Value::AsInt(number)) => map.serialize_entry("value", &number)?,
            Some(exemplar::Value::AsDouble(number)) => map.serialize_entry("value", &Float(number))?,
            None => map.serialize_entry("value", &())?,
        }
        map.serialize_entry("trace_id", &OptionalHex(&exemplar.trace_id))?;
        map.serialize_entry("span_id", &OptionalHex(&exemplar.span_id))?;
        map.serialize_entry("filtered_attributes", &Attributes(&exemplar.filtered_attributes))?;
        map.end()
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            f.write_char(char::from(HEX_DIGITS[usize::from(byte >> 4)]))?;
            f.write_char(char::from(HEX_DIGITS[usize::from(byte & 0x0f)]))?;
        }
        Ok(())
    }
}

const BASE64_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

impl fmt::Display for Base64<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digit = |index: u32| char::from(BASE64_ALPHABET[(index & 0x3f) as usize]);
        for chunk in self.0.chunks(3) {
            let b0 = u32::from(chunk[0]);
            let b1 = chunk.get(1).copied().map_or(0, u32::from);
            let b2 = chunk.get(2).copied().map_or(0, u32::from);
            let group = (b0 << 16) | (b1 << 8) | b2;
            f.write_char(digit(group >> 18))?;
            f.write_char(digit(group >> 12))?;
            f.write_char(if chunk.len() > 1 { digit(group >> 6) } else { '=' })?;
            f.write_char(if chunk.len() > 2 { digit(group) } else { '=' })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    use super::*;

    fn value(value: any_value::Value) -> AnyValue {
        AnyValue { value: Some(value) }
    }

    fn json(value: &impl Serialize) -> String {
        serde_json::to_string(value).unwrap_or_default()
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("foobar", "Zm9vYmFy")];
        for (input, expected) in cases {
            assert_eq!(Base64(input.as_bytes()).to_string(), expected);
        }
        assert_eq!(Base64(&[0xff, 0xfe, 0x00]).to_string(), "//4A");
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(Hex(&[0x00, 0xab, 0x7f]).to_string(), "00ab7f");
    }

    #[test]
    fn non_finite_doubles_become_strings() {
        let values = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.5].map(any_value::Value::DoubleValue).map(value);
        let encoded: Vec<String> = values.iter().map(|v| json(&Value(Some(v)))).collect();
        assert_eq!(encoded, ["\"NaN\"", "\"Infinity\"", "\"-Infinity\"", "1.5"]);
    }

    #[test]
    fn deep_nesting_is_cut_off() {
        let mut nested = value(any_value::Value::IntValue(1));
        for _ in 0..100 {
            nested = value(any_value::Value::ArrayValue(ArrayValue { values: vec![nested] }));
        }
        let encoded = json(&Value(Some(&nested)));
        assert!(encoded.contains(TOO_DEEP));
        assert!(serde_json::from_str::<serde_json::Value>(&encoded).is_ok());
    }

    #[test]
    fn kvlist_becomes_an_object_and_absent_values_null() {
        let list = KeyValueList {
            values: vec![
                KeyValue {
                    key: "a".into(),
                    value: Some(value(any_value::Value::BoolValue(true))),
                    ..Default::default()
                },
                KeyValue { key: "b".into(), value: None, ..Default::default() },
            ],
        };
        let kvlist = value(any_value::Value::KvlistValue(list));
        assert_eq!(json(&Value(Some(&kvlist))), r#"{"a":true,"b":null}"#);
    }
}
