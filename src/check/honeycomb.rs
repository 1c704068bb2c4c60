//! The Honeycomb line: the key checked live with `GET /1/auth` (its team, environment and
//! whether it may send events); a classic key without a dataset is a problem too, and so is an
//! app-side Honeycomb set-up left in the environment while waggle has no key.

use std::collections::BTreeMap;

use http::StatusCode;
use serde::Deserialize;

use super::{CheckLine, reach};
use crate::destination::honeycomb::{self, HoneycombSettings, HyperClient, PostError};

const NAME: &str = "honeycomb";

/// What `GET /1/auth` answers (fields waggle reads; the rest is ignored).
#[derive(Debug, Default, Deserialize)]
struct AuthInfo {
    #[serde(default)]
    team: Named,
    #[serde(default)]
    environment: Named,
    #[serde(default)]
    api_key_access: Option<KeyAccess>,
}

#[derive(Debug, Default, Deserialize)]
struct Named {
    #[serde(default)]
    name: String,
    #[serde(default)]
    slug: String,
}

#[derive(Debug, Default, Deserialize)]
struct KeyAccess {
    #[serde(default = "yes")]
    events: bool,
}

fn yes() -> bool {
    true
}

/// The Honeycomb line: off, the key checked live, or how to move an app-side set-up to waggle.
pub(super) async fn check(settings: &HoneycombSettings, env: &BTreeMap<String, String>) -> Option<CheckLine> {
    let has_key = settings.api_key.as_ref().is_some_and(|key| !key.is_empty());
    if !settings.enabled {
        return Some(CheckLine::off(NAME, "disabled by destinations.honeycomb.enabled = false"));
    }
    if let Some(hint) = honeycomb::app_side_setup_hint(env, has_key) {
        return Some(CheckLine::fail(NAME, hint));
    }
    if !has_key {
        return Some(if settings.dataset.is_some() || settings.endpoint.is_some() {
            CheckLine::fail(NAME, "a dataset or endpoint is set but no API key: set HONEYCOMB_API_KEY")
        } else {
            CheckLine::off(NAME, "HONEYCOMB_API_KEY not set")
        });
    }
    let client = match HyperClient::new(settings) {
        Ok(client) => client,
        Err(error) => return Some(CheckLine::fail(NAME, error.to_string())),
    };
    let target = client.auth_url().to_string();
    let answer = match client.auth().await {
        Ok(answer) => answer,
        Err(PostError::NoAnswer(after)) => return Some(CheckLine::fail(NAME, reach::timed_out(&target, Some(after)))),
        Err(PostError::Failed(chain)) => return Some(CheckLine::fail(NAME, reach::explain(&target, &chain))),
        Err(PostError::Invalid(reason)) => return Some(CheckLine::fail(NAME, reason)),
    };
    Some(judge(settings, &target, answer.status, &answer.body))
}

/// The line for Honeycomb's answer to `GET /1/auth`.
fn judge(settings: &HoneycombSettings, target: &str, status: StatusCode, body: &[u8]) -> CheckLine {
    match status {
        StatusCode::OK => {}
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            return CheckLine::fail(
                NAME,
                format!(
                    "Honeycomb rejected the API key (HTTP {}): check HONEYCOMB_API_KEY (an ingest key of the environment you look at)",
                    status.as_u16()
                ),
            );
        }
        StatusCode::NOT_FOUND if settings.endpoint.is_some() => {
            return CheckLine::ok(NAME, format!("{target} answers, but is not Honeycomb: the key was not checked"));
        }
        other => return CheckLine::fail(NAME, format!("unexpected answer from {target}: HTTP {}", other.as_u16())),
    }
    let info: AuthInfo = match serde_json::from_slice(body) {
        Ok(info) => info,
        Err(error) => return CheckLine::fail(NAME, format!("unreadable answer from {target}: {error}")),
    };
    if info.api_key_access.as_ref().is_some_and(|access| !access.events) {
        return CheckLine::fail(
            NAME,
            "the key may not send events: use an ingest key (or give this key \"Send Events\")",
        );
    }
    let team = display(&info.team);
    let classic = info.environment.slug.is_empty()
        || settings.api_key.as_ref().is_some_and(|key| honeycomb::is_classic_key(key.expose()));
    match (&settings.dataset, classic) {
        (None, true) => CheckLine::fail(
            NAME,
            format!(
                "key accepted (team {team}), but it is a Honeycomb Classic key without a dataset: set HONEYCOMB_DATASET"
            ),
        ),
        (Some(dataset), true) => {
            CheckLine::ok(NAME, format!("key accepted: team {team}, Honeycomb Classic, dataset {dataset}"))
        }
        (_, false) => {
            CheckLine::ok(NAME, format!("key accepted: team {team}, environment {}", display(&info.environment)))
        }
    }
}

