//! AWS access for the X-Ray and CloudWatch Logs destinations and the sampling proxy: region
//! and credentials from aws-config's provider chains, an optional role to assume and an
//! optional HTTPS proxy.
//!
//! When no region or no credentials can be found the destination stays off, and the reason
//! is shown at start-up and on `/status`.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::environment::credentials::EnvironmentVariableCredentialsProvider;
use aws_config::environment::region::EnvironmentVariableRegionProvider;
use aws_config::imds::region::ImdsRegionProvider;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::meta::region::ProvideRegion;
use aws_config::profile::{ProfileFileCredentialsProvider, ProfileFileRegionProvider};
use aws_config::sts::AssumeRoleProvider;
use aws_config::web_identity_token::WebIdentityTokenCredentialsProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder as HttpClientBuilder, Connector};

use super::presence;

/// How long start-up waits for credentials.
const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(10);

/// Off AWS, instance metadata never answers: one short attempt keeps start-up quick.
/// (`AWS_EC2_METADATA_DISABLED=true` skips it entirely, as in the SDKs.)
fn imds_client() -> aws_config::imds::Client {
    aws_config::imds::Client::builder()
        .connect_timeout(Duration::from_millis(500))
        .read_timeout(Duration::from_secs(1))
        .max_attempts(1)
        .build()
}

/// Where to find AWS access; the same fields the X-Ray daemon's flags and cfg.yaml set.
#[derive(Debug, Clone, Default)]
pub(crate) struct AwsAccess {
    pub region: Option<String>,
    pub role_arn: Option<String>,
    /// Skip EC2 instance metadata for region and credentials.
    pub local_mode: bool,
    /// An HTTP(S) proxy for AWS calls; else `HTTPS_PROXY` from the environment.
    pub proxy_address: Option<String>,
}

/// A usable AWS configuration.
#[derive(Debug, Clone)]
pub(crate) struct AwsContext {
    pub sdk_config: SdkConfig,
    pub region: String,
    pub credentials: SharedCredentialsProvider,
}

/// Why an AWS destination stays off.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AwsUnavailable {
    #[error("no AWS region: set AWS_REGION, --region or the destination's region key")]
    NoRegion,
    /// The SDK's own account of each provider it tried is kept for DEBUG, not shown.
    #[error(
        "no AWS credentials (looked in the environment, the shared profile, web identity, ECS and instance metadata): \
         set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or give the task or instance an IAM role"
    )]
    NoCredentials(String),
    #[error("bad proxy address `{address}`: {reason}")]
    BadProxy { address: String, reason: String },
}

/// Resolves region and credentials, and builds the SDK configuration.
pub(crate) async fn connect(access: &AwsAccess, env: &BTreeMap<String, String>) -> Result<AwsContext, AwsUnavailable> {
    let region = resolve_region(access).await.ok_or(AwsUnavailable::NoRegion)?;
    let base = base_credentials(access, &region).await;
    let credentials = match &access.role_arn {
        Some(role_arn) => {
            let assumed = AssumeRoleProvider::builder(role_arn.clone())
                .session_name("waggle")
                .region(region.clone())
                .build_from_provider(base)
                .await;
            SharedCredentialsProvider::new(assumed)
        }
        None => base,
    };
    check_credentials(&credentials).await?;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region.clone())
        .credentials_provider(credentials.clone());
    if let Some(client) = proxied_http_client(access, env)? {
        loader = loader.http_client(client);
    }
    let sdk_config = loader.load().await;
    Ok(AwsContext { sdk_config, region: region.to_string(), credentials })
}

/// Config, then `AWS_REGION`, then the shared profile (when a profile file exists), then
/// (unless local mode, and only where this may be EC2) instance metadata.
async fn resolve_region(access: &AwsAccess) -> Option<Region> {
    region_with_source(access).await.map(|(region, _)| region)
}

/// The region as [`resolve_region`] finds it, and where it came from (for `waggle check`).
pub(crate) async fn region_with_source(access: &AwsAccess) -> Option<(Region, &'static str)> {
    if let Some(region) = &access.region {
        return Some((Region::new(region.clone()), "the configuration (region key or -n/--region)"));
    }
    if let Some(region) = EnvironmentVariableRegionProvider::new().region().await {
        return Some((region, "the environment (AWS_REGION or AWS_DEFAULT_REGION)"));
    }
    if presence::profile_files_here()
        && let Some(region) = ProfileFileRegionProvider::builder().build().region().await
    {
        return Some((region, "the shared AWS profile"));
    }
    if access.local_mode || !presence::ec2_here() {
        return None;
    }
    let imds = ImdsRegionProvider::builder().imds_client(imds_client()).build();
    imds.region().await.map(|region| (region, "EC2 instance metadata"))
}

