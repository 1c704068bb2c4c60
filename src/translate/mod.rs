//! Translations between telemetry formats. Pure functions, no I/O; they run on the lanes'
//! tasks, never in receivers.

pub(crate) mod otlp_to_cloudwatch;
pub(crate) mod otlp_to_rollbar;
pub(crate) mod otlp_to_xray;
pub(crate) mod stack;
pub mod xray_to_otlp;
