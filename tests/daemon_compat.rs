//! Drop-in compatibility with the AWS X-Ray daemon: its flags in every spelling Go's `flag`
//! package accepts, its `cfg.yaml`, and compose lines written for its image, all become the
//! same waggle configuration overrides; waggle's own command line keeps working.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use waggle::cli::{Cli, Command};
use waggle::config::{self, ConfigError, DaemonConfigError, Sources};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/daemon").join(name)
}

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_go_style(std::iter::once("waggle").chain(args.iter().copied()))
}

/// The overrides a command line makes.
fn flag_overrides(args: &[&str]) -> Vec<(String, String)> {
    let cli = parse(args).unwrap_or_else(|error| panic!("{args:?} should parse: {error}"));
    cli.options.translation().unwrap_or_else(|error| panic!("{args:?}: {error}")).overrides
}

/// The overrides a daemon cfg.yaml fixture makes.
fn file_overrides(name: &str) -> Vec<(String, String)> {
    file_settings(name).translate().overrides
}

fn file_settings(name: &str) -> config::DaemonSettings {
    let path = fixture(name);
    config::read_if_daemon_config(&path)
        .unwrap_or_else(|error| panic!("{name}: {error}"))
        .unwrap_or_else(|| panic!("{name} should be recognised as an X-Ray daemon cfg.yaml"))
}

fn file_error(name: &str) -> String {
    match config::read_if_daemon_config(&fixture(name)) {
        Ok(settings) => panic!("{name} should be refused, got {settings:?}"),
        Err(error) => error.to_string(),
    }
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect()
}

/// Every way Go's `flag` package (and clap) lets a value flag be written, plus a repeat where
/// the last one wins.
fn spellings(short: char, long: &str, value: &str) -> Vec<Vec<String>> {
    let forms = [
        vec![format!("-{short}"), value.to_string()],
        vec![format!("-{short}={value}")],
        vec![format!("--{long}"), value.to_string()],
        vec![format!("--{long}={value}")],
        vec![format!("-{long}"), value.to_string()],
        vec![format!("-{long}={value}")],
        vec![format!("-{short}"), "first-value".to_string(), format!("--{long}={value}")],
        vec![format!("--{long}=first-value"), format!("-{long}"), value.to_string()],
    ];
    forms.to_vec()
}

/// Asserts every spelling of a value flag makes exactly `expected`.
fn assert_spellings(short: char, long: &str, value: &str, expected: &[(&str, &str)]) {
    for args in spellings(short, long, value) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(flag_overrides(&args), pairs(expected), "{args:?}");
    }
}

// ---- the daemon's flags, in every spelling --------------------------------------------------

#[test]
fn bind_in_every_spelling_sets_the_udp_endpoint() {
    assert_spellings('b', "bind", "0.0.0.0:2000", &[("receivers.xray_udp.endpoint", "0.0.0.0:2000")]);
}

#[test]
fn bind_tcp_in_every_spelling_sets_the_tcp_endpoint() {
    assert_spellings('t', "bind-tcp", "0.0.0.0:2001", &[("receivers.xray_tcp.endpoint", "0.0.0.0:2001")]);
}

#[test]
fn region_in_every_spelling_sets_the_xray_region() {
    assert_spellings('n', "region", "us-east-1", &[("destinations.xray.region", "us-east-1")]);
}

#[test]
fn role_arn_in_every_spelling_sets_the_xray_role() {
    let role = "arn:aws:iam::123456789012:role/xray-writer";
    assert_spellings('r', "role-arn", role, &[("destinations.xray.role_arn", role)]);
}

#[test]
fn resource_arn_in_every_spelling_sets_the_xray_resource() {
    let resource = "arn:aws:ecs:eu-west-1:123456789012:task/abc";
    assert_spellings('a', "resource-arn", resource, &[("destinations.xray.resource_arn", resource)]);
}

