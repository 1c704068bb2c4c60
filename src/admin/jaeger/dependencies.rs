//! Jaeger's dependency parameters as a store [`DependencySearch`]: `endTs` (Unix milliseconds,
//! default now) and `lookback` (milliseconds before it, default 24 hours, as Jaeger's own);
//! calls whose callee span started in `[endTs - lookback, endTs]` are counted.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::admin::params::{ParamError, Params};
use crate::store::DependencySearch;

/// Jaeger's default look-back for dependencies: one day, in milliseconds.
const DEFAULT_LOOKBACK_MS: u64 = 24 * 3600 * 1000;
const NANOS_PER_MS: u64 = 1_000_000;

pub(super) fn dependency_search(params: &Params) -> Result<DependencySearch, ParamError> {
    let millis = |name: &'static str| {
        params
            .get(name)
            .map(|text| {
                text.parse::<u64>().map_err(|_| ParamError::invalid(name, "a whole number of milliseconds", text))
            })
            .transpose()
    };
    let end_ms = match millis("endTs")? {
        Some(end) => end,
        None => SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |now| now.as_millis() as u64),
    };
    let lookback_ms = millis("lookback")?.unwrap_or(DEFAULT_LOOKBACK_MS);
    Ok(DependencySearch {
        start_unix_nano: end_ms.saturating_sub(lookback_ms).saturating_mul(NANOS_PER_MS),
        end_unix_nano: end_ms.saturating_mul(NANOS_PER_MS),
    })
}
