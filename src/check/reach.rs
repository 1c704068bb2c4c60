//! Why an endpoint could not be reached, told apart for a person: DNS, connect, TLS, proxy or
//! timeout, each with what to look at. Read from the error chain's text, which is the one form
//! hyper's and the AWS SDK's errors share.

use std::time::Duration;

/// The kind of reachability failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unreachable {
    Dns,
    Connect,
    Tls,
    Proxy,
    Timeout,
    Other,
}

impl Unreachable {
    /// Classifies an error chain such as `client error (Connect): tcp connect error: Connection
    /// refused (os error 111)`.
    pub(crate) fn of(chain: &str) -> Unreachable {
        let text = chain.to_ascii_lowercase();
        let any = |needles: &[&str]| needles.iter().any(|needle| text.contains(needle));
        if any(&["tunnel error", "proxy"]) {
            Unreachable::Proxy
        } else if any(&["dns error", "failed to lookup address", "name or service not known", "no such host"]) {
            Unreachable::Dns
        } else if any(&["certificate", "tls", "handshake", "unknownissuer", "ssl"]) {
            Unreachable::Tls
        } else if any(&["timed out", "timeout", "deadline"]) {
            Unreachable::Timeout
        } else if any(&["connection refused", "connect error", "connection reset", "network unreachable"]) {
            Unreachable::Connect
        } else {
            Unreachable::Other
        }
    }
}

/// One sentence: what failed reaching `target`, and what to check.
pub(crate) fn explain(target: &str, chain: &str) -> String {
    match Unreachable::of(chain) {
        Unreachable::Dns => {
            format!("DNS: cannot resolve the host of {target}: check its spelling and this host's DNS ({chain})")
        }
        Unreachable::Connect => {
            format!(
                "connect: {target} refused or dropped the connection: check the address and that it is up ({chain})"
            )
        }
        Unreachable::Tls => format!(
            "TLS: the certificate of {target} is not trusted: behind a TLS-inspecting proxy, add its CA to the system store or SSL_CERT_FILE ({chain})"
        ),
        Unreachable::Proxy => format!(
            "proxy: the proxy refused or failed the connection to {target}: check HTTPS_PROXY / HTTP_PROXY / -p and NO_PROXY ({chain})"
        ),
        Unreachable::Timeout => timed_out(target, None),
        Unreachable::Other => format!("network error reaching {target}: {chain}"),
    }
}

/// No answer within the time allowed.
pub(crate) fn timed_out(target: &str, after: Option<Duration>) -> String {
    let after = after.map(|d| format!(" within {d:?}")).unwrap_or_default();
    format!("timeout: no answer from {target}{after}: a firewall dropping packets, or a proxy needed (HTTPS_PROXY)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_told_apart() {
        let cases = [
            ("client error (Connect): dns error: failed to lookup address information", Unreachable::Dns),
            ("client error (Connect): tcp connect error: Connection refused (os error 111)", Unreachable::Connect),
            ("client error (Connect): invalid peer certificate: UnknownIssuer", Unreachable::Tls),
            ("client error (Connect): tunnel error: unsuccessful", Unreachable::Proxy),
            ("operation timed out", Unreachable::Timeout),
            ("something else entirely", Unreachable::Other),
        ];
        for (chain, kind) in cases {
            assert_eq!(Unreachable::of(chain), kind, "{chain}");
        }
    }

    #[test]
    fn the_explanation_starts_with_the_kind() {
        assert!(explain("Honeycomb", "tunnel error: unsuccessful").starts_with("proxy: "));
        assert!(explain("X-Ray", "tcp connect error: Connection refused").starts_with("connect: "));
    }
}