#[test]
fn buffer_memory_in_every_spelling_sets_the_xray_queue_size_in_mebibytes() {
    // The repeated spellings start with "first-value", which is not a number: use numbers here.
    for args in [
        vec!["-m", "24"],
        vec!["-m=24"],
        vec!["--buffer-memory", "24"],
        vec!["--buffer-memory=24"],
        vec!["-buffer-memory", "24"],
        vec!["-buffer-memory=24"],
        vec!["-m", "8", "--buffer-memory=24"],
        vec!["--buffer-memory=8", "-buffer-memory", "24"],
    ] {
        assert_eq!(flag_overrides(&args), pairs(&[("destinations.xray.queue_size", "24MiB")]), "{args:?}");
    }
}

#[test]
fn proxy_address_in_every_spelling_sets_the_proxy_of_every_https_destination() {
    for args in [
        vec!["-p", "http://proxy:3128"],
        vec!["-p=http://proxy:3128"],
        vec!["--proxy-address", "http://proxy:3128"],
        vec!["--proxy-address=http://proxy:3128"],
        vec!["-proxy-address", "http://proxy:3128"],
        vec!["-proxy-address=http://proxy:3128"],
        vec!["-p", "http://old:1", "--proxy-address=http://proxy:3128"],
    ] {
        assert_eq!(
            flag_overrides(&args),
            pairs(&[
                ("destinations.xray.proxy_address", "http://proxy:3128"),
                ("destinations.honeycomb.proxy_address", "http://proxy:3128"),
                ("destinations.rollbar.proxy_address", "http://proxy:3128"),
            ]),
            "{args:?}"
        );
    }
}

#[test]
fn log_level_in_every_spelling_sets_the_log_level() {
    assert_spellings('l', "log-level", "dev", &[("log.level", "dev")]);
}

#[test]
fn log_file_in_every_spelling_sets_the_log_file() {
    assert_spellings('f', "log-file", "/var/log/xray.log", &[("log.file", "/var/log/xray.log")]);
}

#[test]
fn config_in_every_spelling_names_the_config_file() {
    for args in spellings('c', "config", "/etc/amazon/xray/cfg.yaml") {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let cli = parse(&args).unwrap_or_else(|error| panic!("{args:?}: {error}"));
        assert_eq!(cli.options.config.as_deref(), Some(Path::new("/etc/amazon/xray/cfg.yaml")), "{args:?}");
    }
}

#[test]
fn local_mode_in_every_spelling_turns_local_mode_on() {
    for args in [
        vec!["-o"],
        vec!["--local-mode"],
        vec!["-local-mode"],
        vec!["-o=true"],
        vec!["--local-mode=true"],
        vec!["-local-mode=T"],
        vec!["-o=1"],
        vec!["-o", "-o"],
    ] {
        assert_eq!(flag_overrides(&args), pairs(&[("destinations.xray.local_mode", "true")]), "{args:?}");
    }
}

#[test]
fn local_mode_false_turns_local_mode_off() {
    for args in [vec!["-o=false"], vec!["--local-mode=0"], vec!["-o", "-local-mode=F"]] {
        assert_eq!(flag_overrides(&args), pairs(&[("destinations.xray.local_mode", "false")]), "{args:?}");
    }
}

#[test]
fn local_mode_takes_no_separate_value() {
    // As in Go, `-o true` is not `-o=true`: the `true` is left over, and clap refuses it.
    assert!(parse(&["-o", "true"]).is_err());
}

#[test]
fn version_in_every_spelling_prints_the_version_and_exits_0() {
    for flag in ["-v", "--version", "-version", "-V", "xray -v"] {
        let output = Process::new(env!("CARGO_BIN_EXE_waggle")).args(flag.split(' ')).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{flag}: {output:?}");
        assert_eq!(
            stdout.trim(),
            format!("waggle {} (AWS X-Ray daemon compatible)", env!("CARGO_PKG_VERSION")),
            "{flag}"
        );
    }
}

#[test]
fn help_in_every_spelling_shows_help() {
    for flag in ["-h", "--help", "-help"] {
        let error = parse(&[flag]).expect_err("help ends parsing");
        assert_eq!(error.kind(), clap::error::ErrorKind::DisplayHelp, "{flag}");
    }
}

