//! The local store destination's settings (`[destinations.local]`), re-exported by `config`.

use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use crate::destination::settings::destination_settings;
use crate::model::Signal;
use crate::pipeline::lane::LaneSettings;
use crate::pipeline::retry::RetryPolicy;
use crate::pipeline::spool::{SpoolOptions, WhenSpoolFull};

destination_settings! {
    /// The embedded store: every signal, on disk under `data_dir`, queryable on the admin port.
    pub struct LocalStoreSettings {
        pub enabled: bool,
        /// Size the store's blocks on disk are kept under; the oldest are evicted past it.
        pub max_size: ByteSize,
        /// Data older than this is evicted (whole traces).
        #[serde(with = "humantime_serde")]
        pub max_age: Duration,
    }
}

impl Default for LocalStoreSettings {
    fn default() -> Self {
        LocalStoreSettings {
            enabled: true,
            max_size: ByteSize::mib(256),
            max_age: Duration::from_secs(24 * 3600),
            signals: Signal::ALL.to_vec(),
            queue_size: ByteSize::mib(64),
            batch_max_items: 2048,
            batch_max_size: ByteSize::mib(4),
            batch_timeout: Duration::from_millis(200),
            senders: 1,
            retry: RetryPolicy::default(),
            // The store is on disk already and never down for long.
            spool: false,
            spool_max_size: ByteSize::mib(256),
            spool_when_full: WhenSpoolFull::Refuse,
        }
    }
}

impl LocalStoreSettings {
    /// The store's limits, with the default block policy.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            max_bytes: self.max_size.as_u64(),
            max_age: self.max_age,
            ..crate::store::StoreOptions::default()
        }
    }
}
