//! What `/status` reports for each destination: on or off and why, last success, last error.

use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;

use crate::model::Destination;

/// The live state of one destination, updated by its lane after each request.
#[derive(Debug)]
pub struct DestinationStatus {
    pub name: Destination,
    state: Mutex<StatusState>,
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
}

impl DestinationStatus {
    pub fn new(name: Destination, enabled: bool, reason: impl Into<String>, signals: Vec<&'static str>) -> Self {
        DestinationStatus {
            name,
            state: Mutex::new(StatusState { enabled, reason: reason.into(), signals, ..Default::default() }),
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

    pub fn report(&self) -> StatusReport {
        StatusReport { name: self.name, state: self.lock().clone() }
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
