//! Configuration: the typed settings and how they are layered from defaults, file,
//! environment and command-line overrides.

mod load;
mod secret;
mod settings;

pub use load::{ConfigError, DEFAULT_CONFIG_FILE, ENV_PREFIX, Sources, load, parse_override};
pub use secret::{REDACTED, Secret};
pub use settings::*;
