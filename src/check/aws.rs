//! The AWS lines: which identity the credentials resolve to (STS `GetCallerIdentity`) and the
//! region with where it came from; and one sentence for an AWS call that failed.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{CheckLine, reach};
use crate::aws::{self, AwsAccess, AwsCallError, AwsContext, AwsUnavailable};

/// Environment variables that say someone meant to use AWS.
const AWS_HINTS: [&str; 9] = [
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_ENDPOINT_URL",
];

/// Whether AWS is partly configured (so missing access is a failure, not just "off").
pub(super) fn hinted(access: &AwsAccess, env: &BTreeMap<String, String>) -> bool {
    access.region.is_some() || access.role_arn.is_some() || AWS_HINTS.iter().any(|name| env.contains_key(*name))
}

/// The identity line for `name` ("aws", or "aws (cloudwatch_logs)" when its access differs).
pub(super) async fn identity(
    name: &'static str,
    access: &AwsAccess,
    found: &Result<AwsContext, AwsUnavailable>,
    wanted: bool,
    timeout: Duration,
) -> CheckLine {
    let context = match found {
        Ok(context) => context,
        Err(unavailable) if wanted => return CheckLine::fail(name, unavailable.to_string()),
        Err(unavailable) => return CheckLine::off(name, unavailable.to_string()),
    };
    let region = match aws::region_with_source(access).await {
        Some((region, source)) => format!("region {region} from {source}"),
        None => format!("region {}", context.region),
    };
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(&context.sdk_config)
            .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
            .build(),
    );
    match aws::client::call("GetCallerIdentity", timeout, sts.get_caller_identity().send()).await {
        Ok(answer) => CheckLine::ok(
            name,
            format!(
                "identity {} (account {}), {region}",
                answer.arn().unwrap_or("unknown"),
                answer.account().unwrap_or("unknown")
            ),
        ),
        Err(error) => CheckLine::fail(name, call_failure("AWS STS", &error, "")),
    }
}

/// One sentence for a failed AWS call: refused credentials, a missing permission (with
/// `permission_fix`), or why the endpoint could not be reached.
pub(super) fn call_failure(target: &str, error: &AwsCallError, permission_fix: &str) -> String {
    match error {
        AwsCallError::Service { code, message, .. } if is_bad_credentials(code) => format!(
            "AWS refused the credentials ({code}: {message}): check the access key, secret and session token, or refresh them (aws sso login)"
        ),
        AwsCallError::Service { code, message, .. } if is_denied(code) => {
            format!("not allowed ({code}: {message}){permission_fix}")
        }
        AwsCallError::Service { .. } => format!("{target} answered {error}"),
        AwsCallError::Timeout(_) => reach::timed_out(target, None),
        AwsCallError::Network(chain) => reach::explain(target, chain),
        AwsCallError::BadResponse(_) | AwsCallError::Construction(_) => format!("{target}: {error}"),
    }
}

fn is_bad_credentials(code: &str) -> bool {
    matches!(
        code,
        "InvalidClientTokenId"
            | "UnrecognizedClientException"
            | "SignatureDoesNotMatch"
            | "InvalidSignatureException"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "MissingAuthenticationTokenException"
    )
}

fn is_denied(code: &str) -> bool {
    code.starts_with("AccessDenied") || code == "UnauthorizedOperation" || code == "AuthorizationError"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(code: &str) -> AwsCallError {
        AwsCallError::Service { code: code.into(), message: "m".into(), status: 403 }
    }

    #[test]
    fn refused_credentials_and_missing_permissions_read_differently() {
        assert!(
            call_failure("X-Ray", &service("InvalidSignatureException"), "").starts_with("AWS refused the credentials")
        );
        assert_eq!(
            call_failure("X-Ray", &service("AccessDeniedException"), ": allow it"),
            "not allowed (AccessDeniedException: m): allow it"
        );
    }

    #[test]
    fn network_failures_are_explained() {
        let error = AwsCallError::Network("dispatch failure: tcp connect error: Connection refused".into());
        assert!(call_failure("X-Ray", &error, "").starts_with("connect: "));
    }

    #[test]
    fn a_region_or_a_variable_is_a_hint() {
        let env = BTreeMap::from([("AWS_PROFILE".to_string(), "dev".to_string())]);
        assert!(hinted(&AwsAccess::default(), &env));
        assert!(!hinted(&AwsAccess::default(), &BTreeMap::new()));
    }
}
