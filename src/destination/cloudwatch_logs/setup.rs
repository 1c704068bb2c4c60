//! From `destinations.cloudwatch_logs` settings to what the lane runs with: whether it wants
//! AWS access at all, which access (its own keys, else the X-Ray destination's), the
//! templates, retention and tags checked once at start-up, each error naming its key, and the
//! exporter ready to start or the reason it stays off ([`set_up`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::client::SdkLogsClient;
use super::exporter::CloudWatchLogs;
use super::settings::CloudWatchLogsSettings;
use crate::aws::{AwsAccess, AwsContext, AwsUnavailable, access, client};
use crate::destination::xray::XraySettings;
use crate::model::Signal;
use crate::pipeline::lane::LaneSettings;
use crate::telemetry::status::DestinationStatus;
use crate::translate::otlp_to_cloudwatch::{CloudWatchTranslation, NameKind, RequestLog, Template, TemplateError};

/// The retention periods CloudWatch Logs offers (PutRetentionPolicy `retentionInDays`).
pub const RETENTION_DAYS: &[u32] =
    &[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// Most tags on one log group.
pub const MAX_TAGS: usize = 50;
const MAX_TAG_KEY_CHARS: usize = 128;
const MAX_TAG_VALUE_CHARS: usize = 256;

/// The key whose absence keeps the destination off.
pub const LOG_GROUP_KEY: &str = "destinations.cloudwatch_logs.log_group";

/// A `destinations.cloudwatch_logs` value CloudWatch Logs would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudWatchLogsConfigError {
    #[error("{key}: {source}")]
    Template { key: &'static str, source: TemplateError },
    #[error(
        "destinations.cloudwatch_logs.retention_days = {0} is not a retention CloudWatch Logs offers (one of {list})",
        list = retention_list()
    )]
    RetentionDays(u32),
    #[error("destinations.cloudwatch_logs.tags: {0}")]
    Tags(String),
}