#[test]
fn every_daemon_flag_at_once_makes_every_override() {
    let overrides = flag_overrides(&[
        "-o",
        "-b",
        "0.0.0.0:2000",
        "-t=0.0.0.0:2001",
        "-region",
        "eu-west-1",
        "--role-arn=arn:aws:iam::123456789012:role/xray-writer",
        "-a",
        "arn:aws:ecs:eu-west-1:123456789012:task/abc",
        "-m",
        "24",
        "-l=debug",
        "-log-file=/var/log/xray/xray.log",
        "-p",
        "http://proxy.internal:3128",
    ]);
    assert_eq!(
        overrides,
        pairs(&[
            ("receivers.xray_udp.endpoint", "0.0.0.0:2000"),
            ("receivers.xray_tcp.endpoint", "0.0.0.0:2001"),
            ("destinations.xray.region", "eu-west-1"),
            ("destinations.xray.role_arn", "arn:aws:iam::123456789012:role/xray-writer"),
            ("destinations.xray.resource_arn", "arn:aws:ecs:eu-west-1:123456789012:task/abc"),
            ("destinations.xray.local_mode", "true"),
            ("destinations.xray.proxy_address", "http://proxy.internal:3128"),
            ("destinations.honeycomb.proxy_address", "http://proxy.internal:3128"),
            ("destinations.rollbar.proxy_address", "http://proxy.internal:3128"),
            ("destinations.xray.queue_size", "24MiB"),
            ("log.level", "debug"),
            ("log.file", "/var/log/xray/xray.log"),
        ])
    );
}

// ---- bad flags ------------------------------------------------------------------------------

#[test]
fn a_proxy_address_without_a_scheme_is_refused_naming_the_flag() {
    let message = parse(&["-p", "proxy:3128"]).expect_err("no scheme").to_string();
    assert!(message.contains("--proxy-address") && message.contains("http://proxy:3128"), "{message}");
}

#[test]
fn buffer_memory_that_is_not_a_number_is_refused_naming_the_flag() {
    let message = parse(&["-m", "lots"]).expect_err("not a number").to_string();
    assert!(message.contains("--buffer-memory") && message.contains("lots"), "{message}");
}

#[test]
fn buffer_memory_below_the_daemons_minimum_is_refused() {
    let message = parse(&["-m=2"]).expect_err("below 3 MB").to_string();
    assert!(message.contains("--buffer-memory") && message.contains("minimum of 3"), "{message}");
}

#[test]
fn bind_without_a_value_is_refused_naming_the_flag() {
    let error = parse(&["-b"]).expect_err("no value");
    assert_eq!(error.kind(), clap::error::ErrorKind::InvalidValue);
    assert!(error.to_string().contains("--bind"), "{error}");
}

#[test]
fn buffer_memory_0_keeps_waggles_default_and_says_so() {
    let cli = parse(&["-m", "0"]).unwrap();
    let translation = cli.options.translation().unwrap();
    assert!(translation.overrides.is_empty(), "{:?}", translation.overrides);
    assert!(translation.notices.iter().any(|n| n.contains("1% of host RAM")), "{:?}", translation.notices);
}

// ---- compose lines written for the daemon's image -------------------------------------------

#[test]
fn a_leading_xray_argument_is_ignored() {
    assert_eq!(
        flag_overrides(&["xray", "-o", "-b", "xray-daemon:2000"]),
        pairs(&[("receivers.xray_udp.endpoint", "xray-daemon:2000"), ("destinations.xray.local_mode", "true")])
    );
}

#[test]
fn a_whole_daemon_command_line_in_one_argument_means_the_same_words() {
    // compose's list form: command: ["xray -o -b xray-daemon:2000"]
    assert_eq!(
        flag_overrides(&["xray -o -b xray-daemon:2000"]),
        flag_overrides(&["xray", "-o", "-b", "xray-daemon:2000"])
    );
}

