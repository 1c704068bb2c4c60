//! Everything AWS that X-Ray, CloudWatch Logs and the sampling proxy share: access (region,
//! credentials, role, proxy), SDK client construction, one flattened call error, one failure
//! classifier and one SigV4 signer.

pub(crate) mod access;
pub(crate) mod classify;
pub(crate) mod client;
pub(crate) mod error;
pub(crate) mod presence;
pub(crate) mod sign;

pub(crate) use access::{AwsAccess, AwsContext, AwsUnavailable, connect, region_with_source, unavailable_credentials};
pub(crate) use error::AwsCallError;
