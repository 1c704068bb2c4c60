//! The AWS X-Ray daemon's own settings — its `cfg.yaml` and its command-line flags — and their
//! translation into waggle configuration keys, so a daemon set-up keeps working unchanged.
//!
//! Both sources produce a [`DaemonSettings`]; [`DaemonSettings::translate`] turns it into
//! `(key, value)` overrides (strings, as `--set` takes them) plus notices to log at INFO.
//! The cfg.yaml is checked the way the daemon checks a file given with `-c`: keys are
//! case-sensitive, unknown keys are errors, `Version` must be 1 or 2, and the 2.x keys that the
//! daemon retired get a message saying what replaced them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use config::{FileFormat, Format, Map, Value, ValueKind};

/// The waggle keys daemon settings are translated to.
pub mod keys {
    pub const XRAY_UDP_ENDPOINT: &str = "receivers.xray_udp.endpoint";
    pub const XRAY_TCP_ENDPOINT: &str = "receivers.xray_tcp.endpoint";
    pub const REGION: &str = "destinations.xray.region";
    pub const ROLE_ARN: &str = "destinations.xray.role_arn";
    pub const RESOURCE_ARN: &str = "destinations.xray.resource_arn";
    pub const ENDPOINT: &str = "destinations.xray.endpoint";
    pub const LOCAL_MODE: &str = "destinations.xray.local_mode";
    pub const PROXY_ADDRESS: &str = "destinations.xray.proxy_address";
    pub const HONEYCOMB_PROXY_ADDRESS: &str = "destinations.honeycomb.proxy_address";
    pub const ROLLBAR_PROXY_ADDRESS: &str = "destinations.rollbar.proxy_address";
    pub const NO_VERIFY_SSL: &str = "destinations.xray.no_verify_ssl";
    pub const SENDERS: &str = "destinations.xray.senders";
    pub const QUEUE_SIZE: &str = "destinations.xray.queue_size";
    pub const LOG_LEVEL: &str = "log.level";
    pub const LOG_FILE: &str = "log.file";
}

/// The daemon's smallest buffer, in MB; it refuses to start with less.
pub const MIN_BUFFER_MEMORY_MB: u64 = 3;

/// What the daemon can be told, by its cfg.yaml or its flags. `None` leaves waggle's own
/// setting alone (the daemon treats an empty string or a 0 in its file the same way).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DaemonSettings {
    /// `-b/--bind`, `Socket.UDPAddress`.
    pub udp_address: Option<String>,
    /// `-t/--bind-tcp`, `Socket.TCPAddress`.
    pub tcp_address: Option<String>,
    /// `-n/--region`, `Region`.
    pub region: Option<String>,
    /// `-r/--role-arn`, `RoleARN`.
    pub role_arn: Option<String>,
    /// `-a/--resource-arn`, `ResourceARN`.
    pub resource_arn: Option<String>,
    /// `Endpoint` (file only: the daemon has no flag for it).
    pub endpoint: Option<String>,
    /// `-o/--local-mode`, `LocalMode`.
    pub local_mode: Option<bool>,
    /// `-p/--proxy-address`, `ProxyAddress`; a URL with a scheme.
    pub proxy_address: Option<String>,
    /// `NoVerifySSL` (file only).
    pub no_verify_ssl: Option<bool>,
    /// `Concurrency` (file only): requests to X-Ray in flight at once.
    pub concurrency: Option<u64>,
    /// `-m/--buffer-memory`, `TotalBufferSizeMB`. `Some(0)` is the daemon's "1% of host RAM",
    /// for which waggle keeps its own bounded default.
    pub buffer_memory_mb: Option<u64>,
    /// `-l/--log-level`, `Logging.LogLevel`: dev, debug, info, warn, error, prod (or a waggle filter).
    pub log_level: Option<String>,
    /// `-f/--log-file`, `Logging.LogPath`.
    pub log_file: Option<PathBuf>,
    /// `Logging.LogRotation` (file only); waggle does not rotate its log file.
    pub log_rotation: Option<bool>,
}

/// Daemon settings as waggle configuration: overrides in order, and things to tell the user.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Translation {
    /// `(key, value)` pairs, as `--set key=value` would give them.
    pub overrides: Vec<(String, String)>,
    /// Lines to log at INFO once logging is up.
    pub notices: Vec<String>,
}

