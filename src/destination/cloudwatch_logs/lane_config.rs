//! The `destinations.cloudwatch_logs` settings checked once at start-up into what the lane
//! runs with ([`LaneConfig`]): the templates, retention and tags, each error naming its key.

use std::collections::BTreeMap;

use super::settings::CloudWatchLogsSettings;
use crate::translate::otlp_to_cloudwatch::{CloudWatchTranslation, NameKind, RequestLog, Template, TemplateError};

/// The retention periods CloudWatch Logs offers (PutRetentionPolicy `retentionInDays`).
pub(crate) const RETENTION_DAYS: &[u32] =
    &[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// Most tags on one log group.
pub(crate) const MAX_TAGS: usize = 50;
const MAX_TAG_KEY_CHARS: usize = 128;
const MAX_TAG_VALUE_CHARS: usize = 256;

/// The key whose absence keeps the destination off.
pub(crate) const LOG_GROUP_KEY: &str = "destinations.cloudwatch_logs.log_group";

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

/// What the lane needs from the settings, checked.
#[derive(Debug, Clone)]
pub(crate) struct LaneConfig {
    pub translation: CloudWatchTranslation,
    pub request_log: Option<RequestLog>,
    /// For PutRetentionPolicy on the groups waggle creates.
    pub retention_days: Option<i32>,
    pub tags: BTreeMap<String, String>,
}

impl LaneConfig {
    /// Checks the templates, retention and tags. `log_group` must be set (see [`wants_aws`](super::wants_aws)).
    pub(crate) fn from_settings(settings: &CloudWatchLogsSettings) -> Result<LaneConfig, CloudWatchLogsConfigError> {
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
