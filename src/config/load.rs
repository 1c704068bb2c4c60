//! Layering: built-in defaults → file → `WAGGLE_…` environment → command-line overrides,
//! later wins. Each layer is checked on its own for keys waggle does not know, so the error
//! can say where the stray key came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat, Map, Source, Value, ValueKind};

use super::Settings;
use super::daemon::{self, DaemonConfigError};
use crate::resource::{RESOURCE_ATTRIBUTES_ENV, ResourceAttributes, parse_attribute_list};

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "config/waggle.toml";

/// Prefix of environment variables that set config keys; `__` separates key levels:
/// `WAGGLE_RECEIVERS__OTLP_HTTP__ENDPOINT=0.0.0.0:4318`.
pub const ENV_PREFIX: &str = "WAGGLE";

/// Variables with the prefix that are not config keys.
const ENV_NOT_KEYS: &[&str] = &["WAGGLE_CONFIG", "WAGGLE_BIN", RESOURCE_ATTRIBUTES_ENV];

/// Well-known variables other tools use, and the key each sets. A `WAGGLE_…` variable for the
/// same key wins over them.
pub(super) const WELL_KNOWN_ENV: &[(&str, &str)] = &[
    ("HONEYCOMB_API_KEY", "destinations.honeycomb.api_key"),
    ("HONEYCOMB_DATASET", "destinations.honeycomb.dataset"),
    ("ROLLBAR_ACCESS_TOKEN", "destinations.rollbar.access_token"),
];

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown configuration key `{key}` in {origin}")]
    UnknownKey { key: String, origin: String },
    #[error("config file {path} not found")]
    FileNotFound { path: PathBuf },
    #[error("bad --set override `{0}`: expected KEY=VALUE, e.g. --set receivers.otlp_http.endpoint=0.0.0.0:4318")]
    BadOverride(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    DaemonConfig(#[from] DaemonConfigError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
}

/// Where the layers come from; built by the CLI, or by tests.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// `--config PATH`: must exist. `None` reads [`DEFAULT_CONFIG_FILE`] when present.
    pub file: Option<PathBuf>,
    /// The environment to read `WAGGLE_…` variables from.
    pub env: BTreeMap<String, String>,
    /// Command-line overrides as (key, value), applied last in order.
    pub overrides: Vec<(String, String)>,
    /// Things the command line wants said at INFO once logging is up (see [`Loaded::notices`]).
    pub notices: Vec<String>,
}

/// The effective settings, and what loading them wants said at INFO once logging is up.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub settings: Settings,
    /// E.g. how an X-Ray daemon setting waggle does not copy was taken.
    pub notices: Vec<String>,
}

impl Sources {
    /// Sources with the process environment.
    pub fn from_process_env(file: Option<PathBuf>, overrides: Vec<(String, String)>) -> Self {
        Sources { file, env: std::env::vars().collect(), overrides, notices: Vec::new() }
    }
}

/// Parses a `--set KEY=VALUE` argument.
pub fn parse_override(arg: &str) -> Result<(String, String), ConfigError> {
    match arg.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_string(), value.to_string())),
        _ => Err(ConfigError::BadOverride(arg.to_string())),
    }
}

/// Loads the effective settings from all layers.
pub fn load(sources: &Sources) -> Result<Settings, ConfigError> {
    load_with_notices(sources).map(|loaded| loaded.settings)
}

