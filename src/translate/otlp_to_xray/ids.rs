//! OTLP ids and times → X-Ray ids and times.

use super::outcome::Untranslatable;

/// Oldest trace id epoch accepted when the time check is on (the Collector's 28 days).
pub(super) const MAX_TRACE_ID_AGE_SECS: u64 = 28 * 24 * 60 * 60;
/// Furthest-ahead trace id epoch accepted when the time check is on (clock skew).
pub(super) const MAX_TRACE_ID_AHEAD_SECS: u64 = 5 * 60;

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Appends `bytes` as lowercase hex.
pub(super) fn push_hex(text: &mut String, bytes: &[u8]) {
    for byte in bytes {
        text.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(HEX_DIGITS[usize::from(byte & 0x0f)]));
    }
}

/// 16 bytes → `1-{8 hex}-{24 hex}`.
pub(super) fn xray_trace_id(trace_id: &[u8]) -> Result<String, Untranslatable> {
    let bytes: &[u8; 16] = trace_id.try_into().map_err(|_| Untranslatable::TraceIdLength(trace_id.len()))?;
    if bytes.iter().all(|&byte| byte == 0) {
        return Err(Untranslatable::TraceIdZero);
    }
    let mut text = String::with_capacity(35);
    text.push_str("1-");
    push_hex(&mut text, &bytes[..4]);
    text.push('-');
    push_hex(&mut text, &bytes[4..]);
    Ok(text)
}

/// The optional check X-Ray used to need: the id's first 32 bits (epoch seconds) at most
/// 28 days before `now_secs` and at most 5 minutes after it.
pub(super) fn check_trace_id_time(trace_id: &[u8], xray_trace_id: &str, now_secs: u64) -> Result<(), Untranslatable> {
    let Some(epoch) = trace_id.first_chunk::<4>().map(|first| u64::from(u32::from_be_bytes(*first))) else {
        return Err(Untranslatable::TraceIdLength(trace_id.len()));
    };
    if now_secs > epoch && now_secs - epoch > MAX_TRACE_ID_AGE_SECS {
        return Err(Untranslatable::TraceIdTooOld { trace_id: xray_trace_id.to_owned(), age_secs: now_secs - epoch });
    }
    if epoch > now_secs && epoch - now_secs > MAX_TRACE_ID_AHEAD_SECS {
        return Err(Untranslatable::TraceIdInFuture {
            trace_id: xray_trace_id.to_owned(),
            ahead_secs: epoch - now_secs,
        });
    }
    Ok(())
}

/// 8 bytes → 16 hex digits. `field` names the id in the error.
pub(super) fn xray_span_id(span_id: &[u8], field: &'static str) -> Result<String, Untranslatable> {
    let bytes: &[u8; 8] =
        span_id.try_into().map_err(|_| Untranslatable::SpanIdLength { field, length: span_id.len() })?;
    let mut text = String::with_capacity(16);
    push_hex(&mut text, bytes);
    Ok(text)
}

/// The span's own id, which must not be all zeros.
pub(super) fn xray_own_span_id(span_id: &[u8]) -> Result<String, Untranslatable> {
    if !span_id.is_empty() && span_id.iter().all(|&byte| byte == 0) {
        return Err(Untranslatable::SpanIdZero);
    }
    xray_span_id(span_id, "span id")
}

/// The parent id, or `None` for a root span (empty or all zeros).
pub(super) fn xray_parent_id(parent_span_id: &[u8]) -> Result<Option<String>, Untranslatable> {
    if parent_span_id.iter().all(|&byte| byte == 0) {
        return Ok(None);
    }
    xray_span_id(parent_span_id, "parent span id").map(Some)
}

/// Unix nanoseconds → epoch seconds, rounded to the microsecond (X-Ray's float seconds).
pub(super) fn epoch_seconds(unix_nanos: u64) -> f64 {
    let micros = unix_nanos.saturating_add(500) / 1_000;
    micros as f64 / 1e6
}
