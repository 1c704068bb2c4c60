//! The receivers waggle listens with, by name: the `receiver` label of the receiver metrics
//! and the `receiver` field of their log lines.

/// One listener that takes telemetry (or, for `XrayTcp`, the X-Ray SDKs' sampling calls).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Receiver {
    OtlpHttp,
    OtlpGrpc,
    XrayUdp,
    /// The sampling proxy.
    XrayTcp,
}

impl Receiver {
    /// The name used in metrics labels, logs and the `receivers.<name>` config section.
    pub fn as_str(self) -> &'static str {
        match self {
            Receiver::OtlpHttp => "otlp_http",
            Receiver::OtlpGrpc => "otlp_grpc",
            Receiver::XrayUdp => "xray_udp",
            Receiver::XrayTcp => "xray_tcp",
        }
    }
}

super::label_value!(Receiver);