/// Loads the effective settings from all layers, with the notices to log once logging is up.
pub fn load_with_notices(sources: &Sources) -> Result<Loaded, ConfigError> {
    let known = serde_json::to_value(Settings::default()).map_err(|e| ConfigError::Invalid(e.to_string()))?;
    let mut builder = Config::builder().add_source(Config::try_from(&Settings::default())?);
    let mut notices = sources.notices.clone();

    let file = config_file(sources)?;
    let daemon_file = file.as_deref().map(daemon::read_if_daemon_config).transpose()?.flatten();
    if let (Some(file), Some(daemon_settings)) = (&file, daemon_file) {
        // The X-Ray daemon's cfg.yaml: its settings as waggle keys, in the file's place.
        let translation = daemon_settings.translate();
        let mut layer = Config::builder();
        for (key, value) in &translation.overrides {
            layer = layer.set_override(key.as_str(), value.as_str())?;
        }
        let layer = layer.build()?;
        check_keys(&layer.collect()?, &known, &format!("X-Ray daemon config file {}", file.display()))?;
        builder = builder.add_source(layer);
        notices.extend(translation.notices);
    } else if let Some(file) = file {
        let origin = format!("config file {}", file.display());
        let source = File::from(file.as_path()).format(file_format(&file)).required(true);
        check_keys(&Config::builder().add_source(source.clone()).build()?.collect()?, &known, &origin)?;
        builder = builder.add_source(source);
    }

    builder = builder.add_source(Config::try_from(&well_known_env(&sources.env))?);
    if let Some(list) = sources.env.get(RESOURCE_ATTRIBUTES_ENV) {
        let pairs = parse_attribute_list(list).map_err(|error| ConfigError::Invalid(error.to_string()))?;
        builder = builder.add_source(ResourceAttributesSource::new(pairs));
    }
    let environment = environment_source(&sources.env, &known);
    check_keys(&Config::builder().add_source(environment.clone()).build()?.collect()?, &known, "the environment")?;
    builder = builder.add_source(environment);

    for (key, value) in &sources.overrides {
        let origin = format!("command-line override `{key}`");
        let single = Config::builder().set_override(key.as_str(), value.as_str())?.build()?;
        check_keys(&single.collect()?, &known, &origin)?;
        builder = builder.set_override(key.as_str(), override_value(key, value, &known))?;
    }

    let settings: Settings = builder.build()?.try_deserialize()?;
    validate(&settings)?;
    Ok(Loaded { settings, notices })
}

fn config_file(sources: &Sources) -> Result<Option<PathBuf>, ConfigError> {
    match &sources.file {
        Some(path) if path.is_file() => Ok(Some(path.clone())),
        Some(path) => Err(ConfigError::FileNotFound { path: path.clone() }),
        None => {
            let default = PathBuf::from(DEFAULT_CONFIG_FILE);
            Ok(default.is_file().then_some(default))
        }
    }
}

fn file_format(path: &Path) -> FileFormat {
    match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => FileFormat::Yaml,
        _ => FileFormat::Toml,
    }
}

/// The [`WELL_KNOWN_ENV`] variables that are set (and not empty), as a settings tree.
fn well_known_env(env: &BTreeMap<String, String>) -> serde_json::Value {
    let mut tree = serde_json::Value::Object(serde_json::Map::new());
    for (variable, key) in WELL_KNOWN_ENV {
        let Some(value) = env.get(*variable).filter(|v| !v.is_empty()) else { continue };
        let mut node = &mut tree;
        for part in key.split('.') {
            node = &mut node[part];
        }
        *node = serde_json::Value::String(value.clone());
    }
    tree
}

/// `WAGGLE_RESOURCE_ATTRIBUTES` as a layer setting `resource.attributes`. Keys are split on
/// dots into nested tables, as TOML's dotted keys are, so the same attribute set in the file
/// and here is one key (this layer wins). Built as a table, not through key paths, so an
/// attribute key may hold any character.
#[derive(Debug, Clone)]
struct ResourceAttributesSource {
    resource: Map<String, Value>,
}

impl ResourceAttributesSource {
    fn new(pairs: Vec<(String, String)>) -> Self {
        let mut attributes = Map::new();
        for (key, value) in pairs {
            let mut table = &mut attributes;
            let mut parts = key.split('.').peekable();
            while let Some(part) = parts.next() {
                if parts.peek().is_none() {
                    table.insert(part.to_string(), Value::from(value.clone()));
                    break;
                }
                let node = table.entry(part.to_string()).or_insert_with(|| Value::from(Map::<String, Value>::new()));
                if !matches!(node.kind, ValueKind::Table(_)) {
                    *node = Value::from(Map::<String, Value>::new());
                }
                let ValueKind::Table(next) = &mut node.kind else { unreachable!("made a table above") };
                table = next;
            }
        }
        let resource = Map::from([("attributes".to_string(), Value::from(attributes))]);
        ResourceAttributesSource { resource }
    }
}

