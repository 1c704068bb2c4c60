//! `waggle health`: asks a running waggle's `/healthz`, for container health checks in images
//! that have no shell or curl.

use std::time::Duration;

use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// How long the check waits for an answer.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The URL of `/healthz` for an admin endpoint; a wildcard bind address is reached on loopback.
pub fn healthz_url(admin_endpoint: &str) -> String {
    let reachable = if let Some(port) = admin_endpoint.strip_prefix("0.0.0.0:") {
        format!("127.0.0.1:{port}")
    } else if let Some(port) = admin_endpoint.strip_prefix("[::]:") {
        format!("[::1]:{port}")
    } else {
        admin_endpoint.to_string()
    };
    format!("http://{reachable}/healthz")
}

/// Returns `Ok` when `url` answers 200 within the timeout, else why not.
pub async fn check(url: &str) -> Result<(), String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("bad URL {url}: {e}"))?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let response = tokio::time::timeout(TIMEOUT, client.get(uri))
        .await
        .map_err(|_| format!("{url}: no answer within {TIMEOUT:?}"))?
        .map_err(|e| format!("{url}: {e}"))?;
    if response.status().is_success() { Ok(()) } else { Err(format!("{url}: {}", response.status())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_addresses_are_checked_on_loopback() {
        assert_eq!(healthz_url("0.0.0.0:13133"), "http://127.0.0.1:13133/healthz");
        assert_eq!(healthz_url("[::]:13133"), "http://[::1]:13133/healthz");
        assert_eq!(healthz_url("waggle:13133"), "http://waggle:13133/healthz");
    }

    #[tokio::test]
    async fn a_closed_port_is_unhealthy() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        assert!(check(&format!("http://{address}/healthz")).await.is_err());
    }
}
