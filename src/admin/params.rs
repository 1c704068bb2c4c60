//! Query parameters shared by the store's query API and its Jaeger API: reading them from the
//! query string, and parsing durations, times, trace ids, severities and `key=value`
//! attributes, each with a [`ParamError`] that names the parameter.

use std::time::UNIX_EPOCH;

use crate::store::parse_trace_id;

/// Why a query parameter was refused; shown to the caller with a 400.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ParamError {
    #[error("parameter {param}: expected {expected}, got {value:?}")]
    Invalid { param: &'static str, expected: &'static str, value: String },
    #[error("parameter limit: expected a whole number from 1 to {max}, got {value:?}")]
    Limit { max: usize, value: String },
    #[error("parameter {param} is required")]
    Missing { param: &'static str },
    #[error("parameter {max} must not be less than {min}")]
    Inverted { min: &'static str, max: &'static str },
}

impl ParamError {
    pub(crate) fn invalid(param: &'static str, expected: &'static str, value: &str) -> ParamError {
        ParamError::Invalid { param, expected, value: value.to_owned() }
    }
}

/// A request's query parameters as `(name, value)` pairs, in order; a name may repeat.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn new(pairs: Vec<(String, String)>) -> Params {
        Params(pairs)
    }

    /// The last non-empty value of `name`; an empty value means "not given".
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(key, value)| key == name && !value.is_empty()).map(|(_, value)| value.as_str())
    }

    /// Every non-empty value of `name`, in order.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(key, value)| key == name && !value.is_empty()).map(|(_, value)| value.as_str())
    }

    /// The last non-empty value of `name`, owned.
    pub(crate) fn owned(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_owned)
    }
}

/// A duration in Go's (and Jaeger's) form, in nanoseconds: one or more decimal numbers, each
/// with a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), like `150ms`, `1.5s` or `1m30s`; `0`
/// alone is zero. `None` when malformed or too large.
pub(crate) fn parse_go_duration(text: &str) -> Option<u64> {
    if text == "0" {
        return Some(0);
    }
    let mut rest = text;
    let mut total: u128 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits_end = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits_end);
        let unit_end = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        total = total.checked_add(scaled(number, unit_nanos)?)?;
        rest = next;
    }
    u64::try_from(total).ok()
}

/// `number` (digits with at most one `.`, at least one digit) times `unit`, truncated to whole
/// nanoseconds.
fn scaled(number: &str, unit: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return None;
    }
    let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let mut value = whole.checked_mul(unit)?;
    // Digits past the 18th cannot change whole nanoseconds of any unit up to an hour.
    let fraction = &fraction[..fraction.len().min(18)];
    if !fraction.is_empty() {
        let digits: u128 = fraction.parse().ok()?;
        value = value.checked_add(digits.checked_mul(unit)? / 10u128.pow(fraction.len() as u32))?;
    }
    Some(value)
}

/// A duration for waggle's own API: Go's form (see [`parse_go_duration`]), or a bare number of
/// milliseconds (`250`, `1.5`).
pub(crate) fn parse_api_duration(param: &'static str, text: &str) -> Result<u64, ParamError> {
    const EXPECTED: &str = "a duration like 150ms, 1.5s or 1m30s, or a number of milliseconds";
    if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return scaled(text, 1_000_000)
            .and_then(|nanos| u64::try_from(nanos).ok())
            .ok_or_else(|| ParamError::invalid(param, EXPECTED, text));
    }
    parse_go_duration(text).ok_or_else(|| ParamError::invalid(param, EXPECTED, text))
}

/// A time for waggle's own API, in Unix nanoseconds: a whole number of Unix nanoseconds, or
/// RFC 3339 in UTC (`2024-05-01T12:00:00Z`, `2024-05-01T12:00:00.250Z`).
pub(crate) fn parse_api_time(param: &'static str, text: &str) -> Result<u64, ParamError> {
    const EXPECTED: &str = "Unix nanoseconds or an RFC 3339 UTC time like 2024-05-01T12:00:00Z";
    if let Ok(nanos) = text.parse::<u64>() {
        return Ok(nanos);
    }
    humantime::parse_rfc3339(text)
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .and_then(|since| u64::try_from(since.as_nanos()).ok())
        .ok_or_else(|| ParamError::invalid(param, EXPECTED, text))
}

