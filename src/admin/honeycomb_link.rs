//! "Open in Honeycomb" for the web UI. When the Honeycomb destination is on and takes traces,
//! the key's team and environment slugs are asked once of Honeycomb's `GET /1/auth`, in the
//! background after start-up (a few tries, never holding anything up), and kept. `GET
//! /api/honeycomb` gives the page what it needs to build a trace link — Honeycomb's UI address,
//! the slugs and, for a Classic key, the dataset — and never the key:
//!
//! - `{"state": "off"}`: Honeycomb is off, or does not take traces;
//! - `{"state": "pending"}`: `/1/auth` has not answered yet;
//! - `{"state": "ready", "ui_url", "team", "environment", "dataset"}` (`environment` is
//!   `null` for a Classic key, `dataset` is `null` unless the key is Classic);
//! - `{"state": "failed", "reason"}`: `/1/auth` refused the key or never answered.
//!
//! The page links a trace to `{ui_url}/{team}/environments/{environment}/datasets/{dataset}/
//! trace?trace_id=…&trace_start_ts=…&trace_end_ts=…` (Honeycomb's direct trace link; Classic:
//! without `environments/{environment}`), the dataset being the trace's root service; and a
//! query filtered on one `service.name` to the query template link of that service's dataset.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::destination::honeycomb::{HoneycombSettings, HyperClient, is_classic_key};
use crate::model::Signal;

/// Tries of `GET /1/auth`, and the wait before each retry.
const AUTH_RETRY_WAITS: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(10)];
/// Honeycomb's UI when the endpoint does not name a region (`api.<region>` → `ui.<region>`).
const DEFAULT_UI_URL: &str = "https://ui.honeycomb.io";

/// Where a trace link points, as `GET /api/honeycomb` answers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LinkState {
    Off,
    Pending,
    Ready(LinkTarget),
    Failed { reason: String },
}

/// Honeycomb's UI address and the slugs a trace link needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinkTarget {
    pub ui_url: String,
    pub team: String,
    /// `None` for a Honeycomb Classic key.
    pub environment: Option<String>,
    /// The dataset of a Classic key (`HONEYCOMB_DATASET`); otherwise each service is a dataset.
    pub dataset: Option<String>,
}

/// What `GET /1/auth` answers that a link needs (the rest is ignored).
#[derive(Debug, Default, Deserialize)]
struct AuthAnswer {
    #[serde(default)]
    team: Slug,
    #[serde(default)]
    environment: Slug,
}

#[derive(Debug, Default, Deserialize)]
struct Slug {
    #[serde(default)]
    slug: String,
}

/// The link state, shared by the background task that fills it and the route that serves it.
#[derive(Clone)]
pub struct HoneycombLink {
    state: Arc<RwLock<LinkState>>,
}

impl HoneycombLink {
    /// Off, or pending with a background task asking `/1/auth` (it ends on its own, or when
    /// `stop` is cancelled).
    pub fn start(settings: &HoneycombSettings, stop: CancellationToken) -> HoneycombLink {
        let has_key = settings.api_key.as_ref().is_some_and(|key| !key.is_empty());
        if !settings.enabled || !has_key || !settings.signals.contains(&Signal::Traces) {
            return HoneycombLink::fixed(LinkState::Off);
        }
        let client = match HyperClient::new(settings) {
            Ok(client) => client,
            Err(error) => return HoneycombLink::fixed(LinkState::Failed { reason: error.to_string() }),
        };
        let link = HoneycombLink::fixed(LinkState::Pending);
        let shared = link.clone();
        let ui_url = ui_url(&settings.base_url());
        let classic_dataset = settings
            .api_key
            .as_ref()
            .is_some_and(|key| is_classic_key(key.expose()))
            .then(|| settings.dataset.clone())
            .flatten();
        tokio::spawn(async move {
            tokio::select! {
                state = ask(&client, ui_url, classic_dataset) => shared.set(state),
                () = stop.cancelled() => {}
            }
        });
        link
    }

    fn fixed(state: LinkState) -> HoneycombLink {
        HoneycombLink { state: Arc::new(RwLock::new(state)) }
    }

    fn set(&self, state: LinkState) {
        *self.state.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = state;
    }

