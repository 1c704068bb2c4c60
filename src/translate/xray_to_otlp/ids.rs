//! X-Ray ids and times → OTLP ids and times.

/// An X-Ray trace id that is not `1-<8 hex>-<24 hex>`, or a span id that is not 16 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum IdError {
    #[error("trace id {0:?} is not 1-<8 hex digits>-<24 hex digits>")]
    TraceId(String),
    #[error("{field} {value:?} is not 16 hex digits")]
    SpanId { field: &'static str, value: String },
    #[error("{field} is all zeros, which OTLP does not allow")]
    Zero { field: &'static str },
}

/// `1-5f84c7a1-e7d1852db8c4fd35d88bf49a` → the 16 bytes `5f84c7a1e7d1852db8c4fd35d88bf49a`.
pub(super) fn decode_trace_id(trace_id: &str) -> Result<[u8; 16], IdError> {
    let invalid = || IdError::TraceId(shorten(trace_id));
    let bytes = trace_id.as_bytes();
    if bytes.len() != 35 || &bytes[..2] != b"1-" || bytes[10] != b'-' {
        return Err(invalid());
    }
    let mut decoded = [0u8; 16];
    hex::decode_to_slice(&bytes[2..10], &mut decoded[..4]).map_err(|_| invalid())?;
    hex::decode_to_slice(&bytes[11..], &mut decoded[4..]).map_err(|_| invalid())?;
    if decoded == [0; 16] {
        return Err(IdError::Zero { field: "trace_id" });
    }
    Ok(decoded)
}

/// `6226467e3f845502` → 8 bytes. `field` names the id in the error.
pub(super) fn decode_span_id(field: &'static str, span_id: &str) -> Result<[u8; 8], IdError> {
    let mut decoded = [0u8; 8];
    if span_id.len() != 16 || hex::decode_to_slice(span_id, &mut decoded).is_err() {
        return Err(IdError::SpanId { field, value: shorten(span_id) });
    }
    if decoded == [0; 8] {
        return Err(IdError::Zero { field });
    }
    Ok(decoded)
}

/// Ids from a sender are quoted in errors; keep the quote short.
fn shorten(text: &str) -> String {
    text.chars().take(40).collect()
}

/// Epoch seconds (a JSON float) → Unix nanoseconds, rounded to the microsecond.
///
/// An f64 near the current epoch (~1.8e9 s) resolves about 0.24 µs, so digits below the
/// microsecond are noise from the float; rounding to the microsecond keeps every digit an
/// SDK meant (SDKs write microseconds or fewer) and turns `1478293361.271` into exactly
/// `1478293361271000000`. `None` for negative, non-finite or out-of-range values.
pub(super) fn seconds_to_unix_nanos(seconds: f64) -> Option<u64> {
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    let micros = (seconds * 1e6).round();
    if micros >= (u64::MAX / 1000) as f64 {
        return None;
    }
    Some(micros as u64 * 1000)
}