impl Source for ResourceAttributesSource {
    fn clone_into_box(&self) -> Box<dyn Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, config::ConfigError> {
        Ok(Map::from([("resource".to_string(), Value::from(self.resource.clone()))]))
    }
}

/// `WAGGLE_A__B_C=v` → key `a.b_c`; list-valued keys split on commas.
fn environment_source(env: &BTreeMap<String, String>, known: &serde_json::Value) -> Environment {
    let vars: Map<String, String> = env
        .iter()
        .filter(|(name, _)| name.starts_with("WAGGLE_") && !ENV_NOT_KEYS.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let mut environment = Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("_")
        .separator("__")
        .try_parsing(true)
        .list_separator(",")
        .source(Some(vars));
    for key in list_keys(known, "") {
        environment = environment.with_list_parse_key(&key);
    }
    environment
}

/// An override of a list-valued key is given as comma-separated items.
fn override_value(key: &str, value: &str, known: &serde_json::Value) -> Value {
    if list_keys(known, "").iter().any(|k| k == key) {
        let items: Vec<Value> =
            value.split(',').filter(|s| !s.is_empty()).map(|s| Value::from(s.trim().to_string())).collect();
        Value::from(items)
    } else {
        Value::from(value.to_string())
    }
}

/// Dotted paths of every list-valued key in the settings tree.
fn list_keys(node: &serde_json::Value, prefix: &str) -> Vec<String> {
    match node {
        serde_json::Value::Object(fields) => fields
            .iter()
            .flat_map(|(name, child)| {
                let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
                list_keys(child, &path)
            })
            .collect(),
        serde_json::Value::Array(_) => vec![prefix.to_string()],
        _ => Vec::new(),
    }
}

/// Fails on the first key in `layer` that the settings tree does not have. An empty table in
/// the defaults (a map such as extra headers) accepts any key below it.
fn check_keys(layer: &Map<String, Value>, known: &serde_json::Value, origin: &str) -> Result<(), ConfigError> {
    check_table(layer, known, "", origin)
}

fn check_table(
    table: &Map<String, Value>,
    known: &serde_json::Value,
    prefix: &str,
    origin: &str,
) -> Result<(), ConfigError> {
    let serde_json::Value::Object(known_fields) = known else { return Ok(()) };
    if known_fields.is_empty() {
        return Ok(());
    }
    for (name, value) in table {
        let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        let Some(known_child) = known_fields.get(name) else {
            return Err(ConfigError::UnknownKey { key: path, origin: origin.to_string() });
        };
        if let ValueKind::Table(child) = &value.kind {
            check_table(child, known_child, &path, origin)?;
        }
    }
    Ok(())
}

/// Checks that need more than types.
fn validate(settings: &Settings) -> Result<(), ConfigError> {
    let local = &settings.destinations.local;
    if local.senders == 0 {
        return Err(ConfigError::Invalid("destinations.local.senders must be at least 1".into()));
    }
    if settings.receivers.otlp_http.max_body_size.as_u64() == 0 {
        return Err(ConfigError::Invalid("receivers.otlp_http.max_body_size must be more than 0".into()));
    }
    ResourceAttributes::from_settings(&settings.resource).map_err(|error| ConfigError::Invalid(error.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn temp_file(name: &str, contents: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("waggle-config-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::File::create(&path).unwrap().write_all(contents.as_bytes()).unwrap();
        path
    }

    fn with_file(name: &str, contents: &str) -> Sources {
        Sources { file: Some(temp_file(name, contents)), ..Sources::default() }
    }

    #[test]
    fn defaults_load_without_any_source() {
        let settings = load(&Sources { file: Some(temp_file("empty.toml", "")), ..Sources::default() }).unwrap();
        assert_eq!(settings, Settings::default());
    }

    #[test]
    fn file_overrides_defaults() {
        let sources = with_file("file.toml", "[receivers.otlp_http]\nendpoint = \"0.0.0.0:4318\"\n");
        let settings = load(&sources).unwrap();
        assert_eq!(settings.receivers.otlp_http.endpoint, "0.0.0.0:4318");
    }

    #[test]
    fn environment_overrides_file() {
        let mut sources = with_file("envwins.toml", "[receivers.otlp_http]\nendpoint = \"0.0.0.0:4318\"\n");
        sources.env = env(&[("WAGGLE_RECEIVERS__OTLP_HTTP__ENDPOINT", "127.0.0.1:9999")]);
        assert_eq!(load(&sources).unwrap().receivers.otlp_http.endpoint, "127.0.0.1:9999");
    }

    #[test]
    fn override_beats_environment() {
        let mut sources = with_file("setwins.toml", "");
        sources.env = env(&[("WAGGLE_LOG__LEVEL", "debug")]);
        sources.overrides = vec![("log.level".into(), "warn".into())];
        assert_eq!(load(&sources).unwrap().log.level, "warn");
    }

    #[test]
    fn environment_parses_numbers_sizes_durations_and_lists() {
        let mut sources = with_file("envtypes.toml", "");
        sources.env = env(&[
            ("WAGGLE_DESTINATIONS__LOCAL__SENDERS", "3"),
            ("WAGGLE_RECEIVERS__OTLP_HTTP__MAX_BODY_SIZE", "1MiB"),
            ("WAGGLE_DESTINATIONS__LOCAL__BATCH_TIMEOUT", "50ms"),
            ("WAGGLE_DESTINATIONS__LOCAL__SIGNALS", "traces,logs"),
        ]);
        let settings = load(&sources).unwrap();
        let local = &settings.destinations.local;
        assert_eq!(local.senders, 3);
        assert_eq!(settings.receivers.otlp_http.max_body_size.as_u64(), 1024 * 1024);
        assert_eq!(local.batch_timeout, std::time::Duration::from_millis(50));
        assert_eq!(local.signals, vec![crate::model::Signal::Traces, crate::model::Signal::Logs]);
    }

    #[test]
    fn unknown_file_key_names_the_key_and_the_file() {
        let sources = with_file("unknown.toml", "[receivers.otlp_http]\nendpiont = \"x\"\n");
        let message = load(&sources).unwrap_err().to_string();
        assert!(message.contains("`receivers.otlp_http.endpiont`"), "{message}");
        assert!(message.contains("unknown.toml"), "{message}");
    }

    #[test]
    fn unknown_environment_key_names_the_key_and_the_environment() {
        let mut sources = with_file("unknownenv.toml", "");
        sources.env = env(&[("WAGGLE_ADMIN__PORT", "1")]);
        let message = load(&sources).unwrap_err().to_string();
        assert!(message.contains("`admin.port`") && message.contains("environment"), "{message}");
    }

    #[test]
    fn unknown_override_key_is_named() {
        let mut sources = with_file("unknownset.toml", "");
        sources.overrides = vec![("destinations.nowhere.enabled".into(), "true".into())];
        let message = load(&sources).unwrap_err().to_string();
        assert!(message.contains("`destinations.nowhere`") && message.contains("override"), "{message}");
    }

    #[test]
    fn a_missing_explicit_file_is_an_error() {
        let sources = Sources { file: Some(PathBuf::from("/nonexistent/waggle.toml")), ..Sources::default() };
        assert!(matches!(load(&sources), Err(ConfigError::FileNotFound { .. })));
    }

    #[test]
    fn a_wrongly_typed_value_names_its_key() {
        let sources = with_file("badtype.toml", "[destinations.local]\nsenders = \"many\"\n");
        let message = load(&sources).unwrap_err().to_string();
        assert!(message.contains("senders"), "{message}");
    }

    #[test]
    fn variables_without_the_prefix_or_not_keys_are_ignored() {
        let mut sources = with_file("ignored.toml", "");
        sources.env = env(&[("WAGGLE_CONFIG", "x.toml"), ("PATH", "/bin"), ("WAGGLEX", "1")]);
        assert_eq!(load(&sources).unwrap(), Settings::default());
    }

    #[test]
    fn well_known_variables_set_their_keys() {
        let mut sources = with_file("wellknown.toml", "");
        sources.env = env(&[("HONEYCOMB_API_KEY", "key-from-env"), ("HONEYCOMB_DATASET", "ds")]);
        let honeycomb = load(&sources).unwrap().destinations.honeycomb;
        assert_eq!(honeycomb.api_key.unwrap().expose(), "key-from-env");
        assert_eq!(honeycomb.dataset.as_deref(), Some("ds"));
    }

    #[test]
    fn rollbar_access_token_sets_the_rollbar_token() {
        let mut sources = with_file("wellknownrollbar.toml", "");
        sources.env = env(&[("ROLLBAR_ACCESS_TOKEN", "token-from-env")]);
        let rollbar = load(&sources).unwrap().destinations.rollbar;
        assert_eq!(rollbar.access_token.unwrap().expose(), "token-from-env");
    }

    #[test]
    fn a_waggle_variable_wins_over_a_well_known_one() {
        let mut sources = with_file("wellknownlose.toml", "");
        sources.env = env(&[("HONEYCOMB_API_KEY", "generic"), ("WAGGLE_DESTINATIONS__HONEYCOMB__API_KEY", "specific")]);
        assert_eq!(load(&sources).unwrap().destinations.honeycomb.api_key.unwrap().expose(), "specific");
    }

    #[test]
    fn override_needs_key_and_value() {
        assert_eq!(parse_override("a.b=c=d").unwrap(), ("a.b".to_string(), "c=d".to_string()));
        assert!(parse_override("novalue").is_err());
        assert!(parse_override("=x").is_err());
    }

    /// The attributes the settings hold, flattened.
    fn resource_attributes(settings: &Settings) -> Vec<(String, String)> {
        let attributes = ResourceAttributes::from_settings(&settings.resource).unwrap();
        let mut resource = None;
        attributes.add_to_decoded(&mut resource);
        resource
            .unwrap()
            .attributes
            .into_iter()
            .map(|kv| {
                let value = match kv.value.and_then(|v| v.value) {
                    Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s)) => s,
                    other => format!("{other:?}"),
                };
                (kv.key, value)
            })
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn resource_attributes_come_from_the_file_the_variable_and_overrides_in_that_order() {
        let mut sources = with_file(
            "resource.toml",
            "[resource]\noverride = true\n[resource.attributes]\ndeployment.environment.name = \"staging\"\n\"team\" = \"core\"\n",
        );
        sources.env =
            env(&[("WAGGLE_RESOURCE_ATTRIBUTES", "deployment.environment.name=prod,url=https%3A%2F%2Fx%2Cy")]);
        sources.overrides = vec![("resource.attributes.team".into(), "edge".into())];
        let settings = load(&sources).unwrap();
        assert!(settings.resource.override_app);
        assert_eq!(
            resource_attributes(&settings),
            pairs(&[("deployment.environment.name", "prod"), ("team", "edge"), ("url", "https://x,y")])
        );
    }

    #[test]
    fn a_malformed_resource_attributes_variable_stops_loading_and_is_named() {
        let mut sources = with_file("resourcebad.toml", "");
        sources.env = env(&[("WAGGLE_RESOURCE_ATTRIBUTES", "a=1,b")]);
        let message = load(&sources).unwrap_err().to_string();
        assert!(message.contains("WAGGLE_RESOURCE_ATTRIBUTES") && message.contains("(`b`)"), "{message}");
    }

    #[test]
    fn a_resource_attribute_that_is_a_list_is_refused() {
        let sources = with_file("resourcelist.toml", "[resource.attributes]\nzones = [\"a\", \"b\"]\n");
        let message = load(&sources).unwrap_err().to_string();
        assert!(message.contains("resource.attributes.zones"), "{message}");
    }
}
