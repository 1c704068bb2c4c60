//! SigV4 signing of requests waggle builds itself (the sampling proxy's upstream calls), with
//! credentials from the shared provider, kept until shortly before they expire so frequent
//! calls do not each cost an IMDS or STS round trip.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningInstructions, SigningSettings, sign};
use aws_sigv4::sign::v4;

/// Credentials are refreshed this long before they expire.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Credentials without an expiry are asked for again after this long.
const MAX_AGE: Duration = Duration::from_secs(15 * 60);

/// Credentials this close to their expiry are not used even when a refresh failed.
const EXPIRY_SLACK: Duration = Duration::from_secs(10);

/// Credentials for signing, as [`Signer::credentials`] found them.
#[derive(Debug, Clone)]
pub(crate) enum SigningCredentials {
    /// From the provider, now or recently enough.
    Current(Credentials),
    /// The provider failed (`refresh_error`); these earlier ones have not expired yet.
    Stale { credentials: Credentials, refresh_error: String },
}

/// Credentials fetched from the provider, and when to ask it again.
#[derive(Debug, Clone)]
struct Cached {
    credentials: Credentials,
    refresh_at: SystemTime,
}

/// Signs requests for one service in one region.
pub(crate) struct Signer {
    service: &'static str,
    region: String,
    provider: SharedCredentialsProvider,
    cached: tokio::sync::Mutex<Option<Cached>>,
}

/// One request to sign: only the headers given are signed.
pub(crate) struct Unsigned<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct SigningError(String);

impl Signer {
    pub(crate) fn new(service: &'static str, region: String, provider: SharedCredentialsProvider) -> Self {
        Signer { service, region, provider, cached: tokio::sync::Mutex::new(None) }
    }

    pub(crate) fn region(&self) -> &str {
        &self.region
    }

    /// Credentials from the cache, or fresh from the provider when due (waiting at most
    /// `timeout`). When the provider fails, earlier credentials that have not expired are still
    /// used; the error is the provider's reason when there are none.
    pub(crate) async fn credentials(&self, timeout: Duration) -> Result<SigningCredentials, String> {
        let mut cached = self.cached.lock().await;
        let now = SystemTime::now();
        if let Some(entry) = cached.as_ref().filter(|entry| now < entry.refresh_at) {
            return Ok(SigningCredentials::Current(entry.credentials.clone()));
        }
        let fetched = match tokio::time::timeout(timeout, self.provider.provide_credentials()).await {
            Ok(Ok(credentials)) => Ok(credentials),
            Ok(Err(error)) => Err(crate::telemetry::error_text::chain(&error)),
            Err(_) => Err(format!("the credentials provider did not answer within {timeout:?}")),
        };
        match fetched {
            Ok(credentials) => {
                let refresh_at = refresh_time(&credentials, now);
                *cached = Some(Cached { credentials: credentials.clone(), refresh_at });
                Ok(SigningCredentials::Current(credentials))
            }
            Err(refresh_error) => cached
                .as_ref()
                .map(|entry| &entry.credentials)
                .filter(|credentials| credentials.expiry().is_none_or(|expiry| expiry > now + EXPIRY_SLACK))
                .map(|credentials| SigningCredentials::Stale {
                    credentials: credentials.clone(),
                    refresh_error: refresh_error.clone(),
                })
                .ok_or(refresh_error),
        }
    }

    /// The headers and query parameters that sign `request` with `credentials`, now.
    pub(crate) fn sign(
        &self,
        request: &Unsigned<'_>,
        credentials: &Credentials,
    ) -> Result<SigningInstructions, SigningError> {
        let failed = |error: &dyn std::error::Error| SigningError(error.to_string());
        let signable = SignableRequest::new(
            request.method,
            request.uri,
            request.headers.iter().copied(),
            SignableBody::Bytes(request.body),
        )
        .map_err(|error| failed(&error))?;
        let identity = credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(self.service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|error| failed(&error))?
            .into();
        let (instructions, _signature) = sign(signable, &params).map_err(|error| failed(&error))?.into_parts();
        Ok(instructions)
    }
}

/// When to ask the provider again: 5 minutes before expiry, at most 15 minutes from now.
fn refresh_time(credentials: &Credentials, now: SystemTime) -> SystemTime {
    let latest = now + MAX_AGE;
    match credentials.expiry() {
        Some(expiry) => expiry.checked_sub(REFRESH_MARGIN).map_or(now, |early| early.min(latest)),
        None => latest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_refreshed_before_they_expire() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let forever = Credentials::new("AKID", "secret", None, None, "test");
        assert_eq!(refresh_time(&forever, now), now + MAX_AGE);
        let hour = Credentials::new("AKID", "secret", None, Some(now + Duration::from_secs(3600)), "test");
        assert_eq!(refresh_time(&hour, now), now + MAX_AGE);
        let soon = Credentials::new("AKID", "secret", None, Some(now + Duration::from_secs(600)), "test");
        assert_eq!(refresh_time(&soon, now), now + Duration::from_secs(300));
    }

    #[tokio::test]
    async fn missing_credentials_say_why() {
        let signer = Signer::new("xray", "eu-west-1".into(), crate::aws::unavailable_credentials("none here".into()));
        let reason = signer.credentials(Duration::from_secs(1)).await.expect_err("no credentials");
        assert!(reason.contains("none here"), "{reason}");
    }

    #[test]
    fn a_signature_scopes_the_service_and_region() {
        let signer = Signer::new("xray", "eu-west-1".into(), crate::aws::unavailable_credentials(String::new()));
        let credentials = Credentials::new("AKIDTEST", "secret", None, None, "test");
        let request = Unsigned {
            method: "POST",
            uri: "https://xray.eu-west-1.amazonaws.com/GetSamplingRules",
            headers: &[("host", "xray.eu-west-1.amazonaws.com")],
            body: b"{}",
        };
        let instructions = signer.sign(&request, &credentials).expect("signed");
        let authorization = instructions
            .headers()
            .find(|(name, _)| *name == "authorization")
            .map(|(_, value)| value.to_string())
            .expect("an authorization header");
        assert!(authorization.contains("AKIDTEST/") && authorization.contains("/eu-west-1/xray/aws4_request"));
        assert!(authorization.contains("SignedHeaders=host;x-amz-date"), "{authorization}");
    }
}
