//! The `waggle` binary: parses the command line, loads the configuration and runs the relay
//! until SIGTERM or SIGINT.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use waggle::cli::{Cli, Command};
use waggle::{app, config, health, logging};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match cli.options.sources().and_then(|sources| config::load(&sources)) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("waggle: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Run) {
        Command::Config => print_config(&settings),
        Command::Health { url } => {
            let url = url.unwrap_or_else(|| health::healthz_url(&settings.admin.endpoint));
            match runtime().block_on(health::check(&url)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(reason) => {
                    eprintln!("waggle: unhealthy: {reason}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run => {
            if let Err(error) = logging::init(&settings.log) {
                eprintln!("waggle: {error}");
                return ExitCode::from(2);
            }
            tracing::info!(version = env!("CARGO_PKG_VERSION"), "starting waggle");
            match runtime().block_on(app::run(settings, shutdown_signal())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(%error, "waggle could not start");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn print_config(settings: &config::Settings) -> ExitCode {
    match toml::to_string_pretty(settings) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("waggle: cannot print the configuration: {error}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("the tokio runtime starts")
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops waggle");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => tracing::info!("got SIGINT"),
            _ = terminate.recv() => tracing::info!("got SIGTERM"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
