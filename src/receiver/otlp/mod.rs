//! The OTLP receivers, OTLP/HTTP ([`http`]) and OTLP/gRPC ([`grpc`]), and what they share.
//!
//! Dependencies run one way: [`body`] and [`wire`] know nothing of the others; [`codec`]
//! decodes and checks requests (using [`wire`]); [`error`] turns body, codec and routing
//! errors into answers; [`intake`] routes decoded requests and counts what [`error`] answers;
//! the two servers use all of them.

pub mod body;
pub(crate) mod codec;
pub mod error;
pub mod grpc;
pub mod http;
pub(crate) mod intake;
pub(crate) mod wire;
