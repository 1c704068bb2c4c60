//! Binds every socket waggle listens on before anything is served, and logs each address
//! (`listening`, with the listener's name), which is how tests and operators find the ports.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tokio::net::{TcpListener, UdpSocket};

use super::StartError;
use super::app_env::BoundAddresses;
use crate::config::Settings;

/// Every bound socket; `None` for a disabled listener.
pub(super) struct Listeners {
    pub otlp_http: Option<TcpListener>,
    pub otlp_grpc: Option<TcpListener>,
    pub xray_udp: Option<UdpSocket>,
    pub xray_tcp: Option<TcpListener>,
    pub admin: Option<TcpListener>,
}

impl Listeners {
    /// Each bound listener's name and address, for `/status` and the web UI.
    pub(super) fn addresses(&self) -> BTreeMap<&'static str, String> {
        let tcp = [
            ("otlp_http", &self.otlp_http),
            ("otlp_grpc", &self.otlp_grpc),
            ("xray_tcp", &self.xray_tcp),
            ("admin", &self.admin),
        ];
        let mut addresses: BTreeMap<&'static str, String> = tcp
            .into_iter()
            .filter_map(|(name, listener)| Some((name, listener.as_ref()?.local_addr().ok()?.to_string())))
            .collect();
        if let Some(address) = self.xray_udp.as_ref().and_then(|socket| socket.local_addr().ok()) {
            addresses.insert("xray_udp", address.to_string());
        }
        addresses
    }

    /// How many TCP listeners are bound (they share the open-file limit).
    pub(super) fn tcp_count(&self) -> usize {
        [&self.otlp_http, &self.otlp_grpc, &self.xray_tcp, &self.admin]
            .iter()
            .filter(|listener| listener.is_some())
            .count()
    }

    pub(super) async fn bind(settings: &Settings) -> Result<Self, StartError> {
        let receivers = &settings.receivers;
        Ok(Listeners {
            otlp_http: bind_tcp("otlp_http", receivers.otlp_http.enabled, &receivers.otlp_http.endpoint).await?,
            otlp_grpc: bind_tcp("otlp_grpc", receivers.otlp_grpc.enabled, &receivers.otlp_grpc.endpoint).await?,
            xray_udp: bind_udp("xray_udp", receivers.xray_udp.enabled, &receivers.xray_udp.endpoint).await?,
            xray_tcp: bind_tcp("xray_tcp", receivers.xray_tcp.enabled, &receivers.xray_tcp.endpoint).await?,
            admin: bind_tcp("admin", settings.admin.enabled, &settings.admin.endpoint).await?,
        })
    }

    /// Where the receivers listen, for the lines an app copies.
    pub(super) fn bound_addresses(&self) -> BoundAddresses {
        let tcp = |listener: &Option<TcpListener>| listener.as_ref().and_then(|l| l.local_addr().ok());
        BoundAddresses {
            otlp_http: tcp(&self.otlp_http),
            otlp_grpc: tcp(&self.otlp_grpc),
            xray_udp: self.xray_udp.as_ref().and_then(|s| s.local_addr().ok()),
            xray_tcp: tcp(&self.xray_tcp),
        }
    }
}

async fn bind_tcp(listener: &'static str, enabled: bool, address: &str) -> Result<Option<TcpListener>, StartError> {
    if !enabled {
        tracing::info!(listener, "disabled");
        return Ok(None);
    }
    let bound = TcpListener::bind(address).await.map_err(|source| bind_error(listener, address, source))?;
    log_listening(listener, bound.local_addr());
    Ok(Some(bound))
}

async fn bind_udp(listener: &'static str, enabled: bool, address: &str) -> Result<Option<UdpSocket>, StartError> {
    if !enabled {
        tracing::info!(listener, "disabled");
        return Ok(None);
    }
    let bound = UdpSocket::bind(address).await.map_err(|source| bind_error(listener, address, source))?;
    log_listening(listener, bound.local_addr());
    Ok(Some(bound))
}

fn bind_error(listener: &'static str, address: &str, source: std::io::Error) -> StartError {
    StartError::Bind { listener, address: address.to_string(), source }
}

fn log_listening(listener: &'static str, address: std::io::Result<SocketAddr>) {
    match address {
        Ok(address) => tracing::info!(listener, %address, "listening"),
        Err(error) => tracing::info!(listener, %error, "listening (address unknown)"),
    }
}
