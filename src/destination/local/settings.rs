//! The local store destination's settings (`[destinations.local]`), re-exported by `config`.

use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use crate::destination::settings::destination_settings;
use crate::model::Signal;
use crate::pipeline::lane::LaneSettings;
use crate::pipeline::retry::RetryPolicy;
use crate::pipeline::spool::SpoolOptions;

destination_settings! {
    /// The embedded store: every signal, on disk under `data_dir`, queryable on the admin port.
    pub struct LocalStoreSettings {
        pub enabled: bool,
        /// Size the store is kept under; the oldest rows are evicted past it.
        pub max_size: ByteSize,
    }
}

impl Default for LocalStoreSettings {
    fn default() -> Self {
        LocalStoreSettings {
            enabled: true,
            max_size: ByteSize::mib(256),
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
        }
    }
}
