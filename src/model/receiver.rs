//! The receivers waggle listens with, by name: the `receiver` label of the receiver metrics
//! and the `receiver` field of their log lines.

use std::fmt;

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};

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

impl fmt::Display for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl EncodeLabelValue for Receiver {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> fmt::Result {
        fmt::Write::write_str(encoder, self.as_str())
    }
}
