//! `[resource]`: the attributes waggle adds to the resource of every OTLP request, as
//! configured (file, `--set`, and `WAGGLE_RESOURCE_ATTRIBUTES`, see [`super::env`]).

use serde::{Deserialize, Serialize};

/// Attributes added to every span's, log record's and metric's resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResourceSettings {
    /// Attribute key → value. Values are strings (numbers and booleans are written as text);
    /// a nested table joins its keys with dots, so TOML's dotted keys
    /// (`deployment.environment.name = "prod"`) and quoted ones mean the same attribute.
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Replace an attribute the app set itself with the configured value; by default the
    /// app's own value is kept.
    #[serde(rename = "override")]
    pub override_app: bool,
}
