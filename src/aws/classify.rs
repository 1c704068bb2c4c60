//! Which AWS failures are worth another attempt, and the label a permanent one is counted
//! under: one classifier for X-Ray and CloudWatch Logs. A credentials problem blocks the lane
//! (the data is kept and retried slowly) and is shown on the destination's `/status`
//! ([`classify_and_report`]).

use super::error::AwsCallError;
use crate::destination::ExportError;
use crate::model::LossReason;
use crate::telemetry::status::DestinationStatus;

/// Codes that mean "not now": throttling, the service busy or restarting, a concurrent change
/// to the same resource. The union of what X-Ray and CloudWatch Logs each retried.
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceUnavailableException",
    "ServiceUnavailable",
    "OperationAbortedException",
    "InternalFailure",
    "InternalServerError",
    "InternalError",
];

/// Any code naming throttling (`…Throttled…`, `…Throttling…`) is retried too, as X-Ray's
/// classification always did.
const THROTTLING_MARKER: &str = "Throttl";

/// Codes that mean the credentials or the role are wrong: the lane waits (`Blocked`) and
/// `/status` shows the problem until the next success.
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

/// The code of a parameter the service refused.
const INVALID_PARAMETER: &str = "InvalidParameterException";

/// Whether an error code (of a call, or of one item in a partly processed call) is worth
/// sending again.
pub(crate) fn is_retryable_code(code: &str) -> bool {
    code.contains(THROTTLING_MARKER) || RETRYABLE_CODES.contains(&code)
}

/// What to do about a failed call. `target` names what the call was about (empty: nothing).
pub(crate) fn classify(operation: &str, target: &str, error: &AwsCallError) -> ExportError {
    let reason = if target.is_empty() {
        format!("{operation} failed: {error}")
    } else {
        format!("{operation} {target} failed: {error}")
    };
    match error {
        AwsCallError::Service { code, status, .. } => {
            if is_retryable_code(code) || *status == 429 || *status >= 500 {
                ExportError::retryable(reason)
            } else if code == INVALID_PARAMETER {
                ExportError::permanent(LossReason::InvalidParameter, reason)
            } else if is_credentials_problem(error) {
                // Fixed by a person (a role, a key): the data waits, it is not discarded.
                ExportError::Blocked { reason }
            } else {
                ExportError::permanent(LossReason::Rejected, reason)
            }
        }
        AwsCallError::Timeout(_) | AwsCallError::Network(_) | AwsCallError::BadResponse(_) => {
            ExportError::retryable(reason)
        }
        AwsCallError::Construction(_) => ExportError::permanent(LossReason::InvalidRequest, reason),
    }
}

/// [`classify`], and a credentials problem recorded on the destination's `/status`.
pub(crate) fn classify_and_report(
    operation: &str,
    target: &str,
    error: &AwsCallError,
    status: &DestinationStatus,
) -> ExportError {
    let failure = classify(operation, target, error);
    if let ExportError::Blocked { reason } = &failure {
        status.record_problem(reason.clone());
    }
    failure
}

/// Whether the failure is about who is calling rather than what was sent.
pub(crate) fn is_credentials_problem(error: &AwsCallError) -> bool {
    match error {
        AwsCallError::Service { code, status, .. } => CREDENTIAL_CODES.contains(&code.as_str()) || *status == 403,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(code: &str, status: u16) -> AwsCallError {
        AwsCallError::Service { code: code.into(), message: "because".into(), status }
    }

    fn label(error: &ExportError) -> Option<LossReason> {
        match error {
            ExportError::Permanent { label, .. } => Some(*label),
            ExportError::Retryable { .. } | ExportError::Blocked { .. } => None,
        }
    }

    #[test]
    fn every_code_either_destination_retried_is_retried() {
        for code in [
            "ThrottlingException",
            "Throttling",
            "ThrottledException",
            "TooManyRequestsException",
            "RequestLimitExceeded",
            "ServiceUnavailableException",
            "ServiceUnavailable",
            "OperationAbortedException",
            "InternalFailure",
            "InternalServerError",
            "InternalError",
            "ProvisionedThrottlingSomething",
        ] {
            assert!(is_retryable_code(code), "{code}");
            assert_eq!(label(&classify("Call", "", &service(code, 400))), None, "{code}");
        }
    }

    #[test]
    fn item_codes_about_the_data_are_not_retried() {
        for code in ["InvalidTraceId", "MissingParam", "ParseError", "unknown"] {
            assert!(!is_retryable_code(code), "{code}");
        }
    }

    #[test]
    fn a_reason_without_a_target_names_only_the_operation() {
        let text = classify("PutTraceSegments", "", &service("InvalidRequestException", 400)).to_string();
        assert_eq!(text, "PutTraceSegments failed: InvalidRequestException: because (HTTP 400)");
    }

    #[test]
    fn a_credentials_problem_is_recorded_on_status() {
        let status = DestinationStatus::new(crate::model::Destination::Xray, true, "on", vec!["traces"]);
        let failure = classify_and_report("PutTraceSegments", "", &service("ExpiredTokenException", 400), &status);
        assert!(matches!(failure, ExportError::Blocked { .. }), "{failure:?}");
        let report = serde_json::to_value(status.report()).expect("status serialises");
        assert!(report["problem"].as_str().is_some_and(|p| p.contains("ExpiredTokenException")), "{report}");
    }

    #[test]
    fn other_failures_leave_status_alone() {
        let status = DestinationStatus::new(crate::model::Destination::Xray, true, "on", vec!["traces"]);
        classify_and_report("PutTraceSegments", "", &service("InvalidRequestException", 400), &status);
        let report = serde_json::to_value(status.report()).expect("status serialises");
        assert!(report["problem"].is_null(), "{report}");
    }
}
