//! The X-Ray segment document schema, as far as the translation reads it.
//!
//! Field names follow the X-Ray segment document reference
//! (<https://docs.aws.amazon.com/xray/latest/devguide/xray-api-segmentdocuments.html>).
//! Unknown fields are ignored. Fields whose type differs between SDKs (numbers sent as
//! strings, and the like) are read as raw JSON values and interpreted leniently.

use serde::Deserialize;
use serde_json::{Map, Value};

/// A segment, an embedded subsegment or a streamed (independent) subsegment.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Segment {
    pub name: Option<String>,
    pub id: Option<String>,
    /// Required on segments and streamed subsegments; embedded subsegments inherit it.
    pub trace_id: Option<String>,
    /// Upstream caller (segment) or enclosing segment (streamed subsegment).
    pub parent_id: Option<String>,
    /// Epoch seconds.
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    pub in_progress: Option<bool>,
    /// `"subsegment"` on a streamed subsegment.
    #[serde(rename = "type")]
    pub document_type: Option<String>,
    /// `aws` (an AWS SDK call), `remote` (another service), `local` (Python SDK), or none.
    pub namespace: Option<String>,
    pub origin: Option<String>,
    pub user: Option<String>,
    pub resource_arn: Option<String>,
    pub service: Option<Service>,
    pub http: Option<Http>,
    pub aws: Option<Aws>,
    pub sql: Option<Sql>,
    pub error: Option<bool>,
    pub fault: Option<bool>,
    pub throttle: Option<bool>,
    pub traced: Option<bool>,
    pub cause: Option<Cause>,
    pub annotations: Option<Map<String, Value>>,
    pub metadata: Option<Map<String, Value>>,
    pub subsegments: Option<Vec<Segment>>,
    pub links: Option<Vec<Link>>,
}

impl Segment {
    /// Embedded subsegments, or none.
    pub(super) fn subsegments(&self) -> &[Segment] {
        self.subsegments.as_deref().unwrap_or_default()
    }

    /// A subsegment sent on its own: `"type":"subsegment"` with a `parent_id`.
    pub(super) fn is_streamed_subsegment(&self) -> bool {
        self.parent_id.is_some() && self.document_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("subsegment"))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Service {
    pub version: Option<String>,
    pub runtime: Option<String>,
    pub runtime_version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Http {
    pub request: Option<HttpRequest>,
    pub response: Option<HttpResponse>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct HttpRequest {
    pub method: Option<String>,
    pub url: Option<String>,
    pub user_agent: Option<String>,
    pub client_ip: Option<String>,
    pub x_forwarded_for: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct HttpResponse {
    /// A number (some SDKs: a numeric string).
    pub status: Option<Value>,
    /// A number or a string.
    pub content_length: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Aws {
    pub account_id: Option<String>,
    pub operation: Option<String>,
    pub region: Option<String>,
    pub request_id: Option<String>,
    pub queue_url: Option<String>,
    pub table_name: Option<String>,
    pub table_names: Option<Vec<String>>,
    pub retries: Option<Value>,
    pub xray: Option<XraySdk>,
    pub ec2: Option<Ec2>,
    pub ecs: Option<Ecs>,
    pub eks: Option<Eks>,
    pub elastic_beanstalk: Option<ElasticBeanstalk>,
    pub cloudwatch_logs: Option<Vec<LogGroup>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct XraySdk {
    /// e.g. "X-Ray for Python".
    pub sdk: Option<String>,
    pub sdk_version: Option<String>,
    pub sampling_rule_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Ec2 {
    pub instance_id: Option<String>,
    pub availability_zone: Option<String>,
    pub instance_size: Option<String>,
    pub ami_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Ecs {
    pub container: Option<String>,
    pub container_id: Option<String>,
    pub task_arn: Option<String>,
    pub task_family: Option<String>,
    pub cluster_arn: Option<String>,
    pub container_arn: Option<String>,
    pub availability_zone: Option<String>,
    pub launch_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Eks {
    pub cluster_name: Option<String>,
    pub pod: Option<String>,
    pub container_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ElasticBeanstalk {
    pub environment_name: Option<String>,
    pub version_label: Option<String>,
    /// A number (some SDKs: a string).
    pub deployment_id: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct LogGroup {
    pub log_group: Option<String>,
    pub arn: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Sql {
    pub url: Option<String>,
    pub connection_string: Option<String>,
    pub sanitized_query: Option<String>,
    pub database_type: Option<String>,
    pub database_version: Option<String>,
    pub driver_version: Option<String>,
    pub user: Option<String>,
    pub preparation: Option<String>,
}

/// `cause`: either the id of an exception recorded elsewhere in the trace, or the exceptions.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Cause {
    ExceptionId(String),
    Exceptions(CauseObject),
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct CauseObject {
    pub working_directory: Option<String>,
    pub exceptions: Option<Vec<Exception>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Exception {
    pub id: Option<String>,
    pub message: Option<String>,
    #[serde(rename = "type")]
    pub exception_type: Option<String>,
    pub remote: Option<bool>,
    pub truncated: Option<Value>,
    pub skipped: Option<Value>,
    /// The id of the exception that caused this one.
    pub cause: Option<String>,
    pub stack: Option<Vec<StackFrame>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct StackFrame {
    pub path: Option<String>,
    pub line: Option<Value>,
    pub label: Option<String>,
}

/// A span link (newer SDKs and the OTel-to-X-Ray exporter write these).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Link {
    pub trace_id: Option<String>,
    pub id: Option<String>,
    pub attributes: Option<Map<String, Value>>,
}

/// A whole number from a JSON number or numeric string; `None` for anything else.
pub(super) fn lenient_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number
            .as_i64()
            .or_else(|| number.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map(|f| f as i64)),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}
