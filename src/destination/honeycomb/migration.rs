//! Migration hint: the environment still holds the app-side Honeycomb set-up (the OpenTelemetry
//! SDK's `OTEL_EXPORTER_OTLP_HEADERS` with `x-honeycomb-team`, or `OTEL_EXPORTER_OTLP_ENDPOINT`
//! pointing at Honeycomb) while waggle has no key: one sentence on how to move the key to
//! waggle. Only variable names are ever shown, never their values.

use std::collections::BTreeMap;

/// Where the OpenTelemetry SDKs read headers, generic and per signal.
const HEADER_VARIABLES: [&str; 4] = [
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
];

/// Where the OpenTelemetry SDKs read the endpoint, generic and per signal.
const ENDPOINT_VARIABLES: [&str; 4] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
];

/// The hint, when the app-side set-up is there and waggle has no key (`has_key`).
pub(crate) fn app_side_setup_hint(env: &BTreeMap<String, String>, has_key: bool) -> Option<String> {
    if has_key {
        return None;
    }
    let header_names = |name: &str| -> Vec<String> {
        env.get(name)
            .map(|value| {
                value
                    .split(',')
                    .filter_map(|pair| pair.split_once('='))
                    .map(|(key, _)| key.trim().to_ascii_lowercase())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut found: Vec<&str> = Vec::new();
    let mut dataset = false;
    for name in HEADER_VARIABLES {
        let names = header_names(name);
        if names.iter().any(|header| header == "x-honeycomb-team") {
            found.push(name);
            dataset |= names.iter().any(|header| header == "x-honeycomb-dataset");
        }
    }
    for name in ENDPOINT_VARIABLES {
        if env.get(name).is_some_and(|value| value.to_ascii_lowercase().contains("honeycomb.io")) {
            found.push(name);
        }
    }
    if found.is_empty() {
        return None;
    }
    let dataset = if dataset { " (and HONEYCOMB_DATASET to its x-honeycomb-dataset value)" } else { "" };
    Some(format!(
        "this environment still sends to Honeycomb from the app ({}) but waggle has no Honeycomb key: move the key to waggle — \
         set HONEYCOMB_API_KEY on waggle to the x-honeycomb-team value{dataset}, then point the app at waggle \
         (OTEL_EXPORTER_OTLP_ENDPOINT=http://<waggle host>:4318) and drop the Honeycomb header from the app",
        found.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_app_side_header_is_found_and_its_value_never_shown() {
        let env = env(&[("OTEL_EXPORTER_OTLP_HEADERS", "X-Honeycomb-Team=secret-key-123,x-honeycomb-dataset=cruddur")]);
        let hint = app_side_setup_hint(&env, false).expect("a hint");
        assert!(hint.contains("(OTEL_EXPORTER_OTLP_HEADERS)"), "{hint}");
        assert!(hint.contains("HONEYCOMB_DATASET"), "{hint}");
        assert!(!hint.contains("secret-key-123") && !hint.contains("=cruddur"), "{hint}");
    }

    #[test]
    fn an_endpoint_at_honeycomb_is_found() {
        let env = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://api.honeycomb.io")]);
        let hint = app_side_setup_hint(&env, false).expect("a hint");
        assert!(hint.contains("(OTEL_EXPORTER_OTLP_ENDPOINT)") && !hint.contains("HONEYCOMB_DATASET"), "{hint}");
    }

    #[test]
    fn no_hint_with_a_key_or_without_the_app_side_setup() {
        let app_side = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://api.honeycomb.io")]);
        assert_eq!(app_side_setup_hint(&app_side, true), None);
        let local = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318")]);
        assert_eq!(app_side_setup_hint(&local, false), None);
    }
}
