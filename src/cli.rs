//! The command line: `waggle [run]`, `waggle config`, `waggle health`, `waggle completions`,
//! `waggle man`, the flags that override
//! configuration keys, and the AWS X-Ray daemon's flags in every spelling Go's `flag` package
//! accepts (`-b x`, `-b=x`, `-bind=x`, `--bind x`), so `command: xray -o -b host:2000` keeps
//! working when the daemon's image is swapped for waggle's.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{self, ConfigError, DaemonSettings, LogFormat, Sources, Translation};

/// What `waggle --version` (and the daemon's `-v`) prints after the program name.
pub const VERSION_LINE: &str = concat!(env!("CARGO_PKG_VERSION"), " (AWS X-Ray daemon compatible)");

/// waggle: a local telemetry relay. OTLP on 4318 (HTTP) and 4317 (gRPC), AWS X-Ray segments
/// on UDP 2000; with no cloud account configured, everything goes to an embedded store you
/// can query on the admin port (13133).
///
/// The AWS X-Ray daemon's flags work too, in its spellings (`-b 0.0.0.0:2000`, `-b=…`,
/// `-bind=…`, `--bind …`; the last one given wins), and a leading `xray` argument is ignored.
#[derive(Debug, Parser)]
#[command(
    name = "waggle",
    version = VERSION_LINE,
    about,
    long_about,
    disable_version_flag = true,
    args_override_self = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub options: Options,
    /// Print the version and exit.
    #[arg(short = 'v', long = "version", short_alias = 'V', action = ArgAction::Version)]
    version: Option<bool>,
}

impl Cli {
    /// Parses a command line given the way the X-Ray daemon or waggle takes it (see
    /// [`normalize_go_style_args`]).
    pub fn try_parse_go_style<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        GoStyleParser::new().parse(args)
    }

    /// As [`Cli::try_parse_go_style`]; on an error, or for `--help`/`--version`, prints and exits.
    pub fn parse_go_style<I, T>(args: I) -> Cli
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        Cli::try_parse_go_style(args).unwrap_or_else(|error| error.exit())
    }
}

/// Parses command lines as [`Cli::try_parse_go_style`] does, with clap's command and the table
/// of its flags made once for all of them (the `daemon_config` fuzz target parses millions;
/// clap checks a command's definition each time one is built).
#[derive(Debug)]
pub struct GoStyleParser {
    /// Built by its first parse (which names the program after that command line's first
    /// argument, as clap does), then reused: parsing leaves it as it was.
    command: clap::Command,
    flags: FlagTable,
}

impl GoStyleParser {
    pub fn new() -> GoStyleParser {
        let command = Cli::command();
        let flags = FlagTable::of(&command);
        GoStyleParser { command, flags }
    }

    /// [`Cli::try_parse_go_style`], with this parser's command.
    pub fn parse<I, T>(&mut self, args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let args = normalize_with(args, &self.flags);
        // What `Cli::try_parse_from` does, without building a new command for it.
        let mut matches = self.command.try_get_matches_from_mut(args)?;
        Cli::from_arg_matches_mut(&mut matches).map_err(|error| error.format(&mut self.command))
    }
}

