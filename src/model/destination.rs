//! The destinations waggle sends to, by name: one enum for metrics labels, logs, `/status`
//! and spool directories, so a name is spelled in exactly one place.

use serde::Serialize;

/// One destination, each with its own lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Destination {
    /// The embedded local store.
    Local,
    Honeycomb,
    Xray,
    #[serde(rename = "cloudwatch_logs")]
    CloudWatchLogs,
    Rollbar,
}

impl Destination {
    pub const ALL: [Destination; 5] = [
        Destination::Local,
        Destination::Honeycomb,
        Destination::Xray,
        Destination::CloudWatchLogs,
        Destination::Rollbar,
    ];

    /// The name used in metrics labels, logs, config sections and spool directories.
    pub fn as_str(self) -> &'static str {
        match self {
            Destination::Local => "local",
            Destination::Honeycomb => "honeycomb",
            Destination::Xray => "xray",
            Destination::CloudWatchLogs => "cloudwatch_logs",
            Destination::Rollbar => "rollbar",
        }
    }
}

super::label_value!(Destination);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_its_label() {
        for destination in Destination::ALL {
            let json = serde_json::to_string(&destination).unwrap();
            assert_eq!(json, format!("\"{}\"", destination.as_str()));
        }
    }
}
