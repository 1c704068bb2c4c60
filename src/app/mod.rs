//! Start-up and shutdown: looks up AWS access when an AWS destination wants it, builds the
//! lanes, binds every listener, runs the receivers and the admin endpoint, and on the shutdown
//! signal stops the receivers and gives the lanes a deadline to deliver what they hold.

mod app_env;
mod destinations;
mod listeners;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use self::destinations::Destinations;
use self::listeners::Listeners;
use crate::admin::{self, AdminState};
use crate::aws::{self, AwsContext, AwsUnavailable};
use crate::config::Settings;
use crate::destination::cloudwatch_logs::{self, CloudWatchLogsConfigError};
use crate::destination::honeycomb::HoneycombError;
use crate::destination::rollbar::RollbarError;
use crate::destination::xray::setup as xray_setup;
use crate::limits::nofile::{self, FileLimit};
use crate::limits::{self, CappedListener, MemoryBudget, ServerLimits};
use crate::model::{Receiver, Signal};
use crate::pipeline::lane::LaneHandle;
use crate::pipeline::router::Router;
use crate::receiver::otlp::{grpc as otlp_grpc, http as otlp_http};
use crate::receiver::{rollbar_relay, xray_udp};
use crate::resource::{ResourceAttributes, ResourceError};
use crate::sampling_proxy::{self, SamplingProxy, SamplingProxyError};
use crate::store::StoreError;
use crate::telemetry::counts::ReceiverCounts;
use crate::telemetry::metrics::Metrics;

/// Why waggle could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen for {listener} on {address}: {source}")]
    Bind { listener: &'static str, address: String, source: std::io::Error },
    #[error("cannot open the local store at {path}: {source}")]
    Store { path: PathBuf, source: StoreError },
    #[error("cannot set up the Honeycomb destination: {0}")]
    Honeycomb(HoneycombError),
    #[error("bad X-Ray endpoint: {0}")]
    XrayEndpoint(SamplingProxyError),
    #[error("cannot set up the CloudWatch Logs destination: {0}")]
    CloudWatchLogs(CloudWatchLogsConfigError),
    #[error("cannot set up the Rollbar destination: {0}")]
    Rollbar(RollbarError),
    #[error("bad resource attributes: {0}")]
    Resource(ResourceError),
}

/// Time the lanes get after the shutdown deadline to count what they drop.
const ABANDON_GRACE: Duration = Duration::from_secs(1);

