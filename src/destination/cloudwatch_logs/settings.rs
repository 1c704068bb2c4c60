//! `destinations.cloudwatch_logs`: the CloudWatch Logs destination's keys (re-exported from
//! `crate::config`).

use std::collections::BTreeMap;
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use crate::destination::settings::destination_settings;
use crate::model::Signal;
use crate::pipeline::lane::LaneSettings;
use crate::pipeline::retry::RetryPolicy;
use crate::pipeline::spool::{SpoolOptions, WhenSpoolFull};
use crate::translate::otlp_to_cloudwatch::MessageFormat;

destination_settings! {
    /// AWS CloudWatch Logs, through PutLogEvents. On when AWS access is found and a log group
    /// is configured. Region, role, local mode and proxy default to the X-Ray destination's.
    pub struct CloudWatchLogsSettings {
        /// Send to CloudWatch Logs when AWS access is found and `log_group` is set; false keeps it off.
        pub enabled: bool,
        /// `put_log_events` (messages built by waggle) or `otlp` (the records as OTLP to `<endpoint>/v1/logs`).
        pub protocol: CloudWatchLogsProtocol,
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

/// How the CloudWatch Logs destination sends log records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloudWatchLogsProtocol {
    /// PutLogEvents: each record becomes a `json` or `raw` message.
    #[default]
    PutLogEvents,
    /// OTLP/HTTP to `<endpoint>/v1/logs`, SigV4-signed: the records as they are, group and
    /// stream in the `x-aws-log-group` / `x-aws-log-stream` headers.
    Otlp,
}

impl Default for CloudWatchLogsSettings {
    fn default() -> Self {
        CloudWatchLogsSettings {
            enabled: true,
            protocol: CloudWatchLogsProtocol::PutLogEvents,
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
            spool_when_full: WhenSpoolFull::Refuse,
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