#[test]
fn a_leading_xray_path_is_ignored() {
    assert_eq!(
        flag_overrides(&["/usr/bin/xray", "-n", "us-east-2"]),
        pairs(&[("destinations.xray.region", "us-east-2")])
    );
}

#[test]
fn the_daemon_images_entrypoint_flags_then_the_compose_command_let_the_command_win() {
    // ENTRYPOINT ["/xray", "-t", "0.0.0.0:2000", "-b", "0.0.0.0:2000"] + command: xray -o -b host:2000
    assert_eq!(
        flag_overrides(&["-t", "0.0.0.0:2000", "-b", "0.0.0.0:2000", "xray", "-o", "-b", "host:2000"]),
        pairs(&[
            ("receivers.xray_udp.endpoint", "host:2000"),
            ("receivers.xray_tcp.endpoint", "0.0.0.0:2000"),
            ("destinations.xray.local_mode", "true"),
        ])
    );
}

#[test]
fn xray_with_daemon_flags_runs_the_relay() {
    let cli = parse(&["xray", "-o", "-b", "host:2000"]).unwrap();
    assert!(matches!(cli.command, None | Some(Command::Run)), "{:?}", cli.command);
}

// ---- waggle's own command line --------------------------------------------------------------

#[test]
fn the_config_subcommand_still_parses_with_its_flags() {
    let cli = parse(&["config", "--set", "log.level=debug", "-b", "0.0.0.0:2000"]).unwrap();
    assert!(matches!(cli.command, Some(Command::Config)));
    assert_eq!(
        cli.options.translation().unwrap().overrides,
        pairs(&[("receivers.xray_udp.endpoint", "0.0.0.0:2000"), ("log.level", "debug")])
    );
}

#[test]
fn the_health_subcommand_still_takes_its_url() {
    let cli = parse(&["health", "--url", "http://127.0.0.1:13133/healthz"]).unwrap();
    match cli.command {
        Some(Command::Health { url }) => assert_eq!(url.as_deref(), Some("http://127.0.0.1:13133/healthz")),
        other => panic!("expected health, got {other:?}"),
    }
}

#[test]
fn set_overrides_come_after_the_daemon_flags() {
    assert_eq!(
        flag_overrides(&["--set=destinations.xray.region=b", "-n", "a", "-set", "log.format=json"]),
        pairs(&[("destinations.xray.region", "a"), ("destinations.xray.region", "b"), ("log.format", "json"),])
    );
}

#[test]
fn waggle_config_prints_a_set_override() {
    let output = Process::new(env!("CARGO_BIN_EXE_waggle"))
        .args(["config", "--set", "log.level=debug"])
        .env_remove("WAGGLE_CONFIG")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("level = \"debug\""), "{output:?}");
}

#[test]
fn waggle_config_reads_a_daemon_cfg_yaml_given_with_c() {
    let output = Process::new(env!("CARGO_BIN_EXE_waggle"))
        .arg("config")
        .arg(format!("-c={}", fixture("minimal.yaml").display()))
        .env_remove("WAGGLE_CONFIG")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("endpoint = \"0.0.0.0:2000\"") && stdout.contains("level = \"warn\""), "{stdout}");
}

#[test]
fn waggle_health_fails_on_a_closed_port() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let output = Process::new(env!("CARGO_BIN_EXE_waggle"))
        .args(["health", "-url", &format!("http://{closed}/healthz")])
        .env_remove("WAGGLE_CONFIG")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
}

// ---- cfg.yaml -------------------------------------------------------------------------------

