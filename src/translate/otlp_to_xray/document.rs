//! The X-Ray segment document as written: typed, borrowed from the span where possible,
//! empty parts left out. Field names follow the X-Ray segment document reference
//! (<https://docs.aws.amazon.com/xray/latest/devguide/xray-api-segmentdocuments.html>).

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::annotations::Annotations;
use super::attributes::OtlpJson;
use super::aws::{Aws, Service};
use super::cause::Cause;
use super::http::Http;
use super::metadata::Metadata;
use super::sql::Sql;

/// One segment or streamed subsegment.
#[derive(Serialize)]
pub(super) struct Document<'a> {
    pub name: Cow<'a, str>,
    pub id: &'a str,
    pub trace_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<&'a str>,
    /// `"subsegment"` for a subsegment sent on its own.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub document_type: Option<&'static str>,
    pub start_time: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    #[serde(skip_serializing_if = "is_false")]
    pub in_progress: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    #[serde(skip_serializing_if = "is_false")]
    pub error: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub throttle: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub fault: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traced: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<Http<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws: Option<Aws<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sql: Option<Sql<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<&'a Service<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause<'a>>,
    #[serde(skip_serializing_if = "Annotations::is_empty")]
    pub annotations: Annotations<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link<'a>>,
}

impl Service<'_> {
    pub(super) fn is_empty(&self) -> bool {
        self.version.is_none() && self.runtime.is_none() && self.runtime_version.is_none()
    }
}

/// A span link.
#[derive(Serialize)]
pub(super) struct Link<'a> {
    pub trace_id: String,
    pub id: String,
    #[serde(skip_serializing_if = "AttributeMap::is_empty")]
    pub attributes: AttributeMap<'a>,
}

/// OTLP attributes written as a JSON object.
pub(super) struct AttributeMap<'a>(pub &'a [KeyValue]);

impl AttributeMap<'_> {
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for AttributeMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for attribute in self.0 {
            match &attribute.value {
                Some(value) => map.serialize_entry(&attribute.key, &OtlpJson(value))?,
                None => map.serialize_entry(&attribute.key, &())?,
            }
        }
        map.end()
    }
}

fn is_false(flag: &bool) -> bool {
    !flag
}
