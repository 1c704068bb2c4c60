//! Log output: text or JSON lines, to standard output or a file, filtered by level (or by
//! `RUST_LOG` when it is set). Text is coloured only on a terminal, and never with `NO_COLOR`.
//! The AWS SDK's own lines are kept to ERROR under a configured level: waggle says what went
//! wrong with AWS access in one line of its own (`RUST_LOG` shows the SDK's lines too).

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::io::IsTerminal;
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

/// Crates whose WARN and INFO lines are internals (an instance metadata look-up that fails off
/// AWS, a profile file that is not there): waggle rephrases what matters as one line of its
/// own. Targets match by prefix (`aws_smithy` is every `aws_smithy_*` crate).
const QUIET_TARGETS: [&str; 6] =
    ["aws_config", "aws_runtime", "aws_smithy", "aws_sdk", "aws_credential_types", "aws_sigv4"];

/// Builds the filter for a level or filter string: the AWS SDK's crates at ERROR unless the
/// string names them.
pub fn filter(level: &str) -> Result<EnvFilter, LoggingError> {
    let mut directives = daemon_level(level).to_string();
    for target in QUIET_TARGETS.into_iter().filter(|target| !level.contains(target)) {
        directives.push_str(&format!(",{target}=error"));
    }
    EnvFilter::builder()
        .parse(&directives)
        .map_err(|e| LoggingError::Level { level: level.to_string(), reason: e.to_string() })
}

/// The filter in force: `RUST_LOG` when it is set and not empty, else the configured level.
pub fn effective_filter(level: &str, rust_log: Option<&OsStr>) -> Result<EnvFilter, LoggingError> {
    match rust_log.and_then(OsStr::to_str).filter(|value| !value.trim().is_empty()) {
        Some(directives) => EnvFilter::builder()
            .parse(directives)
            .map_err(|e| LoggingError::Level { level: format!("RUST_LOG={directives}"), reason: e.to_string() }),
        None => filter(level),
    }
}

/// Colour codes only for a person at a terminal: not in a file, a pipe or `docker logs`, and
/// never when `NO_COLOR` is set to anything (<https://no-color.org>).
pub fn use_colour(writes_to_terminal: bool, no_color: Option<&OsStr>) -> bool {
    writes_to_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// Installs the global subscriber.
pub fn init(settings: &LogSettings) -> Result<(), LoggingError> {
    let filter = effective_filter(&settings.level, std::env::var_os("RUST_LOG").as_deref())?;
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
            let colour = use_colour(std::io::stdout().is_terminal(), std::env::var_os("NO_COLOR").as_deref());
            let builder = builder.with_ansi(colour).with_writer(std::io::stdout);
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
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))), "an empty NO_COLOR is unset");
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None), "a pipe or a file");
    }

    #[test]
    fn rust_log_replaces_the_configured_level() {
        let filter = effective_filter("info", Some(OsStr::new("warn,waggle::app=debug"))).unwrap();
        assert_eq!(filter.to_string(), "waggle::app=debug,warn");
        let filter = effective_filter("debug", Some(OsStr::new(" "))).unwrap();
        assert!(filter.to_string().ends_with(",debug"), "an empty RUST_LOG is unset: {filter}");
        assert!(effective_filter("info", None).unwrap().to_string().ends_with(",info"));
    }

    #[test]
    fn the_aws_sdk_is_quiet_under_a_configured_level() {
        let directives = filter("debug").unwrap().to_string();
        assert!(directives.contains("aws_config=error"), "{directives}");
        assert!(directives.contains("aws_runtime=error"), "{directives}");
    }

    #[test]
    fn a_level_that_names_an_sdk_crate_keeps_it() {
        let directives = filter("info,aws_config=debug").unwrap().to_string();
        assert!(directives.contains("aws_config=debug") && !directives.contains("aws_config=error"), "{directives}");
    }

    #[test]
    fn a_bad_rust_log_names_the_variable() {
        let error = effective_filter("info", Some(OsStr::new("loud=["))).unwrap_err().to_string();
        assert!(error.contains("RUST_LOG=loud=["), "{error}");
    }

    #[test]
    fn rejects_garbage_with_the_level_named() {
        let error = filter("loud=[").unwrap_err().to_string();
        assert!(error.contains("loud=["), "{error}");
    }
}
