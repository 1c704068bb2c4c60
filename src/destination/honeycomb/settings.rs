//! The Honeycomb destination's settings (`[destinations.honeycomb]`), re-exported by `config`.

use std::collections::BTreeMap;
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use crate::config::secret::Secret;
use crate::destination::compress::Compression;
use crate::destination::settings::destination_settings;
use crate::model::Signal;
use crate::pipeline::lane::LaneSettings;
use crate::pipeline::retry::RetryPolicy;
use crate::pipeline::spool::{SpoolOptions, WhenSpoolFull};

/// Which Honeycomb API to send to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HoneycombRegion {
    /// `https://api.honeycomb.io`
    Us,
    /// `https://api.eu1.honeycomb.io`
    Eu,
}

destination_settings! {
    /// Honeycomb (or any OTLP/HTTP backend), over OTLP/HTTP protobuf. On when an API key is set.
    pub struct HoneycombSettings {
        /// Send to Honeycomb when an API key is set; false keeps it off even then.
        pub enabled: bool,
        /// The ingest key (`HONEYCOMB_API_KEY`), sent as `x-honeycomb-team`.
        pub api_key: Option<Secret>,
        /// Dataset for metrics, and for traces and logs with a classic key (`HONEYCOMB_DATASET`),
        /// sent as `x-honeycomb-dataset`.
        pub dataset: Option<String>,
        pub region: HoneycombRegion,
        /// Base URL of any OTLP/HTTP receiver; overrides `region`. Paths `/v1/traces`,
        /// `/v1/logs` and `/v1/metrics` are appended.
        pub endpoint: Option<String>,
        /// Extra request headers (values are treated as secrets).
        pub headers: BTreeMap<String, Secret>,
        pub compression: Compression,
        /// Requests are split so none is larger than this before compression (Honeycomb takes 20 MiB).
        pub max_request_size: ByteSize,
        /// Time allowed for one request.
        #[serde(with = "humantime_serde")]
        pub timeout: Duration,
        /// An HTTP proxy for every request (`http://proxy:3128`), reached with CONNECT; else
        /// `HTTPS_PROXY` / `HTTP_PROXY` (`NO_PROXY` is honoured either way). `-p` sets it too.
        pub proxy_address: Option<String>,
    }
}

impl HoneycombSettings {
    /// The base URL requests go to.
    pub fn base_url(&self) -> String {
        match (&self.endpoint, self.region) {
            (Some(endpoint), _) => endpoint.trim_end_matches('/').to_string(),
            (None, HoneycombRegion::Us) => "https://api.honeycomb.io".to_string(),
            (None, HoneycombRegion::Eu) => "https://api.eu1.honeycomb.io".to_string(),
        }
    }
}

impl Default for HoneycombSettings {
    fn default() -> Self {
        HoneycombSettings {
            enabled: true,
            api_key: None,
            dataset: None,
            region: HoneycombRegion::Us,
            endpoint: None,
            headers: BTreeMap::new(),
            compression: Compression::Zstd,
            max_request_size: ByteSize::mib(15),
            timeout: Duration::from_secs(10),
            proxy_address: None,
            signals: Signal::ALL.to_vec(),
            queue_size: ByteSize::mib(64),
            batch_max_items: 8192,
            batch_max_size: ByteSize::mib(8),
            batch_timeout: Duration::from_millis(200),
            senders: 4,
            retry: RetryPolicy::default(),
            spool: true,
            spool_max_size: ByteSize::mib(256),
            spool_when_full: WhenSpoolFull::Refuse,
        }
    }
}
