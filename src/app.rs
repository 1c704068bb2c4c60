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
use crate::export::local::{LocalStore, StoreError};
use crate::metrics::Metrics;
use crate::pipeline::lane::{self, LaneContext, LaneHandle};
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
}

/// The lanes that were started, and what the admin endpoint shows about them.
struct Destinations {
    lanes: Vec<LaneHandle>,
    tasks: JoinSet<()>,
    statuses: Vec<Arc<DestinationStatus>>,
    store_api: Option<axum::Router>,
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
    let mut destinations =
        Destinations { lanes: Vec::new(), tasks: JoinSet::new(), statuses: Vec::new(), store_api: None };
    let context = |status: &Arc<DestinationStatus>| LaneContext {
        metrics: Arc::clone(metrics),
        status: Arc::clone(status),
        abandon: abandon.clone(),
    };

    let local = &settings.destinations.local;
    let signals: Vec<&'static str> = local.signals.iter().map(|s| s.as_str()).collect();
    let status = if local.enabled {
        let path = crate::export::local::db_path(&settings.data_dir);
        let (store, reader) = LocalStore::open(&path, local.max_size.as_u64())
            .map_err(|source| StartError::Store { path: path.clone(), source })?;
        let reason = format!("embedded store at {} (max {})", path.display(), local.max_size);
        let status = Arc::new(DestinationStatus::new("local", true, reason, signals));
        metrics.show_destination("local", &local.signals);
        let (handle, task) = lane::spawn("local", store, local.lane(), context(&status));
        destinations.lanes.push(handle);
        destinations.tasks.spawn(async move {
            let _ = task.await;
        });
        destinations.store_api = Some(crate::admin::store_api::routes(reader));
        status
    } else {
        let reason = "disabled by destinations.local.enabled = false";
        Arc::new(DestinationStatus::new("local", false, reason, signals))
    };
    destinations.statuses.push(status);

    for status in &destinations.statuses {
        let (name, state) = (status.name, if status.is_enabled() { "on" } else { "off" });
        tracing::info!(destination = name, "{name}: {state} — {}", status.reason());
    }
    Ok(destinations)
}
