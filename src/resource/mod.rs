//! Resource attributes waggle adds to every span, log record and metric it receives over OTLP
//! (HTTP protobuf and JSON, gRPC), e.g. `deployment.environment.name`: configured in
//! `[resource]` ([`settings`]) or `WAGGLE_RESOURCE_ATTRIBUTES` ([`env`]), prepared once
//! ([`attributes`]), and added by the receivers before a request is checked: protobuf on the
//! wire, appending fields and re-encoding only the lengths around them ([`wire`]); decoded
//! requests (OTLP/JSON) to their messages. An attribute the app set is kept unless
//! `resource.override` is on. X-Ray segments (UDP) are forwarded byte-for-byte and not changed.

pub mod attributes;
pub mod env;
pub mod settings;
pub(crate) mod wire;

pub use attributes::{MAX_ATTRIBUTES, ResourceAttributes, ResourceGrowthError};
pub use env::{RESOURCE_ATTRIBUTES_ENV, parse_attribute_list};
pub use settings::ResourceSettings;

/// Why the configured resource attributes cannot be used; waggle does not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    #[error("{RESOURCE_ATTRIBUTES_ENV}: entry {entry} (`{key}`) is not KEY=VALUE")]
    NotKeyValue { entry: usize, key: String },
    #[error("{RESOURCE_ATTRIBUTES_ENV}: entry {entry} has an empty key")]
    EmptyKey { entry: usize },
    #[error("resource.attributes has an attribute with an empty key")]
    EmptyAttributeKey,
    #[error("resource.attributes.{key} must be a string, a number or a boolean")]
    NotAValue { key: String },
    #[error("resource.attributes has {count} attributes; at most {MAX_ATTRIBUTES} are allowed")]
    TooMany { count: usize },
}
