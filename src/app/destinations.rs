//! Starts a lane for every enabled destination and says, in one log line and on `/status`,
//! whether each is on, or off and why. Once all are started it decides what the local store's
//! lane does when it cannot keep up ([`let_the_store_shed`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::StartError;
use crate::aws::{AwsContext, AwsUnavailable};
use crate::config::{CloudWatchLogsSettings, RollbarSettings, Secret, Settings, XraySettings};
use crate::destination::Exporter;
use crate::destination::cloudwatch_logs::{self, CloudWatchLogsExporter, NotStarted};
use crate::destination::honeycomb::{self, Honeycomb, HoneycombSetup};
use crate::destination::local::{self, LocalSetup, OpenFailed};
use crate::destination::rollbar::{self, Rollbar, RollbarSetup};
use crate::destination::xray;
use crate::destination::xray::setup::XrayExporter;
use crate::model::{Destination, LossReason, Signal};
use crate::pipeline::lane::{self, LaneContext, LaneHandle, LaneSettings, WhenFull};
use crate::pipeline::spool::{self, Spool, SpoolOptions};
use crate::store::StoreReader;
use crate::telemetry::counts::{DestinationCounts, ReceiverCounts};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::status::DestinationStatus;

/// The lanes that were started, and what the admin endpoint shows about them.
pub(super) struct Destinations {
    pub lanes: Vec<LaneHandle>,
    /// Each lane's task, done once it delivered what it held after its queue closed.
    pub tasks: JoinSet<()>,
    pub statuses: Vec<Arc<DestinationStatus>>,
    pub store_api: Option<axum::Router>,
    pub store: Option<StoreReader>,
    /// Background work that is not a lane (X-Ray telemetry); stopped at shutdown.
    pub background: JoinSet<()>,
    pub stop_background: CancellationToken,
    /// What the X-Ray UDP receiver took in and turned away, for the X-Ray daemon telemetry.
    pub xray_udp_counts: Arc<ReceiverCounts>,
    /// The Rollbar lane and waggle's token, when the Rollbar SDK relay is on.
    pub rollbar_relay: Option<(LaneHandle, Secret)>,
    metrics: Arc<Metrics>,
    abandon: CancellationToken,
    /// Spooled lanes keep their segments under `<data_dir>/spool/<name>`.
    data_dir: PathBuf,
}

/// Starts every destination. `aws` is the outcome of looking for AWS access, when an AWS
/// destination wanted it; `cloudwatch_logs_aws` the one CloudWatch Logs uses (the same, unless
/// it has access settings of its own).
pub(super) fn start(
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
        xray_udp_counts: Arc::new(ReceiverCounts::default()),
        rollbar_relay: None,
        metrics: Arc::clone(metrics),
        abandon: abandon.clone(),
        data_dir: settings.data_dir.clone(),
    };
    start_local_store(settings, &mut destinations)?;
    start_honeycomb(settings, &mut destinations)?;
    start_xray(&settings.destinations.xray, aws, env, &mut destinations);
    start_cloudwatch_logs(&settings.destinations.cloudwatch_logs, cloudwatch_logs_aws, env, &mut destinations)?;
    start_rollbar(&settings.destinations.rollbar, &mut destinations)?;
    let shed = let_the_store_shed(&mut destinations.lanes);
    for status in &destinations.statuses {
        let (name, state) = (status.name, if status.is_enabled() { "on" } else { "off" });
        tracing::info!(destination = %name, "{name}: {state} — {}", status.reason());
    }
    if !shed.is_empty() {
        let shed = shed.iter().map(|signal| signal.as_str()).collect::<Vec<_>>().join(", ");
        tracing::info!(destination = %Destination::Local, "{}: when the store falls behind, it drops {shed} (counted as store_behind) instead of refusing callers, as other destinations take them", Destination::Local);
    }
    Ok(destinations)
}

