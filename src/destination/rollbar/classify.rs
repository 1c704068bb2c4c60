//! Rollbar's answers turned into the lane's outcome: sent, refused for good (with the
//! reason), retried (and when), or a rejected token that needs a person.

use std::time::{Duration, SystemTime};

use http::StatusCode;
use http::header::{HeaderMap, RETRY_AFTER};

use super::client::PostError;
use crate::destination::{ExportError, Sent};
use crate::model::LossReason;

/// Rollbar's hint, on a 429, of when the rate limit resets.
const REMAINING_SECONDS: &str = "x-rate-limit-remaining-seconds";

/// Turns Rollbar's answer to one item into the lane's outcome.
pub(crate) fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<Sent, ExportError> {
    if status.is_success() {
        return Ok(Sent::all(1));
    }
    let reason = format!("HTTP {}: {}", status.as_u16(), error_message(body));
    match status.as_u16() {
        429 | 500..=599 => Err(ExportError::Retryable { reason, retry_after: retry_after(headers, now) }),
        401 | 403 => Err(ExportError::permanent(LossReason::Unauthorized, reason)),
        413 => Err(ExportError::permanent(LossReason::TooLarge, reason)),
        422 => Err(ExportError::permanent(LossReason::Invalid, reason)),
        _ => Err(ExportError::permanent(LossReason::Rejected, reason)),
    }
}

/// A request that got no answer: retried, unless it could not be made at all.
pub(crate) fn unanswered(error: PostError) -> ExportError {
    match error {
        PostError::Invalid(_) => ExportError::permanent(LossReason::InvalidRequest, error.to_string()),
        PostError::NoAnswer(_) | PostError::Failed(_) => ExportError::retryable(error.to_string()),
    }
}

/// The `/status` problem for an answer that refuses the token.
pub(crate) fn token_problem(status: StatusCode) -> Option<String> {
    matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
        .then(|| format!("Rollbar rejected the access token (HTTP {})", status.as_u16()))
}

/// Rollbar's `{"err": 1, "message": "…"}`, else the text, shortened.
fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct RollbarError {
        message: String,
    }
    let text = match serde_json::from_slice::<RollbarError>(body) {
        Ok(error) => error.message,
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// The wait a throttled answer asks for: `X-Rate-Limit-Remaining-Seconds`, else
/// `Retry-After` (seconds or an HTTP date).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(seconds) = header(REMAINING_SECONDS).and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_secs(seconds));
    }
    let value = header(RETRY_AFTER.as_str())?;
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    httpdate::parse_http_date(value).ok().map(|date| date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_str(v).unwrap())).collect()
    }

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn answer(code: u16, body: &[u8]) -> Result<Sent, ExportError> {
        classify(StatusCode::from_u16(code).unwrap(), &HeaderMap::new(), body, now())
    }

    #[test]
    fn ok_sends_the_item() {
        let sent = answer(200, br#"{"err": 0, "result": {"id": null, "uuid": "x"}}"#).unwrap();
        assert_eq!((sent.accepted, sent.rejected.len()), (1, 0));
    }

    #[test]
    fn throttling_honours_the_remaining_seconds() {
        let throttled = headers(&[("x-rate-limit-remaining-seconds", "17"), ("retry-after", "3")]);
        let error = classify(StatusCode::TOO_MANY_REQUESTS, &throttled, b"", now()).unwrap_err();
        let ExportError::Retryable { retry_after, .. } = error else { panic!("{error:?}") };
        assert_eq!(retry_after, Some(Duration::from_secs(17)));
    }

    #[test]
    fn throttling_falls_back_to_retry_after() {
        let later = httpdate::fmt_http_date(now() + Duration::from_secs(30));
        assert_eq!(retry_after(&headers(&[("retry-after", "4")]), now()), Some(Duration::from_secs(4)));
        assert_eq!(retry_after(&headers(&[("retry-after", &later)]), now()), Some(Duration::from_secs(30)));
        assert_eq!(retry_after(&HeaderMap::new(), now()), None);
    }

    #[test]
    fn server_errors_are_retried() {
        for code in [500, 502, 503, 504] {
            assert!(matches!(answer(code, b"down"), Err(ExportError::Retryable { .. })), "{code}");
        }
    }

    #[test]
    fn a_rejected_token_is_permanent_and_not_retried() {
        for code in [401, 403] {
            let error = answer(code, br#"{"err": 1, "message": "invalid access token"}"#).unwrap_err();
            let ExportError::Permanent { label, reason } = error else { panic!("{code}") };
            assert_eq!(label, LossReason::Unauthorized);
            assert_eq!(reason, format!("HTTP {code}: invalid access token"));
        }
    }

    #[test]
    fn too_large_and_unprocessable_are_counted_with_their_reason() {
        let too_large = answer(413, br#"{"err": 1, "message": "Payload too large"}"#).unwrap_err();
        let invalid = answer(422, br#"{"err": 1, "message": "Invalid format. data.body is required"}"#).unwrap_err();
        let ExportError::Permanent { label, reason } = too_large else { panic!() };
        assert_eq!((label, reason.as_str()), (LossReason::TooLarge, "HTTP 413: Payload too large"));
        let ExportError::Permanent { label, reason } = invalid else { panic!() };
        assert_eq!((label, reason.as_str()), (LossReason::Invalid, "HTTP 422: Invalid format. data.body is required"));
    }
}
