//! From `destinations.cloudwatch_logs` settings to what the lane runs with: whether it wants
//! AWS access at all, which access (its own keys, else the X-Ray destination's), the
//! templates, retention and tags checked once at start-up ([`LaneConfig`]), and the exporter
//! ready to start or the reason it stays off ([`set_up`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::client::SdkLogsClient;
use super::exporter::CloudWatchLogs;
use super::lane_config::{CloudWatchLogsConfigError, LOG_GROUP_KEY, LaneConfig};
use super::otlp::CloudWatchLogsOtlp;
use super::settings::{CloudWatchLogsProtocol, CloudWatchLogsSettings};
use crate::aws::{AwsAccess, AwsContext, AwsUnavailable, access, client};
use crate::destination::aws_otlp::{SignedOtlpClient, endpoint_base, otlp_url};
use crate::destination::xray::XraySettings;
use crate::model::Signal;
use crate::pipeline::lane::LaneSettings;
use crate::telemetry::status::DestinationStatus;

/// Whether a log group is named (an empty one counts as unset).
pub(crate) fn has_log_group(settings: &CloudWatchLogsSettings) -> bool {
    settings.log_group.as_deref().is_some_and(|group| !group.is_empty())
}

/// Whether the destination would run if AWS access is found: enabled and a log group named.
pub(crate) fn wants_aws(settings: &CloudWatchLogsSettings) -> bool {
    settings.enabled && has_log_group(settings)
}

/// The AWS access for CloudWatch Logs: each of its own keys, else the X-Ray destination's.
pub(crate) fn aws_access(settings: &CloudWatchLogsSettings, xray: &XraySettings) -> AwsAccess {
    AwsAccess {
        region: settings.region.clone().or_else(|| xray.region.clone()),
        role_arn: settings.role_arn.clone().or_else(|| xray.role_arn.clone()),
        local_mode: settings.local_mode.unwrap_or(xray.local_mode),
        proxy_address: settings.proxy_address.clone().or_else(|| xray.proxy_address.clone()),
    }
}

/// Whether two lookups would find the same AWS access, so one can serve both.
pub(crate) fn same_access(a: &AwsAccess, b: &AwsAccess) -> bool {
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
    /// With `protocol = "otlp"`: the signed client of the OTLP endpoint.
    otlp: Option<SignedOtlpClient>,
    config: LaneConfig,
}

/// The exporter the configured protocol uses.
pub(crate) enum CloudWatchLogsExporter {
    PutLogEvents(Box<CloudWatchLogs>),
    Otlp(Box<CloudWatchLogsOtlp>),
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
    let (otlp, mut reason) = match settings.protocol {
        CloudWatchLogsProtocol::PutLogEvents => (
            None,
            format!(
                "PutLogEvents to {target} in {}: log group {}, stream {}",
                context.region, config.translation.group, config.translation.stream
            ),
        ),
        CloudWatchLogsProtocol::Otlp => {
            let env_names = ["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "AWS_ENDPOINT_URL"];
            let base = endpoint_base(settings.endpoint.as_deref(), env, &env_names, "logs", &context.region);
            let url = otlp_url(&base, "/v1/logs")
                .map_err(|error| NotStarted::Off(format!("destinations.cloudwatch_logs.endpoint: {error}")))?;
            let reason = format!(
                "OTLP to {url} in {} (SigV4, service logs): log group {}, stream {}",
                context.region, config.translation.group, config.translation.stream
            );
            let signed = SignedOtlpClient::new(
                url,
                "logs",
                context.region.clone(),
                context.credentials.clone(),
                settings.timeout,
            )
            .map_err(NotStarted::Off)?;
            (Some(signed), reason)
        }
    };
    if let Some(request_log) = &config.request_log {
        reason.push_str(&format!("; request log to {} / {}", request_log.group, request_log.stream));
    }
    Ok(CloudWatchLogsSetup { reason, client: SdkLogsClient::new(sdk_client, settings.timeout), otlp, config })
}

impl CloudWatchLogsSetup {
    /// The exporter; credential problems are shown on `status`.
    pub(crate) fn start(self, status: Arc<DestinationStatus>) -> CloudWatchLogsExporter {
        let translation = self.config.translation.clone();
        let put_log_events = CloudWatchLogs::new(self.client, self.config, Arc::clone(&status));
        match self.otlp {
            Some(otlp) => CloudWatchLogsExporter::Otlp(Box::new(CloudWatchLogsOtlp::new(
                otlp,
                put_log_events,
                translation,
                status,
            ))),
            None => CloudWatchLogsExporter::PutLogEvents(Box::new(put_log_events)),
        }
    }
}