impl Default for GoStyleParser {
    fn default() -> GoStyleParser {
        GoStyleParser::new()
    }
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
    /// Verify every destination that is on or partly configured, live: one line each, OK or
    /// what is wrong and the fix. Exit 0 only when all are OK.
    Check {
        /// One JSON object instead of text, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Show what a running waggle did, for people: each destination's items sent, failed and
    /// dropped per signal (since start and in the last minute), backlog, last success and
    /// error; each receiver's accepted, refused and rejected counts.
    Status {
        /// Admin base URL instead of the configured admin endpoint, e.g. http://waggle:13133.
        #[arg(long)]
        url: Option<String>,
        /// Print `/status` as it is (JSON).
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script, e.g. `waggle completions bash >
    /// /etc/bash_completion.d/waggle`.
    Completions {
        #[arg(value_enum)]
        shell: crate::cli_docs::Shell,
    },
    /// Print the manual page (roff), e.g. `waggle man > waggle.1 && man -l waggle.1`.
    Man,
}

/// Flags; each one overrides a configuration key.
#[derive(Debug, Args, Default)]
pub struct Options {
    /// Config file: waggle TOML, or the X-Ray daemon's cfg.yaml (recognised by its `Version`
    /// key). Default: config/waggle.toml when it exists.
    #[arg(short = 'c', long, global = true, env = "WAGGLE_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Log level or filter (log.level): error, warn, info, debug, trace; or the X-Ray daemon's
    /// dev, debug, info, warn, error, prod.
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
    /// X-Ray sampling proxy (TCP) address, as the X-Ray daemon's flag (receivers.xray_tcp.endpoint).
    #[arg(short = 't', long = "bind-tcp", global = true, value_name = "HOST:PORT")]
    pub xray_tcp_endpoint: Option<String>,
    /// AWS region for X-Ray (destinations.xray.region).
    #[arg(short = 'n', long = "region", global = true, value_name = "REGION")]
    pub xray_region: Option<String>,
    /// IAM role to assume for X-Ray, e.g. to send to another account (destinations.xray.role_arn).
    #[arg(short = 'r', long = "role-arn", global = true, value_name = "ARN")]
    pub xray_role_arn: Option<String>,
    /// ARN of the AWS resource running waggle, reported to X-Ray (destinations.xray.resource_arn).
    #[arg(short = 'a', long = "resource-arn", global = true, value_name = "ARN")]
    pub xray_resource_arn: Option<String>,
    /// Skip the EC2/ECS metadata look-ups, as the X-Ray daemon's local mode
    /// (destinations.xray.local_mode). Takes no value; `-o=false` turns it off.
    #[arg(
        short = 'o',
        long = "local-mode",
        global = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub xray_local_mode: Option<bool>,
    /// Memory for X-Ray segments waiting to be sent, in MB, at least 3; 0 keeps waggle's default
    /// (destinations.xray.queue_size).
    #[arg(short = 'm', long = "buffer-memory", global = true, value_name = "MB", value_parser = config::parse_buffer_memory)]
    pub xray_buffer_memory_mb: Option<u64>,
    /// Send to X-Ray through this proxy, a URL such as http://proxy:3128 (destinations.xray.proxy_address).
    #[arg(short = 'p', long = "proxy-address", global = true, value_name = "URL", value_parser = config::parse_proxy_address)]
    pub xray_proxy_address: Option<String>,
    /// Set any configuration key, e.g. --set receivers.otlp_http.endpoint=0.0.0.0:4318.
    /// Lists are comma-separated. May be repeated.
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

impl Options {
    /// The X-Ray daemon's settings among these flags.
    pub fn daemon_settings(&self) -> DaemonSettings {
        let given = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
        DaemonSettings {
            udp_address: given(&self.xray_udp_endpoint),
            tcp_address: given(&self.xray_tcp_endpoint),
            region: given(&self.xray_region),
            role_arn: given(&self.xray_role_arn),
            resource_arn: given(&self.xray_resource_arn),
            local_mode: self.xray_local_mode,
            proxy_address: given(&self.xray_proxy_address),
            buffer_memory_mb: self.xray_buffer_memory_mb,
            log_level: given(&self.log_level),
            log_file: self.log_file.clone(),
            ..DaemonSettings::default()
        }
    }

    /// The configuration overrides these flags make, in order (`--set` last), and the notices
    /// to log once logging is up.
    pub fn translation(&self) -> Result<Translation, ConfigError> {
        let mut translation = self.daemon_settings().translate();
        let path = |p: &PathBuf| p.to_string_lossy().into_owned();
        let named = [
            ("log.format", self.log_format.map(|f| if f == LogFormat::Json { "json" } else { "text" }.to_string())),
            ("data_dir", self.data_dir.as_ref().map(path)),
        ];
        for (key, value) in named {
            if let Some(value) = value {
                translation.overrides.push((key.to_string(), value));
            }
        }
        for set in &self.set {
            translation.overrides.push(config::parse_override(set)?);
        }
        Ok(translation)
    }

    /// The configuration sources these flags describe, with the process environment.
    pub fn sources(&self) -> Result<Sources, ConfigError> {
        let translation = self.translation()?;
        let mut sources = Sources::from_process_env(self.config.clone(), translation.overrides);
        sources.notices = translation.notices;
        Ok(sources)
    }
}

/// A program name that compose files put before the daemon's flags (`command: xray -o`).
fn is_daemon_program_name(arg: &str) -> bool {
    arg == "xray" || arg.ends_with("/xray")
}

/// Compose's list form puts a whole daemon command line in one argument
/// (`command: ["xray -o -b xray-daemon:2000"]`); it is split into its words, so it means what
/// the same words written out mean.
fn split_daemon_command_string(mut args: Vec<OsString>) -> Vec<OsString> {
    let position = args.iter().skip(1).position(|arg| {
        arg.to_str().is_some_and(|text| {
            text.contains(char::is_whitespace) && text.split_whitespace().next().is_some_and(is_daemon_program_name)
        })
    });
    if let Some(index) = position.map(|p| p + 1) {
        let words: Vec<OsString> =
            args[index].to_str().unwrap_or_default().split_whitespace().map(OsString::from).collect();
        args.splice(index..=index, words);
    }
    args
}

/// How a flag takes its value, for [`normalize_go_style_args`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum FlagShape {
    /// Takes the next argument as its value unless given `=value`.
    Value,
    /// Takes a value only as `=value` (`--local-mode[=BOOL]`).
    OptionalValue,
    /// Takes no value (`--help`, `--version`).
    Switch,
}

/// One flag: how clap spells it (`--bind`) and how it takes a value.
#[derive(Debug, Clone)]
struct FlagSpec {
    canonical: String,
    shape: FlagShape,
}

/// Every flag of a command and its subcommands, by long name and by short letter.
#[derive(Debug, Default)]
struct FlagTable {
    longs: HashMap<String, FlagSpec>,
    shorts: HashMap<char, FlagSpec>,
}

impl FlagTable {
    fn of(command: &clap::Command) -> FlagTable {
        let mut command = command.clone();
        command.build();
        let mut table = FlagTable::default();
        table.add_command(&command);
        table
    }

    fn add_command(&mut self, command: &clap::Command) {
        for arg in command.get_arguments() {
            let canonical = match (arg.get_long(), arg.get_short()) {
                (Some(long), _) => format!("--{long}"),
                (None, Some(short)) => format!("-{short}"),
                (None, None) => continue,
            };
            let shape = match arg.get_num_args() {
                _ if !arg.get_action().takes_values() => FlagShape::Switch,
                Some(range) if range.min_values() == 0 => FlagShape::OptionalValue,
                _ => FlagShape::Value,
            };
            let spec = FlagSpec { canonical, shape };
            for long in arg.get_long().into_iter().chain(arg.get_all_aliases().unwrap_or_default()) {
                self.longs.entry(long.to_string()).or_insert_with(|| spec.clone());
            }
            for short in arg.get_short().into_iter().chain(arg.get_all_short_aliases().unwrap_or_default()) {
                self.shorts.entry(short).or_insert_with(|| spec.clone());
            }
        }
        for subcommand in command.get_subcommands() {
            self.add_command(subcommand);
        }
    }

    /// The flag named by `name` after one dash: a short letter, or (Go style) a long name.
    fn after_one_dash(&self, name: &str) -> Option<&FlagSpec> {
        let mut chars = name.chars();
        match (chars.next(), chars.next()) {
            (Some(short), None) => self.shorts.get(&short),
            _ => self.longs.get(name),
        }
    }

    /// Whether an unrecognised single-dash cluster such as `-ob` leaves its last flag waiting
    /// for the next argument as its value.
    fn cluster_awaits_value(&self, cluster: &str) -> bool {
        let shapes: Vec<Option<&FlagShape>> = cluster.chars().map(|c| self.shorts.get(&c).map(|s| &s.shape)).collect();
        match shapes.split_last() {
            Some((Some(FlagShape::Value), switches)) => {
                switches.iter().all(|shape| matches!(shape, Some(FlagShape::Switch | FlagShape::OptionalValue)))
            }
            _ => false,
        }
    }
}

/// Go's `strconv.ParseBool`, which its `flag` package uses for `-flag=value`.
fn parse_go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Rewrites a command line written for the X-Ray daemon (Go's `flag` package) into one clap
/// parses the same way, leaving waggle's own spellings as they are:
///
/// - every known flag, given as `-x`, `-name` or `--name`, becomes its long form `--name`;
/// - a flag's value becomes `--name=value`, whether given as `-x value`, `-x=value`,
///   `-name value` or `--name=value` (so a value starting with `-` is still a value, as in Go);
/// - a switch given Go's `-flag=true`/`-flag=false` becomes `--flag` or disappears, and an
///   optional-value flag's boolean (`-o=T`) is spelled `true`/`false`;
/// - a first positional argument `xray` (or `/usr/bin/xray`), left by compose files written
///   for the daemon's image, is dropped;
/// - unknown flags, `--` and everything after it pass through for clap to judge.
///
/// `command` is the clap command whose flags (and its subcommands' flags) are known.
pub fn normalize_go_style_args<I, T>(args: I, command: &clap::Command) -> Vec<OsString>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    normalize_with(args, &FlagTable::of(command))
}

/// [`normalize_go_style_args`] with the command's flags already in a table.
fn normalize_with<I, T>(args: I, table: &FlagTable) -> Vec<OsString>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let mut args = split_daemon_command_string(args.into_iter().map(Into::into).collect()).into_iter();
    let mut normalized: Vec<OsString> = args.next().into_iter().collect();
    let mut seen_positional = false;
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            normalized.push(arg);
            continue;
        };
        if text == "--" {
            normalized.push(arg);
            normalized.extend(args.by_ref());
            break;
        }
        if text == "-" || !text.starts_with('-') {
            if !seen_positional && is_daemon_program_name(text) {
                seen_positional = true;
                continue;
            }
            seen_positional = true;
            normalized.push(arg);
            continue;
        }
        let (body, double_dash) = match text.strip_prefix("--") {
            Some(body) => (body, true),
            None => (&text[1..], false),
        };
        let (name, inline_value) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        let spec = if double_dash { table.longs.get(name) } else { table.after_one_dash(name) };
        let Some(spec) = spec else {
            // Unknown to us: a short cluster (`-bVALUE`, `-ob`) or a typo clap will report.
            let awaits_value = !double_dash && inline_value.is_none() && table.cluster_awaits_value(name);
            normalized.push(arg);
            if awaits_value && let Some(value) = args.next() {
                normalized.push(value);
            }
            continue;
        };
        match (&spec.shape, inline_value) {
            (FlagShape::Value, Some(value)) => normalized.push(format!("{}={value}", spec.canonical).into()),
            (FlagShape::Value, None) => match args.next() {
                Some(value) => {
                    let mut joined = OsString::from(format!("{}=", spec.canonical));
                    joined.push(value);
                    normalized.push(joined);
                }
                // clap reports the missing value, naming the flag.
                None => normalized.push(spec.canonical.clone().into()),
            },
            (FlagShape::OptionalValue, Some(value)) => {
                let value = parse_go_bool(value).map_or_else(|| value.to_string(), |on| on.to_string());
                normalized.push(format!("{}={value}", spec.canonical).into());
            }
            (FlagShape::Switch, Some(value)) => match parse_go_bool(value) {
                Some(true) => normalized.push(spec.canonical.clone().into()),
                Some(false) => {}
                None => normalized.push(format!("{}={value}", spec.canonical).into()),
            },
            (FlagShape::OptionalValue | FlagShape::Switch, None) => normalized.push(spec.canonical.clone().into()),
        }
    }
    normalized
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(args: &[&str]) -> Vec<String> {
        normalize_go_style_args(args.iter().copied(), &Cli::command())
            .into_iter()
            .map(|arg| arg.into_string().unwrap_or_default())
            .collect()
    }

    #[test]
    fn single_dash_long_flags_become_double_dash() {
        assert_eq!(normalized(&["waggle", "-region", "us-east-1"]), ["waggle", "--region=us-east-1"]);
    }

    #[test]
    fn a_value_starting_with_a_dash_stays_a_value() {
        assert_eq!(normalized(&["waggle", "-l", "-x"]), ["waggle", "--log-level=-x"]);
    }

    #[test]
    fn switches_given_false_disappear() {
        assert_eq!(normalized(&["waggle", "-v=false", "config"]), ["waggle", "config"]);
    }

    #[test]
    fn subcommand_flags_are_known() {
        assert_eq!(normalized(&["waggle", "health", "-url", "http://x"]), ["waggle", "health", "--url=http://x"]);
    }

    #[test]
    fn short_clusters_and_attached_values_pass_through() {
        assert_eq!(normalized(&["waggle", "-ob", "h:1", "-b0.0.0.0:2"]), ["waggle", "-ob", "h:1", "-b0.0.0.0:2"]);
    }

    #[test]
    fn everything_after_a_double_dash_passes_through() {
        assert_eq!(normalized(&["waggle", "--", "xray", "-b"]), ["waggle", "--", "xray", "-b"]);
    }

    #[test]
    fn the_proxy_flag_is_for_honeycomb_too() {
        let cli = Cli::try_parse_go_style(["waggle", "-p", "http://proxy:3128"]).unwrap();
        let overrides = cli.options.translation().unwrap().overrides;
        for key in [
            "destinations.xray.proxy_address",
            "destinations.honeycomb.proxy_address",
            "destinations.rollbar.proxy_address",
        ] {
            assert!(overrides.contains(&(key.to_string(), "http://proxy:3128".to_string())), "{key}: {overrides:?}");
        }
    }

    #[test]
    fn a_reused_parser_parses_as_a_new_one_does() {
        let lines: &[&[&str]] = &[
            &["waggle", "-o", "-b", "0.0.0.0:2000", "-n", "eu-west-1"],
            &["waggle", "health", "-url", "http://x"],
            &["waggle", "--no-such-flag"],
            &["waggle", "health", "--no-such-flag"],
            &["waggle", "-b"],
            &["waggle", "--help"],
            &["waggle", "health", "--help"],
            &["waggle", "-v"],
            &["waggle", "config", "xray"],
            &["waggle", "xray", "-l", "debug", "--set", "a=b"],
            &["waggle", "check", "extra"],
            &["waggle", "-ob", "h:1"],
        ];
        let outcome = |parsed: Result<Cli, clap::Error>| match parsed {
            Ok(cli) => format!("{cli:?}"),
            Err(error) => format!("{:?}: {error}", error.kind()),
        };
        let mut parser = GoStyleParser::new();
        for _ in 0..2 {
            for line in lines {
                let fresh = outcome(Cli::try_parse_from(normalized(line)));
                assert_eq!(outcome(parser.parse(line.iter().copied())), fresh, "{line:?}");
            }
        }
    }

    #[test]
    fn only_a_first_positional_xray_is_dropped() {
        assert_eq!(normalized(&["waggle", "config", "xray"]), ["waggle", "config", "xray"]);
    }
}
