//! Starts a lane for every enabled destination and says, in one log line and on `/status`,
//! whether each is on, or off and why.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::StartError;
use crate::aws::{AwsAccess, AwsContext, AwsUnavailable};
use crate::config::{CloudWatchLogsSettings, Settings, XraySettings};
use crate::destination::Exporter;
use crate::destination::cloudwatch_logs::{self, CloudWatchLogs, LaneConfig, SdkLogsApi};
use crate::destination::honeycomb::{self, Honeycomb, HoneycombSetup};
use crate::destination::local::{self, LocalSetup, OpenFailed};
use crate::destination::xray::{BackendErrors, Xray};
use crate::destination::xray_telemetry::{self, Identity, Telemetry};
use crate::model::{Destination, Signal};
use crate::pipeline::lane::{self, LaneContext, LaneHandle, LaneSettings};
use crate::pipeline::spool::{self, Spool, SpoolOptions};
use crate::store::StoreReader;
use crate::telemetry::counts::DestinationCounts;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::status::DestinationStatus;
use crate::translate::otlp_to_xray::XrayTranslation;

/// The lanes that were started, and what the admin endpoint shows about them.
pub struct Destinations {
    pub lanes: Vec<LaneHandle>,
    /// Each lane's task, done once it delivered what it held after its queue closed.
    pub tasks: JoinSet<()>,
    pub statuses: Vec<Arc<DestinationStatus>>,
    pub store_api: Option<axum::Router>,
    pub store: Option<StoreReader>,
    /// Background work that is not a lane (X-Ray telemetry); stopped at shutdown.
    pub background: JoinSet<()>,
    pub stop_background: CancellationToken,
    metrics: Arc<Metrics>,
    abandon: CancellationToken,
    /// Spooled lanes keep their segments under `<data_dir>/spool/<name>`.
    data_dir: PathBuf,
}

/// Starts every destination. `aws` is the outcome of looking for AWS access, when an AWS
/// destination wanted it; `cloudwatch_logs_aws` the one CloudWatch Logs uses (the same, unless
/// it has access settings of its own).
pub fn start(
    settings: &Settings,
    metrics: &Arc<Metrics>,
    abandon: &CancellationToken,
    aws: Option<&Result<AwsContext, AwsUnavailable>>,
    cloudwatch_logs_aws: Option<&Result<AwsContext, AwsUnavailable>>,
    env: &BTreeMap<String, String>,
) -> Result<Destinations, StartError> {
    let mut destinations = Destinations {
        lanes: Vec::new(),
        tasks: JoinSet::new(),
        statuses: Vec::new(),
        store_api: None,
        store: None,
        background: JoinSet::new(),
        stop_background: CancellationToken::new(),
        metrics: Arc::clone(metrics),
        abandon: abandon.clone(),
        data_dir: settings.data_dir.clone(),
    };
    start_local_store(settings, &mut destinations)?;
    start_honeycomb(settings, &mut destinations)?;
    start_xray(&settings.destinations.xray, aws, env, &mut destinations);
    start_cloudwatch_logs(&settings.destinations.cloudwatch_logs, cloudwatch_logs_aws, env, &mut destinations)?;
    for status in &destinations.statuses {
        let (name, state) = (status.name, if status.is_enabled() { "on" } else { "off" });
        tracing::info!(destination = %name, "{name}: {state} — {}", status.reason());
    }
    Ok(destinations)
}

/// The AWS access the X-Ray destination and the sampling proxy use.
pub fn xray_access(xray: &XraySettings) -> AwsAccess {
    AwsAccess {
        region: xray.region.clone(),
        role_arn: xray.role_arn.clone(),
        local_mode: xray.local_mode,
        proxy_address: xray.proxy_address.clone(),
    }
}

fn start_local_store(settings: &Settings, destinations: &mut Destinations) -> Result<(), StartError> {
    let local = &settings.destinations.local;
    let setup = local::setup(local, &settings.data_dir)
        .map_err(|OpenFailed { path, source }| StartError::Store { path, source })?;
    let opened = match setup {
        LocalSetup::Off(reason) => {
            destinations.add_off(Destination::Local, reason, &local.signals);
            return Ok(());
        }
        LocalSetup::On(opened) => opened,
    };
    let status = destinations.add_status(Destination::Local, opened.reason, &local.signals);
    destinations.add(Destination::Local, opened.store, local.lane(), local.spool_options(), status);
    destinations.store_api = Some(crate::admin::store_api::routes(opened.reader.clone()));
    destinations.store = Some(opened.reader);
    Ok(())
}