/// Runs waggle until `shutdown` completes, then drains the lanes within the configured
/// deadline.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let resource = resource_attributes(&settings)?;
    let metrics = Arc::new(Metrics::new());
    let abandon = CancellationToken::new();
    let file_limit = nofile::raise_to_hard_limit();
    let mut listeners = Listeners::bind(&settings).await?;
    let bound = listeners.bound_addresses();
    let honeycomb = &settings.destinations.honeycomb;
    let has_honeycomb_key = honeycomb.api_key.as_ref().is_some_and(|key| !key.is_empty());
    if honeycomb.enabled
        && let Some(hint) = crate::destination::honeycomb::app_side_setup_hint(&env, has_honeycomb_key)
    {
        tracing::warn!(destination = "honeycomb", "{hint}");
    }
    let server_limits = server_limits(&settings, file_limit, listeners.tcp_count());
    let aws = look_up_aws(&settings, &env).await;
    let cloudwatch_logs_aws = look_up_cloudwatch_logs_aws(&settings, &env).await;
    let mut destinations = destinations::start(
        &settings,
        &metrics,
        &abandon,
        aws.as_ref(),
        cloudwatch_logs_aws.as_ref().or(aws.as_ref()),
        &env,
    )?;

    let admin_state = Arc::new(AdminState {
        metrics: Arc::clone(&metrics),
        lanes: destinations.lanes.iter().map(LaneHandle::gauge).collect(),
        memory: server_limits.budget.clone(),
        destinations: destinations.statuses.clone(),
        store: destinations.store.clone(),
        ready: false.into(),
        started: SystemTime::now(),
        listeners: listeners.addresses(),
    });
    let router = Arc::new(Router::new(
        std::mem::take(&mut destinations.lanes),
        Arc::clone(&metrics),
        settings.pipeline.retry_after,
        settings.pipeline.stall_timeout,
    ));

    let relay_routes = destinations.rollbar_relay.take().map(|(lane, token)| {
        let relay_router = Router::new(
            vec![lane],
            Arc::clone(&metrics),
            settings.pipeline.retry_after,
            settings.pipeline.stall_timeout,
        );
        let limit = usize::try_from(settings.receivers.otlp_http.max_body_size.as_u64()).unwrap_or(usize::MAX);
        rollbar_relay::routes_within(Arc::new(relay_router), token, limit, &server_limits)
    });

    let stop_receivers = CancellationToken::new();
    let xray_udp_counts = Arc::clone(&destinations.xray_udp_counts);
    let mut receivers = start_receivers(
        &settings,
        &mut listeners,
        (&router, relay_routes, &resource),
        &metrics,
        &xray_udp_counts,
        &server_limits,
        &stop_receivers,
    );
    if let Some(listener) = listeners.xray_tcp.take() {
        let proxy = Arc::new(sampling_proxy_for(&settings, aws.as_ref())?);
        let listener = CappedListener::new("xray_tcp", listener, server_limits.connections);
        let served =
            sampling_proxy::serve_within(listener, proxy, Arc::clone(&metrics), &server_limits, stop_receivers.clone());
        receivers.spawn(logging_failure(served, "X-Ray sampling proxy stopped"));
    }
    drop(router);

    let stop_admin = CancellationToken::new();
    let admin_task = listeners.admin.take().map(|listener| {
        let mut extra = destinations.store_api.take();
        if settings.admin.ui {
            let honeycomb =
                admin::honeycomb_link::HoneycombLink::start(&settings.destinations.honeycomb, stop_admin.clone());
            extra = Some(
                extra.unwrap_or_default().merge(admin::ui::routes()).merge(admin::honeycomb_link::routes(honeycomb)),
            );
        }
        let app = admin::app(Arc::clone(&admin_state), extra);
        let listener = CappedListener::new("admin", listener, server_limits.connections);
        let limits = server_limits.clone();
        let stop = stop_admin.clone();
        tokio::spawn(async move { admin::serve_within(listener, app, &limits, stop).await })
    });

    admin_state.ready.store(true, Ordering::Relaxed);
    log_app_environment(&bound);
    tracing::info!("ready");
    shutdown.await;

    tracing::info!(deadline = ?settings.pipeline.shutdown_timeout, "shutting down: stopping receivers, flushing lanes");
    admin_state.ready.store(false, Ordering::Relaxed);
    drain(&settings, receivers, &mut destinations, stop_receivers, &abandon).await;
    destinations.stop_background.cancel();
    while destinations.background.join_next().await.is_some() {}
    stop_admin.cancel();
    if let Some(task) = admin_task {
        let _ = task.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// The resource attributes to add to every OTLP request, said at INFO when there are any.
fn resource_attributes(settings: &Settings) -> Result<Arc<ResourceAttributes>, StartError> {
    let resource = ResourceAttributes::from_settings(&settings.resource).map_err(StartError::Resource)?;
    if !resource.is_empty() {
        let keys = resource.keys().collect::<Vec<_>>().join(", ");
        let apps_values = if resource.overrides_app() { "replaced" } else { "kept" };
        tracing::info!(attributes = %keys, apps_values, "adding resource attributes to every OTLP span, log and metric");
    }
    Ok(Arc::new(resource))
}

/// What an app sets to send here, one line each, ready to copy.
fn log_app_environment(bound: &app_env::BoundAddresses) {
    let elsewhere = app_env::any_wildcard(bound).then_some("apps in other containers or hosts use this host's name");
    for line in app_env::app_environment(bound) {
        tracing::info!(for_apps = elsewhere, "{line}");
    }
}

/// The memory budget and connection limits every server shares. The per-listener connection
/// cap is lowered so that the TCP listeners together fit the open-file limit.
fn server_limits(settings: &Settings, file_limit: Option<FileLimit>, tcp_listeners: usize) -> ServerLimits {
    let configured = &settings.limits;
    let memory_limit = usize::try_from(configured.memory_limit.as_u64()).unwrap_or(usize::MAX);
    let max_connections = file_limit.map_or(configured.max_connections, |files| {
        limits::connections_per_listener(configured.max_connections, files.soft, tcp_listeners)
    });
    if max_connections < configured.max_connections {
        tracing::info!(
            configured = configured.max_connections,
            max_connections,
            tcp_listeners,
            "lowered the connections each listener keeps, to fit the open-file limit"
        );
    }
    tracing::info!(memory_limit = %configured.memory_limit, max_connections, "limits");
    ServerLimits::new(configured, MemoryBudget::new(memory_limit), max_connections, settings.pipeline.retry_after)
}

/// AWS access, when the X-Ray destination or the sampling proxy wants it, or CloudWatch Logs
/// does with the same access settings.
async fn look_up_aws(
    settings: &Settings,
    env: &BTreeMap<String, String>,
) -> Option<Result<AwsContext, AwsUnavailable>> {
    let xray = &settings.destinations.xray;
    let access = xray_setup::aws_access(xray);
    let cloudwatch = &settings.destinations.cloudwatch_logs;
    let cloudwatch_shares = cloudwatch_logs::wants_aws(cloudwatch)
        && cloudwatch_logs::same_access(&cloudwatch_logs::aws_access(cloudwatch, xray), &access);
    if !xray.enabled && !settings.receivers.xray_tcp.enabled && !cloudwatch_shares {
        return None;
    }
    Some(aws::connect(&access, env).await)
}

/// AWS access for CloudWatch Logs, when it wants it with access settings of its own (else it
/// shares [`look_up_aws`]'s).
async fn look_up_cloudwatch_logs_aws(
    settings: &Settings,
    env: &BTreeMap<String, String>,
) -> Option<Result<AwsContext, AwsUnavailable>> {
    let cloudwatch = &settings.destinations.cloudwatch_logs;
    let xray = &settings.destinations.xray;
    let access = cloudwatch_logs::aws_access(cloudwatch, xray);
    if !cloudwatch_logs::wants_aws(cloudwatch) || cloudwatch_logs::same_access(&access, &xray_setup::aws_access(xray)) {
        return None;
    }
    Some(aws::connect(&access, env).await)
}

/// The sampling proxy signs with the X-Ray destination's access; without it, it answers 503
/// with the reason, so SDKs are told instead of refused.
fn sampling_proxy_for(
    settings: &Settings,
    aws: Option<&Result<AwsContext, AwsUnavailable>>,
) -> Result<SamplingProxy, StartError> {
    let xray = &settings.destinations.xray;
    let tcp = &settings.receivers.xray_tcp;
    let no_access = match aws {
        Some(Ok(_)) => None,
        Some(Err(unavailable)) => Some(unavailable.to_string()),
        None => Some("AWS access was not looked up".to_string()),
    };
    let (region, credentials) = match (aws, &no_access) {
        (Some(Ok(context)), _) => (context.region.clone(), context.credentials.clone()),
        // Never used to sign: the credentials refuse, so every call is answered 503.
        (_, reason) => (
            xray.region.clone().unwrap_or_else(|| "us-east-1".into()),
            aws::unavailable_credentials(reason.clone().unwrap_or_default()),
        ),
    };
    let endpoint =
        sampling_proxy::resolve_endpoint(xray.endpoint.as_deref(), &region).map_err(StartError::XrayEndpoint)?;
    let max_body = usize::try_from(tcp.max_body_size.as_u64()).unwrap_or(usize::MAX);
    let proxy = SamplingProxy::new(endpoint, region, credentials, tcp.timeout)
        .with_max_body_size(max_body)
        .with_proxy_address(xray.proxy_address.as_deref());
    Ok(match no_access {
        Some(reason) => proxy.without_access(reason),
        None => proxy,
    })
}

/// Spawns the OTLP and X-Ray UDP receivers that have a listener (taking their sockets); the
/// Rollbar SDK relay's routes, when on, are served on the OTLP/HTTP listener.
fn start_receivers(
    settings: &Settings,
    listeners: &mut Listeners,
    (router, relay_routes, resource): (&Arc<Router>, Option<axum::Router>, &Arc<ResourceAttributes>),
    metrics: &Arc<Metrics>,
    xray_udp_counts: &Arc<ReceiverCounts>,
    limits: &ServerLimits,
    stop: &CancellationToken,
) -> JoinSet<()> {
    let mut receivers = JoinSet::new();
    if let Some(listener) = listeners.otlp_http.take() {
        metrics.show_receiver(Receiver::OtlpHttp, &Signal::ALL);
        let served = otlp_http::serve_within(
            CappedListener::new("otlp_http", listener, limits.connections),
            settings.receivers.otlp_http.clone(),
            Arc::clone(resource),
            Arc::clone(router),
            Arc::clone(metrics),
            limits.clone(),
            stop.clone(),
            relay_routes,
        );
        receivers.spawn(logging_failure(served, "OTLP/HTTP receiver stopped"));
    }
    if let Some(listener) = listeners.otlp_grpc.take() {
        metrics.show_receiver(Receiver::OtlpGrpc, &Signal::ALL);
        let served = otlp_grpc::serve_within(
            CappedListener::new("otlp_grpc", listener, limits.connections),
            settings.receivers.otlp_grpc.clone(),
            Arc::clone(resource),
            Arc::clone(router),
            Arc::clone(metrics),
            limits.clone(),
            stop.clone(),
        );
        receivers.spawn(logging_failure(served, "OTLP/gRPC receiver stopped"));
    }
    if let Some(socket) = listeners.xray_udp.take() {
        metrics.show_receiver(Receiver::XrayUdp, &[Signal::Traces]);
        let served = xray_udp::serve_within(
            socket,
            Arc::clone(router),
            Arc::clone(metrics),
            Arc::clone(xray_udp_counts),
            limits.budget.clone(),
            stop.clone(),
        );
        receivers.spawn(logging_failure(served, "X-Ray UDP receiver stopped"));
    }
    receivers
}

/// `served`, logging its error (after `what`) if it ends with one: a receiver's task.
async fn logging_failure<E: std::fmt::Display>(served: impl Future<Output = Result<(), E>>, what: &'static str) {
    if let Err(error) = served.await {
        tracing::error!(%error, "{what}");
    }
}

/// Stops the receivers and lets the lanes deliver what they hold, within the deadline; past
/// it, what is left goes to the lane's disk spool (replayed at the next start), or, for a lane
/// without one, is dropped and counted. Each lane task ends after flushing its spool.
async fn drain(
    settings: &Settings,
    mut receivers: JoinSet<()>,
    destinations: &mut Destinations,
    stop_receivers: CancellationToken,
    abandon: &CancellationToken,
) {
    stop_receivers.cancel();
    // Receivers finish their in-flight requests, then drop their router handles; when the
    // last one is gone every lane sees its queue close and sends what it holds.
    let drained = tokio::time::timeout(settings.pipeline.shutdown_timeout, async {
        while receivers.join_next().await.is_some() {}
        while destinations.tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "shutdown deadline passed; what the lanes still hold goes to their disk spools, or is dropped (counted in /metrics) where a lane has none"
        );
        abandon.cancel();
        receivers.abort_all();
        let _ = tokio::time::timeout(ABANDON_GRACE, async { while destinations.tasks.join_next().await.is_some() {} })
            .await;
    }
}
