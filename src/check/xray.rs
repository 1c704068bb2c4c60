//! The X-Ray line: segments may be sent (PutTraceSegments with no documents) and sampling
//! rules read (GetSamplingRules, what the sampling proxy forwards), both harmless.

use std::collections::BTreeMap;

use super::CheckLine;
use super::aws::call_failure;
use crate::aws::{self, AwsContext};
use crate::destination::xray::XrayProtocol;
use crate::destination::xray::XraySettings;
use crate::destination::xray::transaction_search::{TraceDestination, check_transaction_search};

const NAME: &str = "xray";
const PERMISSION_FIX: &str = ": attach the AWSXRayDaemonWriteAccess policy (xray:PutTraceSegments, xray:GetSamplingRules, xray:GetSamplingTargets)";

pub(super) async fn check(settings: &XraySettings, context: &AwsContext, env: &BTreeMap<String, String>) -> CheckLine {
    let endpoint = aws::client::endpoint_description(
        settings.endpoint.as_deref(),
        env,
        &["AWS_ENDPOINT_URL_XRAY", "AWS_ENDPOINT_URL"],
    );
    let target = format!("X-Ray at {endpoint}");
    let client = aws::client::xray_client(context, settings.endpoint.as_deref());
    let put = client.put_trace_segments().set_trace_segment_documents(Some(Vec::new())).send();
    if let Err(error) = aws::client::call("PutTraceSegments", settings.timeout, put).await
        && !error.is_code("ValidationException")
    {
        return CheckLine::fail(NAME, format!("PutTraceSegments: {}", call_failure(&target, &error, PERMISSION_FIX)));
    }
    let rules = match aws::client::call("GetSamplingRules", settings.timeout, client.get_sampling_rules().send()).await
    {
        Ok(answer) => answer.sampling_rule_records().len(),
        Err(error) => {
            return CheckLine::fail(
                NAME,
                format!("GetSamplingRules: {}", call_failure(&target, &error, PERMISSION_FIX)),
            );
        }
    };
    CheckLine::ok(NAME, format!("PutTraceSegments and GetSamplingRules allowed at {endpoint} ({rules} sampling rules)"))
}

const PROTOCOL_NAME: &str = "xray protocol";

/// Whether the configured `protocol` suits the account: Transaction Search on (segments go to
/// CloudWatch Logs) takes OTLP and segments alike; off takes segments only, so `otlp` then fails.
pub(super) async fn protocol(settings: &XraySettings, context: &AwsContext) -> CheckLine {
    let client = aws::client::xray_client(context, settings.endpoint.as_deref());
    match check_transaction_search(&client, settings.timeout).await {
        Ok(answer) => {
            let advice = answer.advice(settings.protocol);
            if settings.protocol == XrayProtocol::Otlp && answer.destination == TraceDestination::XRay {
                CheckLine::fail(
                    PROTOCOL_NAME,
                    format!("{advice}: X-Ray's OTLP endpoint refuses spans until Transaction Search is on"),
                )
            } else {
                CheckLine::ok(PROTOCOL_NAME, advice)
            }
        }
        Err(error) if settings.protocol == XrayProtocol::Otlp => CheckLine::fail(
            PROTOCOL_NAME,
            format!("GetTraceSegmentDestination: {} (needs xray:GetTraceSegmentDestination)", error),
        ),
        Err(error) => CheckLine::off(
            PROTOCOL_NAME,
            format!("could not tell whether Transaction Search is on ({error}); \"segments\" works either way"),
        ),
    }
}
