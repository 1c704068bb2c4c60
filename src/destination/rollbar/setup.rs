//! The Rollbar lane from its settings: off and why, or the client to send with and what
//! `/status` says about it.

use super::RollbarSettings;
use super::client::HyperClient;

/// Why the Rollbar lane could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RollbarError {
    #[error("bad Rollbar endpoint `{0}`: {1}")]
    Endpoint(String, String),
    #[error("the Rollbar access token cannot be sent as a header: {0}")]
    Token(String),
    #[error("cannot set up TLS: {0}")]
    Tls(String),
}

/// Whether the Rollbar lane runs.
pub(crate) enum RollbarSetup {
    /// Off, with the reason `/status` gives.
    Off(&'static str),
    /// On: the client to send with, and the reason `/status` gives.
    On { client: Box<HyperClient>, reason: String },
}

/// Sets up the Rollbar lane when the settings turn it on and give a token.
pub(crate) fn setup(settings: &RollbarSettings) -> Result<RollbarSetup, RollbarError> {
    if !settings.enabled {
        return Ok(RollbarSetup::Off("disabled by destinations.rollbar.enabled = false"));
    }
    let has_token = settings.access_token.as_ref().is_some_and(|token| !token.is_empty());
    if !has_token {
        return Ok(RollbarSetup::Off("ROLLBAR_ACCESS_TOKEN not set"));
    }
    let client = Box::new(HyperClient::new(settings)?);
    Ok(RollbarSetup::On { client, reason: format!("items to {}", settings.item_url()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn with_token() -> RollbarSettings {
        RollbarSettings {
            access_token: Some(Secret::new("0123456789abcdef0123456789abcdef")),
            ..RollbarSettings::default()
        }
    }

    fn off_reason(settings: &RollbarSettings) -> Option<&'static str> {
        match setup(settings).expect("sets up") {
            RollbarSetup::Off(reason) => Some(reason),
            RollbarSetup::On { .. } => None,
        }
    }

    #[test]
    fn without_a_token_it_is_off() {
        assert_eq!(off_reason(&RollbarSettings::default()), Some("ROLLBAR_ACCESS_TOKEN not set"));
        let empty = RollbarSettings { access_token: Some(Secret::new("")), ..RollbarSettings::default() };
        assert_eq!(off_reason(&empty), Some("ROLLBAR_ACCESS_TOKEN not set"));
    }

    #[test]
    fn disabled_is_off_even_with_a_token() {
        let settings = RollbarSettings { enabled: false, ..with_token() };
        assert_eq!(off_reason(&settings), Some("disabled by destinations.rollbar.enabled = false"));
    }

    #[tokio::test]
    async fn with_a_token_it_posts_items_under_the_endpoint() {
        let settings = RollbarSettings { endpoint: "http://127.0.0.1:9/api/1".into(), ..with_token() };
        let Ok(RollbarSetup::On { reason, .. }) = setup(&settings) else { panic!("not on") };
        assert_eq!(reason, "items to http://127.0.0.1:9/api/1/item/");
    }

    #[test]
    fn a_bad_endpoint_fails_the_setup() {
        let settings = RollbarSettings { endpoint: "not a url".into(), ..with_token() };
        assert!(matches!(setup(&settings), Err(RollbarError::Endpoint(..))));
    }
}