/// The local store never holds up the other destinations: for each signal another running
/// lane also takes, the store's lane sheds what it cannot take (counted as dropped,
/// `store_behind`) instead of refusing the request. For a signal only the store takes, it
/// refuses like any lane, so the caller retries (429 + `Retry-After`). Returns the signals it
/// sheds.
fn let_the_store_shed(lanes: &mut [LaneHandle]) -> Vec<Signal> {
    let Some(store) = lanes.iter().position(|lane| lane.name == Destination::Local) else { return Vec::new() };
    let shed: Vec<Signal> = Signal::ALL
        .into_iter()
        .filter(|&signal| {
            lanes[store].takes(signal) && lanes.iter().any(|lane| lane.name != Destination::Local && lane.takes(signal))
        })
        .collect();
    for &signal in &shed {
        lanes[store].set_when_full(signal, WhenFull::Shed(LossReason::StoreBehind));
    }
    shed
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
    let counts = destinations.counts(Destination::Local);
    destinations.add(opened.store, local.lane(), local.spool_options(), status, counts);
    destinations.store_api = Some(crate::admin::store_routes(opened.reader.clone()));
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
            let counts = destinations.counts(Destination::Honeycomb);
            destinations.add(exporter, honeycomb.lane(), honeycomb.spool_options(), status, counts);
        }
    }
    Ok(())
}

fn start_xray(
    settings: &XraySettings,
    aws: Option<&Result<AwsContext, AwsUnavailable>>,
    env: &BTreeMap<String, String>,
    destinations: &mut Destinations,
) {
    let setup = match xray::setup::set_up(settings, aws, env) {
        Ok(setup) => setup,
        Err(off) => {
            destinations.add_off(Destination::Xray, &off, &settings.signals);
            return;
        }
    };
    let status = destinations.add_status(Destination::Xray, setup.reason.clone(), &settings.signals);
    // The telemetry reads what the lane counts, and what the UDP receiver counts.
    let counts = destinations.counts(Destination::Xray);
    let parts = setup.start(Arc::clone(&status), Arc::clone(&counts), Arc::clone(&destinations.xray_udp_counts));
    match parts.exporter {
        XrayExporter::Segments(exporter) => {
            destinations.add(exporter, settings.lane(), settings.spool_options(), status, counts);
        }
        XrayExporter::Otlp(exporter) => {
            destinations.add(*exporter, settings.lane(), settings.spool_options(), status, counts);
        }
    }
    if let Some(telemetry) = parts.telemetry {
        destinations.background.spawn(xray::telemetry::run(telemetry, destinations.stop_background.clone()));
    }
    // Which protocol the account takes: one line, in the background, stopped at shutdown.
    let stop = destinations.stop_background.clone();
    destinations.background.spawn(async move {
        tokio::select! {
            () = xray::transaction_search::log_transaction_search(parts.check) => {}
            () = stop.cancelled() => {}
        }
    });
}

fn start_cloudwatch_logs(
    settings: &CloudWatchLogsSettings,
    aws: Option<&Result<AwsContext, AwsUnavailable>>,
    env: &BTreeMap<String, String>,
    destinations: &mut Destinations,
) -> Result<(), StartError> {
    let name = Destination::CloudWatchLogs;
    let lane = cloudwatch_logs::lane_settings(settings);
    let setup = match cloudwatch_logs::set_up(settings, aws, env) {
        Ok(setup) => setup,
        Err(NotStarted::Off(reason)) => {
            destinations.add_off(name, &reason, &lane.signals);
            return Ok(());
        }
        Err(NotStarted::Invalid(error)) => return Err(StartError::CloudWatchLogs(error)),
    };
    let status = destinations.add_status(name, setup.reason.clone(), &lane.signals);
    let counts = destinations.counts(name);
    match setup.start(Arc::clone(&status)) {
        CloudWatchLogsExporter::PutLogEvents(exporter) => {
            destinations.add(*exporter, lane, settings.spool_options(), status, counts);
        }
        CloudWatchLogsExporter::Otlp(exporter) => {
            destinations.add(*exporter, lane, settings.spool_options(), status, counts);
        }
    }
    Ok(())
}