/// `Name (slug)`, or whichever of the two is there.
fn display(named: &Named) -> String {
    match (named.name.is_empty(), named.slug.is_empty()) {
        (false, false) if named.name != named.slug => format!("{} ({})", named.name, named.slug),
        (false, _) => named.name.clone(),
        (true, _) => named.slug.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Outcome;
    use crate::config::Secret;

    fn settings(key: &str, dataset: Option<&str>) -> HoneycombSettings {
        HoneycombSettings {
            api_key: Some(Secret::new(key)),
            dataset: dataset.map(str::to_string),
            ..HoneycombSettings::default()
        }
    }

    const ENVIRONMENT_KEY: &str = "hcaik_01jabcdefghijklmnopqrstu";

    fn auth(environment_slug: &str, events: bool) -> Vec<u8> {
        serde_json::json!({
            "api_key_access": {"events": events, "markers": false},
            "environment": {"name": "Production", "slug": environment_slug},
            "team": {"name": "Cruddur", "slug": "cruddur"},
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn an_environment_key_names_its_team_and_environment() {
        let line = judge(&settings(ENVIRONMENT_KEY, None), "x", StatusCode::OK, &auth("production", true));
        assert_eq!(line.outcome, Outcome::Ok);
        assert_eq!(line.message, "key accepted: team Cruddur (cruddur), environment Production (production)");
    }

    #[test]
    fn a_classic_key_without_a_dataset_fails() {
        let line = judge(&settings(ENVIRONMENT_KEY, None), "x", StatusCode::OK, &auth("", true));
        assert_eq!(line.outcome, Outcome::Fail);
        assert!(line.message.ends_with("set HONEYCOMB_DATASET"), "{}", line.message);
        let line = judge(&settings(ENVIRONMENT_KEY, Some("cruddur")), "x", StatusCode::OK, &auth("", true));
        assert_eq!(
            (line.outcome, line.message.as_str()),
            (Outcome::Ok, "key accepted: team Cruddur (cruddur), Honeycomb Classic, dataset cruddur")
        );
    }

    #[test]
    fn a_key_without_event_access_fails() {
        let line = judge(&settings(ENVIRONMENT_KEY, None), "x", StatusCode::OK, &auth("production", false));
        assert_eq!(line.outcome, Outcome::Fail);
    }

    #[test]
    fn a_rejected_key_says_which_variable() {
        let line = judge(&settings("wrong", None), "x", StatusCode::UNAUTHORIZED, b"{}");
        assert_eq!(line.outcome, Outcome::Fail);
        assert!(line.message.starts_with("Honeycomb rejected the API key (HTTP 401)"), "{}", line.message);
    }

    #[tokio::test]
    async fn no_key_is_off_and_a_dataset_without_a_key_fails() {
        let line = check(&HoneycombSettings::default(), &BTreeMap::new()).await.unwrap();
        assert_eq!(line.outcome, Outcome::Off);
        let partial = HoneycombSettings { dataset: Some("d".into()), ..HoneycombSettings::default() };
        assert_eq!(check(&partial, &BTreeMap::new()).await.unwrap().outcome, Outcome::Fail);
    }
}
