//! The typed configuration: every key waggle reads, with its default.
//!
//! `config/waggle.toml` documents each key; a test keeps the two in step.

use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use crate::destination::cloudwatch_logs::CloudWatchLogsSettings;
use crate::destination::honeycomb::HoneycombSettings;
use crate::destination::local::LocalStoreSettings;
use crate::destination::rollbar::RollbarSettings;
use crate::destination::xray::XraySettings;
use crate::resource::ResourceSettings;

/// Everything waggle can be told.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Where the local store keeps its files, and spooled lanes theirs (`spool/<destination>/`).
    pub data_dir: PathBuf,
    pub log: LogSettings,
    pub admin: AdminSettings,
    pub pipeline: PipelineSettings,
    pub limits: LimitsSettings,
    pub receivers: ReceiverSettings,
    /// Attributes added to the resource of every span, log record and metric received.
    pub resource: ResourceSettings,
    pub destinations: DestinationSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("waggle-data"),
            log: LogSettings::default(),
            admin: AdminSettings::default(),
            pipeline: PipelineSettings::default(),
            limits: LimitsSettings::default(),
            receivers: ReceiverSettings::default(),
            resource: ResourceSettings::default(),
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
    /// The web UI at `/` (`/ui/…` for its script and styles).
    pub ui: bool,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings { enabled: true, endpoint: "127.0.0.1:13133".into(), ui: true }
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

/// One memory budget for every receiver and lane queue, and what every TCP listener allows
/// a connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitsSettings {
    /// Memory held by request bodies (compressed and decompressed), X-Ray UDP segments and
    /// the batches the lanes queue; a request that does not fit is refused with 429 /
    /// RESOURCE_EXHAUSTED, a datagram that does not fit is dropped and counted.
    pub memory_limit: ByteSize,
    /// Connections each TCP listener keeps open; at the cap a new connection closes the one
    /// that has been quiet longest. Lowered at start to fit the open-file limit.
    pub max_connections: usize,
    /// Time a client has to send a request's headers (HTTP/1).
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Time a client has to send a whole request body (OTLP/HTTP) or gRPC call (OTLP/gRPC).
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// A connection with no byte read or written for this long is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
}

impl Default for LimitsSettings {
    fn default() -> Self {
        LimitsSettings {
            memory_limit: ByteSize::mib(256),
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
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
    pub rollbar: RollbarSettings,
}
