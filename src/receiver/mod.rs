//! Receivers: they parse and validate input, turn it into a [`crate::model::Batch`] and hand
//! it to the router. They never translate and never wait on a destination.

pub mod body;
pub mod error;
pub mod otlp_grpc;
pub mod otlp_http;
pub mod otlp_intake;
pub mod otlp_wire;
pub mod xray_udp;
