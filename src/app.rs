//! Start-up and shutdown: builds the lanes from the settings, binds every listener, runs the
//! receivers and the admin endpoint, and on the shutdown signal stops the receivers and gives
//! the lanes a deadline to deliver what they hold.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminState};
use crate::batch::Signal;
use crate::config::Settings;
use crate::export::Exporter;
use crate::export::honeycomb::{Honeycomb, HoneycombError};
use crate::export::local::{LocalStore, StoreError, StoreReader};
use crate::metrics::Metrics;
use crate::pipeline::lane::{self, LaneContext, LaneHandle, LaneSettings};
use crate::pipeline::router::Router;
use crate::receiver::{otlp_grpc, otlp_http, xray_udp};
use crate::status::DestinationStatus;

/// Why waggle could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen for {listener} on {address}: {source}")]
    Bind { listener: &'static str, address: String, source: std::io::Error },
    #[error("cannot open the local store at {path}: {source}")]
    Store { path: PathBuf, source: StoreError },
    #[error("cannot set up the Honeycomb destination: {0}")]
    Honeycomb(HoneycombError),
}

/// The lanes that were started, and what the admin endpoint shows about them.
struct Destinations {
    lanes: Vec<LaneHandle>,
    tasks: JoinSet<()>,
    statuses: Vec<Arc<DestinationStatus>>,
    store_api: Option<axum::Router>,
    store: Option<StoreReader>,
    metrics: Arc<Metrics>,
    abandon: CancellationToken,
}

/// Every socket waggle listens on, bound before anything is served.
struct Listeners {
    otlp_http: Option<TcpListener>,
    otlp_grpc: Option<TcpListener>,
    xray_udp: Option<UdpSocket>,
    admin: Option<TcpListener>,
}

/// Runs waggle until `shutdown` completes, then drains the lanes within the configured
/// deadline.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    let metrics = Arc::new(Metrics::new());
    let abandon = CancellationToken::new();
    let listeners = Listeners::bind(&settings).await?;
    let mut destinations = start_destinations(&settings, &metrics, &abandon)?;

    let admin_state = Arc::new(AdminState {
        metrics: Arc::clone(&metrics),
        lanes: destinations.lanes.iter().map(LaneHandle::gauge).collect(),
        destinations: destinations.statuses.clone(),
        store: destinations.store.clone(),
        ready: false.into(),
        started: SystemTime::now(),
    });
    let router = Arc::new(Router::new(
        std::mem::take(&mut destinations.lanes),
        Arc::clone(&metrics),
        settings.pipeline.retry_after,
        settings.pipeline.stall_timeout,
    ));

    let stop_receivers = CancellationToken::new();
    let mut receivers = JoinSet::new();
    if listeners.otlp_http.is_some() {
        metrics.show_receiver("otlp_http", &Signal::ALL);
    }
    if listeners.otlp_grpc.is_some() {
        metrics.show_receiver("otlp_grpc", &Signal::ALL);
    }
    if listeners.xray_udp.is_some() {
        metrics.show_receiver("xray_udp", &[Signal::Traces]);
    }
    if let Some(listener) = listeners.otlp_http {
        let (settings, router, metrics, stop) =
            (settings.receivers.otlp_http.clone(), Arc::clone(&router), Arc::clone(&metrics), stop_receivers.clone());
        receivers.spawn(async move {
            if let Err(error) = otlp_http::serve(listener, settings, router, metrics, stop).await {
                tracing::error!(%error, "OTLP/HTTP receiver stopped");
            }
        });
    }
    if let Some(listener) = listeners.otlp_grpc {
        let (settings, router, metrics, stop) =
            (settings.receivers.otlp_grpc.clone(), Arc::clone(&router), Arc::clone(&metrics), stop_receivers.clone());
        receivers.spawn(async move {
            if let Err(error) = otlp_grpc::serve(listener, settings, router, metrics, stop).await {
                tracing::error!(%error, "OTLP/gRPC receiver stopped");
            }
        });
    }
    if let Some(socket) = listeners.xray_udp {
        let (router, metrics, stop) = (Arc::clone(&router), Arc::clone(&metrics), stop_receivers.clone());
        receivers.spawn(async move {
            if let Err(error) = xray_udp::serve(socket, router, metrics, stop).await {
                tracing::error!(%error, "X-Ray UDP receiver stopped");
            }
        });
    }
    drop(router);

    let stop_admin = CancellationToken::new();
    let admin_task = listeners.admin.map(|listener| {
        let app = admin::app(Arc::clone(&admin_state), destinations.store_api.take());
        tokio::spawn(admin::serve(listener, app, stop_admin.clone()))
    });

    admin_state.ready.store(true, Ordering::Relaxed);
    tracing::info!("ready");
    shutdown.await;

    tracing::info!(deadline = ?settings.pipeline.shutdown_timeout, "shutting down: stopping receivers, flushing lanes");
    admin_state.ready.store(false, Ordering::Relaxed);
    stop_receivers.cancel();
    // Receivers finish their in-flight requests, then drop their router handles; when the
    // last one is gone every lane sees its queue close and sends what it holds.
    let drained = tokio::time::timeout(settings.pipeline.shutdown_timeout, async {
        while receivers.join_next().await.is_some() {}
        while destinations.tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("shutdown deadline passed; dropping what the lanes still hold (counted in /metrics)");
        abandon.cancel();
        receivers.abort_all();
        let grace = std::time::Duration::from_secs(1);
        let _ = tokio::time::timeout(grace, async { while destinations.tasks.join_next().await.is_some() {} }).await;
    }
    stop_admin.cancel();
    if let Some(task) = admin_task {
        let _ = task.await;
    }
    tracing::info!("stopped");
    Ok(())
}