#[test]
fn a_cfg_yaml_with_every_key_makes_every_override() {
    assert_eq!(
        file_overrides("all-keys.yaml"),
        pairs(&[
            ("receivers.xray_udp.endpoint", "0.0.0.0:2000"),
            ("receivers.xray_tcp.endpoint", "0.0.0.0:2001"),
            ("destinations.xray.region", "eu-west-1"),
            ("destinations.xray.role_arn", "arn:aws:iam::123456789012:role/xray-writer"),
            ("destinations.xray.resource_arn", "arn:aws:ecs:eu-west-1:123456789012:task/abc"),
            ("destinations.xray.endpoint", "https://xray.eu-west-1.amazonaws.com"),
            ("destinations.xray.local_mode", "true"),
            ("destinations.xray.proxy_address", "http://proxy.internal:3128"),
            ("destinations.honeycomb.proxy_address", "http://proxy.internal:3128"),
            ("destinations.rollbar.proxy_address", "http://proxy.internal:3128"),
            ("destinations.xray.no_verify_ssl", "true"),
            ("destinations.xray.senders", "16"),
            ("destinations.xray.queue_size", "24MiB"),
            ("log.level", "debug"),
            ("log.file", "/var/log/xray/xray.log"),
        ])
    );
}

#[test]
fn the_daemons_shipped_cfg_yaml_keeps_its_defaults() {
    assert_eq!(
        file_overrides("shipped-cfg.yaml"),
        pairs(&[
            ("receivers.xray_udp.endpoint", "127.0.0.1:2000"),
            ("receivers.xray_tcp.endpoint", "127.0.0.1:2000"),
            ("destinations.xray.local_mode", "false"),
            ("destinations.xray.no_verify_ssl", "false"),
            ("destinations.xray.senders", "8"),
            ("log.level", "prod"),
        ])
    );
}

#[test]
fn the_shipped_cfg_yamls_buffer_of_0_is_noticed() {
    let notices = file_settings("shipped-cfg.yaml").translate().notices;
    assert!(notices.iter().any(|n| n.contains("destinations.xray.queue_size")), "{notices:?}");
}

#[test]
fn a_minimal_cfg_yaml_makes_only_its_overrides() {
    assert_eq!(
        file_overrides("minimal.yaml"),
        pairs(&[("receivers.xray_udp.endpoint", "0.0.0.0:2000"), ("log.level", "warn")])
    );
}

#[test]
fn a_version_1_cfg_yaml_is_read() {
    assert_eq!(file_overrides("version-1.yaml"), pairs(&[("destinations.xray.region", "us-east-2")]));
}

#[test]
fn flags_and_cfg_yaml_keys_make_the_same_overrides() {
    let from_flags = flag_overrides(&[
        "-b",
        "0.0.0.0:2000",
        "-t",
        "0.0.0.0:2001",
        "-n",
        "eu-west-1",
        "-r",
        "arn:aws:iam::123456789012:role/xray-writer",
        "-a",
        "arn:aws:ecs:eu-west-1:123456789012:task/abc",
        "-o",
        "-p",
        "http://proxy.internal:3128",
        "-m",
        "24",
        "-l",
        "debug",
        "-f",
        "/var/log/xray/xray.log",
    ]);
    assert_eq!(file_overrides("flag-settable.yaml"), from_flags);
}

#[test]
fn a_cfg_yaml_without_an_extension_is_recognised_by_its_version_key() {
    assert_eq!(file_overrides("no-extension"), pairs(&[("destinations.xray.region", "ap-south-1")]));
}

#[test]
fn a_waggle_yaml_config_is_not_taken_for_a_cfg_yaml() {
    assert!(config::read_if_daemon_config(&fixture("waggle.yaml")).unwrap().is_none());
}

#[test]
fn a_waggle_toml_config_is_not_taken_for_a_cfg_yaml() {
    let documented = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/waggle.toml");
    assert!(config::read_if_daemon_config(&documented).unwrap().is_none());
}

// ---- bad cfg.yaml ---------------------------------------------------------------------------

#[test]
fn an_unknown_cfg_yaml_key_is_named_with_the_file() {
    let message = file_error("misspelled-key.yaml");
    assert!(message.contains("unknown key `Socket.UDPAdress`"), "{message}");
    assert!(message.contains("misspelled-key.yaml"), "{message}");
}

