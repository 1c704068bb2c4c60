//! The Rollbar line: the access token checked live. Rollbar has no "who am I" call a
//! `post_server_item` token may make (reading a project needs the `read` scope), so the check
//! posts an item Rollbar must refuse as incomplete (an environment and no `data.body`):
//! Rollbar checks the token and its scope before the item, so 422 means the token may post
//! items, and nothing is recorded; 401 or 403 say what is wrong with the token. Shown only
//! when Rollbar is configured (a token, or settings that need one).

use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;

use super::{CheckLine, reach};
use crate::destination::rollbar::{HyperClient, PostError, RollbarClient, RollbarSettings};

const NAME: &str = "rollbar";

/// The item posted: valid JSON with an environment, and no body, which Rollbar refuses (422).
const PROBE: &str = r#"{"data":{"environment":"waggle-check"}}"#;

/// What Rollbar says with an error (`{"err": 1, "message": …}`).
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
}

/// The Rollbar line; `None` when Rollbar is not configured at all.
pub(super) async fn check(settings: &RollbarSettings) -> Option<CheckLine> {
    let has_token = settings.access_token.as_ref().is_some_and(|token| !token.is_empty());
    let default = RollbarSettings::default();
    let partly = settings.environment.is_some() || settings.endpoint != default.endpoint;
    if !has_token {
        return partly.then(|| {
            CheckLine::fail(
                NAME,
                "destinations.rollbar is configured but has no access token: set ROLLBAR_ACCESS_TOKEN",
            )
        });
    }
    if !settings.enabled {
        return Some(CheckLine::off(NAME, "disabled by destinations.rollbar.enabled = false"));
    }
    let client = match HyperClient::new(settings) {
        Ok(client) => client,
        Err(error) => return Some(CheckLine::fail(NAME, error.to_string())),
    };
    let target = settings.item_url();
    let answer = match client.post(Bytes::from_static(PROBE.as_bytes())).await {
        Ok(answer) => answer,
        Err(PostError::NoAnswer(after)) => {
            return Some(CheckLine::fail(NAME, reach::timed_out(&target, Some(after))));
        }
        Err(PostError::Failed(chain)) => {
            return Some(CheckLine::fail(NAME, reach::explain(&target, &chain)));
        }
        Err(PostError::Invalid(reason)) => return Some(CheckLine::fail(NAME, reason)),
    };
    Some(judge(settings, &target, answer.status, &answer.body))
}

/// The line for Rollbar's answer to the probe. Rollbar's messages are not repeated: the one
/// for an unknown token quotes the token.
fn judge(settings: &RollbarSettings, target: &str, status: StatusCode, body: &[u8]) -> CheckLine {
    let message = serde_json::from_slice::<ErrorBody>(body).unwrap_or_default().message.to_ascii_lowercase();
    match status.as_u16() {
        422 | 200..=299 => {
            let environment = settings.environment.as_deref().unwrap_or("from each item's resource, else production");
            CheckLine::ok(
                NAME,
                format!("access token accepted: it may post items to {target} (environment {environment})"),
            )
        }
        403 if message.contains("insufficient privileges") || message.contains("scope") => CheckLine::fail(
            NAME,
            "the access token may not post server items: use the project's post_server_item token in ROLLBAR_ACCESS_TOKEN",
        ),
        401 | 403 => CheckLine::fail(
            NAME,
            format!(
                "Rollbar rejected the access token (HTTP {}): check ROLLBAR_ACCESS_TOKEN (a project access token with the post_server_item scope)",
                status.as_u16()
            ),
        ),
        429 => CheckLine::fail(
            NAME,
            "Rollbar is rate-limiting this token (HTTP 429): items are refused until the limit resets (Settings → Project Access Tokens)",
        ),
        404 => CheckLine::fail(
            NAME,
            format!("{target} is not Rollbar's item API (HTTP 404): check destinations.rollbar.endpoint"),
        ),
        other => CheckLine::fail(NAME, format!("unexpected answer from {target}: HTTP {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Outcome;
    use crate::config::Secret;

    fn settings() -> RollbarSettings {
        RollbarSettings {
            access_token: Some(Secret::new("0123456789abcdef0123456789abcdef")),
            ..RollbarSettings::default()
        }
    }

    fn outcome(status: u16, body: &str) -> (Outcome, String) {
        let line = judge(&settings(), "https://r/api/1/item/", StatusCode::from_u16(status).unwrap(), body.as_bytes());
        (line.outcome, line.message)
    }

    #[test]
    fn an_incomplete_item_refused_means_the_token_is_good() {
        let (outcome, message) = outcome(422, r#"{"err":1,"message":"Invalid format. data.body is required"}"#);
        assert_eq!(outcome, Outcome::Ok);
        assert!(message.starts_with("access token accepted: it may post items to https://r/api/1/item/"), "{message}");
    }

    #[test]
    fn an_unknown_token_is_rejected_without_repeating_rollbars_message() {
        let (outcome, message) = outcome(403, r#"{"err":1,"message":"access token not found: 0123456789abcdef"}"#);
        assert_eq!(outcome, Outcome::Fail);
        assert!(message.starts_with("Rollbar rejected the access token (HTTP 403)"), "{message}");
        assert!(!message.contains("0123456789abcdef"), "{message}");
    }

    #[test]
    fn a_token_without_the_scope_says_which_token_to_use() {
        let body = r#"{"err":1,"message":"insufficient privileges: post_server_item scope is required"}"#;
        let (outcome, message) = outcome(403, body);
        assert_eq!(outcome, Outcome::Fail);
        assert!(message.contains("post_server_item token"), "{message}");
    }

    #[tokio::test]
    async fn not_configured_is_no_line_and_partly_configured_fails() {
        assert!(check(&RollbarSettings::default()).await.is_none());
        let partly = RollbarSettings { environment: Some("staging".into()), ..RollbarSettings::default() };
        assert_eq!(check(&partly).await.map(|line| line.outcome), Some(Outcome::Fail));
    }
}
