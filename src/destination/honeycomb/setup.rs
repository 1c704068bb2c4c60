//! The Honeycomb lane from its settings: off and why, or the client to send with and what
//! `/status` says about it.

use super::HoneycombSettings;
use super::client::HyperClient;

/// Why the Honeycomb lane could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum HoneycombError {
    #[error("bad Honeycomb endpoint `{0}`: {1}")]
    Endpoint(String, String),
    #[error("bad header {name}: {reason}")]
    Header { name: String, reason: String },
    #[error("cannot set up TLS: {0}")]
    Tls(String),
}

/// Whether the Honeycomb lane runs.
pub(crate) enum HoneycombSetup {
    /// Off, with the reason `/status` gives.
    Off(&'static str),
    /// On: the client to send with, and the reason `/status` gives.
    On { client: Box<HyperClient>, reason: String },
}

/// Sets up the Honeycomb lane when the settings turn it on and give an API key.
pub(crate) fn setup(settings: &HoneycombSettings) -> Result<HoneycombSetup, HoneycombError> {
    if !settings.enabled {
        return Ok(HoneycombSetup::Off("disabled by destinations.honeycomb.enabled = false"));
    }
    let has_key = settings.api_key.as_ref().is_some_and(|key| !key.is_empty());
    if !has_key {
        return Ok(HoneycombSetup::Off("HONEYCOMB_API_KEY not set"));
    }
    let client = Box::new(HyperClient::new(settings)?);
    Ok(HoneycombSetup::On { client, reason: format!("OTLP/HTTP to {}", settings.base_url()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn with_key() -> HoneycombSettings {
        HoneycombSettings { api_key: Some(Secret::new("k")), ..HoneycombSettings::default() }
    }

    fn off_reason(settings: &HoneycombSettings) -> Option<&'static str> {
        match setup(settings).expect("sets up") {
            HoneycombSetup::Off(reason) => Some(reason),
            HoneycombSetup::On { .. } => None,
        }
    }

    #[test]
    fn disabled_is_off_even_with_a_key() {
        let settings = HoneycombSettings { enabled: false, ..with_key() };
        assert_eq!(off_reason(&settings), Some("disabled by destinations.honeycomb.enabled = false"));
    }

    #[test]
    fn an_empty_key_is_no_key() {
        let settings = HoneycombSettings { api_key: Some(Secret::new("")), ..HoneycombSettings::default() };
        assert_eq!(off_reason(&settings), Some("HONEYCOMB_API_KEY not set"));
    }

    #[tokio::test]
    async fn with_a_key_it_sends_to_the_endpoint() {
        let settings = HoneycombSettings { endpoint: Some("http://127.0.0.1:4318/".into()), ..with_key() };
        let Ok(HoneycombSetup::On { reason, .. }) = setup(&settings) else { panic!("not on") };
        assert_eq!(reason, "OTLP/HTTP to http://127.0.0.1:4318");
    }

    #[test]
    fn a_bad_endpoint_fails_the_setup() {
        let settings = HoneycombSettings { endpoint: Some("not a url".into()), ..with_key() };
        assert!(matches!(setup(&settings), Err(HoneycombError::Endpoint(..))));
    }
}