impl Listeners {
    async fn bind(settings: &Settings) -> Result<Self, StartError> {
        let receivers = &settings.receivers;
        Ok(Listeners {
            otlp_http: bind_tcp("otlp_http", receivers.otlp_http.enabled, &receivers.otlp_http.endpoint).await?,
            otlp_grpc: bind_tcp("otlp_grpc", receivers.otlp_grpc.enabled, &receivers.otlp_grpc.endpoint).await?,
            xray_udp: bind_udp("xray_udp", receivers.xray_udp.enabled, &receivers.xray_udp.endpoint).await?,
            admin: bind_tcp("admin", settings.admin.enabled, &settings.admin.endpoint).await?,
        })
    }
}

async fn bind_tcp(listener: &'static str, enabled: bool, address: &str) -> Result<Option<TcpListener>, StartError> {
    if !enabled {
        tracing::info!(listener, "disabled");
        return Ok(None);
    }
    let bound = TcpListener::bind(address).await.map_err(|source| bind_error(listener, address, source))?;
    log_listening(listener, bound.local_addr());
    Ok(Some(bound))
}

async fn bind_udp(listener: &'static str, enabled: bool, address: &str) -> Result<Option<UdpSocket>, StartError> {
    if !enabled {
        tracing::info!(listener, "disabled");
        return Ok(None);
    }
    let bound = UdpSocket::bind(address).await.map_err(|source| bind_error(listener, address, source))?;
    log_listening(listener, bound.local_addr());
    Ok(Some(bound))
}

fn bind_error(listener: &'static str, address: &str, source: std::io::Error) -> StartError {
    StartError::Bind { listener, address: address.to_string(), source }
}

fn log_listening(listener: &'static str, address: std::io::Result<SocketAddr>) {
    match address {
        Ok(address) => tracing::info!(listener, %address, "listening"),
        Err(error) => tracing::info!(listener, %error, "listening (address unknown)"),
    }
}

/// Starts a lane for every enabled destination and logs one line per destination: on, or off
/// and why.
fn start_destinations(
    settings: &Settings,
    metrics: &Arc<Metrics>,
    abandon: &CancellationToken,
) -> Result<Destinations, StartError> {
    let mut destinations = Destinations {
        lanes: Vec::new(),
        tasks: JoinSet::new(),
        statuses: Vec::new(),
        store_api: None,
        store: None,
        metrics: Arc::clone(metrics),
        abandon: abandon.clone(),
    };
    start_local_store(settings, &mut destinations)?;
    start_honeycomb(settings, &mut destinations)?;
    for status in &destinations.statuses {
        let (name, state) = (status.name, if status.is_enabled() { "on" } else { "off" });
        tracing::info!(destination = name, "{name}: {state} — {}", status.reason());
    }
    Ok(destinations)
}

fn start_local_store(settings: &Settings, destinations: &mut Destinations) -> Result<(), StartError> {
    let local = &settings.destinations.local;
    if !local.enabled {
        destinations.add_off("local", "disabled by destinations.local.enabled = false", &local.signals);
        return Ok(());
    }
    let path = crate::export::local::db_path(&settings.data_dir);
    let (store, reader) = LocalStore::open(&path, local.max_size.as_u64())
        .map_err(|source| StartError::Store { path: path.clone(), source })?;
    let reason = format!("embedded store at {} (max {})", path.display(), local.max_size);
    let status = destinations.add_status("local", reason, &local.signals);
    destinations.add("local", store, local.lane(), status);
    destinations.store_api = Some(crate::admin::store_api::routes(reader.clone()));
    destinations.store = Some(reader);
    Ok(())
}

fn start_honeycomb(settings: &Settings, destinations: &mut Destinations) -> Result<(), StartError> {
    let honeycomb = &settings.destinations.honeycomb;
    let has_key = honeycomb.api_key.as_ref().is_some_and(|key| !key.is_empty());
    if !honeycomb.enabled {
        destinations.add_off("honeycomb", "disabled by destinations.honeycomb.enabled = false", &honeycomb.signals);
        return Ok(());
    }
    if !has_key {
        destinations.add_off("honeycomb", "HONEYCOMB_API_KEY not set", &honeycomb.signals);
        return Ok(());
    }
    let reason = format!("OTLP/HTTP to {}", honeycomb.base_url());
    let status = destinations.add_status("honeycomb", reason, &honeycomb.signals);
    let exporter = Honeycomb::new(honeycomb, Arc::clone(&status)).map_err(StartError::Honeycomb)?;
    destinations.add("honeycomb", exporter, honeycomb.lane(), status);
    Ok(())
}

impl Destinations {
    fn add_status(&mut self, name: &'static str, reason: String, signals: &[Signal]) -> Arc<DestinationStatus> {
        let names = signals.iter().map(|s| s.as_str()).collect();
        let status = Arc::new(DestinationStatus::new(name, true, reason, names));
        self.statuses.push(Arc::clone(&status));
        status
    }

    fn add_off(&mut self, name: &'static str, reason: &str, signals: &[Signal]) {
        let names = signals.iter().map(|s| s.as_str()).collect();
        self.statuses.push(Arc::new(DestinationStatus::new(name, false, reason, names)));
    }

    /// Starts the lane of an enabled destination.
    fn add<E: Exporter>(
        &mut self,
        name: &'static str,
        exporter: E,
        lane: LaneSettings,
        status: Arc<DestinationStatus>,
    ) {
        self.metrics.show_destination(name, &lane.signals);
        let context = LaneContext { metrics: Arc::clone(&self.metrics), status, abandon: self.abandon.clone() };
        let (handle, task) = lane::spawn(name, exporter, lane, context);
        self.lanes.push(handle);
        self.tasks.spawn(async move {
            let _ = task.await;
        });
    }
}