impl DaemonSettings {
    /// These settings with every setting of `later` that is set taking precedence (flags over
    /// the file, as in the daemon).
    pub fn overridden_by(self, later: DaemonSettings) -> DaemonSettings {
        DaemonSettings {
            udp_address: later.udp_address.or(self.udp_address),
            tcp_address: later.tcp_address.or(self.tcp_address),
            region: later.region.or(self.region),
            role_arn: later.role_arn.or(self.role_arn),
            resource_arn: later.resource_arn.or(self.resource_arn),
            endpoint: later.endpoint.or(self.endpoint),
            local_mode: later.local_mode.or(self.local_mode),
            proxy_address: later.proxy_address.or(self.proxy_address),
            no_verify_ssl: later.no_verify_ssl.or(self.no_verify_ssl),
            concurrency: later.concurrency.or(self.concurrency),
            buffer_memory_mb: later.buffer_memory_mb.or(self.buffer_memory_mb),
            log_level: later.log_level.or(self.log_level),
            log_file: later.log_file.or(self.log_file),
            log_rotation: later.log_rotation.or(self.log_rotation),
        }
    }

    /// The waggle keys these settings set, in a fixed order.
    pub fn translate(&self) -> Translation {
        let mut translation = Translation::default();
        let mut set = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                translation.overrides.push((key.to_string(), value));
            }
        };
        set(keys::XRAY_UDP_ENDPOINT, self.udp_address.clone());
        set(keys::XRAY_TCP_ENDPOINT, self.tcp_address.clone());
        set(keys::REGION, self.region.clone());
        set(keys::ROLE_ARN, self.role_arn.clone());
        set(keys::RESOURCE_ARN, self.resource_arn.clone());
        set(keys::ENDPOINT, self.endpoint.clone());
        set(keys::LOCAL_MODE, self.local_mode.map(|on| on.to_string()));
        set(keys::PROXY_ADDRESS, self.proxy_address.clone());
        // The daemon's proxy is for everything waggle sends to: Honeycomb and Rollbar too.
        set(keys::HONEYCOMB_PROXY_ADDRESS, self.proxy_address.clone());
        set(keys::ROLLBAR_PROXY_ADDRESS, self.proxy_address.clone());
        set(keys::NO_VERIFY_SSL, self.no_verify_ssl.map(|on| on.to_string()));
        set(keys::SENDERS, self.concurrency.map(|senders| senders.to_string()));
        set(keys::QUEUE_SIZE, self.buffer_memory_mb.filter(|mb| *mb > 0).map(|mb| format!("{mb}MiB")));
        set(keys::LOG_LEVEL, self.log_level.clone());
        set(keys::LOG_FILE, self.log_file.as_ref().map(|path| path.to_string_lossy().into_owned()));

        if self.buffer_memory_mb == Some(0) {
            translation.notices.push(format!(
                "X-Ray daemon buffer memory 0 (the daemon's \"1% of host RAM\"): waggle keeps its own bounded \
                 {} instead",
                keys::QUEUE_SIZE
            ));
        }
        if let (Some(true), Some(path)) = (self.log_rotation, &self.log_file) {
            translation.notices.push(format!(
                "X-Ray daemon Logging.LogRotation: waggle does not rotate {}; rotate it externally (logrotate) \
                 or log to standard output",
                path.display()
            ));
        }
        translation
    }
}

/// Why a single daemon setting's value is not acceptable (shared by the flags and the file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DaemonValueError {
    #[error("`{0}` is not a URL with a scheme; write it as http://{0}")]
    ProxyWithoutScheme(String),
    #[error("`{0}` is not a whole number of megabytes")]
    NotMegabytes(String),
    #[error("{0} MB is below the X-Ray daemon's minimum of {MIN_BUFFER_MEMORY_MB} MB (0 means waggle's default)")]
    BufferTooSmall(u64),
}

