//! Where the proxy forwards to: the configured X-Ray endpoint, the SDKs' environment
//! variables, or the region's default, checked once, with each operation's URI.

use http::{HeaderValue, Uri};

use super::error::SamplingProxyError;
use super::route::SamplingOperation;

/// The X-Ray API endpoint used when none is configured: `https://xray.<region>.amazonaws.com`,
/// with the daemon's partition rules (`cn-*`: `.amazonaws.com.cn`, `us-iso-*`: `.c2s.ic.gov`,
/// `us-isob-*`: `.sc2s.sgov.gov`).
pub fn default_endpoint(region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else if region.starts_with("us-isob-") {
        "sc2s.sgov.gov"
    } else if region.starts_with("us-iso-") {
        "c2s.ic.gov"
    } else {
        "amazonaws.com"
    };
    format!("https://xray.{region}.{suffix}")
}

/// The X-Ray endpoint to forward to: the configured one, else `AWS_ENDPOINT_URL_XRAY`, else
/// `AWS_ENDPOINT_URL` (both ignored when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`, as in the
/// AWS SDKs), else [`default_endpoint`].
pub fn resolve_endpoint(configured: Option<&str>, region: &str) -> Result<Uri, SamplingProxyError> {
    resolve_endpoint_with(configured, region, |name| std::env::var(name).ok())
}

/// [`resolve_endpoint`] with the environment passed in.
pub fn resolve_endpoint_with(
    configured: Option<&str>,
    region: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Uri, SamplingProxyError> {
    let non_empty = |value: Option<String>| value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let ignore_env = env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let from_env = if ignore_env {
        None
    } else {
        non_empty(env("AWS_ENDPOINT_URL_XRAY")).or_else(|| non_empty(env("AWS_ENDPOINT_URL")))
    };
    let endpoint = non_empty(configured.map(str::to_owned)).or(from_env).unwrap_or_else(|| default_endpoint(region));
    parse_endpoint(&endpoint)
}

/// Checks an endpoint URL: `http` or `https`, a host, no user info, no query.
pub fn parse_endpoint(endpoint: &str) -> Result<Uri, SamplingProxyError> {
    let invalid =
        |reason: &str| SamplingProxyError::InvalidEndpoint { endpoint: endpoint.to_owned(), reason: reason.to_owned() };
    let uri: Uri = endpoint.trim().parse().map_err(|error: http::uri::InvalidUri| invalid(&error.to_string()))?;
    UpstreamTarget::new(&uri).map_err(|reason| invalid(&reason))?;
    Ok(uri)
}

/// Where each operation goes, and the `host` header that is sent and signed.
#[derive(Debug, Clone)]
pub(crate) struct UpstreamTarget {
    /// Indexed by [`SamplingOperation::index`].
    pub(crate) uris: [Uri; 3],
    pub(crate) host: HeaderValue,
}

impl UpstreamTarget {
    pub(crate) fn new(endpoint: &Uri) -> Result<UpstreamTarget, String> {
        let scheme = match endpoint.scheme_str() {
            Some(scheme @ ("http" | "https")) => scheme,
            Some(other) => return Err(format!("scheme {other:?} is not http or https")),
            None => return Err("no scheme (write http:// or https://)".into()),
        };
        let authority = endpoint.authority().ok_or("no host")?;
        if authority.as_str().contains('@') {
            return Err("user info is not allowed in the endpoint".into());
        }
        if authority.host().is_empty() {
            return Err("no host".into());
        }
        if endpoint.query().is_some() {
            return Err("a query string is not allowed in the endpoint".into());
        }
        let default_port = matches!((scheme, authority.port_u16()), ("http", Some(80)) | ("https", Some(443)));
        let host = if default_port { authority.host() } else { authority.as_str() };
        let host = HeaderValue::from_str(host).map_err(|error| error.to_string())?;
        let base_path = endpoint.path().trim_end_matches('/');
        let uri = |operation: SamplingOperation| -> Result<Uri, String> {
            format!("{scheme}://{authority}{base_path}{}", operation.path())
                .parse()
                .map_err(|e: http::uri::InvalidUri| e.to_string())
        };
        Ok(UpstreamTarget {
            uris: [
                uri(SamplingOperation::GetSamplingRules)?,
                uri(SamplingOperation::GetSamplingTargets)?,
                uri(SamplingOperation::GetSamplingStatisticSummaries)?,
            ],
            host,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_endpoints_follow_the_daemons_partition_rules() {
        assert_eq!(default_endpoint("us-east-1"), "https://xray.us-east-1.amazonaws.com");
        assert_eq!(default_endpoint("us-gov-west-1"), "https://xray.us-gov-west-1.amazonaws.com");
        assert_eq!(default_endpoint("cn-north-1"), "https://xray.cn-north-1.amazonaws.com.cn");
        assert_eq!(default_endpoint("us-iso-east-1"), "https://xray.us-iso-east-1.c2s.ic.gov");
        assert_eq!(default_endpoint("us-isob-east-1"), "https://xray.us-isob-east-1.sc2s.sgov.gov");
    }

    #[test]
    fn endpoint_resolution_prefers_config_then_service_env_then_global_env() {
        fn resolved(configured: Option<&str>, vars: &[(&str, &str)]) -> String {
            let env = |name: &str| vars.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_string());
            resolve_endpoint_with(configured, "eu-west-1", env).expect("valid").to_string()
        }
        let all = [("AWS_ENDPOINT_URL_XRAY", "http://127.0.0.1:5001"), ("AWS_ENDPOINT_URL", "http://127.0.0.1:5002")];
        assert_eq!(resolved(Some("http://127.0.0.1:5000"), &all), "http://127.0.0.1:5000/");
        assert_eq!(resolved(None, &all), "http://127.0.0.1:5001/");
        assert_eq!(resolved(Some("  "), &all[1..]), "http://127.0.0.1:5002/");
        assert_eq!(resolved(None, &[]), "https://xray.eu-west-1.amazonaws.com/");
        let ignored = [all[0], ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")];
        assert_eq!(resolved(None, &ignored), "https://xray.eu-west-1.amazonaws.com/");
    }

    #[test]
    fn endpoints_that_cannot_be_forwarded_to_are_refused() {
        for bad in
            ["127.0.0.1:5000", "ftp://example.com", "http://user:pw@example.com", "http://example.com/?a=b", "/path"]
        {
            assert!(
                matches!(parse_endpoint(bad), Err(SamplingProxyError::InvalidEndpoint { .. })),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn upstream_targets_keep_a_base_path_and_drop_default_ports() {
        let target =
            UpstreamTarget::new(&"https://xray.us-east-1.amazonaws.com:443".parse().expect("uri")).expect("target");
        assert_eq!(target.host, "xray.us-east-1.amazonaws.com");
        assert_eq!(target.uris[0].to_string(), "https://xray.us-east-1.amazonaws.com:443/GetSamplingRules");
        let target = UpstreamTarget::new(&"http://127.0.0.1:4566/xray/".parse().expect("uri")).expect("target");
        assert_eq!(target.host, "127.0.0.1:4566");
        assert_eq!(target.uris[1].to_string(), "http://127.0.0.1:4566/xray/SamplingTargets");
        assert_eq!(target.uris[2].to_string(), "http://127.0.0.1:4566/xray/SamplingStatisticSummaries");
    }
}
