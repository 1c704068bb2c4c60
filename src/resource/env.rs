//! `WAGGLE_RESOURCE_ATTRIBUTES`: resource attributes as `key=value,key=value`, in the format of
//! OpenTelemetry's `OTEL_RESOURCE_ATTRIBUTES` (W3C Baggage without properties): whitespace
//! around keys and values is trimmed, values are percent-decoded (`%2C` is a comma, `%3D` an
//! equals sign; bytes that are not UTF-8 once decoded become U+FFFD), keys are taken as they
//! are. Empty entries (`a=1,,b=2`) are skipped; an entry without `=` or with an empty key is an
//! error naming the variable, and waggle does not start.

use super::ResourceError;

/// The variable waggle reads.
pub const RESOURCE_ATTRIBUTES_ENV: &str = "WAGGLE_RESOURCE_ATTRIBUTES";

/// The `(key, value)` pairs of a `key=value,key=value` list, in order.
pub fn parse_attribute_list(text: &str) -> Result<Vec<(String, String)>, ResourceError> {
    let mut pairs = Vec::new();
    for (index, entry) in text.split(',').enumerate() {
        if entry.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = entry.split_once('=') else {
            return Err(ResourceError::NotKeyValue { entry: index + 1, key: entry.trim().to_string() });
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(ResourceError::EmptyKey { entry: index + 1 });
        }
        let value = percent_encoding::percent_decode_str(value.trim()).decode_utf8_lossy();
        pairs.push((key.to_string(), value.into_owned()));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn splits_entries_and_trims_whitespace() {
        let parsed = parse_attribute_list(" deployment.environment.name = prod ,team=core").unwrap();
        assert_eq!(parsed, pairs(&[("deployment.environment.name", "prod"), ("team", "core")]));
    }

    #[test]
    fn values_are_percent_decoded_and_keys_are_not() {
        let parsed = parse_attribute_list("a%20b=x%2Cy%3Dz,note=caf%C3%A9%20%25,bad=%FF").unwrap();
        assert_eq!(parsed, pairs(&[("a%20b", "x,y=z"), ("note", "café %"), ("bad", "\u{fffd}")]));
    }

    #[test]
    fn an_equals_sign_in_a_value_is_kept() {
        assert_eq!(parse_attribute_list("q=a=b").unwrap(), pairs(&[("q", "a=b")]));
    }

    #[test]
    fn empty_entries_are_skipped_and_an_empty_value_is_kept() {
        assert_eq!(parse_attribute_list(",a=1,, ,b=").unwrap(), pairs(&[("a", "1"), ("b", "")]));
        assert_eq!(parse_attribute_list("").unwrap(), Vec::new());
    }

    #[test]
    fn an_entry_without_equals_or_key_is_an_error() {
        let error = parse_attribute_list("a=1,oops").unwrap_err();
        assert!(error.to_string().contains("entry 2 (`oops`)"), "{error}");
        let error = parse_attribute_list(" =1").unwrap_err();
        assert!(error.to_string().contains("entry 1 has an empty key"), "{error}");
    }
}
