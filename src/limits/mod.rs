//! Resource limits: one memory budget for bodies and queued batches ([`budget`]), what every
//! TCP listener allows a connection ([`connections`], served over HTTP by [`http_server`]),
//! and the open-file limit raised at start ([`nofile`]).

pub mod budget;
pub mod connections;
pub mod http_server;
pub mod nofile;

use std::time::Duration;

pub use budget::{BudgetExhausted, MemoryBudget, MemoryPermit};
pub use connections::{CappedListener, ConnectionLimits, TrackedStream};

use crate::config::LimitsSettings;

/// What a server takes from `[limits]` (and `pipeline.retry_after`).
#[derive(Clone, Debug)]
pub struct ServerLimits {
    pub budget: MemoryBudget,
    pub connections: ConnectionLimits,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    /// What a request refused for memory is told to wait.
    pub retry_after: Duration,
}

impl ServerLimits {
    /// The configured limits, sharing `budget`; `max_connections` is the per-listener cap in
    /// force (see [`connections_per_listener`]).
    pub fn new(settings: &LimitsSettings, budget: MemoryBudget, max_connections: usize, retry_after: Duration) -> Self {
        ServerLimits {
            budget,
            connections: ConnectionLimits { max_connections, idle_timeout: settings.idle_timeout },
            header_timeout: settings.header_timeout,
            body_timeout: settings.body_timeout,
            retry_after,
        }
    }
}

impl Default for ServerLimits {
    /// The default timeouts and cap, with a budget nothing exceeds (for in-process tests).
    fn default() -> Self {
        let settings = LimitsSettings::default();
        ServerLimits::new(&settings, MemoryBudget::unlimited(), settings.max_connections, Duration::from_secs(1))
    }
}

/// Whole seconds for a `Retry-After` header, rounded up, at least 1: what every refusal for
/// memory (and a full lane) tells the client to wait.
pub fn retry_after_seconds(delay: Duration) -> u64 {
    let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    seconds.max(1)
}

/// File descriptors kept for everything but the listeners' connections (the store, spool
/// segments, outgoing connections to destinations, logs).
pub const RESERVED_FILES: u64 = 128;

/// Connections each of `listeners` TCP listeners may keep so that together they fit in
/// `open_files` descriptors, at most `configured`.
pub fn connections_per_listener(configured: usize, open_files: u64, listeners: usize) -> usize {
    let spare = open_files.saturating_sub(RESERVED_FILES) / (listeners.max(1) as u64);
    configured.min(usize::try_from(spare).unwrap_or(usize::MAX)).max(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_seconds(Duration::from_millis(3001)), 4);
    }

    #[test]
    fn listeners_share_the_open_file_limit() {
        assert_eq!(connections_per_listener(1024, 1024, 4), 224);
        assert_eq!(connections_per_listener(100, 65_536, 4), 100);
        assert_eq!(connections_per_listener(1024, 100, 4), 16, "never below a working minimum");
    }
}
