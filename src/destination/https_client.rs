//! The HTTP(S) client Honeycomb and the X-Ray sampling proxy send with: TLS trusting the
//! system's CA store (`SSL_CERT_FILE` / `SSL_CERT_DIR` too) as well as the bundled webpki roots,
//! so a corporate proxy's CA works; and an HTTP proxy when one is configured (`-p` /
//! `proxy_address`) or named by `HTTPS_PROXY` / `HTTP_PROXY` (`NO_PROXY` honoured), reached
//! with `CONNECT` for https and http destinations alike.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Uri;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A hyper client over [`ProxyConnector`] and TLS.
pub(crate) type HttpsClient = Client<HttpsConnector<ProxyConnector>, Full<Bytes>>;

/// Which connections go through a proxy, from the configured address or the environment.
pub(crate) fn proxy_matcher(configured: Option<&str>, env: &BTreeMap<String, String>) -> Matcher {
    let var = |name: &str| {
        env.get(name)
            .or_else(|| env.get(&name.to_ascii_lowercase()))
            .map(String::as_str)
            .filter(|value| !value.is_empty())
            .unwrap_or_default()
            .to_string()
    };
    let builder = Matcher::builder().no(var("NO_PROXY"));
    match configured.filter(|address| !address.is_empty()) {
        Some(address) => builder.all(address.to_string()),
        None => builder.http(var("HTTP_PROXY")).https(var("HTTPS_PROXY")),
    }
    .build()
}

/// The system's CA store and the webpki roots, read once per process (the system store is a
/// directory of files).
fn roots() -> Arc<rustls::RootCertStore> {
    static ROOTS: OnceLock<Arc<rustls::RootCertStore>> = OnceLock::new();
    Arc::clone(ROOTS.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        // Unreadable system certificates are skipped: the bundled roots still work.
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        Arc::new(roots)
    }))
}

/// TLS trusting [`roots`].
pub(crate) fn tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let roots = roots();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The connector for `http` and `https` URLs through `matcher`'s proxies, with [`tls_config`];
/// callers build their client (pool settings) around it.
pub(crate) fn connector(matcher: Matcher, http2: bool) -> Result<HttpsConnector<ProxyConnector>, rustls::Error> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls_config()?).https_or_http();
    let connector = ProxyConnector::new(matcher);
    Ok(if http2 {
        builder.enable_http1().enable_http2().wrap_connector(connector)
    } else {
        builder.enable_http1().wrap_connector(connector)
    })
}

/// Connects straight to the destination, or tunnels through the proxy the matcher names.
#[derive(Clone)]
pub(crate) struct ProxyConnector {
    http: HttpConnector,
    matcher: Arc<Matcher>,
}

impl ProxyConnector {
    fn new(matcher: Matcher) -> Self {
        let mut http = HttpConnector::new();
        // TLS is layered on top: the plain connector sees https URLs too.
        http.enforce_http(false);
        ProxyConnector { http, matcher: Arc::new(matcher) }
    }
}

impl Service<Uri> for ProxyConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, destination: Uri) -> Self::Future {
        match self.matcher.intercept(&destination) {
            Some(intercept) => {
                let mut tunnel = Tunnel::new(intercept.uri().clone(), self.http.clone());
                if let Some(auth) = intercept.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                Box::pin(async move { tunnel.call(destination).await.map_err(BoxError::from) })
            }
            None => {
                let mut http = self.http.clone();
                Box::pin(async move { http.call(destination).await.map_err(BoxError::from) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn proxied(matcher: &Matcher, url: &str) -> Option<String> {
        matcher.intercept(&url.parse().unwrap()).map(|intercept| intercept.uri().to_string())
    }

    #[test]
    fn https_proxy_applies_to_https_and_no_proxy_exempts() {
        let matcher =
            proxy_matcher(None, &env(&[("HTTPS_PROXY", "http://proxy:3128"), ("NO_PROXY", "internal.example")]));
        assert_eq!(proxied(&matcher, "https://api.honeycomb.io/v1/traces").as_deref(), Some("http://proxy:3128/"));
        assert_eq!(proxied(&matcher, "https://collector.internal.example/v1/traces"), None);
        assert_eq!(proxied(&matcher, "http://api.honeycomb.io/v1/traces"), None, "HTTPS_PROXY is for https only");
    }

    #[test]
    fn lower_case_names_work_too() {
        let matcher = proxy_matcher(None, &env(&[("http_proxy", "http://proxy:3128")]));
        assert!(proxied(&matcher, "http://collector:4318/v1/traces").is_some());
    }

    #[test]
    fn a_configured_address_takes_every_scheme_but_keeps_no_proxy() {
        let matcher = proxy_matcher(Some("http://corp:8080"), &env(&[("NO_PROXY", "127.0.0.1")]));
        assert_eq!(proxied(&matcher, "http://collector:4318/").as_deref(), Some("http://corp:8080/"));
        assert_eq!(proxied(&matcher, "https://api.honeycomb.io/").as_deref(), Some("http://corp:8080/"));
        assert_eq!(proxied(&matcher, "http://127.0.0.1:4318/"), None);
    }

    #[test]
    fn nothing_set_is_no_proxy() {
        assert_eq!(proxied(&proxy_matcher(None, &env(&[])), "https://api.honeycomb.io/"), None);
    }

    #[test]
    fn the_system_roots_load_with_the_bundled_ones() {
        assert!(tls_config().is_ok());
    }
}