/// Checks a proxy address (`-p`, `ProxyAddress`): the daemon parses it as a URL, so it needs
/// a scheme and a host, e.g. `http://proxy:3128`.
pub fn parse_proxy_address(value: &str) -> Result<String, DaemonValueError> {
    let has_scheme = value.split_once("://").is_some_and(|(scheme, rest)| {
        let mut chars = scheme.chars();
        chars.next().is_some_and(|first| first.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            && !rest.is_empty()
    });
    if has_scheme { Ok(value.to_string()) } else { Err(DaemonValueError::ProxyWithoutScheme(value.to_string())) }
}

/// Checks a buffer size in MB (`-m`, `TotalBufferSizeMB`): 0, or at least [`MIN_BUFFER_MEMORY_MB`].
pub(super) fn check_buffer_memory(megabytes: u64) -> Result<u64, DaemonValueError> {
    if megabytes == 0 || megabytes >= MIN_BUFFER_MEMORY_MB {
        Ok(megabytes)
    } else {
        Err(DaemonValueError::BufferTooSmall(megabytes))
    }
}

/// Parses `-m/--buffer-memory`.
pub fn parse_buffer_memory(value: &str) -> Result<u64, DaemonValueError> {
    let megabytes = value.trim().parse::<u64>().map_err(|_| DaemonValueError::NotMegabytes(value.to_string()))?;
    check_buffer_memory(megabytes)
}

/// Why a daemon cfg.yaml was refused.
#[derive(Debug, thiserror::Error)]
pub enum DaemonConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid X-Ray daemon cfg.yaml: {reason}")]
    Syntax { path: PathBuf, reason: String },
    #[error("`Version` is missing in {path}: an X-Ray daemon cfg.yaml needs `Version: 2` (1 is accepted too)")]
    MissingVersion { path: PathBuf },
    #[error("`Version: {found}` in {path} is not supported: an X-Ray daemon cfg.yaml has `Version: 2` (or 1)")]
    BadVersion { path: PathBuf, found: String },
    #[error(
        "unknown key `{key}` in {path} (X-Ray daemon cfg.yaml keys are case-sensitive){}",
        suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default()
    )]
    UnknownKey { key: String, path: PathBuf, suggestion: Option<String> },
    #[error("`{key}` in {path} is an X-Ray daemon 2.x key that is not supported any more: {advice}")]
    ObsoleteKey { key: String, path: PathBuf, advice: &'static str },
    #[error("`{key}` in {path} must be {expected}, not {found}")]
    WrongType { key: String, path: PathBuf, expected: &'static str, found: String },
    #[error("`{key}` in {path}: {source}")]
    BadValue { key: String, path: PathBuf, source: DaemonValueError },
    #[error(
        "`Profile: {profile}` in {path}: waggle takes the AWS profile from the environment; set AWS_PROFILE={profile} \
         instead"
    )]
    ProfileNotSupported { path: PathBuf, profile: String },
}

/// Top-level keys of a daemon cfg.yaml that hold a value.
const SCALAR_KEYS: &[&str] = &[
    "TotalBufferSizeMB",
    "Concurrency",
    "Region",
    "Endpoint",
    "LocalMode",
    "ResourceARN",
    "RoleARN",
    "NoVerifySSL",
    "ProxyAddress",
    "Version",
    "Profile",
];

/// Top-level keys of a daemon cfg.yaml that hold a mapping, with the keys allowed in it.
/// `ProxyServer` is accepted and ignored, as the daemon ignores it (yaml.v2 names its fields in
/// lower case).
const SECTION_KEYS: &[(&str, &[&str])] = &[
    ("Socket", &["UDPAddress", "TCPAddress"]),
    ("Logging", &["LogRotation", "LogLevel", "LogPath"]),
    ("ProxyServer", &["idleconntimeout", "maxidleconnsperhost", "maxidleconns"]),
];

/// Keys the daemon retired in 3.0, and what to do instead. A `*` matches any key in a section.
const OBSOLETE_KEYS: &[(&str, &str)] = &[
    ("MemoryLimit", "use `TotalBufferSizeMB` (megabytes)"),
    ("LogRotation", "move it under `Logging:` as `Logging.LogRotation`"),
    ("Processor.Region", "use the top-level `Region`"),
    ("Processor.Endpoint", "use the top-level `Endpoint`"),
    ("Processor.Routine", "use the top-level `Concurrency`"),
    ("Processor.*", "batching is fixed; remove the `Processor` section"),
    ("Socket.BufferSizeKB", "remove it; the socket buffer is fixed"),
    ("Profile.*", "remove the `Profile` section; waggle has no profiler switch"),
    ("Logging.LogFormat", "remove it; waggle's log format is `--log-format text|json`"),
];

