//! `destinations.xray`: the X-Ray destination's keys (re-exported as `crate::config::XraySettings`).

use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use crate::destination::settings::destination_settings;
use crate::model::Signal;
use crate::pipeline::lane::LaneSettings;
use crate::pipeline::retry::RetryPolicy;
use crate::pipeline::spool::{SpoolOptions, WhenSpoolFull};

destination_settings! {
    /// AWS X-Ray, through PutTraceSegments or X-Ray's OTLP endpoint. On when an AWS region and
    /// credentials are found.
    pub struct XraySettings {
        /// Send to X-Ray when a region and credentials are found; false keeps it off.
        pub enabled: bool,
        /// `segments` (PutTraceSegments) or `otlp` (`<endpoint>/v1/traces`, needs Transaction Search).
        pub protocol: XrayProtocol,
        /// AWS region; else AWS_REGION, the shared profile, or (unless local_mode) instance metadata.
        pub region: Option<String>,
        /// X-Ray API URL; else AWS_ENDPOINT_URL_XRAY, AWS_ENDPOINT_URL, or the region's endpoint.
        pub endpoint: Option<String>,
        /// A role to assume for every X-Ray call (session name "waggle").
        pub role_arn: Option<String>,
        /// Reported with the daemon telemetry (PutTelemetryRecords).
        pub resource_arn: Option<String>,
        /// Skip EC2 instance metadata (region, credentials, hostname), as the daemon's -o.
        pub local_mode: bool,
        /// An HTTPS proxy for X-Ray calls, e.g. "http://proxy:3128"; else HTTPS_PROXY.
        pub proxy_address: Option<String>,
        /// Accepted for compatibility with the daemon's NoVerifySSL; waggle always verifies
        /// certificates and says so at start-up when this is set.
        pub no_verify_ssl: bool,
        /// Documents per PutTraceSegments call (X-Ray's cap is 50).
        pub max_documents_per_call: usize,
        /// Time allowed for one PutTraceSegments call.
        #[serde(with = "humantime_serde")]
        pub timeout: Duration,
        /// Send the daemon's telemetry (PutTelemetryRecords) after the first segment.
        pub telemetry: bool,
        /// How often telemetry is sent (the daemon: every minute).
        #[serde(with = "humantime_serde")]
        pub telemetry_interval: Duration,
        /// OpenTelemetry span attributes sent as X-Ray annotations (searchable); the rest go to metadata.
        pub indexed_attributes: Vec<String>,
        /// Send every (string, number, bool) span attribute as an annotation, at most 50 per document.
        pub index_all_attributes: bool,
        /// Refuse OpenTelemetry trace ids whose first 8 hex digits are not a recent time (X-Ray
        /// accepts random W3C ids since 2023, so this is off by default).
        pub validate_trace_id_time: bool,
    }
}

/// How the X-Ray destination sends traces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum XrayProtocol {
    /// PutTraceSegments: OpenTelemetry spans translated to segment documents, X-Ray SDK
    /// segments as received. Works on every account.
    #[default]
    Segments,
    /// OTLP/HTTP to `<endpoint>/v1/traces`, SigV4-signed: OpenTelemetry spans as received, X-Ray
    /// SDK segments converted to spans. Needs CloudWatch Transaction Search on the account.
    Otlp,
}

impl XrayProtocol {
    /// The setting's value, as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            XrayProtocol::Segments => "segments",
            XrayProtocol::Otlp => "otlp",
        }
    }
}

impl Default for XraySettings {
    fn default() -> Self {
        XraySettings {
            enabled: true,
            protocol: XrayProtocol::Segments,
            region: None,
            endpoint: None,
            role_arn: None,
            resource_arn: None,
            local_mode: false,
            proxy_address: None,
            no_verify_ssl: false,
            max_documents_per_call: 50,
            timeout: Duration::from_secs(5),
            telemetry: true,
            telemetry_interval: Duration::from_secs(60),
            indexed_attributes: Vec::new(),
            index_all_attributes: false,
            validate_trace_id_time: false,
            signals: vec![Signal::Traces],
            queue_size: ByteSize::mib(16),
            batch_max_items: 50,
            batch_max_size: ByteSize::mib(4),
            batch_timeout: Duration::from_secs(1),
            senders: 8,
            retry: RetryPolicy::default(),
            spool: true,
            spool_max_size: ByteSize::mib(256),
            spool_when_full: WhenSpoolFull::Refuse,
        }
    }
}
