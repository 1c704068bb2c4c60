//! Log output: text or JSON lines, to standard output or a file, filtered by level.

use std::fs::OpenOptions;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("bad log level `{level}`: {reason}")]
    Level { level: String, reason: String },
    #[error("cannot open log file {path}: {source}")]
    File { path: String, source: std::io::Error },
}

/// The X-Ray daemon's level names, mapped to ours (`prod` is the daemon's default, info).
fn daemon_level(level: &str) -> &str {
    match level.to_ascii_lowercase().as_str() {
        "dev" => "trace",
        "prod" => "info",
        _ => level,
    }
}

/// Builds the filter for a level or filter string.
pub fn filter(level: &str) -> Result<EnvFilter, LoggingError> {
    EnvFilter::builder()
        .parse(daemon_level(level))
        .map_err(|e| LoggingError::Level { level: level.to_string(), reason: e.to_string() })
}

/// Installs the global subscriber.
pub fn init(settings: &LogSettings) -> Result<(), LoggingError> {
    let filter = filter(&settings.level)?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(true);
    match &settings.file {
        Some(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| LoggingError::File { path: path.display().to_string(), source })?;
            let builder = builder.with_ansi(false).with_writer(Mutex::new(file));
            match settings.format {
                LogFormat::Json => builder.json().init(),
                LogFormat::Text => builder.init(),
            }
        }
        None => {
            let builder = builder.with_writer(std::io::stdout);
            match settings.format {
                LogFormat::Json => builder.json().init(),
                LogFormat::Text => builder.init(),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_levels_filters_and_the_daemons_names() {
        for level in ["info", "warn", "info,waggle=debug", "dev", "prod", "PROD"] {
            assert!(filter(level).is_ok(), "{level}");
        }
    }

    #[test]
    fn rejects_garbage_with_the_level_named() {
        let error = filter("loud=[").unwrap_err().to_string();
        assert!(error.contains("loud=["), "{error}");
    }
}