fn start_honeycomb(settings: &Settings, destinations: &mut Destinations) -> Result<(), StartError> {
    let honeycomb = &settings.destinations.honeycomb;
    match honeycomb::setup(honeycomb).map_err(StartError::Honeycomb)? {
        HoneycombSetup::Off(reason) => destinations.add_off(Destination::Honeycomb, reason, &honeycomb.signals),
        HoneycombSetup::On { client, reason } => {
            let status = destinations.add_status(Destination::Honeycomb, reason, &honeycomb.signals);
            let exporter = Honeycomb::new(*client, honeycomb, Arc::clone(&status));
            destinations.add(Destination::Honeycomb, exporter, honeycomb.lane(), honeycomb.spool_options(), status);
        }
    }
    Ok(())
}

fn start_xray(
    xray: &XraySettings,
    aws: Option<&Result<AwsContext, AwsUnavailable>>,
    env: &BTreeMap<String, String>,
    destinations: &mut Destinations,
) {
    let context = match aws {
        _ if !xray.enabled => {
            destinations.add_off(Destination::Xray, "disabled by destinations.xray.enabled = false", &xray.signals);
            return;
        }
        Some(Ok(context)) => context,
        Some(Err(unavailable)) => {
            destinations.add_off(Destination::Xray, &unavailable.to_string(), &xray.signals);
            return;
        }
        None => {
            destinations.add_off(Destination::Xray, "AWS access was not looked up", &xray.signals);
            return;
        }
    };
    if xray.no_verify_ssl {
        tracing::warn!(
            "NoVerifySSL / destinations.xray.no_verify_ssl is not supported: certificates are always verified"
        );
    }
    // The lane retries with its own backoff and counts every attempt; the SDK does not retry.
    let mut config = aws_sdk_xray::config::Builder::from(&context.sdk_config)
        .retry_config(aws_sdk_xray::config::retry::RetryConfig::disabled());
    if let Some(endpoint) = &xray.endpoint {
        config = config.endpoint_url(endpoint);
    }
    let client = aws_sdk_xray::Client::from_conf(config.build());
    let endpoint = xray.endpoint.clone().or_else(|| env.get("AWS_ENDPOINT_URL_XRAY").cloned());
    let target = endpoint.map_or_else(|| "the regional endpoint".to_string(), |url| url.to_string());
    let reason = format!("PutTraceSegments to {target} in {}", context.region);
    let status = destinations.add_status(Destination::Xray, reason, &xray.signals);
    let errors = Arc::new(BackendErrors::default());
    let translation = XrayTranslation {
        indexed_attributes: xray.indexed_attributes.clone(),
        index_all_attributes: xray.index_all_attributes,
        validate_trace_id_time: xray.validate_trace_id_time,
    };
    let exporter =
        Xray::new(client.clone(), translation, xray.max_documents_per_call, xray.timeout, Arc::clone(&errors));
    destinations.add(Destination::Xray, exporter, xray.lane(), xray.spool_options(), status);
    if xray.telemetry {
        let telemetry = Telemetry {
            client,
            metrics: Arc::clone(&destinations.metrics),
            errors,
            identity: Identity::from_env(env, xray.resource_arn.clone()),
            interval: xray.telemetry_interval,
        };
        destinations.background.spawn(xray_telemetry::run(telemetry, destinations.stop_background.clone()));
    }
}