fn retention_list() -> String {
    RETENTION_DAYS.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

/// Whether a log group is named (an empty one counts as unset).
pub fn has_log_group(settings: &CloudWatchLogsSettings) -> bool {
    settings.log_group.as_deref().is_some_and(|group| !group.is_empty())
}

/// Whether the destination would run if AWS access is found: enabled and a log group named.
pub fn wants_aws(settings: &CloudWatchLogsSettings) -> bool {
    settings.enabled && has_log_group(settings)
}

/// The AWS access for CloudWatch Logs: each of its own keys, else the X-Ray destination's.
pub fn aws_access(settings: &CloudWatchLogsSettings, xray: &XraySettings) -> AwsAccess {
    AwsAccess {
        region: settings.region.clone().or_else(|| xray.region.clone()),
        role_arn: settings.role_arn.clone().or_else(|| xray.role_arn.clone()),
        local_mode: settings.local_mode.unwrap_or(xray.local_mode),
        proxy_address: settings.proxy_address.clone().or_else(|| xray.proxy_address.clone()),
    }
}

/// Whether two lookups would find the same AWS access, so one can serve both.
pub fn same_access(a: &AwsAccess, b: &AwsAccess) -> bool {
    a.region == b.region
        && a.role_arn == b.role_arn
        && a.local_mode == b.local_mode
        && a.proxy_address == b.proxy_address
}

/// The lane's settings: the configured signals, and traces too when the request log is on.
pub(crate) fn lane_settings(settings: &CloudWatchLogsSettings) -> LaneSettings {
    let mut lane = settings.lane();
    if settings.request_log.enabled && !lane.signals.contains(&Signal::Traces) {
        lane.signals.push(Signal::Traces);
    }
    lane
}

/// Why the destination does not start.
#[derive(Debug)]
pub(crate) enum NotStarted {
    /// Off, with the reason shown at start-up and on `/status`.
    Off(String),
    /// A setting CloudWatch Logs would refuse: waggle does not start.
    Invalid(CloudWatchLogsConfigError),
}

/// A CloudWatch Logs destination ready to start: its `/status` reason and what it is built from.
pub(crate) struct CloudWatchLogsSetup {
    /// Why it is on: where PutLogEvents goes, the group and stream templates.
    pub(crate) reason: String,
    client: SdkLogsClient,
    config: LaneConfig,
}

/// The destination ready to start, or why it does not.
pub(crate) fn set_up(
    settings: &CloudWatchLogsSettings,
    aws: Option<&Result<AwsContext, AwsUnavailable>>,
    env: &BTreeMap<String, String>,
) -> Result<CloudWatchLogsSetup, NotStarted> {
    if !settings.enabled {
        return Err(NotStarted::Off("disabled by destinations.cloudwatch_logs.enabled = false".to_string()));
    }
    if !has_log_group(settings) {
        return Err(NotStarted::Off(format!("no log group configured ({LOG_GROUP_KEY})")));
    }
    let config = LaneConfig::from_settings(settings).map_err(NotStarted::Invalid)?;
    let context = access::usable(aws).map_err(NotStarted::Off)?;
    let sdk_client = client::cloudwatch_logs_client(context, settings.endpoint.as_deref());
    let target = client::endpoint_description(
        settings.endpoint.as_deref(),
        env,
        &["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "AWS_ENDPOINT_URL"],
    );
    let mut reason = format!(
        "PutLogEvents to {target} in {}: log group {}, stream {}",
        context.region, config.translation.group, config.translation.stream
    );
    if let Some(request_log) = &config.request_log {
        reason.push_str(&format!("; request log to {} / {}", request_log.group, request_log.stream));
    }
    Ok(CloudWatchLogsSetup { reason, client: SdkLogsClient::new(sdk_client, settings.timeout), config })
}

impl CloudWatchLogsSetup {
    /// The exporter; credential problems are shown on `status`.
    pub(crate) fn start(self, status: Arc<DestinationStatus>) -> CloudWatchLogs {
        CloudWatchLogs::new(self.client, self.config, status)
    }
}

/// What the lane needs from the settings, checked.
#[derive(Debug, Clone)]
pub struct LaneConfig {
    pub translation: CloudWatchTranslation,
    pub request_log: Option<RequestLog>,
    /// For PutRetentionPolicy on the groups waggle creates.
    pub retention_days: Option<i32>,
    pub tags: BTreeMap<String, String>,
}

impl LaneConfig {
    /// Checks the templates, retention and tags. `log_group` must be set (see [`wants_aws`]).
    pub fn from_settings(settings: &CloudWatchLogsSettings) -> Result<LaneConfig, CloudWatchLogsConfigError> {
        let group_source = settings.log_group.as_deref().unwrap_or_default();
        let group = template(group_source, NameKind::LogGroup, LOG_GROUP_KEY)?;
        let stream = template(&settings.log_stream, NameKind::LogStream, "destinations.cloudwatch_logs.log_stream")?;
        let request_log = if settings.request_log.enabled {
            let request_settings = &settings.request_log;
            let group = match &request_settings.log_group {
                Some(source) => {
                    template(source, NameKind::LogGroup, "destinations.cloudwatch_logs.request_log.log_group")?
                }
                None => group.clone(),
            };
            let stream = template(
                &request_settings.log_stream,
                NameKind::LogStream,
                "destinations.cloudwatch_logs.request_log.log_stream",
            )?;
            Some(RequestLog { format: request_settings.message_format, group, stream })
        } else {
            None
        };
        let retention_days = match settings.retention_days {
            None => None,
            Some(days) if RETENTION_DAYS.contains(&days) => i32::try_from(days).ok(),
            Some(days) => return Err(CloudWatchLogsConfigError::RetentionDays(days)),
        };
        check_tags(&settings.tags)?;
        Ok(LaneConfig {
            translation: CloudWatchTranslation { format: settings.message_format, group, stream },
            request_log,
            retention_days,
            tags: settings.tags.clone(),
        })
    }
}

fn template(source: &str, kind: NameKind, key: &'static str) -> Result<Template, CloudWatchLogsConfigError> {
    Template::parse(source, kind).map_err(|source| CloudWatchLogsConfigError::Template { key, source })
}

/// The limits CreateLogGroup puts on tags (the character set is left to CloudWatch Logs).
fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), CloudWatchLogsConfigError> {
    if tags.len() > MAX_TAGS {
        return Err(CloudWatchLogsConfigError::Tags(format!(
            "{} tags; a log group takes at most {MAX_TAGS}",
            tags.len()
        )));
    }
    for (key, value) in tags {
        let key_chars = key.chars().count();
        if key_chars == 0 || key_chars > MAX_TAG_KEY_CHARS {
            return Err(CloudWatchLogsConfigError::Tags(format!(
                "tag key `{key}` is {key_chars} characters; keys take 1 to {MAX_TAG_KEY_CHARS}"
            )));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(CloudWatchLogsConfigError::Tags(format!("tag key `{key}`: the `aws:` prefix is reserved")));
        }
        if value.chars().count() > MAX_TAG_VALUE_CHARS {
            return Err(CloudWatchLogsConfigError::Tags(format!(
                "the value of tag `{key}` is longer than {MAX_TAG_VALUE_CHARS} characters"
            )));
        }
    }
    Ok(())
}