fn start_rollbar(settings: &RollbarSettings, destinations: &mut Destinations) -> Result<(), StartError> {
    let name = Destination::Rollbar;
    let (client, reason) = match rollbar::setup(settings).map_err(StartError::Rollbar)? {
        RollbarSetup::Off(reason) => {
            destinations.add_off(name, reason, &settings.signals);
            return Ok(());
        }
        RollbarSetup::On { client, reason } => (client, reason),
    };
    let relay = settings.relay && settings.signals.contains(&Signal::Logs);
    let reason = match (settings.relay, relay) {
        (true, true) => format!("{reason}; the Rollbar SDK relay is on"),
        (true, false) => format!("{reason}; the Rollbar SDK relay is off (it needs logs in signals)"),
        (false, _) => reason,
    };
    let status = destinations.add_status(name, reason, &settings.signals);
    let exporter = Rollbar::new(*client, settings, Arc::clone(&status));
    let counts = destinations.counts(name);
    destinations.add(exporter, settings.lane(), settings.spool_options(), status, counts);
    if relay && let (Some(lane), Some(token)) = (destinations.lanes.last(), settings.access_token.clone()) {
        destinations.rollbar_relay = Some((lane.clone(), token));
    }
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

    /// The counts a destination's lane records into (made before the lane when something else,
    /// such as the X-Ray telemetry, reads them too).
    fn counts(&self, name: Destination) -> Arc<DestinationCounts> {
        Arc::new(DestinationCounts::new(name, Arc::clone(&self.metrics)))
    }

    /// Starts the lane of an enabled destination (named by its status), with its disk spool
    /// when `spool` is set. A spool that cannot be opened leaves the lane in memory only, said
    /// at ERROR and on `/status`: the other destinations still start.
    fn add<E: Exporter>(
        &mut self,
        exporter: E,
        lane: LaneSettings,
        spool: Option<SpoolOptions>,
        status: Arc<DestinationStatus>,
        counts: Arc<DestinationCounts>,
    ) {
        let name = status.name;
        status.attach_counts(Arc::clone(&counts));
        self.metrics.show_destination(name, &lane.signals);
        let directory = spool::lane_directory(&self.data_dir, name);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    /// The local store in `data_dir`, and Honeycomb (sending nowhere: nothing is sent) on for
    /// `honeycomb` signals, when given.
    fn settings(data_dir: &std::path::Path, honeycomb: Option<&[Signal]>) -> Settings {
        let mut settings = Settings { data_dir: data_dir.to_path_buf(), ..Settings::default() };
        if let Some(signals) = honeycomb {
            let honeycomb = &mut settings.destinations.honeycomb;
            honeycomb.api_key = Some(Secret::new("test-key"));
            honeycomb.endpoint = Some("http://127.0.0.1:9".to_string());
            honeycomb.signals = signals.to_vec();
        }
        settings
    }

    /// Starts the destinations and returns what the local store's lane does when full, per signal.
    fn store_when_full(settings: &Settings) -> [WhenFull; 3] {
        let destinations =
            start(settings, &Arc::new(Metrics::new()), &CancellationToken::new(), None, None, &BTreeMap::new())
                .expect("destinations start");
        let store = destinations.lanes.iter().find(|lane| lane.name == Destination::Local).expect("the store runs");
        Signal::ALL.map(|signal| store.when_full(signal))
    }

    const SHED: WhenFull = WhenFull::Shed(LossReason::StoreBehind);

    #[tokio::test]
    async fn with_honeycomb_on_the_store_sheds_every_signal_both_take() {
        let data_dir = tempfile::tempdir().unwrap();
        assert_eq!(store_when_full(&settings(data_dir.path(), Some(&Signal::ALL))), [SHED; 3]);
    }

    #[tokio::test]
    async fn the_store_refuses_a_signal_only_it_takes() {
        let data_dir = tempfile::tempdir().unwrap();
        let settings = settings(data_dir.path(), Some(&[Signal::Traces]));
        assert_eq!(store_when_full(&settings), [SHED, WhenFull::Refuse, WhenFull::Refuse]);
    }

    #[tokio::test]
    async fn alone_the_store_refuses() {
        let data_dir = tempfile::tempdir().unwrap();
        assert_eq!(store_when_full(&settings(data_dir.path(), None)), [WhenFull::Refuse; 3]);
    }

    #[tokio::test]
    async fn a_destination_that_is_configured_but_off_does_not_make_the_store_shed() {
        let data_dir = tempfile::tempdir().unwrap();
        let mut settings = settings(data_dir.path(), Some(&Signal::ALL));
        settings.destinations.honeycomb.enabled = false;
        assert_eq!(store_when_full(&settings), [WhenFull::Refuse; 3]);
    }
}
