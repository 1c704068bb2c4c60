//! The client seam: the two X-Ray calls waggle makes (PutTraceSegments for the lane,
//! PutTelemetryRecords for the daemon telemetry, on behalf of an [`Identity`]), behind a trait
//! so what the exporter and the telemetry do with the answers can be tested without a network,
//! and their SDK implementation (each call bounded by a timeout, SDK failures flattened into
//! [`AwsCallError`]).

use std::future::Future;
use std::time::Duration;

use aws_sdk_xray::types::{TelemetryRecord, UnprocessedTraceSegment};

use crate::aws::AwsCallError;
use crate::aws::client::call;

/// The calls the X-Ray destination makes.
pub(crate) trait XrayClient: Send + Sync + 'static {
    /// Sends segment documents; returns the ones X-Ray did not process.
    fn put_trace_segments(
        &self,
        documents: Vec<String>,
    ) -> impl Future<Output = Result<Vec<UnprocessedTraceSegment>, AwsCallError>> + Send;

    /// Sends daemon telemetry records on behalf of `reporter`.
    fn put_telemetry_records(
        &self,
        records: Vec<TelemetryRecord>,
        reporter: &Identity,
    ) -> impl Future<Output = Result<(), AwsCallError>> + Send;
}

/// Who is reporting the daemon telemetry: sent with every PutTelemetryRecords call.
#[derive(Debug, Clone, Default)]
pub(crate) struct Identity {
    pub hostname: Option<String>,
    pub instance_id: Option<String>,
    pub resource_arn: Option<String>,
}

impl Identity {
    /// `AWS_HOSTNAME` / `AWS_INSTANCE_ID` as the daemon reads them, else the kernel's host name.
    pub(crate) fn from_env(env: &std::collections::BTreeMap<String, String>, resource_arn: Option<String>) -> Self {
        let hostname = env
            .get("AWS_HOSTNAME")
            .cloned()
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string()));
        Identity { hostname, instance_id: env.get("AWS_INSTANCE_ID").cloned(), resource_arn }
    }
}

/// [`XrayClient`] over the AWS SDK client.
#[derive(Debug, Clone)]
pub(crate) struct SdkXrayClient {
    client: aws_sdk_xray::Client,
    timeout: Duration,
}

impl SdkXrayClient {
    pub(crate) fn new(client: aws_sdk_xray::Client, timeout: Duration) -> Self {
        SdkXrayClient { client, timeout }
    }
}

impl XrayClient for SdkXrayClient {
    async fn put_trace_segments(&self, documents: Vec<String>) -> Result<Vec<UnprocessedTraceSegment>, AwsCallError> {
        let request = self.client.put_trace_segments().set_trace_segment_documents(Some(documents)).send();
        let output = call("PutTraceSegments", self.timeout, request).await?;
        Ok(output.unprocessed_trace_segments().to_vec())
    }

    async fn put_telemetry_records(
        &self,
        records: Vec<TelemetryRecord>,
        reporter: &Identity,
    ) -> Result<(), AwsCallError> {
        let request = self
            .client
            .put_telemetry_records()
            .set_telemetry_records(Some(records))
            .set_hostname(reporter.hostname.clone())
            .set_ec2_instance_id(reporter.instance_id.clone())
            .set_resource_arn(reporter.resource_arn.clone())
            .send();
        call("PutTelemetryRecords", self.timeout, request).await.map(|_| ())
    }
}
