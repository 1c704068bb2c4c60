//! The X-Ray daemon compatibility target: its `cfg.yaml` and its command line, in every
//! spelling Go's `flag` package takes.

use std::cell::RefCell;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use crate::cli::GoStyleParser;
use crate::config::{DaemonSettings, daemon_keys, parse_daemon_config};

/// Every waggle key daemon settings may set.
const KEYS: [&str; 15] = [
    daemon_keys::XRAY_UDP_ENDPOINT,
    daemon_keys::XRAY_TCP_ENDPOINT,
    daemon_keys::REGION,
    daemon_keys::ROLE_ARN,
    daemon_keys::RESOURCE_ARN,
    daemon_keys::ENDPOINT,
    daemon_keys::LOCAL_MODE,
    daemon_keys::PROXY_ADDRESS,
    daemon_keys::HONEYCOMB_PROXY_ADDRESS,
    daemon_keys::ROLLBAR_PROXY_ADDRESS,
    daemon_keys::NO_VERIFY_SSL,
    daemon_keys::SENDERS,
    daemon_keys::QUEUE_SIZE,
    daemon_keys::LOG_LEVEL,
    daemon_keys::LOG_FILE,
];

/// The first byte chooses: even, the rest is a `cfg.yaml` (UTF-8, lossily); odd, the rest is a
/// command line, its arguments separated by NUL bytes (any bytes, not only UTF-8). Neither
/// parser panics; an accepted file or command line translates into waggle keys only, none
/// given an empty value (an empty daemon setting leaves waggle's own alone).
pub fn daemon_config(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        let text = String::from_utf8_lossy(rest);
        match parse_daemon_config(&text, Path::new("cfg.yaml")) {
            Ok(settings) => translates_to_daemon_keys(&settings),
            Err(error) => assert!(!error.to_string().is_empty()),
        }
    } else {
        let args = std::iter::once(OsString::from("waggle"))
            .chain(rest.split(|&byte| byte == 0).map(|arg| OsString::from_vec(arg.to_vec())));
        // One parser for every input: clap's command is built (and its definition checked) once.
        thread_local! {
            static PARSER: RefCell<GoStyleParser> = RefCell::new(GoStyleParser::new());
        }
        match PARSER.with_borrow_mut(|parser| parser.parse(args)) {
            Ok(cli) => {
                translates_to_daemon_keys(&cli.options.daemon_settings());
                if let Ok(translation) = cli.options.translation() {
                    assert!(translation.overrides.iter().all(|(key, _)| !key.is_empty()));
                }
            }
            Err(error) => assert!(!error.to_string().is_empty()),
        }
    }
}

fn translates_to_daemon_keys(settings: &DaemonSettings) {
    for (key, value) in settings.translate().overrides {
        assert!(KEYS.contains(&key.as_str()), "daemon settings set {key}");
        assert!(!value.is_empty(), "daemon settings set {key} to nothing");
    }
}