#[test]
fn an_unknown_cfg_yaml_key_gets_a_suggestion() {
    let message = file_error("misspelled-key.yaml");
    assert!(message.contains("did you mean `Socket.UDPAddress`"), "{message}");
}

#[test]
fn cfg_yaml_keys_are_case_sensitive() {
    let message = file_error("lower-case-key.yaml");
    assert!(message.contains("unknown key `region`") && message.contains("`Region`"), "{message}");
}

#[test]
fn an_unsupported_version_is_refused() {
    let message = file_error("unsupported-version.yaml");
    assert!(message.contains("`Version: 3`") && message.contains("unsupported-version.yaml"), "{message}");
}

#[test]
fn a_missing_version_is_refused() {
    let message = file_error("missing-version.yaml");
    assert!(message.contains("`Version` is missing") && message.contains("missing-version.yaml"), "{message}");
}

#[test]
fn a_daemon_2x_memory_limit_points_at_its_replacement() {
    let message = file_error("daemon-2x.yaml");
    assert!(message.contains("`MemoryLimit`") && message.contains("TotalBufferSizeMB"), "{message}");
}

#[test]
fn a_daemon_2x_processor_key_points_at_its_replacement() {
    let message = file_error("daemon-2x-processor.yaml");
    assert!(message.contains("`Processor.Region`") && message.contains("top-level `Region`"), "{message}");
}

#[test]
fn other_retired_keys_are_refused_as_not_supported() {
    for (yaml, key) in [
        ("Socket:\n  BufferSizeKB: 64\nVersion: 2\n", "Socket.BufferSizeKB"),
        ("Logging:\n  LogFormat: x\nVersion: 2\n", "Logging.LogFormat"),
        ("Profile:\n  CPU: /tmp/cpu\nVersion: 2\n", "Profile.CPU"),
        ("Processor:\n  BatchProcessorQueueSize: 20\nVersion: 2\n", "Processor.BatchProcessorQueueSize"),
        ("LogRotation: true\nVersion: 2\n", "LogRotation"),
    ] {
        let message = config::parse_daemon_config(yaml, Path::new("cfg.yaml")).unwrap_err().to_string();
        assert!(message.contains(&format!("`{key}`")) && message.contains("not supported"), "{message}");
    }
}

#[test]
fn a_cfg_yaml_proxy_address_without_a_scheme_is_refused() {
    let message = file_error("proxy-without-scheme.yaml");
    assert!(message.contains("`ProxyAddress`") && message.contains("http://proxy.internal:3128"), "{message}");
}

#[test]
fn a_wrongly_typed_cfg_yaml_value_names_its_key() {
    let message =
        config::parse_daemon_config("Concurrency: many\nVersion: 2\n", Path::new("cfg.yaml")).unwrap_err().to_string();
    assert!(message.contains("`Concurrency`") && message.contains("whole number"), "{message}");
}

// ---- loading: the cfg.yaml as the file layer ------------------------------------------------

fn sources(file: &str, args: &[&str]) -> Sources {
    let translation = parse(args).unwrap().options.translation().unwrap();
    Sources { file: Some(fixture(file)), overrides: translation.overrides, ..Sources::default() }
}

#[test]
fn loading_a_cfg_yaml_sets_its_keys() {
    let settings = config::load(&sources("minimal.yaml", &[])).unwrap();
    assert_eq!((settings.receivers.xray_udp.endpoint.as_str(), settings.log.level.as_str()), ("0.0.0.0:2000", "warn"));
}

#[test]
fn flags_win_over_the_cfg_yaml() {
    let settings = config::load(&sources("minimal.yaml", &["-b", "127.0.0.1:3000", "-l", "error"])).unwrap();
    assert_eq!(
        (settings.receivers.xray_udp.endpoint.as_str(), settings.log.level.as_str()),
        ("127.0.0.1:3000", "error")
    );
}

#[test]
fn the_environment_wins_over_the_cfg_yaml() {
    let mut sources = sources("minimal.yaml", &[]);
    sources.env = [("WAGGLE_LOG__LEVEL".to_string(), "trace".to_string())].into();
    assert_eq!(config::load(&sources).unwrap().log.level, "trace");
}

