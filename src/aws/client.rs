//! SDK clients for the AWS destinations, built one way: from the shared [`AwsContext`], with
//! the SDK's own retries off (the lane retries, with its backoff, budget and counters, so
//! throttling is never hidden from them), an optional endpoint override, and every call bounded
//! by the destination's timeout ([`call`]). The clients honour `AWS_ENDPOINT_URL_<SERVICE>` and
//! `AWS_ENDPOINT_URL`.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::access::AwsContext;
use super::error::AwsCallError;

/// An X-Ray client without SDK retries, to `endpoint` when one is configured.
pub(crate) fn xray_client(context: &AwsContext, endpoint: Option<&str>) -> aws_sdk_xray::Client {
    let mut config = aws_sdk_xray::config::Builder::from(&context.sdk_config)
        .retry_config(aws_sdk_xray::config::retry::RetryConfig::disabled());
    if let Some(endpoint) = endpoint {
        config = config.endpoint_url(endpoint);
    }
    aws_sdk_xray::Client::from_conf(config.build())
}

/// A CloudWatch Logs client without SDK retries, to `endpoint` when one is configured.
pub(crate) fn cloudwatch_logs_client(context: &AwsContext, endpoint: Option<&str>) -> aws_sdk_cloudwatchlogs::Client {
    let mut config = aws_sdk_cloudwatchlogs::config::Builder::from(&context.sdk_config)
        .retry_config(aws_sdk_cloudwatchlogs::config::retry::RetryConfig::disabled());
    if let Some(endpoint) = endpoint {
        config = config.endpoint_url(endpoint);
    }
    aws_sdk_cloudwatchlogs::Client::from_conf(config.build())
}

/// Where the calls go, for the start-up line and `/status`: the configured endpoint, else the
/// first of `env_names` set, else "the regional endpoint".
pub(crate) fn endpoint_description(
    configured: Option<&str>,
    env: &BTreeMap<String, String>,
    env_names: &[&str],
) -> String {
    configured
        .map(str::to_string)
        .or_else(|| env_names.iter().find_map(|name| env.get(*name).cloned()))
        .unwrap_or_else(|| "the regional endpoint".to_string())
}

/// Runs one SDK call within `timeout` and flattens its error.
pub(crate) async fn call<T, E>(
    operation: &'static str,
    timeout: Duration,
    call: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
) -> Result<T, AwsCallError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result.map_err(AwsCallError::from),
        Err(_) => Err(AwsCallError::Timeout(format!("{operation}: no answer within {timeout:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_configured_endpoint_comes_first() {
        let env = env(&[("AWS_ENDPOINT_URL", "http://env")]);
        assert_eq!(endpoint_description(Some("http://cfg"), &env, &["AWS_ENDPOINT_URL"]), "http://cfg");
    }

    #[test]
    fn environment_names_are_tried_in_order() {
        let env = env(&[("AWS_ENDPOINT_URL", "http://global"), ("AWS_ENDPOINT_URL_LOGS", "http://logs")]);
        let names = ["AWS_ENDPOINT_URL_LOGS", "AWS_ENDPOINT_URL"];
        assert_eq!(endpoint_description(None, &env, &names), "http://logs");
        assert_eq!(endpoint_description(None, &BTreeMap::new(), &names), "the regional endpoint");
    }
}
