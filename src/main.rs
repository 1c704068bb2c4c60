//! The `waggle` binary: parses the command line, loads the configuration and runs the relay
//! until SIGTERM or SIGINT.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use waggle::cli::{Cli, Command};
use waggle::telemetry::logging;
use waggle::{app, check, cli_docs, config, health, status};

/// jemalloc instead of glibc malloc: the relay allocates and frees many small strings per
/// span, and jemalloc's background thread gives freed memory back to the OS after a burst
/// (its options are in `.cargo/config.toml`). It also serves the C libraries' `malloc`
/// (`unprefixed_malloc_on_supported_platforms`): zstd's decoder windows went to glibc, whose
/// arenas kept up to 45 MiB after a burst of zstd bodies.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // The X-Ray daemon's flag spellings (`-bind=…`, `-o`, a leading `xray`) are accepted too.
    let cli = Cli::parse_go_style(std::env::args_os());
    // Generated from the command line alone: no configuration needed.
    match &cli.command {
        Some(Command::Completions { shell }) => {
            cli_docs::write_completions(*shell, &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Some(Command::Man) => return print_man_page(),
        _ => {}
    }
    let config::Loaded { settings, notices } =
        match cli.options.sources().and_then(|sources| config::load_with_notices(&sources)) {
            Ok(loaded) => loaded,
            Err(error) => {
                eprintln!("waggle: configuration error: {error}");
                return ExitCode::from(2);
            }
        };
    match cli.command.unwrap_or(Command::Run) {
        Command::Config => print_config(&settings),
        Command::Completions { .. } | Command::Man => ExitCode::SUCCESS,
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
        Command::Check { json } => {
            let env = std::env::vars().collect();
            let report = runtime().block_on(check::run(&settings, &env));
            if json {
                println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            } else {
                print!("{}", report.text());
            }
            if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Command::Status { url, json } => {
            let base = url
                .map_or_else(|| status::admin_url(&settings.admin.endpoint), |u| u.trim_end_matches('/').to_string());
            let shown = if json {
                runtime().block_on(status::fetch_json(&base))
            } else {
                runtime().block_on(status::fetch_and_render(&base))
            };
            match shown {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(reason) => {
                    eprintln!("waggle: cannot read the status: {reason}");
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
            for notice in &notices {
                tracing::info!("{notice}");
            }
            let runtime = runtime();
            // Inside the runtime: the signal handlers need its driver.
            let shutdown = {
                let _context = runtime.enter();
                shutdown_signal()
            };
            match runtime.block_on(app::run(settings, shutdown)) {
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

fn print_man_page() -> ExitCode {
    match cli_docs::write_man_page(&mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("waggle: cannot print the man page: {error}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("the tokio runtime starts")
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when this is called,
/// not when the future is first polled, so a signal that arrives during start-up is not lost
/// (and does not kill the process with the default action).
fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => tokio::select! {
                    _ = interrupt.recv() => tracing::info!("got SIGINT"),
                    _ = terminate.recv() => tracing::info!("got SIGTERM"),
                },
                (Err(error), _) | (_, Err(error)) => {
                    tracing::warn!(%error, "cannot listen for SIGINT/SIGTERM; waiting for Ctrl-C only");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
