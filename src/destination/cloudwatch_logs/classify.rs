//! Which CloudWatch Logs failures are worth another attempt, and the label a permanent one is
//! counted under. `ResourceNotFoundException`, `ResourceAlreadyExistsException` and
//! `DataAlreadyAcceptedException` never get here: the lane acts on them itself.

use super::api::ApiError;
use crate::destination::ExportError;
use crate::model::LossReason;

/// Codes that mean "not now": throttling, the service busy or restarting, a concurrent change
/// to the same log group.
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceUnavailableException",
    "ServiceUnavailable",
    "OperationAbortedException",
    "InternalFailure",
    "InternalServerError",
];

/// Codes that mean the credentials or the role are wrong: permanent, and a problem shown on
/// `/status` until the next success.
const CREDENTIAL_CODES: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
];

/// What to do about a failed call.
pub fn classify(operation: &str, target: &str, error: &ApiError) -> ExportError {
    let reason = format!("{operation} {target} failed: {error}");
    match error {
        ApiError::Service { code, status, .. } => {
            if RETRYABLE_CODES.contains(&code.as_str()) || *status == 429 || *status >= 500 {
                ExportError::retryable(reason)
            } else if code == "InvalidParameterException" {
                ExportError::permanent(LossReason::InvalidParameter, reason)
            } else if is_credentials_problem(error) {
                ExportError::permanent(LossReason::Unauthorized, reason)
            } else {
                ExportError::permanent(LossReason::Rejected, reason)
            }
        }
        ApiError::Timeout(_) | ApiError::Network(_) | ApiError::BadResponse(_) => ExportError::retryable(reason),
        ApiError::Construction(_) => ExportError::permanent(LossReason::InvalidRequest, reason),
    }
}

/// Whether the failure is about who is calling rather than what was sent.
pub fn is_credentials_problem(error: &ApiError) -> bool {
    match error {
        ApiError::Service { code, status, .. } => CREDENTIAL_CODES.contains(&code.as_str()) || *status == 403,
        _ => false,
    }
}
