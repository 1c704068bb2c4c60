//! The typed configuration: every key waggle reads, with its default.
//!
//! `config/waggle.toml` documents each key; a test keeps the two in step.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use crate::destination::honeycomb::HoneycombSettings;
use crate::destination::local::LocalStoreSettings;
use crate::model::Signal;
use crate::pipeline::lane::LaneSettings;
use crate::pipeline::retry::RetryPolicy;
use crate::pipeline::spool::SpoolOptions;
use crate::translate::otlp_to_cloudwatch::MessageFormat;

/// Everything waggle can be told.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Where the local store keeps its files, and spooled lanes theirs (`spool/<destination>/`).
    pub data_dir: PathBuf,
    pub log: LogSettings,
    pub admin: AdminSettings,
    pub pipeline: PipelineSettings,
    pub receivers: ReceiverSettings,
    pub destinations: DestinationSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("waggle-data"),
            log: LogSettings::default(),
            admin: AdminSettings::default(),
            pipeline: PipelineSettings::default(),
            receivers: ReceiverSettings::default(),
            destinations: DestinationSettings::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    /// A level (`error`, `warn`, `info`, `debug`, `trace`) or a tracing filter
    /// (`info,waggle::destination=debug`).
    pub level: String,
    pub format: LogFormat,
    /// Append logs to this file instead of standard output.
    pub file: Option<PathBuf>,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings { level: "info".into(), format: LogFormat::Text, file: None }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AdminSettings {
    pub enabled: bool,
    /// `/healthz`, `/readyz`, `/metrics`, `/status` and the local store's query API.
    pub endpoint: String,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings { enabled: true, endpoint: "127.0.0.1:13133".into() }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PipelineSettings {
    /// On SIGTERM/SIGINT, how long the lanes get to deliver what they hold.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// What a refused OTLP caller is told to wait (Retry-After / gRPC RetryInfo).
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
    /// A full lane that has finished no request for this long (its destination is down or
    /// hung) stops holding up the other lanes: OTLP callers are accepted again and what the
    /// stalled lane cannot take is dropped and counted (`reason="destination_stalled"`).
    #[serde(with = "humantime_serde")]
    pub stall_timeout: Duration,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            shutdown_timeout: Duration::from_secs(5),
            retry_after: Duration::from_secs(1),
            stall_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ReceiverSettings {
    pub otlp_http: OtlpHttpSettings,
    pub otlp_grpc: OtlpGrpcSettings,
    pub xray_udp: XrayUdpSettings,
    pub xray_tcp: XrayTcpSettings,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OtlpHttpSettings {
    pub enabled: bool,
    pub endpoint: String,
    /// Largest request body accepted, measured after decompression; larger gets 413.
    pub max_body_size: ByteSize,
    pub cors: CorsSettings,
}

impl Default for OtlpHttpSettings {
    fn default() -> Self {
        OtlpHttpSettings {
            enabled: true,
            endpoint: "127.0.0.1:4318".into(),
            max_body_size: ByteSize::mib(20),
            cors: CorsSettings::default(),
        }
    }
}

/// Cross-origin settings for browser SDKs; CORS is off while `allowed_origins` is empty.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CorsSettings {
    /// Origins allowed to send telemetry, e.g. `http://localhost:3000`; `*` wildcards a part
    /// (`https://*.example.com`), a lone `*` allows any origin.
    pub allowed_origins: Vec<String>,
    /// Request headers allowed besides `Content-Type` and `Content-Encoding`.
    pub allowed_headers: Vec<String>,
    /// How long a browser may cache a preflight answer.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
}

impl Default for CorsSettings {
    fn default() -> Self {
        CorsSettings { allowed_origins: Vec::new(), allowed_headers: Vec::new(), max_age: Duration::from_secs(7200) }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OtlpGrpcSettings {
    pub enabled: bool,
    pub endpoint: String,
    /// Largest decoded message accepted (the OTel Collector's 4 MiB default loses big batches).
    pub max_message_size: ByteSize,
}

impl Default for OtlpGrpcSettings {
    fn default() -> Self {
        OtlpGrpcSettings { enabled: true, endpoint: "127.0.0.1:4317".into(), max_message_size: ByteSize::mib(16) }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct XrayUdpSettings {
    pub enabled: bool,
    /// Where X-Ray SDKs send segments (`AWS_XRAY_DAEMON_ADDRESS`).
    pub endpoint: String,
}

impl Default for XrayUdpSettings {
    fn default() -> Self {
        XrayUdpSettings { enabled: true, endpoint: "127.0.0.1:2000".into() }
    }
}

/// The X-Ray SDKs' sampling calls, proxied to the X-Ray API (on when the X-Ray destination is).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct XrayTcpSettings {
    pub enabled: bool,
    /// Where X-Ray SDKs ask for sampling rules and targets (same port number as UDP).
    pub endpoint: String,
    /// Time allowed for one upstream call; past it the SDK gets 504.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Largest request body forwarded; larger gets 413.
    pub max_body_size: ByteSize,
}

impl Default for XrayTcpSettings {
    fn default() -> Self {
        XrayTcpSettings {
            enabled: true,
            endpoint: "127.0.0.1:2000".into(),
            timeout: Duration::from_secs(5),
            max_body_size: ByteSize::kib(64),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct DestinationSettings {
    pub local: LocalStoreSettings,
    pub honeycomb: HoneycombSettings,
    pub xray: XraySettings,
    pub cloudwatch_logs: CloudWatchLogsSettings,
}

/// Declares a destination's settings struct: its own keys, then the queue, batch, sender,
/// retry and spool keys every destination has (see [`LaneSettings`]), with `lane()` and
/// `spool_options()` to get those out.
/// (Serde's `flatten` would lose key names in error messages, so the fields are spelled out.)
macro_rules! destination_settings {
    (
        $(#[$meta:meta])*
        pub struct $name:ident { $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty, )* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $ty, )*
            /// Signals this destination takes.
            pub signals: Vec<Signal>,
            /// Bytes the lane may hold (queued, batching, being sent) before callers are refused.
            pub queue_size: ByteSize,
            /// A batch is sent once it holds this many items.
            pub batch_max_items: usize,
            /// A batch is sent once it holds this many bytes.
            pub batch_max_size: ByteSize,
            /// A batch is sent at the latest this long after its first item arrived.
            #[serde(with = "humantime_serde")]
            pub batch_timeout: Duration,
            /// Requests in flight at once.
            pub senders: usize,
            pub retry: RetryPolicy,
            /// Back the lane with a disk spool under `<data_dir>/spool/<destination>`: what the
            /// full queue cannot take is accepted onto disk instead of refused or dropped, what
            /// is unsent at shutdown is kept, and the next start replays it.
            pub spool: bool,
            /// Disk the spool may use; past it the oldest data is dropped and counted.
            pub spool_max_size: ByteSize,
        }

        impl $name {
            /// The lane part of these settings.
            pub fn lane(&self) -> LaneSettings {
                LaneSettings {
                    signals: self.signals.clone(),
                    queue_size: self.queue_size,
                    batch_max_items: self.batch_max_items,
                    batch_max_size: self.batch_max_size,
                    batch_timeout: self.batch_timeout,
                    senders: self.senders,
                    retry: self.retry.clone(),
                }
            }

            /// The spool's bounds, when the lane has one.
            pub fn spool_options(&self) -> Option<SpoolOptions> {
                self.spool.then(|| SpoolOptions::with_max_size(self.spool_max_size))
            }
        }
    };
}
// Used by the destinations' own settings modules (`destination::honeycomb::settings`, …).
pub(crate) use destination_settings;

/// Request body compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Zstd,
    Gzip,
    None,
}

destination_settings! {
    /// AWS X-Ray, through PutTraceSegments. On when an AWS region and credentials are found.
    pub struct XraySettings {
        /// Send to X-Ray when a region and credentials are found; false keeps it off.
        pub enabled: bool,
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

impl Default for XraySettings {
    fn default() -> Self {
        XraySettings {
            enabled: true,
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
        }
    }
}

destination_settings! {
    /// AWS CloudWatch Logs, through PutLogEvents. On when AWS access is found and a log group
    /// is configured. Region, role, local mode and proxy default to the X-Ray destination's.
    pub struct CloudWatchLogsSettings {
        /// Send to CloudWatch Logs when AWS access is found and `log_group` is set; false keeps it off.
        pub enabled: bool,
        /// Log group name template, e.g. "/waggle/{service.name}"; unset keeps the destination off.
        pub log_group: Option<String>,
        /// Log stream name template; `{date}` is the event's UTC date.
        pub log_stream: String,
        /// `json` (the record as a JSON object) or `raw` (the body as text).
        pub message_format: MessageFormat,
        /// Retention set on log groups waggle creates (PutRetentionPolicy); unset: never expire.
        pub retention_days: Option<u32>,
        /// Tags put on log groups waggle creates.
        pub tags: BTreeMap<String, String>,
        /// AWS region; else `destinations.xray.region`, AWS_REGION, the profile or instance metadata.
        pub region: Option<String>,
        /// CloudWatch Logs API URL; else AWS_ENDPOINT_URL_CLOUDWATCH_LOGS, AWS_ENDPOINT_URL or the region's.
        pub endpoint: Option<String>,
        /// A role to assume for CloudWatch Logs calls; else `destinations.xray.role_arn`.
        pub role_arn: Option<String>,
        /// Skip EC2 instance metadata; else `destinations.xray.local_mode`.
        pub local_mode: Option<bool>,
        /// An HTTPS proxy for CloudWatch Logs calls; else `destinations.xray.proxy_address`, HTTPS_PROXY.
        pub proxy_address: Option<String>,
        /// Time allowed for one CloudWatch Logs call.
        #[serde(with = "humantime_serde")]
        pub timeout: Duration,
        /// One access-log event per server span (the lane then also takes traces).
        pub request_log: RequestLogSettings,
    }
}

impl Default for CloudWatchLogsSettings {
    fn default() -> Self {
        CloudWatchLogsSettings {
            enabled: true,
            log_group: None,
            log_stream: "{host.name}/{date}".into(),
            message_format: MessageFormat::Json,
            retention_days: None,
            tags: BTreeMap::new(),
            region: None,
            endpoint: None,
            role_arn: None,
            local_mode: None,
            proxy_address: None,
            timeout: Duration::from_secs(10),
            request_log: RequestLogSettings::default(),
            signals: vec![Signal::Logs],
            queue_size: ByteSize::mib(32),
            batch_max_items: 10_000,
            batch_max_size: ByteSize::mib(1),
            batch_timeout: Duration::from_secs(1),
            senders: 4,
            spool: true,
            spool_max_size: ByteSize::mib(256),
            retry: RetryPolicy::default(),
        }
    }
}

/// The CloudWatch Logs request log: server spans summarised as one access-log event each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestLogSettings {
    pub enabled: bool,
    /// Log group name template; unset: the destination's `log_group`.
    pub log_group: Option<String>,
    /// Log stream name template.
    pub log_stream: String,
    /// `json` (an object per request) or `raw` (a common-log-style line).
    pub message_format: MessageFormat,
}

impl Default for RequestLogSettings {
    fn default() -> Self {
        RequestLogSettings {
            enabled: false,
            log_group: None,
            log_stream: "{host.name}/requests/{date}".into(),
            message_format: MessageFormat::Json,
        }
    }
}
