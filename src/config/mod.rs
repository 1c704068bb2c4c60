//! Configuration: the typed settings and how they are layered from defaults, file,
//! environment and flags.

mod settings;

pub use settings::*;
