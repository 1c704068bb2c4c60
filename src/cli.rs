//! The command line: `waggle [run]`, `waggle config`, `waggle health`, and the flags that
//! override configuration keys.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, ConfigError, LogFormat, Sources};

/// waggle: a local telemetry relay. OTLP on 4318 (HTTP) and 4317 (gRPC), AWS X-Ray segments
/// on UDP 2000; with no cloud account configured, everything goes to an embedded store you
/// can query on the admin port (13133).
#[derive(Debug, Parser)]
#[command(name = "waggle", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub options: Options,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the relay (the default).
    Run,
    /// Print the effective configuration (defaults, file, environment and flags merged),
    /// secrets redacted, and exit.
    Config,
    /// Ask a running waggle's admin endpoint whether it is healthy; exit 0 if so, 1 if not
    /// (for container health checks in images without a shell).
    Health {
        /// Admin URL to check instead of the configured admin endpoint.
        #[arg(long)]
        url: Option<String>,
    },
}

/// Flags; each one overrides a configuration key.
#[derive(Debug, Args, Default)]
pub struct Options {
    /// Config file (TOML). Default: config/waggle.toml when it exists.
    #[arg(short = 'c', long, global = true, env = "WAGGLE_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Log level or filter (log.level): error, warn, info, debug, trace.
    #[arg(short = 'l', long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Log format (log.format).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Append logs to this file instead of standard output (log.file).
    #[arg(short = 'f', long, global = true, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
    /// Directory for the local store (data_dir).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// X-Ray UDP address, as the X-Ray daemon's flag (receivers.xray_udp.endpoint).
    #[arg(short = 'b', long = "bind", global = true, value_name = "HOST:PORT")]
    pub xray_udp_endpoint: Option<String>,
    /// Set any configuration key, e.g. --set receivers.otlp_http.endpoint=0.0.0.0:4318.
    /// Lists are comma-separated. May be repeated.
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

impl Options {
    /// The configuration sources these flags describe, with the process environment.
    pub fn sources(&self) -> Result<Sources, ConfigError> {
        let mut overrides = Vec::new();
        let path = |p: &PathBuf| p.to_string_lossy().into_owned();
        let named = [
            ("log.level", self.log_level.clone()),
            ("log.format", self.log_format.map(|f| if f == LogFormat::Json { "json" } else { "text" }.to_string())),
            ("log.file", self.log_file.as_ref().map(path)),
            ("data_dir", self.data_dir.as_ref().map(path)),
            ("receivers.xray_udp.endpoint", self.xray_udp_endpoint.clone()),
        ];
        for (key, value) in named {
            if let Some(value) = value {
                overrides.push((key.to_string(), value));
            }
        }
        for set in &self.set {
            overrides.push(config::parse_override(set)?);
        }
        Ok(Sources::from_process_env(self.config.clone(), overrides))
    }
}
