//! Configuration: the typed settings and how they are layered from defaults, file,
//! environment and command-line overrides.

mod daemon;
mod load;
pub(crate) mod secret;
mod settings;

pub use daemon::{
    DaemonConfigError, DaemonSettings, DaemonValueError, MIN_BUFFER_MEMORY_MB, Translation, keys as daemon_keys,
    parse_buffer_memory, parse_daemon_config, parse_proxy_address, read_if_daemon_config,
};
pub use load::{
    ConfigError, DEFAULT_CONFIG_FILE, ENV_PREFIX, Loaded, Sources, load, load_with_notices, parse_override,
};
pub use secret::{REDACTED, Secret};
pub use settings::*;

// Request body compression is kept with the compressor; named here as it always was.
pub use crate::destination::compress::Compression;

// Each destination keeps its settings in its own folder; named here as they always were.
pub use crate::destination::cloudwatch_logs::{CloudWatchLogsProtocol, CloudWatchLogsSettings, RequestLogSettings};
pub use crate::destination::honeycomb::{HoneycombRegion, HoneycombSettings};
pub use crate::destination::local::LocalStoreSettings;
pub use crate::destination::rollbar::RollbarSettings;
pub use crate::destination::xray::{XrayProtocol, XraySettings};
pub use crate::resource::ResourceSettings;