/// Top-level key names that mark a `.yaml`/`.yml` file as a daemon cfg.yaml.
fn is_daemon_top_level_key(key: &str) -> bool {
    SCALAR_KEYS.contains(&key)
        || SECTION_KEYS.iter().any(|(section, _)| *section == key)
        || OBSOLETE_KEYS.iter().any(|(obsolete, _)| obsolete.split('.').next() == Some(key))
}

/// Reads `path` as an X-Ray daemon cfg.yaml if it is one: a YAML file with a top-level
/// `Version` key, or a `.yaml`/`.yml` file with any of the daemon's top-level keys. `Ok(None)`
/// means it is not (a waggle config file); a daemon cfg.yaml that fails the daemon's checks is
/// an error.
pub fn read_if_daemon_config(path: &Path) -> Result<Option<DaemonSettings>, DaemonConfigError> {
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    if extension.as_deref() == Some("toml") {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(path).map_err(|source| DaemonConfigError::Read { path: path.to_path_buf(), source })?;
    let Ok(table) = FileFormat::Yaml.parse(None, &text) else {
        // Not YAML: a waggle TOML file without the extension, or a broken YAML file that the
        // waggle loader will report.
        return Ok(None);
    };
    let yaml_extension = matches!(extension.as_deref(), Some("yaml" | "yml"));
    let is_daemon =
        table.contains_key("Version") || (yaml_extension && table.keys().any(|k| is_daemon_top_level_key(k)));
    if is_daemon { parse_daemon_table(&table, path).map(Some) } else { Ok(None) }
}

/// Parses the text of a daemon cfg.yaml; `path` names it in errors.
pub fn parse_daemon_config(text: &str, path: &Path) -> Result<DaemonSettings, DaemonConfigError> {
    let table = FileFormat::Yaml
        .parse(None, text)
        .map_err(|e| DaemonConfigError::Syntax { path: path.to_path_buf(), reason: e.to_string() })?;
    parse_daemon_table(&table, path)
}

fn parse_daemon_table(table: &Map<String, Value>, path: &Path) -> Result<DaemonSettings, DaemonConfigError> {
    if !table.contains_key("Version") {
        return Err(DaemonConfigError::MissingVersion { path: path.to_path_buf() });
    }
    let flat = flatten(table, path)?;
    for key in flat.keys() {
        check_key(key, path)?;
    }
    let version = flat.get("Version");
    if !matches!(version.map(|v| &v.kind), Some(ValueKind::I64(1 | 2) | ValueKind::U64(1 | 2))) {
        let found = version.map(describe).unwrap_or_default();
        return Err(DaemonConfigError::BadVersion { path: path.to_path_buf(), found });
    }
    let file = DaemonFile { keys: &flat, path };
    if let Some(profile) = file.string("Profile")? {
        return Err(DaemonConfigError::ProfileNotSupported { path: path.to_path_buf(), profile });
    }
    let buffer_memory_mb = match file.non_negative("TotalBufferSizeMB")? {
        Some(megabytes) => {
            Some(check_buffer_memory(megabytes).map_err(|source| file.bad_value("TotalBufferSizeMB", source))?)
        }
        None => None,
    };
    let proxy_address = match file.string("ProxyAddress")? {
        Some(address) => Some(parse_proxy_address(&address).map_err(|source| file.bad_value("ProxyAddress", source))?),
        None => None,
    };
    Ok(DaemonSettings {
        udp_address: file.string("Socket.UDPAddress")?,
        tcp_address: file.string("Socket.TCPAddress")?,
        region: file.string("Region")?,
        role_arn: file.string("RoleARN")?,
        resource_arn: file.string("ResourceARN")?,
        endpoint: file.string("Endpoint")?,
        local_mode: file.boolean("LocalMode")?,
        proxy_address,
        no_verify_ssl: file.boolean("NoVerifySSL")?,
        // 0 is the daemon's default (8): leave waggle's default.
        concurrency: file.non_negative("Concurrency")?.filter(|senders| *senders > 0),
        buffer_memory_mb,
        log_level: file.string("Logging.LogLevel")?,
        log_file: file.string("Logging.LogPath")?.map(PathBuf::from),
        log_rotation: file.boolean("Logging.LogRotation")?,
    })
}

/// The file's keys two levels deep, as the daemon sees them: `Socket.UDPAddress`, `Region`.
fn flatten(table: &Map<String, Value>, path: &Path) -> Result<BTreeMap<String, Value>, DaemonConfigError> {
    let mut flat = BTreeMap::new();
    for (key, value) in table {
        let is_section = SECTION_KEYS.iter().any(|(section, _)| section == key);
        match &value.kind {
            ValueKind::Table(children) => {
                for (child, child_value) in children {
                    flat.insert(format!("{key}.{child}"), child_value.clone());
                }
            }
            // `Socket:` with nothing under it.
            ValueKind::Nil if is_section => {}
            _ if is_section => {
                return Err(DaemonConfigError::WrongType {
                    key: key.clone(),
                    path: path.to_path_buf(),
                    expected: "a mapping",
                    found: describe(value),
                });
            }
            _ => {
                flat.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(flat)
}

fn check_key(key: &str, path: &Path) -> Result<(), DaemonConfigError> {
    let valid = valid_keys();
    if valid.iter().any(|k| k == key) {
        return Ok(());
    }
    let section = key.split_once('.').map(|(section, _)| section);
    let obsolete = OBSOLETE_KEYS.iter().find(|(obsolete, _)| {
        *obsolete == key
            || obsolete.strip_suffix(".*").is_some_and(|obsolete_section| Some(obsolete_section) == section)
    });
    if let Some((_, advice)) = obsolete {
        return Err(DaemonConfigError::ObsoleteKey { key: key.to_string(), path: path.to_path_buf(), advice });
    }
    let suggestion = valid.iter().find(|k| k.eq_ignore_ascii_case(key) || edit_distance(k, key) <= 2).cloned();
    Err(DaemonConfigError::UnknownKey { key: key.to_string(), path: path.to_path_buf(), suggestion })
}

/// Every key a daemon cfg.yaml may have, flattened.
fn valid_keys() -> Vec<String> {
    let mut valid: Vec<String> = SCALAR_KEYS.iter().map(|k| k.to_string()).collect();
    for (section, children) in SECTION_KEYS {
        valid.extend(children.iter().map(|child| format!("{section}.{child}")));
    }
    valid
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// A value as the user wrote it, for error messages.
fn describe(value: &Value) -> String {
    match &value.kind {
        ValueKind::Nil => "nothing".to_string(),
        ValueKind::String(text) => format!("\"{text}\""),
        ValueKind::Table(_) => "a mapping".to_string(),
        ValueKind::Array(_) => "a list".to_string(),
        other => other.to_string(),
    }
}

/// Typed access to the flattened keys of one file. An absent key, an empty value and an empty
/// string are all "not set", as in the daemon.
struct DaemonFile<'a> {
    keys: &'a BTreeMap<String, Value>,
    path: &'a Path,
}

impl DaemonFile<'_> {
    fn wrong_type(&self, key: &str, expected: &'static str, value: &Value) -> DaemonConfigError {
        DaemonConfigError::WrongType {
            key: key.to_string(),
            path: self.path.to_path_buf(),
            expected,
            found: describe(value),
        }
    }

    fn bad_value(&self, key: &str, source: DaemonValueError) -> DaemonConfigError {
        DaemonConfigError::BadValue { key: key.to_string(), path: self.path.to_path_buf(), source }
    }

    fn string(&self, key: &str) -> Result<Option<String>, DaemonConfigError> {
        let Some(value) = self.keys.get(key) else { return Ok(None) };
        match &value.kind {
            ValueKind::Nil => Ok(None),
            ValueKind::String(text) if text.is_empty() => Ok(None),
            ValueKind::String(text) => Ok(Some(text.clone())),
            ValueKind::I64(_) | ValueKind::U64(_) | ValueKind::Float(_) => Ok(Some(value.kind.to_string())),
            _ => Err(self.wrong_type(key, "a string", value)),
        }
    }

    fn integer(&self, key: &str) -> Result<Option<i64>, DaemonConfigError> {
        let Some(value) = self.keys.get(key) else { return Ok(None) };
        match &value.kind {
            ValueKind::Nil => Ok(None),
            ValueKind::I64(number) => Ok(Some(*number)),
            ValueKind::U64(number) => {
                i64::try_from(*number).map(Some).map_err(|_| self.wrong_type(key, "a whole number", value))
            }
            _ => Err(self.wrong_type(key, "a whole number", value)),
        }
    }

    /// A whole number that is not negative.
    fn non_negative(&self, key: &str) -> Result<Option<u64>, DaemonConfigError> {
        match self.integer(key)? {
            None => Ok(None),
            Some(number) => u64::try_from(number).map(Some).map_err(|_| {
                let value = &self.keys[key];
                self.wrong_type(key, "a whole number, 0 or more", value)
            }),
        }
    }

    /// `true`/`false`, and the other spellings YAML 1.1 (the daemon's parser) reads as booleans.
    fn boolean(&self, key: &str) -> Result<Option<bool>, DaemonConfigError> {
        let Some(value) = self.keys.get(key) else { return Ok(None) };
        match &value.kind {
            ValueKind::Nil => Ok(None),
            ValueKind::Boolean(on) => Ok(Some(*on)),
            ValueKind::String(text) => match text.to_ascii_lowercase().as_str() {
                "y" | "yes" | "on" | "true" => Ok(Some(true)),
                "n" | "no" | "off" | "false" => Ok(Some(false)),
                _ => Err(self.wrong_type(key, "true or false", value)),
            },
            _ => Err(self.wrong_type(key, "true or false", value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DaemonSettings, DaemonConfigError> {
        parse_daemon_config(text, Path::new("cfg.yaml"))
    }

    #[test]
    fn empty_strings_and_zero_concurrency_leave_waggle_defaults() {
        let settings = parse("Version: 2\nRegion: \"\"\nConcurrency: 0\nSocket:\n  UDPAddress: \"\"\n").unwrap();
        assert_eq!(settings, DaemonSettings::default());
    }

    #[test]
    fn yaml_1_1_booleans_are_read_as_the_daemon_reads_them() {
        let settings = parse("Version: 2\nLocalMode: yes\nNoVerifySSL: off\n").unwrap();
        assert_eq!((settings.local_mode, settings.no_verify_ssl), (Some(true), Some(false)));
    }

    #[test]
    fn a_section_given_a_value_is_refused() {
        let message = parse("Version: 2\nSocket: 127.0.0.1:2000\n").unwrap_err().to_string();
        assert!(message.contains("`Socket`") && message.contains("mapping"), "{message}");
    }

    #[test]
    fn a_negative_buffer_size_is_refused() {
        let message = parse("Version: 2\nTotalBufferSizeMB: -1\n").unwrap_err().to_string();
        assert!(message.contains("`TotalBufferSizeMB`"), "{message}");
    }

    #[test]
    fn a_buffer_below_the_daemons_minimum_is_refused() {
        let message = parse("Version: 2\nTotalBufferSizeMB: 2\n").unwrap_err().to_string();
        assert!(message.contains("`TotalBufferSizeMB`") && message.contains("minimum of 3"), "{message}");
    }

    #[test]
    fn proxy_server_is_ignored_as_the_daemon_ignores_it() {
        assert_eq!(parse("Version: 2\nProxyServer:\n  idleconntimeout: 5\n").unwrap(), DaemonSettings::default());
    }

    #[test]
    fn a_named_profile_points_at_aws_profile() {
        let message = parse("Version: 2\nProfile: ops\n").unwrap_err().to_string();
        assert!(message.contains("AWS_PROFILE=ops"), "{message}");
    }

    #[test]
    fn flags_take_precedence_over_the_file() {
        let file = DaemonSettings { region: Some("eu-west-1".into()), concurrency: Some(4), ..Default::default() };
        let flags = DaemonSettings { region: Some("us-east-1".into()), ..Default::default() };
        let merged = file.overridden_by(flags);
        assert_eq!((merged.region.as_deref(), merged.concurrency), (Some("us-east-1"), Some(4)));
    }

    #[test]
    fn log_rotation_with_a_log_file_is_noticed() {
        let settings = DaemonSettings {
            log_rotation: Some(true),
            log_file: Some("/var/log/xray.log".into()),
            ..Default::default()
        };
        let notices = settings.translate().notices;
        assert!(notices.iter().any(|n| n.contains("/var/log/xray.log")), "{notices:?}");
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("Socket.UDPAdress", "Socket.UDPAddress"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("Region", "Region"), 0);
    }
}