    /// The state now.
    pub fn state(&self) -> LinkState {
        self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

/// `GET /api/honeycomb`.
pub fn routes(link: HoneycombLink) -> Router {
    Router::new().route("/api/honeycomb", get(serve)).with_state(link)
}

async fn serve(State(link): State<HoneycombLink>) -> Json<LinkState> {
    Json(link.state())
}

/// Asks `/1/auth` until it answers (a few tries); a refused key is not asked again.
async fn ask(client: &HyperClient, ui_url: String, classic_dataset: Option<String>) -> LinkState {
    let mut waits = AUTH_RETRY_WAITS.iter();
    loop {
        let reason = match client.auth().await {
            Ok(answer) if answer.status == StatusCode::OK => {
                return target(&answer.body, ui_url, classic_dataset);
            }
            Ok(answer) if matches!(answer.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                return LinkState::Failed {
                    reason: format!("Honeycomb rejected the API key (HTTP {})", answer.status.as_u16()),
                };
            }
            Ok(answer) => format!("Honeycomb's /1/auth answered HTTP {}", answer.status.as_u16()),
            Err(error) => format!("Honeycomb's /1/auth: {error}"),
        };
        match waits.next() {
            Some(wait) => tokio::time::sleep(*wait).await,
            None => {
                tracing::debug!(%reason, "no Honeycomb trace links in the UI");
                return LinkState::Failed { reason };
            }
        }
    }
}

/// The link target from `/1/auth`'s body.
fn target(body: &[u8], ui_url: String, classic_dataset: Option<String>) -> LinkState {
    let answer: AuthAnswer = match serde_json::from_slice(body) {
        Ok(answer) => answer,
        Err(error) => return LinkState::Failed { reason: format!("unreadable answer from /1/auth: {error}") },
    };
    if answer.team.slug.is_empty() {
        return LinkState::Failed { reason: "/1/auth named no team".into() };
    }
    let environment = Some(answer.environment.slug).filter(|slug| !slug.is_empty());
    let dataset = if environment.is_none() { classic_dataset } else { None };
    LinkState::Ready(LinkTarget { ui_url, team: answer.team.slug, environment, dataset })
}

/// Honeycomb's UI for an API base URL: `https://api.eu1.honeycomb.io` → `https://ui.eu1.honeycomb.io`;
/// any other endpoint (a proxy, a stand-in) → the US UI.
fn ui_url(base_url: &str) -> String {
    let host = base_url.split_once("://").map_or(base_url, |(_, rest)| rest);
    let host = host.split(['/', ':']).next().unwrap_or_default();
    match host.strip_prefix("api.") {
        Some(region) if region.ends_with("honeycomb.io") => format!("https://ui.{region}"),
        _ => DEFAULT_UI_URL.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ui_of_each_region_is_its_api_host_with_ui() {
        assert_eq!(ui_url("https://api.honeycomb.io"), "https://ui.honeycomb.io");
        assert_eq!(ui_url("https://api.eu1.honeycomb.io/"), "https://ui.eu1.honeycomb.io");
    }

    #[test]
    fn another_endpoint_links_to_the_us_ui() {
        assert_eq!(ui_url("http://127.0.0.1:4318"), DEFAULT_UI_URL);
        assert_eq!(ui_url("https://api.example.com"), DEFAULT_UI_URL);
    }

    #[test]
    fn an_environment_key_links_by_team_and_environment() {
        let body =
            br#"{"team": {"name": "Cruddur", "slug": "cruddur"}, "environment": {"name": "Dev", "slug": "dev"}}"#;
        let state = target(body, DEFAULT_UI_URL.into(), Some("ignored".into()));
        let expected = LinkTarget {
            ui_url: DEFAULT_UI_URL.into(),
            team: "cruddur".into(),
            environment: Some("dev".into()),
            dataset: None,
        };
        assert_eq!(state, LinkState::Ready(expected));
    }

    #[test]
    fn a_classic_key_links_to_its_dataset() {
        let body = br#"{"team": {"slug": "cruddur"}, "environment": {"name": "", "slug": ""}}"#;
        let LinkState::Ready(target) = target(body, DEFAULT_UI_URL.into(), Some("traces".into())) else {
            panic!("ready")
        };
        assert_eq!((target.environment, target.dataset), (None, Some("traces".into())));
    }

    #[test]
    fn an_answer_without_a_team_gives_no_link() {
        assert!(matches!(target(b"{}", DEFAULT_UI_URL.into(), None), LinkState::Failed { .. }));
        assert!(matches!(target(b"not json", DEFAULT_UI_URL.into(), None), LinkState::Failed { .. }));
    }
}
