//! The client seam: the four CloudWatch Logs calls the lane makes, behind a trait so the lane's
//! decisions can be tested without a network, and their SDK implementation (each call bounded
//! by a timeout, SDK failures flattened into [`AwsCallError`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use aws_sdk_cloudwatchlogs::types::{InputLogEvent, RejectedLogEventsInfo};

use crate::aws::AwsCallError;
use crate::aws::client::call;
use crate::translate::otlp_to_cloudwatch::LogEvent;

/// The calls the CloudWatch Logs lane makes.
pub(crate) trait LogsClient: Send + Sync + 'static {
    fn create_log_group(
        &self,
        group: &str,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;

    fn put_retention_policy(&self, group: &str, days: i32) -> impl Future<Output = Result<(), AwsCallError>> + Send;

    fn create_log_stream(&self, group: &str, stream: &str) -> impl Future<Output = Result<(), AwsCallError>> + Send;

    /// Sends `events` (sorted, within every limit); returns what CloudWatch Logs refused.
    fn put_log_events(
        &self,
        group: &str,
        stream: &str,
        events: &[LogEvent],
    ) -> impl Future<Output = Result<Option<RejectedLogEventsInfo>, AwsCallError>> + Send;
}

/// [`LogsClient`] over the AWS SDK client.
#[derive(Debug, Clone)]
pub(crate) struct SdkLogsClient {
    client: aws_sdk_cloudwatchlogs::Client,
    timeout: Duration,
}

impl SdkLogsClient {
    pub(crate) fn new(client: aws_sdk_cloudwatchlogs::Client, timeout: Duration) -> Self {
        SdkLogsClient { client, timeout }
    }
}

impl LogsClient for SdkLogsClient {
    async fn create_log_group(&self, group: &str, tags: &BTreeMap<String, String>) -> Result<(), AwsCallError> {
        let tags = (!tags.is_empty()).then(|| tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
        let request = self.client.create_log_group().log_group_name(group).set_tags(tags).send();
        call("CreateLogGroup", self.timeout, request).await.map(|_| ())
    }

    async fn put_retention_policy(&self, group: &str, days: i32) -> Result<(), AwsCallError> {
        let request = self.client.put_retention_policy().log_group_name(group).retention_in_days(days).send();
        call("PutRetentionPolicy", self.timeout, request).await.map(|_| ())
    }

    async fn create_log_stream(&self, group: &str, stream: &str) -> Result<(), AwsCallError> {
        let request = self.client.create_log_stream().log_group_name(group).log_stream_name(stream).send();
        call("CreateLogStream", self.timeout, request).await.map(|_| ())
    }

    async fn put_log_events(
        &self,
        group: &str,
        stream: &str,
        events: &[LogEvent],
    ) -> Result<Option<RejectedLogEventsInfo>, AwsCallError> {
        let mut input = Vec::with_capacity(events.len());
        for event in events {
            let built = InputLogEvent::builder().timestamp(event.timestamp_ms).message(event.message.clone()).build();
            input.push(built.map_err(|error| AwsCallError::Construction(error.to_string()))?);
        }
        let request =
            self.client.put_log_events().log_group_name(group).log_stream_name(stream).set_log_events(Some(input));
        let output = call("PutLogEvents", self.timeout, request.send()).await?;
        Ok(output.rejected_log_events_info().cloned())
    }
}
