//! The v1 store's JSON columns read back into OTLP values: the inverse of the old engine's
//! `encode.rs`, exact wherever that encoding kept the information.
//!
//! Numbers are read from their JSON text, never through serde_json's own float parsing (which
//! can be one ulp off without its `float_roundtrip` feature): an integer literal was an `int`,
//! a literal with `.` or an exponent was a `double`, and Rust's parser is exact. Objects keep
//! their key order and duplicate keys. What the encoding lost cannot come back:
//! - a `bytes` value was written as its base64 text, so it comes back as a `string` value;
//! - a non-finite `double` attribute was written as the string `"NaN"`, `"Infinity"` or
//!   `"-Infinity"`, so it comes back as that string (in a metric's number fields, where no
//!   string can stand, it becomes the double again);
//! - an absent value and an `AnyValue` without a value were both `null`: both come back absent;
//! - a value nested deeper than 32 levels was written as the string `"[nested too deeply]"`.

use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList, any_value};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
    NumberDataPoint, Sum, Summary, SummaryDataPoint, exemplar, metric, number_data_point,
};
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// What a JSON column failed to decode with.
pub(super) type JsonResult<T> = Result<T, serde_json::Error>;

/// An attributes object, `{key: value}`, as key-values in the order written.
pub(super) fn attributes(text: &str) -> JsonResult<Vec<KeyValue>> {
    let entries: Entries<'_> = serde_json::from_str(text)?;
    entries.0.into_iter().map(|(key, raw)| Ok(KeyValue { key, value: any_value(raw)?, ..Default::default() })).collect()
}

/// One attribute value or log body; `null` is no value.
pub(super) fn value(text: &str) -> JsonResult<Option<AnyValue>> {
    any_value(serde_json::from_str(text)?)
}

/// Span events: `[{"name", "time_unix_nano", "attributes"}]`.
pub(super) fn events(text: &str) -> JsonResult<Vec<Event>> {
    let events: Vec<EventJson<'_>> = serde_json::from_str(text)?;
    events
        .into_iter()
        .map(|event| {
            Ok(Event {
                time_unix_nano: event.time_unix_nano,
                name: event.name,
                attributes: attributes(event.attributes.get())?,
                ..Default::default()
            })
        })
        .collect()
}

/// Span links: `[{"trace_id", "span_id", "trace_state", "attributes"}]`, ids as hex or `null`.
pub(super) fn links(text: &str) -> JsonResult<Vec<Link>> {
    let links: Vec<LinkJson<'_>> = serde_json::from_str(text)?;
    links
        .into_iter()
        .map(|link| {
            Ok(Link {
                trace_id: hex_id(link.trace_id.as_deref())?,
                span_id: hex_id(link.span_id.as_deref())?,
                trace_state: link.trace_state,
                attributes: attributes(link.attributes.get())?,
                ..Default::default()
            })
        })
        .collect()
}

/// The shape of a metric besides its points, as the metrics row recorded it.
pub(super) struct MetricShape<'a> {
    /// `gauge`, `sum`, `histogram`, `exponential_histogram`, `summary` or `empty`.
    pub metric_type: &'a str,
    /// `delta`, `cumulative`, `unspecified`, or absent for gauges and summaries.
    pub aggregation_temporality: Option<&'a str>,
    pub is_monotonic: Option<bool>,
}

