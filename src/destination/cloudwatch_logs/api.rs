//! The four CloudWatch Logs calls the lane makes, behind a trait so the lane's decisions can be
//! tested without a network, and their SDK implementation (each call bounded by a timeout, SDK
//! failures flattened into [`ApiError`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use aws_sdk_cloudwatchlogs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudwatchlogs::types::{InputLogEvent, RejectedLogEventsInfo};

use crate::translate::otlp_to_cloudwatch::LogEvent;

/// Why a CloudWatch Logs call failed, with what the classification needs and nothing tied to
/// one operation's error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// CloudWatch Logs answered with an error (`__type` code, message, HTTP status).
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

impl ApiError {
    /// The service's error code, when CloudWatch Logs answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn is_code(&self, wanted: &str) -> bool {
        self.code() == Some(wanted)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Service { code, message, status } if message.is_empty() => write!(f, "{code} (HTTP {status})"),
            ApiError::Service { code, message, status } => write!(f, "{code}: {message} (HTTP {status})"),
            ApiError::Timeout(detail) => write!(f, "timed out: {detail}"),
            ApiError::Network(detail) => write!(f, "network error: {detail}"),
            ApiError::BadResponse(detail) => write!(f, "unreadable response: {detail}"),
            ApiError::Construction(detail) => write!(f, "request not built: {detail}"),
        }
    }
}

/// The calls the CloudWatch Logs lane makes.
pub trait LogsApi: Send + Sync + 'static {
    fn create_log_group(
        &self,
        group: &str,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;

    fn put_retention_policy(&self, group: &str, days: i32) -> impl Future<Output = Result<(), ApiError>> + Send;

    fn create_log_stream(&self, group: &str, stream: &str) -> impl Future<Output = Result<(), ApiError>> + Send;

    /// Sends `events` (sorted, within every limit); returns what CloudWatch Logs refused.
    fn put_log_events(
        &self,
        group: &str,
        stream: &str,
        events: &[LogEvent],
    ) -> impl Future<Output = Result<Option<RejectedLogEventsInfo>, ApiError>> + Send;
}

/// [`LogsApi`] over the AWS SDK client.
#[derive(Debug, Clone)]
pub struct SdkLogsApi {
    client: aws_sdk_cloudwatchlogs::Client,
    timeout: Duration,
}

impl SdkLogsApi {
    pub fn new(client: aws_sdk_cloudwatchlogs::Client, timeout: Duration) -> Self {
        SdkLogsApi { client, timeout }
    }

    /// Runs one SDK call within the timeout and flattens its error.
    async fn call<T, E>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, SdkError<E>>>,
    ) -> Result<T, ApiError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(|error| api_error(&error)),
            Err(_) => Err(ApiError::Timeout(format!("{operation}: no answer within {:?}", self.timeout))),
        }
    }
}

impl LogsApi for SdkLogsApi {
    async fn create_log_group(&self, group: &str, tags: &BTreeMap<String, String>) -> Result<(), ApiError> {
        let tags = (!tags.is_empty()).then(|| tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
        let call = self.client.create_log_group().log_group_name(group).set_tags(tags).send();
        self.call("CreateLogGroup", call).await.map(|_| ())
    }

    async fn put_retention_policy(&self, group: &str, days: i32) -> Result<(), ApiError> {
        let call = self.client.put_retention_policy().log_group_name(group).retention_in_days(days).send();
        self.call("PutRetentionPolicy", call).await.map(|_| ())
    }

    async fn create_log_stream(&self, group: &str, stream: &str) -> Result<(), ApiError> {
        let call = self.client.create_log_stream().log_group_name(group).log_stream_name(stream).send();
        self.call("CreateLogStream", call).await.map(|_| ())
    }

    async fn put_log_events(
        &self,
        group: &str,
        stream: &str,
        events: &[LogEvent],
    ) -> Result<Option<RejectedLogEventsInfo>, ApiError> {
        let mut input = Vec::with_capacity(events.len());
        for event in events {
            let built = InputLogEvent::builder().timestamp(event.timestamp_ms).message(event.message.clone()).build();
            input.push(built.map_err(|error| ApiError::Construction(error.to_string()))?);
        }
        let call =
            self.client.put_log_events().log_group_name(group).log_stream_name(stream).set_log_events(Some(input));
        let output = self.call("PutLogEvents", call.send()).await?;
        Ok(output.rejected_log_events_info().cloned())
    }
}

/// Flattens an SDK failure of any operation.
fn api_error<E>(error: &SdkError<E>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let chain = crate::telemetry::error_text::chain(error);
    match error {
        SdkError::ServiceError(service) => ApiError::Service {
            code: service.err().code().unwrap_or("Unknown").to_string(),
            message: service.err().message().unwrap_or("").to_string(),
            status: service.raw().status().as_u16(),
        },
        SdkError::TimeoutError(_) => ApiError::Timeout(chain),
        SdkError::DispatchFailure(failure) if failure.is_timeout() => ApiError::Timeout(chain),
        SdkError::DispatchFailure(_) => ApiError::Network(chain),
        SdkError::ResponseError(_) => ApiError::BadResponse(chain),
        SdkError::ConstructionFailure(_) => ApiError::Construction(chain),
        _ => ApiError::Network(chain),
    }
}
