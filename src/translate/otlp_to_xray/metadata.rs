//! `metadata`: namespaces of values X-Ray stores but does not index. Span attributes and
//! resource attributes land in `default`; `aws.xray.metadata.<ns>` JSON strings are parsed
//! back into their namespace.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as OtlpValue;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use super::attributes::OtlpJson;

/// What a trimmed metadata value is replaced with.
pub(crate) const TRUNCATED_MARKER: &str = "…(truncated)";

/// Where attributes without a namespace go.
pub(super) const DEFAULT_NAMESPACE: &str = "default";
/// Span attributes holding a metadata namespace as a JSON string (as the X-Ray receivers write).
pub(super) const NAMESPACE_ATTRIBUTE_PREFIX: &str = "aws.xray.metadata.";
/// Sample-rate keys the X-Ray → OTLP translation copies out of metadata into attributes.
const SAMPLE_RATE_KEYS: [&str; 2] = ["SampleRate", "sampleRate"];

/// The document's metadata, `default` first.
pub(super) struct Metadata<'a> {
    pub namespaces: Vec<Namespace<'a>>,
}

pub(super) struct Namespace<'a> {
    pub name: Cow<'a, str>,
    pub entries: Vec<Entry<'a>>,
}

pub(super) struct Entry<'a> {
    pub key: Cow<'a, str>,
    pub value: MetaValue<'a>,
}

/// A metadata value: an attribute's value, parsed JSON, or the marker left by trimming.
pub(super) enum MetaValue<'a> {
    Otlp(&'a AnyValue),
    Json(Value),
    Text(&'a str),
    Truncated,
}

impl<'a> Metadata<'a> {
    /// Every value, for trimming.
    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut MetaValue<'a>> {
        self.namespaces.iter_mut().flat_map(|namespace| namespace.entries.iter_mut().map(|entry| &mut entry.value))
    }
}

/// Collects metadata while the span's attributes are sorted, then assembles it.
#[derive(Default)]
pub(super) struct MetadataBuilder<'a> {
    /// Parsed `aws.xray.metadata.default`.
    default_from_json: Map<String, Value>,
    attributes: Vec<Entry<'a>>,
    resource: Vec<Entry<'a>>,
    /// Parsed `aws.xray.metadata.<ns>` other than default.
    namespaces: Vec<(&'a str, Map<String, Value>)>,
}

impl<'a> MetadataBuilder<'a> {
    /// A span attribute for `metadata.default`.
    pub(super) fn attribute(&mut self, key: &'a str, value: &'a AnyValue) {
        if value.value.is_some() {
            self.attributes.push(Entry { key: Cow::Borrowed(key), value: MetaValue::Otlp(value) });
        }
    }

    /// A resource attribute, its key already prefixed with `otel.resource.`.
    pub(super) fn resource(&mut self, prefixed_key: &'a str, value: &'a AnyValue) {
        if value.value.is_some() {
            self.resource.push(Entry { key: Cow::Borrowed(prefixed_key), value: MetaValue::Otlp(value) });
        }
    }

    /// An `aws.xray.metadata.<namespace>` attribute. A JSON object becomes the namespace
    /// (`default` merges into the default namespace); anything else is kept as a string
    /// under the attribute's own key.
    pub(super) fn namespace_json(&mut self, attribute_key: &'a str, namespace: &'a str, json: &'a str) {
        match serde_json::from_str::<Map<String, Value>>(json) {
            Ok(fields) if namespace.eq_ignore_ascii_case(DEFAULT_NAMESPACE) => self.default_from_json.extend(fields),
            Ok(fields) => self.namespaces.push((namespace, fields)),
            Err(_) => self.attributes.push(Entry { key: Cow::Borrowed(attribute_key), value: MetaValue::Text(json) }),
        }
    }

    /// The metadata, or `None` when there is none. Keys from `aws.xray.metadata.default`
    /// win over attributes of the same name; a sample-rate attribute that only repeats a
    /// parsed namespace's value is not written twice.
    pub(super) fn build(self) -> Option<Metadata<'a>> {
        let MetadataBuilder { default_from_json, attributes, resource, namespaces: parsed } = self;
        let is_new = |entry: &Entry<'_>| {
            !default_from_json.contains_key(entry.key.as_ref())
                && !repeats_parsed_sample_rate(entry, &default_from_json, &parsed)
        };
        let attributes: Vec<Entry<'a>> = attributes.into_iter().filter(|entry| is_new(entry)).collect();
        let resource: Vec<Entry<'a>> = resource.into_iter().filter(|entry| is_new(entry)).collect();
        let mut default = Vec::with_capacity(default_from_json.len() + attributes.len() + resource.len());
        default.extend(default_from_json.into_iter().map(json_entry));
        default.extend(attributes);
        default.extend(resource);

        let mut namespaces = Vec::with_capacity(1 + parsed.len());
        if !default.is_empty() {
            namespaces.push(Namespace { name: Cow::Borrowed(DEFAULT_NAMESPACE), entries: default });
        }
        for (name, fields) in parsed {
            namespaces
                .push(Namespace { name: Cow::Borrowed(name), entries: fields.into_iter().map(json_entry).collect() });
        }
        (!namespaces.is_empty()).then_some(Metadata { namespaces })
    }
}

/// Whether `entry` is a sample-rate attribute that only repeats a number found under the
/// same key in a parsed namespace (the X-Ray → OTLP translation copies it out for Honeycomb).
fn repeats_parsed_sample_rate(
    entry: &Entry<'_>,
    default_from_json: &Map<String, Value>,
    parsed: &[(&str, Map<String, Value>)],
) -> bool {
    let MetaValue::Otlp(value) = entry.value else { return false };
    if !SAMPLE_RATE_KEYS.contains(&entry.key.as_ref()) {
        return false;
    }
    std::iter::once(default_from_json)
        .chain(parsed.iter().map(|(_, fields)| fields))
        .filter_map(|fields| fields.get(entry.key.as_ref()))
        .any(|json| same_number(value, json))
}

fn json_entry<'a>((key, value): (String, Value)) -> Entry<'a> {
    Entry { key: Cow::Owned(key), value: MetaValue::Json(value) }
}

fn same_number(value: &AnyValue, json: &Value) -> bool {
    match (&value.value, json) {
        (Some(OtlpValue::IntValue(int)), Value::Number(number)) => number.as_i64() == Some(*int),
        (Some(OtlpValue::DoubleValue(double)), Value::Number(number)) => number.as_f64() == Some(*double),
        _ => false,
    }
}

impl Serialize for Metadata<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.namespaces.len()))?;
        for namespace in &self.namespaces {
            map.serialize_entry(&namespace.name, &Entries(&namespace.entries))?;
        }
        map.end()
    }
}

struct Entries<'e, 'a>(&'e [Entry<'a>]);

impl Serialize for Entries<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for entry in self.0 {
            map.serialize_entry(&entry.key, &entry.value)?;
        }
        map.end()
    }
}

impl Serialize for MetaValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            MetaValue::Otlp(value) => OtlpJson(value).serialize(serializer),
            MetaValue::Json(value) => value.serialize(serializer),
            MetaValue::Text(text) => serializer.serialize_str(text),
            MetaValue::Truncated => serializer.serialize_str(TRUNCATED_MARKER),
        }
    }
}