/// A metric's data from its `data_points` column; `None` for a metric stored without data.
pub(super) fn metric_data(shape: &MetricShape<'_>, data_points: &str) -> JsonResult<Option<metric::Data>> {
    let aggregation_temporality = temporality(shape.aggregation_temporality);
    let data = match shape.metric_type {
        "empty" => return Ok(None),
        "gauge" => metric::Data::Gauge(Gauge { data_points: number_points(data_points)? }),
        "sum" => metric::Data::Sum(Sum {
            data_points: number_points(data_points)?,
            aggregation_temporality,
            is_monotonic: shape.is_monotonic.unwrap_or(false),
        }),
        "histogram" => {
            let points: Vec<HistogramPointJson<'_>> = serde_json::from_str(data_points)?;
            let data_points = points.into_iter().map(HistogramPointJson::into_point).collect::<JsonResult<_>>()?;
            metric::Data::Histogram(Histogram { data_points, aggregation_temporality })
        }
        "exponential_histogram" => {
            let points: Vec<ExponentialPointJson<'_>> = serde_json::from_str(data_points)?;
            let data_points = points.into_iter().map(ExponentialPointJson::into_point).collect::<JsonResult<_>>()?;
            metric::Data::ExponentialHistogram(ExponentialHistogram { data_points, aggregation_temporality })
        }
        "summary" => {
            let points: Vec<SummaryPointJson<'_>> = serde_json::from_str(data_points)?;
            let data_points = points.into_iter().map(SummaryPointJson::into_point).collect::<JsonResult<_>>()?;
            metric::Data::Summary(Summary { data_points })
        }
        other => return Err(de::Error::custom(format_args!("unknown metric type {other:?}"))),
    };
    Ok(Some(data))
}

/// OTLP's `AggregationTemporality` from the row's text.
fn temporality(text: Option<&str>) -> i32 {
    match text {
        Some("delta") => 1,
        Some("cumulative") => 2,
        _ => 0,
    }
}

/// A JSON value, read by the first character of its (exact, unparsed) text.
fn any_value(raw: &RawValue) -> JsonResult<Option<AnyValue>> {
    let text = raw.get().trim_start();
    let value = match text.as_bytes().first() {
        None | Some(b'n') => return Ok(None),
        Some(b't') => any_value::Value::BoolValue(true),
        Some(b'f') => any_value::Value::BoolValue(false),
        Some(b'"') => any_value::Value::StringValue(serde_json::from_str(text)?),
        Some(b'[') => {
            let elements: Vec<&RawValue> = serde_json::from_str(text)?;
            let values =
                elements.into_iter().map(|raw| Ok(any_value(raw)?.unwrap_or_default())).collect::<JsonResult<_>>()?;
            any_value::Value::ArrayValue(ArrayValue { values })
        }
        Some(b'{') => any_value::Value::KvlistValue(KeyValueList { values: attributes(text)? }),
        Some(_) => match number(text)? {
            Number::Int(number) => any_value::Value::IntValue(number),
            Number::Double(number) => any_value::Value::DoubleValue(number),
        },
    };
    Ok(Some(AnyValue { value: Some(value) }))
}

/// A JSON number as it was written.
enum Number {
    Int(i64),
    Double(f64),
}

fn number(text: &str) -> JsonResult<Number> {
    let text = text.trim();
    let bad = || de::Error::custom(format_args!("not a number: {text:?}"));
    if text.contains(['.', 'e', 'E']) {
        return text.parse().map(Number::Double).map_err(|_| bad());
    }
    match text.parse() {
        Ok(number) => Ok(Number::Int(number)),
        // Not written by the old engine (its ints were i64), but a number all the same.
        Err(_) => text.parse().map(Number::Double).map_err(|_| bad()),
    }
}

/// A double where the encoding wrote one: a number, or the name of a non-finite value.
fn double(raw: &RawValue) -> JsonResult<f64> {
    let text = raw.get().trim();
    match text {
        "\"NaN\"" => Ok(f64::NAN),
        "\"Infinity\"" => Ok(f64::INFINITY),
        "\"-Infinity\"" => Ok(f64::NEG_INFINITY),
        _ => match number(text)? {
            Number::Double(number) => Ok(number),
            // Whole doubles are written with ".0"; an integer literal is still its value.
            Number::Int(number) => Ok(number as f64),
        },
    }
}

fn optional_double(raw: Option<&RawValue>) -> JsonResult<Option<f64>> {
    raw.map(double).transpose()
}

fn doubles(raws: &[&RawValue]) -> JsonResult<Vec<f64>> {
    raws.iter().map(|raw| double(raw)).collect()
}

