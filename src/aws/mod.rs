//! Everything AWS that X-Ray, CloudWatch Logs and the sampling proxy share: access (region,
//! credentials, role, proxy), SDK client construction, one flattened call error, one failure
//! classifier and one SigV4 signer.

pub mod access;
pub(crate) mod classify;
pub(crate) mod client;
pub mod error;
pub(crate) mod sign;

pub use access::{AwsAccess, AwsContext, AwsUnavailable, connect, unavailable_credentials};
pub use error::AwsCallError;
