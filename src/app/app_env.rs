//! The environment an app sets to send here, from the addresses waggle bound: printed at
//! start-up so it can be copied as it is (`OTEL_EXPORTER_OTLP_ENDPOINT=…`,
//! `AWS_XRAY_DAEMON_ADDRESS=…`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What the receivers are bound to; `None` for a receiver that is off.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct BoundAddresses {
    pub otlp_http: Option<SocketAddr>,
    pub otlp_grpc: Option<SocketAddr>,
    pub xray_udp: Option<SocketAddr>,
    pub xray_tcp: Option<SocketAddr>,
}

/// One start-up line: `NAME=value` (and `NAME=value` pairs an app needs with it).
pub(super) fn app_environment(bound: &BoundAddresses) -> Vec<String> {
    let mut lines = Vec::with_capacity(2);
    match (bound.otlp_http, bound.otlp_grpc) {
        (Some(http), _) => lines.push(format!("OTEL_EXPORTER_OTLP_ENDPOINT=http://{}", reachable(http))),
        (None, Some(grpc)) => lines
            .push(format!("OTEL_EXPORTER_OTLP_ENDPOINT=http://{} OTEL_EXPORTER_OTLP_PROTOCOL=grpc", reachable(grpc))),
        (None, None) => {}
    }
    // The X-Ray SDKs' form: `host:port` when UDP and TCP share it, else `tcp:… udp:…`.
    match (bound.xray_udp, bound.xray_tcp) {
        (Some(udp), Some(tcp)) if reachable(udp) == reachable(tcp) => {
            lines.push(format!("AWS_XRAY_DAEMON_ADDRESS={}", reachable(udp)));
        }
        (Some(udp), Some(tcp)) => {
            lines.push(format!("AWS_XRAY_DAEMON_ADDRESS=tcp:{} udp:{}", reachable(tcp), reachable(udp)));
        }
        (Some(udp), None) => lines.push(format!("AWS_XRAY_DAEMON_ADDRESS={}", reachable(udp))),
        (None, _) => {}
    }
    lines
}

/// Whether any receiver listens on every interface (then apps elsewhere use this host's name).
pub(super) fn any_wildcard(bound: &BoundAddresses) -> bool {
    [bound.otlp_http, bound.otlp_grpc, bound.xray_udp, bound.xray_tcp]
        .into_iter()
        .flatten()
        .any(|a| a.ip().is_unspecified())
}

/// The address an app on this host connects to: a wildcard bind is reached on loopback.
fn reachable(address: SocketAddr) -> SocketAddr {
    match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), address.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), address.port()),
        _ => address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Option<SocketAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn the_defaults_give_the_two_lines_an_app_needs() {
        let bound = BoundAddresses {
            otlp_http: at("127.0.0.1:4318"),
            otlp_grpc: at("127.0.0.1:4317"),
            xray_udp: at("127.0.0.1:2000"),
            xray_tcp: at("127.0.0.1:2000"),
        };
        assert_eq!(
            app_environment(&bound),
            ["OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318", "AWS_XRAY_DAEMON_ADDRESS=127.0.0.1:2000"]
        );
    }

    #[test]
    fn wildcard_binds_are_reached_on_loopback() {
        let bound = BoundAddresses { otlp_http: at("0.0.0.0:4318"), xray_udp: at("[::]:2000"), ..Default::default() };
        assert_eq!(
            app_environment(&bound),
            ["OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318", "AWS_XRAY_DAEMON_ADDRESS=[::1]:2000"]
        );
        assert!(any_wildcard(&bound));
    }

    #[test]
    fn different_udp_and_tcp_ports_use_the_sdks_two_part_form() {
        let bound =
            BoundAddresses { xray_udp: at("127.0.0.1:2000"), xray_tcp: at("127.0.0.1:2001"), ..Default::default() };
        assert_eq!(app_environment(&bound), ["AWS_XRAY_DAEMON_ADDRESS=tcp:127.0.0.1:2001 udp:127.0.0.1:2000"]);
    }

    #[test]
    fn grpc_alone_names_its_protocol() {
        let bound = BoundAddresses { otlp_grpc: at("127.0.0.1:4317"), ..Default::default() };
        assert_eq!(
            app_environment(&bound),
            ["OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc"]
        );
    }
}
