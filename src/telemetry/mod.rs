//! What waggle says about itself: Prometheus counters, each destination's `/status`, its own
//! log output, rate-limited WARN lines and one-line error chains.

pub mod counts;
pub(crate) mod error_text;
pub mod logging;
pub mod metrics;
pub(crate) mod ratelimit;
pub mod receivers;
pub mod recent;
pub mod status;