/// A time in Jaeger's form, Unix microseconds, as Unix nanoseconds.
pub(crate) fn parse_micros_time(param: &'static str, text: &str) -> Result<u64, ParamError> {
    text.parse::<u64>()
        .map(|micros| micros.saturating_mul(1_000))
        .map_err(|_| ParamError::invalid(param, "Unix microseconds", text))
}

/// A minimum severity: an OTLP severity number (1–24) or a name (`trace`, `debug`, `info`,
/// `warn`/`warning`, `error`, `fatal`, any case), which means the lowest number of its range.
pub(crate) fn parse_severity(param: &'static str, text: &str) -> Result<i32, ParamError> {
    const EXPECTED: &str = "a severity number 1-24 or trace, debug, info, warn, error, fatal";
    if let Ok(number) = text.parse::<i32>() {
        return if (1..=24).contains(&number) { Ok(number) } else { Err(ParamError::invalid(param, EXPECTED, text)) };
    }
    match text.to_ascii_lowercase().as_str() {
        "trace" => Ok(1),
        "debug" => Ok(5),
        "info" => Ok(9),
        "warn" | "warning" => Ok(13),
        "error" => Ok(17),
        "fatal" => Ok(21),
        _ => Err(ParamError::invalid(param, EXPECTED, text)),
    }
}

/// A trace id as 32 hex digits (either case) or in X-Ray's `1-xxxxxxxx-xxxx…` form.
pub(crate) fn parse_strict_trace_id(param: &'static str, text: &str) -> Result<[u8; 16], ParamError> {
    parse_trace_id(text).ok_or_else(|| {
        ParamError::invalid(param, "32 hex digits or an X-Ray id 1-xxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx", text)
    })
}

/// A trace id as Jaeger and Grafana accept one: 1 to 32 hex digits (shorter ids are the low
/// digits, as Jaeger reads them), or X-Ray's form; surrounding spaces are ignored.
pub(crate) fn parse_lenient_trace_id(text: &str) -> Option<[u8; 16]> {
    let text = text.trim();
    if text.starts_with("1-") {
        return parse_trace_id(text);
    }
    if text.is_empty() || text.len() > 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut digits = [b'0'; 32];
    digits[32 - text.len()..].copy_from_slice(text.as_bytes());
    let mut id = [0u8; 16];
    hex::decode_to_slice(digits, &mut id).ok()?;
    Some(id)
}

/// `key=value` (the first `=` splits; the value may be empty, the key may not).
pub(crate) fn parse_key_value(param: &'static str, text: &str) -> Result<(String, String), ParamError> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(ParamError::invalid(param, "key=value", text)),
    }
}

/// A JSON object of tags, `{"key": "value", ...}`; numbers and booleans are taken as their
/// JSON text.
pub(crate) fn parse_tags_json(param: &'static str, text: &str) -> Result<Vec<(String, String)>, ParamError> {
    const EXPECTED: &str = r#"a JSON object of strings like {"http.method":"GET"}"#;
    let Ok(serde_json::Value::Object(tags)) = serde_json::from_str::<serde_json::Value>(text) else {
        return Err(ParamError::invalid(param, EXPECTED, text));
    };
    tags.into_iter()
        .map(|(key, value)| match value {
            serde_json::Value::String(value) => Ok((key, value)),
            value @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => Ok((key, value.to_string())),
            _ => Err(ParamError::invalid(param, EXPECTED, text)),
        })
        .collect()
}

/// A limit from 1 to `max`; `default` when not given.
pub(crate) fn parse_limit(text: Option<&str>, default: usize, max: usize) -> Result<usize, ParamError> {
    let Some(text) = text else { return Ok(default) };
    match text.parse::<usize>() {
        Ok(limit) if (1..=max).contains(&limit) => Ok(limit),
        _ => Err(ParamError::Limit { max, value: text.to_owned() }),
    }
}

/// A boolean flag: `true`/`false`, `1`/`0`.
pub(crate) fn parse_flag(param: &'static str, text: &str) -> Result<bool, ParamError> {
    match text {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ParamError::invalid(param, "true or false", text)),
    }
}

