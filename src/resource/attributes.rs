//! The configured resource attributes, prepared once at start-up: each key, its value, and its
//! protobuf encoding as a `Resource.attributes` field, ready to be appended to a request on
//! the wire ([`super::wire`]) or added to a decoded resource ([`ResourceAttributes::add_to_decoded`]).

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::{ResourceError, ResourceSettings};

/// Most attributes waggle adds (one bit each in the masks the wire walk keeps).
pub const MAX_ATTRIBUTES: usize = 64;

/// A request may grow by adding attributes by at most its own size, or by this much when that
/// is more: a request of many tiny resources (hostile, or very odd) cannot multiply in memory.
const MIN_GROWTH_ALLOWANCE: usize = 1024 * 1024;

/// `Resource.attributes` is field 1, length-delimited.
const ATTRIBUTES_KEY: u8 = 0x0a;

/// The attributes waggle adds, and whether they replace the app's own. Empty: nothing is done.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResourceAttributes {
    attributes: Vec<Attribute>,
    override_app: bool,
}

/// One configured attribute.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Attribute {
    pub(crate) key: String,
    value: String,
    /// The attribute as a `Resource.attributes` field: key byte, length, `KeyValue`.
    pub(crate) field: Vec<u8>,
}

/// Adding the attributes would grow a request past what it may grow by.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the request holds {resources} resources; adding waggle's resource attributes to each would grow it by {growth} bytes, more than its own size (or 1 MiB)"
)]
pub struct ResourceGrowthError {
    pub resources: usize,
    pub growth: usize,
}

impl ResourceAttributes {
    /// No attributes: requests pass untouched.
    pub fn none() -> Self {
        ResourceAttributes::default()
    }

    /// The attributes of `[resource]`, nested tables flattened to dotted keys.
    pub fn from_settings(settings: &ResourceSettings) -> Result<Self, ResourceError> {
        let mut pairs = BTreeMap::new();
        flatten("", &settings.attributes, &mut pairs)?;
        ResourceAttributes::new(pairs, settings.override_app)
    }

    /// The given attributes; `override_app` replaces the app's own values of the same keys.
    pub fn new(pairs: BTreeMap<String, String>, override_app: bool) -> Result<Self, ResourceError> {
        if pairs.len() > MAX_ATTRIBUTES {
            return Err(ResourceError::TooMany { count: pairs.len() });
        }
        let attributes = pairs
            .into_iter()
            .map(|(key, value)| {
                if key.is_empty() {
                    return Err(ResourceError::EmptyAttributeKey);
                }
                let mut field = vec![ATTRIBUTES_KEY];
                key_value(&key, &value).encode_length_delimited(&mut field).expect("a Vec grows");
                Ok(Attribute { key, value, field })
            })
            .collect::<Result<_, _>>()?;
        Ok(ResourceAttributes { attributes, override_app })
    }

    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty()
    }

    /// The configured keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.attributes.iter().map(|attribute| attribute.key.as_str())
    }

    /// Whether the app's own values of the configured keys are replaced.
    pub fn overrides_app(&self) -> bool {
        self.override_app
    }

    pub(crate) fn attributes(&self) -> &[Attribute] {
        &self.attributes
    }

    /// The configured attribute with this key.
    pub(crate) fn index_of(&self, key: &[u8]) -> Option<usize> {
        self.attributes.iter().position(|attribute| attribute.key.as_bytes() == key)
    }

    /// The attributes to add to a resource that already has those in `present` (a bit per
    /// attribute): all of them when overriding, else the missing ones.
    pub(crate) fn to_add(&self, present: u64) -> u64 {
        let all = if self.attributes.len() == MAX_ATTRIBUTES { u64::MAX } else { (1u64 << self.attributes.len()) - 1 };
        if self.override_app { all } else { all & !present }
    }

    /// Encoded length of the attributes in `mask`.
    pub(crate) fn encoded_len(&self, mask: u64) -> usize {
        self.attributes.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, a)| a.field.len()).sum()
    }

    /// Fails when adding `growth` bytes to a request of `len` bytes and `resources` resources
    /// is more than it may grow.
    pub(crate) fn check_growth(len: usize, growth: usize, resources: usize) -> Result<(), ResourceGrowthError> {
        if growth > len.max(MIN_GROWTH_ALLOWANCE) {
            return Err(ResourceGrowthError { resources, growth });
        }
        Ok(())
    }

    /// Adds the attributes to a decoded resource (creating it when the app sent none): the
    /// missing ones, or with `override` every one, replacing the app's.
    pub fn add_to_decoded(&self, resource: &mut Option<Resource>) {
        let resource = resource.get_or_insert_with(Resource::default);
        if self.override_app {
            resource.attributes.retain(|kv| self.index_of(kv.key.as_bytes()).is_none());
        }
        let present = resource
            .attributes
            .iter()
            .filter_map(|kv| self.index_of(kv.key.as_bytes()))
            .fold(0u64, |mask, index| mask | (1 << index));
        let add = self.to_add(present);
        for (index, attribute) in self.attributes.iter().enumerate() {
            if add & (1 << index) != 0 {
                resource.attributes.push(key_value(&attribute.key, &attribute.value));
            }
        }
    }
}

