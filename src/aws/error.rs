//! One flattened error for every AWS SDK call: what classification and logging need, nothing
//! tied to one operation's error type.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Why an AWS call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AwsCallError {
    /// The service answered with an error (`__type` code, message, HTTP status).
    Service { code: String, message: String, status: u16 },
    /// No answer within the call's timeout.
    Timeout(String),
    /// The request never got an answer: connection refused, DNS, TLS, reset.
    Network(String),
    /// An answer came that could not be read.
    BadResponse(String),
    /// The request could not be built (a bug or an impossible input): never worth retrying.
    Construction(String),
}

impl AwsCallError {
    /// The service's error code, when the service answered with one.
    pub(crate) fn code(&self) -> Option<&str> {
        match self {
            AwsCallError::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    pub(crate) fn is_code(&self, wanted: &str) -> bool {
        self.code() == Some(wanted)
    }
}

impl std::fmt::Display for AwsCallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AwsCallError::Service { code, message, status } if message.is_empty() => {
                write!(f, "{code} (HTTP {status})")
            }
            AwsCallError::Service { code, message, status } => write!(f, "{code}: {message} (HTTP {status})"),
            AwsCallError::Timeout(detail) => write!(f, "timed out: {detail}"),
            AwsCallError::Network(detail) => write!(f, "network error: {detail}"),
            AwsCallError::BadResponse(detail) => write!(f, "unreadable response: {detail}"),
            AwsCallError::Construction(detail) => write!(f, "request not built: {detail}"),
        }
    }
}

impl std::error::Error for AwsCallError {}

impl<E> From<SdkError<E, HttpResponse>> for AwsCallError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    fn from(error: SdkError<E, HttpResponse>) -> Self {
        let chain = crate::telemetry::error_text::chain(&error);
        match &error {
            SdkError::ServiceError(service) => AwsCallError::Service {
                code: service.err().code().unwrap_or("Unknown").to_string(),
                message: service.err().message().unwrap_or("").to_string(),
                status: service.raw().status().as_u16(),
            },
            SdkError::TimeoutError(_) => AwsCallError::Timeout(chain),
            SdkError::DispatchFailure(failure) if failure.is_timeout() => AwsCallError::Timeout(chain),
            SdkError::DispatchFailure(_) => AwsCallError::Network(chain),
            SdkError::ResponseError(_) => AwsCallError::BadResponse(chain),
            SdkError::ConstructionFailure(_) => AwsCallError::Construction(chain),
            _ => AwsCallError::Network(chain),
        }
    }
}