#[test]
fn loading_a_bad_cfg_yaml_reports_the_daemon_error() {
    let error = config::load(&sources("misspelled-key.yaml", &[])).unwrap_err();
    assert!(matches!(error, ConfigError::DaemonConfig(DaemonConfigError::UnknownKey { .. })), "{error}");
}

#[test]
fn loading_a_cfg_yaml_with_buffer_0_returns_the_notice() {
    let path = std::env::temp_dir().join(format!("waggle-daemon-buffer0-{}.yaml", std::process::id()));
    std::fs::write(&path, "TotalBufferSizeMB: 0\nVersion: 2\n").unwrap();
    let loaded = config::load_with_notices(&Sources { file: Some(path.clone()), ..Sources::default() });
    let _ = std::fs::remove_file(&path);
    let notices = loaded.unwrap().notices;
    assert!(notices.iter().any(|n| n.contains("1% of host RAM")), "{notices:?}");
}

/// Reads a dotted key out of the loaded settings, without naming fields that may not exist yet.
fn setting(settings: &config::Settings, key: &str) -> serde_json::Value {
    let tree = serde_json::to_value(settings).unwrap();
    let pointer = format!("/{}", key.replace('.', "/"));
    tree.pointer(&pointer).cloned().unwrap_or_else(|| panic!("no setting {key}"))
}

#[test]
fn loading_a_cfg_yaml_with_every_key_sets_every_xray_setting() {
    // queue_size serialises as bytesize prints it; compare the parsed size if this differs.
    let settings = config::load(&sources("all-keys.yaml", &[])).unwrap();
    let expected = [
        ("receivers.xray_udp.endpoint", serde_json::json!("0.0.0.0:2000")),
        ("receivers.xray_tcp.endpoint", serde_json::json!("0.0.0.0:2001")),
        ("destinations.xray.region", serde_json::json!("eu-west-1")),
        ("destinations.xray.role_arn", serde_json::json!("arn:aws:iam::123456789012:role/xray-writer")),
        ("destinations.xray.resource_arn", serde_json::json!("arn:aws:ecs:eu-west-1:123456789012:task/abc")),
        ("destinations.xray.endpoint", serde_json::json!("https://xray.eu-west-1.amazonaws.com")),
        ("destinations.xray.local_mode", serde_json::json!(true)),
        ("destinations.xray.proxy_address", serde_json::json!("http://proxy.internal:3128")),
        ("destinations.xray.no_verify_ssl", serde_json::json!(true)),
        ("destinations.xray.senders", serde_json::json!(16)),
        ("log.level", serde_json::json!("debug")),
        ("log.file", serde_json::json!("/var/log/xray/xray.log")),
    ];
    for (key, value) in expected {
        assert_eq!(setting(&settings, key), value, "{key}");
    }
    let queue_size = setting(&settings, "destinations.xray.queue_size");
    let queue_size: bytesize::ByteSize = serde_json::from_value(queue_size).unwrap();
    assert_eq!(queue_size.as_u64(), 24 * 1024 * 1024);
}

#[test]
fn loading_the_shipped_cfg_yaml_with_compose_flags_lets_the_flags_win() {
    let settings =
        config::load(&sources("shipped-cfg.yaml", &["xray", "-o", "-b", "0.0.0.0:2000", "-n", "us-east-1"])).unwrap();
    assert_eq!(setting(&settings, "receivers.xray_udp.endpoint"), serde_json::json!("0.0.0.0:2000"));
    assert_eq!(setting(&settings, "receivers.xray_tcp.endpoint"), serde_json::json!("127.0.0.1:2000"));
    assert_eq!(setting(&settings, "destinations.xray.local_mode"), serde_json::json!(true));
    assert_eq!(setting(&settings, "destinations.xray.region"), serde_json::json!("us-east-1"));
    assert_eq!(setting(&settings, "destinations.xray.senders"), serde_json::json!(8));
}
