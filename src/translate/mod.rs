//! Translations between telemetry formats. Pure functions, no I/O; they run on the lanes'
//! tasks, never in receivers.

pub mod xray_to_otlp;
