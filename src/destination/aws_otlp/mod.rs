//! OTLP/HTTP to AWS's own OTLP endpoints (`https://xray.<region>.amazonaws.com/v1/traces`,
//! `https://logs.<region>.amazonaws.com/v1/logs`), SigV4-signed through [`crate::aws::sign`]:
//! the seam both AWS destinations use when their `protocol` is `otlp`.
//!
//! `client` posts one gzip body, signed for the service and region, and returns the answer as
//! it came; `answer` turns the answer into the lane's outcome (the same OTLP/HTTP rules as
//! Honeycomb's, with AWS's 403 shown on `/status`).

mod answer;
mod client;

pub(crate) use answer::{Settler, unanswered};
pub(crate) use client::{AwsOtlpClient, SignedOtlpClient, endpoint_base, otlp_url};
#[cfg(test)]
pub(crate) use client::{OtlpAnswer, PostError};
