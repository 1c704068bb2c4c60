//! Receivers: they parse and validate input, turn it into a [`crate::model::Batch`] and hand
//! it to the router. They never translate and never wait on a destination.

pub mod otlp;
pub mod rollbar_relay;
pub mod xray_udp;

/// Capped body reading and decompression, shared with the X-Ray sampling proxy.
pub(crate) use self::otlp::body;