/// A hex id, or no id for `null`.
fn hex_id(text: Option<&str>) -> JsonResult<Vec<u8>> {
    match text {
        None => Ok(Vec::new()),
        Some(text) => hex::decode(text).map_err(|error| de::Error::custom(format_args!("bad id {text:?}: {error}"))),
    }
}

/// An object's entries in the order written, duplicates kept, values unparsed.
struct Entries<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;

        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries<'de>;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a JSON object of attributes")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }

        deserializer.deserialize_map(EntriesVisitor)
    }
}

#[derive(Deserialize)]
struct EventJson<'a> {
    name: String,
    time_unix_nano: u64,
    #[serde(borrow)]
    attributes: &'a RawValue,
}

#[derive(Deserialize)]
struct LinkJson<'a> {
    trace_id: Option<String>,
    span_id: Option<String>,
    trace_state: String,
    #[serde(borrow)]
    attributes: &'a RawValue,
}

#[derive(Deserialize)]
struct ExemplarJson<'a> {
    time_unix_nano: u64,
    #[serde(borrow)]
    value: Option<&'a RawValue>,
    trace_id: Option<String>,
    span_id: Option<String>,
    #[serde(borrow)]
    filtered_attributes: &'a RawValue,
}

fn exemplars(exemplars: Vec<ExemplarJson<'_>>) -> JsonResult<Vec<Exemplar>> {
    exemplars
        .into_iter()
        .map(|exemplar| {
            let value = match exemplar.value.map(number_or_double).transpose()? {
                Some(Number::Int(number)) => Some(exemplar::Value::AsInt(number)),
                Some(Number::Double(number)) => Some(exemplar::Value::AsDouble(number)),
                None => None,
            };
            Ok(Exemplar {
                filtered_attributes: attributes(exemplar.filtered_attributes.get())?,
                time_unix_nano: exemplar.time_unix_nano,
                span_id: hex_id(exemplar.span_id.as_deref())?,
                trace_id: hex_id(exemplar.trace_id.as_deref())?,
                value,
            })
        })
        .collect()
}

// The data point shapes below spell out their common fields instead of sharing them through
// `#[serde(flatten)]`: a `RawValue` does not survive flattening.

/// A point's value: an int, a double, or a non-finite double's name.
fn number_or_double(raw: &RawValue) -> JsonResult<Number> {
    if raw.get().trim_start().starts_with('"') { double(raw).map(Number::Double) } else { number(raw.get()) }
}

#[derive(Deserialize)]
struct NumberPointJson<'a> {
    #[serde(borrow)]
    attributes: &'a RawValue,
    start_time_unix_nano: u64,
    time_unix_nano: u64,
    #[serde(borrow)]
    value: Option<&'a RawValue>,
    #[serde(borrow, default)]
    exemplars: Vec<ExemplarJson<'a>>,
}

