//! The CloudWatch Logs line: the log group exists or will be created, and the identity may put
//! events (a PutLogEvents to a stream that does not exist is refused as "not found" only once
//! the call is allowed, and writes nothing).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;

use super::CheckLine;
use super::aws::call_failure;
use crate::aws::{self, AwsContext};
use crate::destination::cloudwatch_logs::CloudWatchLogsSettings;

const NAME: &str = "cloudwatch_logs";
const PERMISSION_FIX: &str =
    ": allow logs:PutLogEvents, logs:CreateLogStream, logs:CreateLogGroup and logs:DescribeLogGroups";

pub(super) async fn check(
    settings: &CloudWatchLogsSettings,
    context: &AwsContext,
    env: &BTreeMap<String, String>,
) -> CheckLine {
    let endpoint = aws::client::endpoint_description(
        settings.endpoint.as_deref(),
        env,
        &["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "AWS_ENDPOINT_URL"],
    );
    let target = format!("CloudWatch Logs at {endpoint}");
    let client = aws::client::cloudwatch_logs_client(context, settings.endpoint.as_deref());
    let group = settings.log_group.clone().unwrap_or_default();
    let templated = group.contains('{');
    let prefix = if templated { group.split('{').next().unwrap_or_default().to_string() } else { group.clone() };
    let mut describe = client.describe_log_groups().limit(50);
    if !prefix.is_empty() {
        describe = describe.log_group_name_prefix(prefix);
    }
    let groups = match aws::client::call("DescribeLogGroups", settings.timeout, describe.send()).await {
        Ok(answer) => {
            answer.log_groups().iter().filter_map(|g| g.log_group_name().map(str::to_string)).collect::<Vec<_>>()
        }
        Err(error) => {
            return CheckLine::fail(
                NAME,
                format!("DescribeLogGroups: {}", call_failure(&target, &error, PERMISSION_FIX)),
            );
        }
    };
    if templated {
        return CheckLine::ok(
            NAME,
            format!(
                "log groups are named per record by {group} and created on first write ({} found now)",
                groups.len()
            ),
        );
    }
    let exists = groups.contains(&group);
    if let Err(problem) = may_put(&client, settings, &group, &target).await {
        return CheckLine::fail(NAME, problem);
    }
    let state = if exists { "exists" } else { "does not exist yet: waggle creates it on first write" };
    CheckLine::ok(NAME, format!("log group {group} {state}; the identity may put events ({endpoint})"))
}

/// Whether PutLogEvents is allowed into `group`, asked with a stream that does not exist.
async fn may_put(
    client: &aws_sdk_cloudwatchlogs::Client,
    settings: &CloudWatchLogsSettings,
    group: &str,
    target: &str,
) -> Result<(), String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let stream = format!("waggle-check-probe-{}", now.as_nanos());
    let event = InputLogEvent::builder()
        .timestamp(i64::try_from(now.as_millis()).unwrap_or(i64::MAX))
        .message("waggle check")
        .build()
        .map_err(|error| error.to_string())?;
    let put = client.put_log_events().log_group_name(group).log_stream_name(stream).log_events(event).send();
    match aws::client::call("PutLogEvents", settings.timeout, put).await {
        Ok(_) => Ok(()),
        Err(error) if error.is_code("ResourceNotFoundException") => Ok(()),
        Err(error) => Err(format!("PutLogEvents: {}", call_failure(target, &error, PERMISSION_FIX))),
    }
}
