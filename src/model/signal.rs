//! The three kinds of telemetry waggle relays.

use serde::{Deserialize, Serialize};

/// The three kinds of telemetry waggle relays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    Traces,
    Logs,
    Metrics,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Logs, Signal::Metrics];

    /// Lower-case name used in metrics labels, logs and config.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
        }
    }

    /// Dense index, for per-signal arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

super::label_value!(Signal);