/// Both bounds of a range, checked to be in order.
pub(crate) fn ordered(
    min: Option<u64>,
    max: Option<u64>,
    names: (&'static str, &'static str),
) -> Result<(Option<u64>, Option<u64>), ParamError> {
    match (min, max) {
        (Some(low), Some(high)) if high < low => Err(ParamError::Inverted { min: names.0, max: names.1 }),
        _ => Ok((min, max)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_take_every_unit_and_fractions() {
        assert_eq!(parse_go_duration("150ms"), Some(150_000_000));
        assert_eq!(parse_go_duration("1.2s"), Some(1_200_000_000));
        assert_eq!(parse_go_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_go_duration("250us"), Some(250_000));
        assert_eq!(parse_go_duration("250µs"), Some(250_000));
        assert_eq!(parse_go_duration("7ns"), Some(7));
        assert_eq!(parse_go_duration("2h"), Some(7_200_000_000_000));
        assert_eq!(parse_go_duration(".5ms"), Some(500_000));
        assert_eq!(parse_go_duration("0"), Some(0));
    }

    #[test]
    fn go_durations_refuse_what_go_refuses() {
        for text in ["", "100", "1.2", "ms", "1.2.3s", "-1s", "1d", "1 s", "s1", "."] {
            assert_eq!(parse_go_duration(text), None, "{text:?}");
        }
    }

    #[test]
    fn api_durations_take_bare_milliseconds() {
        assert_eq!(parse_api_duration("min_duration", "250"), Ok(250_000_000));
        assert_eq!(parse_api_duration("min_duration", "1.5"), Ok(1_500_000));
        assert_eq!(parse_api_duration("min_duration", "2s"), Ok(2_000_000_000));
        assert!(matches!(parse_api_duration("min_duration", "fast"), Err(ParamError::Invalid { .. })));
    }

    #[test]
    fn api_times_take_nanoseconds_and_rfc3339() {
        assert_eq!(parse_api_time("start", "1700000000000000000"), Ok(1_700_000_000_000_000_000));
        assert_eq!(parse_api_time("start", "2023-11-14T22:13:20Z"), Ok(1_700_000_000_000_000_000));
        assert_eq!(parse_api_time("start", "2023-11-14T22:13:20.25Z"), Ok(1_700_000_000_250_000_000));
        assert!(parse_api_time("start", "yesterday").is_err());
    }

    #[test]
    fn severities_take_names_and_numbers() {
        assert_eq!(parse_severity("severity", "WARN"), Ok(13));
        assert_eq!(parse_severity("severity", "error"), Ok(17));
        assert_eq!(parse_severity("severity", "10"), Ok(10));
        assert!(parse_severity("severity", "0").is_err());
        assert!(parse_severity("severity", "loud").is_err());
    }

    #[test]
    fn lenient_trace_ids_are_left_padded() {
        let id = parse_lenient_trace_id("abc").map(hex::encode);
        assert_eq!(id.as_deref(), Some("00000000000000000000000000000abc"));
        let id = parse_lenient_trace_id(" 0123456789ABCDEF0123456789abcdef ").map(hex::encode);
        assert_eq!(id.as_deref(), Some("0123456789abcdef0123456789abcdef"));
        let id = parse_lenient_trace_id("1-581cf771-a006649127e371903a2de979").map(hex::encode);
        assert_eq!(id.as_deref(), Some("581cf771a006649127e371903a2de979"));
        for text in ["", "xyz", "0123456789abcdef0123456789abcdef0"] {
            assert_eq!(parse_lenient_trace_id(text), None, "{text:?}");
        }
    }

    #[test]
    fn tags_json_takes_strings_numbers_and_booleans() {
        let tags = parse_tags_json("tags", r#"{"a":"x","b":200,"c":true}"#).expect("valid");
        assert_eq!(tags, [("a".into(), "x".into()), ("b".into(), "200".into()), ("c".into(), "true".into())]);
        assert!(parse_tags_json("tags", r#"["a"]"#).is_err());
        assert!(parse_tags_json("tags", r#"{"a":{"b":1}}"#).is_err());
    }
}