fn number_points(text: &str) -> JsonResult<Vec<NumberDataPoint>> {
    let points: Vec<NumberPointJson<'_>> = serde_json::from_str(text)?;
    points
        .into_iter()
        .map(|point| {
            let value = match point.value.map(number_or_double).transpose()? {
                Some(Number::Int(number)) => Some(number_data_point::Value::AsInt(number)),
                Some(Number::Double(number)) => Some(number_data_point::Value::AsDouble(number)),
                None => None,
            };
            Ok(NumberDataPoint {
                attributes: attributes(point.attributes.get())?,
                start_time_unix_nano: point.start_time_unix_nano,
                time_unix_nano: point.time_unix_nano,
                exemplars: exemplars(point.exemplars)?,
                value,
                ..Default::default()
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct HistogramPointJson<'a> {
    #[serde(borrow)]
    attributes: &'a RawValue,
    start_time_unix_nano: u64,
    time_unix_nano: u64,
    count: u64,
    #[serde(borrow)]
    sum: Option<&'a RawValue>,
    #[serde(borrow)]
    min: Option<&'a RawValue>,
    #[serde(borrow)]
    max: Option<&'a RawValue>,
    bucket_counts: Vec<u64>,
    #[serde(borrow)]
    explicit_bounds: Vec<&'a RawValue>,
    #[serde(borrow, default)]
    exemplars: Vec<ExemplarJson<'a>>,
}

impl HistogramPointJson<'_> {
    fn into_point(self) -> JsonResult<HistogramDataPoint> {
        Ok(HistogramDataPoint {
            attributes: attributes(self.attributes.get())?,
            start_time_unix_nano: self.start_time_unix_nano,
            time_unix_nano: self.time_unix_nano,
            count: self.count,
            sum: optional_double(self.sum)?,
            bucket_counts: self.bucket_counts,
            explicit_bounds: doubles(&self.explicit_bounds)?,
            exemplars: exemplars(self.exemplars)?,
            min: optional_double(self.min)?,
            max: optional_double(self.max)?,
            ..Default::default()
        })
    }
}

#[derive(Deserialize)]
struct BucketsJson {
    offset: i32,
    bucket_counts: Vec<u64>,
}

#[derive(Deserialize)]
struct ExponentialPointJson<'a> {
    #[serde(borrow)]
    attributes: &'a RawValue,
    start_time_unix_nano: u64,
    time_unix_nano: u64,
    count: u64,
    #[serde(borrow)]
    sum: Option<&'a RawValue>,
    #[serde(borrow)]
    min: Option<&'a RawValue>,
    #[serde(borrow)]
    max: Option<&'a RawValue>,
    scale: i32,
    zero_count: u64,
    #[serde(borrow)]
    zero_threshold: &'a RawValue,
    positive: Option<BucketsJson>,
    negative: Option<BucketsJson>,
    #[serde(borrow, default)]
    exemplars: Vec<ExemplarJson<'a>>,
}

impl ExponentialPointJson<'_> {
    fn into_point(self) -> JsonResult<ExponentialHistogramDataPoint> {
        let buckets =
            |json: Option<BucketsJson>| json.map(|b| Buckets { offset: b.offset, bucket_counts: b.bucket_counts });
        Ok(ExponentialHistogramDataPoint {
            attributes: attributes(self.attributes.get())?,
            start_time_unix_nano: self.start_time_unix_nano,
            time_unix_nano: self.time_unix_nano,
            count: self.count,
            sum: optional_double(self.sum)?,
            scale: self.scale,
            zero_count: self.zero_count,
            positive: buckets(self.positive),
            negative: buckets(self.negative),
            exemplars: exemplars(self.exemplars)?,
            min: optional_double(self.min)?,
            max: optional_double(self.max)?,
            zero_threshold: double(self.zero_threshold)?,
            ..Default::default()
        })
    }
}

#[derive(Deserialize)]
struct QuantileJson<'a> {
    #[serde(borrow)]
    quantile: &'a RawValue,
    #[serde(borrow)]
    value: &'a RawValue,
}

#[derive(Deserialize)]
struct SummaryPointJson<'a> {
    #[serde(borrow)]
    attributes: &'a RawValue,
    start_time_unix_nano: u64,
    time_unix_nano: u64,
    count: u64,
    #[serde(borrow)]
    sum: &'a RawValue,
    #[serde(borrow)]
    quantile_values: Vec<QuantileJson<'a>>,
}

impl SummaryPointJson<'_> {
    fn into_point(self) -> JsonResult<SummaryDataPoint> {
        let quantile_values = self
            .quantile_values
            .iter()
            .map(|q| Ok(ValueAtQuantile { quantile: double(q.quantile)?, value: double(q.value)? }))
            .collect::<JsonResult<_>>()?;
        Ok(SummaryDataPoint {
            attributes: attributes(self.attributes.get())?,
            start_time_unix_nano: self.start_time_unix_nano,
            time_unix_nano: self.time_unix_nano,
            count: self.count,
            sum: double(self.sum)?,
            quantile_values,
            ..Default::default()
        })
    }
}