fn start_cloudwatch_logs(
    cloudwatch: &CloudWatchLogsSettings,
    aws: Option<&Result<AwsContext, AwsUnavailable>>,
    env: &BTreeMap<String, String>,
    destinations: &mut Destinations,
) -> Result<(), StartError> {
    let name = Destination::CloudWatchLogs;
    let mut lane = cloudwatch.lane();
    if cloudwatch.request_log.enabled && !lane.signals.contains(&Signal::Traces) {
        lane.signals.push(Signal::Traces);
    }
    if !cloudwatch.enabled {
        destinations.add_off(name, "disabled by destinations.cloudwatch_logs.enabled = false", &lane.signals);
        return Ok(());
    }
    if !cloudwatch_logs::has_log_group(cloudwatch) {
        let reason = format!("no log group configured ({})", cloudwatch_logs::LOG_GROUP_KEY);
        destinations.add_off(name, &reason, &lane.signals);
        return Ok(());
    }
    let config = LaneConfig::from_settings(cloudwatch).map_err(StartError::CloudWatchLogs)?;
    let context = match aws {
        Some(Ok(context)) => context,
        Some(Err(unavailable)) => {
            destinations.add_off(name, &unavailable.to_string(), &lane.signals);
            return Ok(());
        }
        None => {
            destinations.add_off(name, "AWS access was not looked up", &lane.signals);
            return Ok(());
        }
    };
    // The lane retries (with its backoff, budget and counters); the SDK's own retries would
    // hide throttling from them.
    let mut config_builder = aws_sdk_cloudwatchlogs::config::Builder::from(&context.sdk_config)
        .retry_config(aws_sdk_cloudwatchlogs::config::retry::RetryConfig::disabled());
    if let Some(endpoint) = &cloudwatch.endpoint {
        config_builder = config_builder.endpoint_url(endpoint);
    }
    let client = aws_sdk_cloudwatchlogs::Client::from_conf(config_builder.build());
    let endpoint = cloudwatch
        .endpoint
        .clone()
        .or_else(|| env.get("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS").cloned())
        .or_else(|| env.get("AWS_ENDPOINT_URL").cloned());
    let target = endpoint.unwrap_or_else(|| "the regional endpoint".to_string());
    let mut reason = format!(
        "PutLogEvents to {target} in {}: log group {}, stream {}",
        context.region, config.translation.group, config.translation.stream
    );
    if let Some(request_log) = &config.request_log {
        reason.push_str(&format!("; request log to {} / {}", request_log.group, request_log.stream));
    }
    let status = destinations.add_status(name, reason, &lane.signals);
    let exporter = CloudWatchLogs::new(SdkLogsApi::new(client, cloudwatch.timeout), config, Arc::clone(&status));
    destinations.add(name, exporter, lane, cloudwatch.spool_options(), status);
    Ok(())
}

impl Destinations {
    fn add_status(&mut self, name: Destination, reason: String, signals: &[Signal]) -> Arc<DestinationStatus> {
        let names = signals.iter().map(|s| s.as_str()).collect();
        let status = Arc::new(DestinationStatus::new(name, true, reason, names));
        self.statuses.push(Arc::clone(&status));
        status
    }

    fn add_off(&mut self, name: Destination, reason: &str, signals: &[Signal]) {
        let names = signals.iter().map(|s| s.as_str()).collect();
        self.statuses.push(Arc::new(DestinationStatus::new(name, false, reason, names)));
    }

    /// Starts the lane of an enabled destination, with its disk spool when `spool` is set. A
    /// spool that cannot be opened leaves the lane in memory only, said at ERROR and on
    /// `/status`: the other destinations still start.
    fn add<E: Exporter>(
        &mut self,
        name: Destination,
        exporter: E,
        lane: LaneSettings,
        spool: Option<SpoolOptions>,
        status: Arc<DestinationStatus>,
    ) {
        self.metrics.show_destination(name, &lane.signals);
        let directory = spool::lane_directory(&self.data_dir, name);
        let counts = Arc::new(DestinationCounts::new(name, Arc::clone(&self.metrics)));
        let spool = match spool {
            Some(options) => match Spool::open(&directory, options, Arc::clone(&counts)) {
                Ok(spool) => Some(spool),
                Err(error) => {
                    tracing::error!(destination = %name, %error, "{name}: running without its disk spool");
                    status.record_problem(format!("no disk spool: {error}"));
                    None
                }
            },
            None => {
                let left = spool::count_segment_files(&directory);
                if left > 0 {
                    tracing::warn!(destination = %name, segments = left, directory = %directory.display(), "{name}: its spool is off but holds data from an earlier run; set spool = true to send it");
                }
                None
            }
        };
        let context = LaneContext { counts, status, abandon: self.abandon.clone() };
        let (handle, task) = match spool {
            Some(spool) => lane::spawn_spooled(name, exporter, lane, context, spool),
            None => lane::spawn(name, exporter, lane, context),
        };
        self.lanes.push(handle);
        self.tasks.spawn(async move {
            let _ = task.await;
        });
    }
}
