//! What `/status` reports for each destination: on or off and why, last success, last error.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use serde::Serialize;

use crate::model::{Destination, Signal};
use crate::telemetry::counts::{DestinationCounts, SignalTotals};
use crate::telemetry::recent::RecentTotals;

/// The live state of one destination, updated by its lane after each request.
#[derive(Debug)]
pub struct DestinationStatus {
    pub name: Destination,
    state: Mutex<StatusState>,
    /// What the lane counted, once it runs.
    counts: OnceLock<Arc<DestinationCounts>>,
}

#[derive(Clone, Debug, Default, Serialize)]
struct StatusState {
    enabled: bool,
    /// Why it is on or off ("HONEYCOMB_API_KEY not set", "embedded store at ./data").
    reason: String,
    signals: Vec<&'static str>,
    #[serde(with = "rfc3339_opt")]
    last_success: Option<SystemTime>,
    #[serde(with = "rfc3339_opt")]
    last_error_at: Option<SystemTime>,
    last_error: Option<String>,
    /// A condition that needs a human (a rejected API key); cleared by the next success.
    problem: Option<String>,
}

/// A point-in-time copy of a destination's status, as served on `/status`.
#[derive(Clone, Debug, Serialize)]
pub struct StatusReport {
    pub name: Destination,
    #[serde(flatten)]
    state: StatusState,
    /// Per signal the destination takes: items sent, refused and dropped since start (only
    /// for a destination whose lane runs).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    items: BTreeMap<Signal, SignalTotals>,
    /// Per signal: items sent, refused and dropped in the last minute (50 to 60 s).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    last_minute: BTreeMap<Signal, RecentTotals>,
    /// What the lane holds now, waiting to be sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    backlog: Option<Backlog>,
}

/// Bytes a running lane holds: in memory (queued, batching, being sent) and in its disk spool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Backlog {
    pub queue_bytes: u64,
    pub spool_bytes: u64,
}

impl StatusReport {
    /// Adds the memory queue's bytes (the admin endpoint reads them from the lane).
    pub fn with_queue_bytes(mut self, queue_bytes: u64) -> Self {
        if let Some(backlog) = &mut self.backlog {
            backlog.queue_bytes = queue_bytes;
        }
        self
    }
}

impl DestinationStatus {
    pub fn new(name: Destination, enabled: bool, reason: impl Into<String>, signals: Vec<&'static str>) -> Self {
        DestinationStatus {
            name,
            state: Mutex::new(StatusState { enabled, reason: reason.into(), signals, ..Default::default() }),
            counts: OnceLock::new(),
        }
    }

    pub fn record_success(&self) {
        let mut state = self.lock();
        state.last_success = Some(SystemTime::now());
        state.problem = None;
    }

    pub fn record_error(&self, error: impl Into<String>) {
        let mut state = self.lock();
        state.last_error_at = Some(SystemTime::now());
        state.last_error = Some(error.into());
    }

    /// Marks a condition a person must fix, shown until the next success.
    pub fn record_problem(&self, problem: impl Into<String>) {
        let problem = problem.into();
        let mut state = self.lock();
        state.last_error_at = Some(SystemTime::now());
        state.last_error = Some(problem.clone());
        state.problem = Some(problem);
    }

    pub fn is_enabled(&self) -> bool {
        self.lock().enabled
    }

    pub fn reason(&self) -> String {
        self.lock().reason.clone()
    }

    /// Shows the lane's counts on `/status` from now on (the first call wins).
    pub fn attach_counts(&self, counts: Arc<DestinationCounts>) {
        let _ = self.counts.set(counts);
    }

    pub fn report(&self) -> StatusReport {
        let state = self.lock().clone();
        let Some(counts) = self.counts.get() else {
            return StatusReport {
                name: self.name,
                state,
                items: BTreeMap::new(),
                last_minute: BTreeMap::new(),
                backlog: None,
            };
        };
        let signals = || Signal::ALL.into_iter().filter(|signal| state.signals.contains(&signal.as_str()));
        let items = signals().map(|signal| (signal, counts.totals(signal))).collect();
        let last_minute = signals().map(|signal| (signal, counts.last_minute(signal))).collect();
        let backlog = Some(Backlog { queue_bytes: 0, spool_bytes: counts.spool_bytes() });
        StatusReport { name: self.name, state, items, last_minute, backlog }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StatusState> {
        // A panic while holding this lock cannot leave the state half-written: recover it.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

mod rfc3339_opt {
    use std::time::SystemTime;

    use serde::Serializer;

    pub(super) fn serialize<S: Serializer>(value: &Option<SystemTime>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(time) => serializer.serialize_str(&humantime::format_rfc3339_millis(*time).to_string()),
            None => serializer.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LossReason;
    use crate::telemetry::metrics::Metrics;

    #[test]
    fn a_running_lane_reports_its_items_per_signal_it_takes() {
        let status = DestinationStatus::new(Destination::Honeycomb, true, "OTLP/HTTP", vec!["traces", "logs"]);
        let counts = Arc::new(DestinationCounts::new(Destination::Honeycomb, Arc::new(Metrics::new())));
        status.attach_counts(Arc::clone(&counts));
        counts.record_sent(Signal::Traces, 40);
        counts.record_failed(Signal::Traces, LossReason::PartialSuccess, 2);
        counts.record_dropped(Signal::Logs, LossReason::Shutdown, 5);
        let report = serde_json::to_value(status.report()).unwrap();
        assert_eq!(
            report["items"],
            serde_json::json!({
                "traces": {"sent": 40, "failed": {"partial_success": 2}, "dropped": {}},
                "logs": {"sent": 0, "failed": {}, "dropped": {"shutdown": 5}},
            })
        );
        assert_eq!(
            report["last_minute"],
            serde_json::json!({
                "traces": {"sent": 40, "failed": 2, "dropped": 0},
                "logs": {"sent": 0, "failed": 0, "dropped": 5},
            })
        );
        assert_eq!(report["backlog"], serde_json::json!({"queue_bytes": 0, "spool_bytes": 0}));
    }

    #[test]
    fn a_destination_that_is_off_has_no_items() {
        let status = DestinationStatus::new(Destination::Xray, false, "no AWS region", vec!["traces"]);
        let report = serde_json::to_value(status.report()).unwrap();
        assert!(report.get("items").is_none(), "{report}");
    }
}