/// aws-config's default chain (environment, profile incl. SSO and process, web identity, ECS,
/// instance metadata); without instance metadata in local mode.
async fn base_credentials(access: &AwsAccess, region: &Region) -> SharedCredentialsProvider {
    if access.local_mode {
        let chain = CredentialsProviderChain::first_try("Environment", EnvironmentVariableCredentialsProvider::new())
            .or_else("Profile", ProfileFileCredentialsProvider::builder().build())
            .or_else("WebIdentityToken", WebIdentityTokenCredentialsProvider::builder().build())
            .or_else("EcsContainer", aws_config::ecs::EcsCredentialsProvider::builder().build());
        SharedCredentialsProvider::new(chain)
    } else {
        let chain = aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
            .region(region.clone())
            .imds_client(imds_client())
            .build()
            .await;
        SharedCredentialsProvider::new(chain)
    }
}

async fn check_credentials(credentials: &SharedCredentialsProvider) -> Result<(), AwsUnavailable> {
    match tokio::time::timeout(CREDENTIALS_TIMEOUT, credentials.provide_credentials()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => {
            let detail = crate::telemetry::error_text::chain(&error);
            tracing::debug!(%detail, "the AWS credential chain found nothing");
            Err(AwsUnavailable::NoCredentials(detail))
        }
        Err(_) => Err(AwsUnavailable::NoCredentials(format!("none found within {CREDENTIALS_TIMEOUT:?}"))),
    }
}

/// The context of a destination that wants AWS access, or why it stays off (the reason shown
/// at start-up and on `/status`).
pub(crate) fn usable(aws: Option<&Result<AwsContext, AwsUnavailable>>) -> Result<&AwsContext, String> {
    match aws {
        Some(Ok(context)) => Ok(context),
        Some(Err(unavailable)) => Err(unavailable.to_string()),
        None => Err("AWS access was not looked up".to_string()),
    }
}

/// A credentials provider that always says why there are none: the sampling proxy uses it
/// when AWS access could not be found, so SDKs get a clear 503 instead of a refused connection.
pub(crate) fn unavailable_credentials(reason: String) -> SharedCredentialsProvider {
    #[derive(Debug)]
    struct Unavailable(String);

    impl ProvideCredentials for Unavailable {
        fn provide_credentials<'a>(&'a self) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let error = aws_credential_types::provider::error::CredentialsError::not_loaded(self.0.clone());
            aws_credential_types::provider::future::ProvideCredentials::ready(Err(error))
        }
    }

    SharedCredentialsProvider::new(Unavailable(reason))
}

/// An SDK HTTP client through the configured proxy (or `HTTPS_PROXY`); `None` keeps the
/// SDK's default client.
fn proxied_http_client(
    access: &AwsAccess,
    env: &BTreeMap<String, String>,
) -> Result<Option<aws_smithy_runtime_api::client::http::SharedHttpClient>, AwsUnavailable> {
    let proxy = match &access.proxy_address {
        Some(address) => ProxyConfig::all(address.as_str())
            .map_err(|e| AwsUnavailable::BadProxy { address: address.clone(), reason: e.to_string() })?,
        None if ["HTTPS_PROXY", "https_proxy"].iter().any(|name| env.contains_key(*name)) => ProxyConfig::from_env(),
        None => return Ok(None),
    };
    let client = HttpClientBuilder::new().build_with_connector_fn(move |settings, _components| {
        let mut builder = Connector::builder().proxy_config(proxy.clone());
        builder.set_connector_settings(settings.cloned());
        builder.tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc)).build()
    });
    Ok(Some(client))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[tokio::test]
    async fn a_configured_region_is_used_as_is() {
        let access = AwsAccess { region: Some("eu-west-1".into()), local_mode: true, ..AwsAccess::default() };
        assert_eq!(resolve_region(&access).await.unwrap().as_ref(), "eu-west-1");
    }

    #[test]
    fn a_proxy_without_a_scheme_is_refused() {
        let access = AwsAccess { proxy_address: Some("proxy:3128".into()), ..AwsAccess::default() };
        assert!(matches!(proxied_http_client(&access, &env(&[])), Err(AwsUnavailable::BadProxy { .. })));
    }

    #[test]
    fn no_proxy_keeps_the_sdk_client() {
        assert!(proxied_http_client(&AwsAccess::default(), &env(&[])).unwrap().is_none());
    }
}
