//! The Rollbar destination's settings (`[destinations.rollbar]`), re-exported by `config`.

use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use crate::config::secret::Secret;
use crate::destination::settings::destination_settings;
use crate::model::Signal;
use crate::pipeline::lane::LaneSettings;
use crate::pipeline::retry::RetryPolicy;
use crate::pipeline::spool::{SpoolOptions, WhenSpoolFull};

/// Where Rollbar's API is: the SDKs' default `endpoint`.
const ROLLBAR_API: &str = "https://api.rollbar.com/api/1/";

destination_settings! {
    /// Rollbar's item API. On when an access token is set.
    pub struct RollbarSettings {
        /// Send to Rollbar when a token is set; false keeps it off even then.
        pub enabled: bool,
        /// A `post_server_item` token (`ROLLBAR_ACCESS_TOKEN`), sent as `X-Rollbar-Access-Token`.
        pub access_token: Option<Secret>,
        /// The API base, as the Rollbar SDKs spell it; items go to `{endpoint}item/`.
        pub endpoint: String,
        /// The items' `environment`; unset: the resource's `deployment.environment.name` (or
        /// `deployment.environment`), else `production`.
        pub environment: Option<String>,
        /// ERROR log records without an exception become message items.
        pub log_errors: bool,
        /// Accept the Rollbar SDKs' own items at `POST /api/1/item/` on the OTLP/HTTP listener.
        pub relay: bool,
        /// Time allowed for one request.
        #[serde(with = "humantime_serde")]
        pub timeout: Duration,
        /// Send through this HTTP proxy (a URL such as http://proxy:3128; `-p` sets it too);
        /// unset: `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` decide.
        pub proxy_address: Option<String>,
    }
}

impl RollbarSettings {
    /// The URL items are posted to.
    pub fn item_url(&self) -> String {
        format!("{}/item/", self.endpoint.trim_end_matches('/'))
    }
}

impl Default for RollbarSettings {
    fn default() -> Self {
        RollbarSettings {
            enabled: true,
            access_token: None,
            endpoint: ROLLBAR_API.to_string(),
            environment: None,
            log_errors: false,
            relay: true,
            timeout: Duration::from_secs(10),
            proxy_address: None,
            signals: vec![Signal::Traces, Signal::Logs],
            queue_size: ByteSize::mib(32),
            batch_max_items: 512,
            batch_max_size: ByteSize::mib(4),
            batch_timeout: Duration::from_millis(200),
            senders: 4,
            retry: RetryPolicy::default(),
            spool: true,
            spool_max_size: ByteSize::mib(64),
            spool_when_full: WhenSpoolFull::Refuse,
        }
    }
}