fn key_value(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(Value::StringValue(value.to_string())) }),
        ..Default::default()
    }
}

/// `{"a": {"b": "x"}, "c.d": 1}` → `a.b = "x"`, `c.d = "1"`.
fn flatten(
    prefix: &str,
    table: &serde_json::Map<String, serde_json::Value>,
    pairs: &mut BTreeMap<String, String>,
) -> Result<(), ResourceError> {
    for (name, value) in table {
        let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        let text = match value {
            serde_json::Value::String(text) => text.clone(),
            serde_json::Value::Number(number) => number.to_string(),
            serde_json::Value::Bool(flag) => flag.to_string(),
            serde_json::Value::Object(nested) => {
                flatten(&key, nested, pairs)?;
                continue;
            }
            serde_json::Value::Array(_) | serde_json::Value::Null => return Err(ResourceError::NotAValue { key }),
        };
        pairs.insert(key, text);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml_text: &str) -> ResourceSettings {
        toml::from_str(toml_text).unwrap()
    }

    fn string(kv: &KeyValue) -> (&str, &str) {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(s)) => (kv.key.as_str(), s.as_str()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dotted_quoted_and_typed_keys_flatten_to_strings() {
        let attributes = ResourceAttributes::from_settings(&settings(
            "[attributes]\ndeployment.environment.name = \"prod\"\n\"service.namespace\" = \"shop\"\nreplicas = 3\ncanary = true\n",
        ))
        .unwrap();
        let keys: Vec<_> = attributes.keys().collect();
        assert_eq!(keys, ["canary", "deployment.environment.name", "replicas", "service.namespace"]);
        let mut resource = None;
        attributes.add_to_decoded(&mut resource);
        let added: Vec<_> = resource.as_ref().unwrap().attributes.iter().map(string).collect();
        assert_eq!(
            added,
            [
                ("canary", "true"),
                ("deployment.environment.name", "prod"),
                ("replicas", "3"),
                ("service.namespace", "shop")
            ]
        );
    }

    #[test]
    fn arrays_too_many_and_empty_keys_are_refused() {
        let error = ResourceAttributes::from_settings(&settings("[attributes]\nlist = [1, 2]\n")).unwrap_err();
        assert_eq!(error, ResourceError::NotAValue { key: "list".into() });
        let many: BTreeMap<_, _> = (0..=MAX_ATTRIBUTES).map(|i| (format!("k{i}"), String::new())).collect();
        assert_eq!(ResourceAttributes::new(many, false).unwrap_err(), ResourceError::TooMany { count: 65 });
        let empty = BTreeMap::from([(String::new(), "x".to_string())]);
        assert_eq!(ResourceAttributes::new(empty, false).unwrap_err(), ResourceError::EmptyAttributeKey);
    }

    #[test]
    fn each_prepared_field_decodes_as_a_resource_attribute() {
        let pairs = BTreeMap::from([("k".to_string(), "v".to_string()), ("é".to_string(), "x".repeat(300))]);
        let attributes = ResourceAttributes::new(pairs, false).unwrap();
        for attribute in attributes.attributes() {
            let resource = Resource::decode(attribute.field.as_slice()).unwrap();
            assert_eq!(string(&resource.attributes[0]).0, attribute.key);
        }
        assert_eq!(attributes.encoded_len(0b10), attributes.attributes()[1].field.len());
    }

    #[test]
    fn decoded_resources_keep_the_apps_values_unless_overriding() {
        let pairs = BTreeMap::from([("env".to_string(), "prod".to_string()), ("team".to_string(), "core".to_string())]);
        let app =
            Some(Resource { attributes: vec![key_value("env", "dev"), key_value("a", "1")], ..Default::default() });

        let mut kept = app.clone();
        ResourceAttributes::new(pairs.clone(), false).unwrap().add_to_decoded(&mut kept);
        let kept: Vec<_> = kept.as_ref().unwrap().attributes.iter().map(string).collect();
        assert_eq!(kept, [("env", "dev"), ("a", "1"), ("team", "core")]);

        let mut replaced = app;
        ResourceAttributes::new(pairs, true).unwrap().add_to_decoded(&mut replaced);
        let replaced: Vec<_> = replaced.as_ref().unwrap().attributes.iter().map(string).collect();
        assert_eq!(replaced, [("a", "1"), ("env", "prod"), ("team", "core")]);
    }

    #[test]
    fn growth_is_held_to_the_requests_own_size_or_a_mebibyte() {
        assert!(ResourceAttributes::check_growth(10, MIN_GROWTH_ALLOWANCE, 5).is_ok());
        assert!(ResourceAttributes::check_growth(10, MIN_GROWTH_ALLOWANCE + 1, 5).is_err());
        assert!(ResourceAttributes::check_growth(4 * MIN_GROWTH_ALLOWANCE, 4 * MIN_GROWTH_ALLOWANCE, 5).is_ok());
    }
}
