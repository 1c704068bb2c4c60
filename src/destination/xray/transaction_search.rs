//! Which protocol the account takes: X-Ray's `GetTraceSegmentDestination` says where trace
//! segments go. `CloudWatchLogs` means CloudWatch Transaction Search is on and X-Ray's OTLP
//! endpoint takes spans (`protocol = "otlp"`); `XRay` means only PutTraceSegments works
//! (`protocol = "segments"`). Asked once at start-up when the X-Ray destination is on (one log
//! line, never a reason not to start), and by `waggle check`.

use std::time::Duration;

use aws_sdk_xray::types::TraceSegmentDestination;

use super::settings::XrayProtocol;
use crate::aws::AwsCallError;
use crate::aws::client::call;

/// Where the account's trace segments go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TraceDestination {
    /// Transaction Search is on: spans land in the `aws/spans` log group; OTLP works.
    CloudWatchLogs,
    /// Transaction Search is off: only PutTraceSegments works.
    XRay,
    /// A value this version does not know, as X-Ray answered it.
    Unknown(String),
}

/// What `GetTraceSegmentDestination` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TransactionSearch {
    pub destination: TraceDestination,
    /// `ACTIVE` or `PENDING` (a change still under way), when X-Ray said.
    pub status: Option<String>,
}

impl TransactionSearch {
    /// The protocol that works with this account, if the answer says.
    pub(crate) fn protocol(&self) -> Option<XrayProtocol> {
        match (&self.destination, self.status.as_deref()) {
            (_, Some("PENDING")) => None,
            (TraceDestination::CloudWatchLogs, _) => Some(XrayProtocol::Otlp),
            (TraceDestination::XRay, _) => Some(XrayProtocol::Segments),
            (TraceDestination::Unknown(_), _) => None,
        }
    }

    /// One sentence for the user, given the protocol configured.
    pub(crate) fn advice(&self, configured: XrayProtocol) -> String {
        let status = self.status.as_deref().unwrap_or("no status");
        let found = match &self.destination {
            TraceDestination::CloudWatchLogs => {
                format!("Transaction Search is on (trace segment destination CloudWatchLogs, {status})")
            }
            TraceDestination::XRay => format!("Transaction Search is off (trace segment destination XRay, {status})"),
            TraceDestination::Unknown(other) => format!("the trace segment destination is {other:?} ({status})"),
        };
        match self.protocol() {
            None => format!(
                "{found}: cannot tell which protocol works yet; keep destinations.xray.protocol = \"{}\" and check again later",
                configured.as_str()
            ),
            Some(works) if works == configured => {
                format!("{found}: destinations.xray.protocol = \"{}\" is right for this account", works.as_str())
            }
            Some(works) => format!(
                "{found}: set destinations.xray.protocol = \"{}\" (\"{}\" is configured)",
                works.as_str(),
                configured.as_str()
            ),
        }
    }
}

/// Asks X-Ray where the account's trace segments go (`xray:GetTraceSegmentDestination`),
/// waiting at most `timeout`.
pub(crate) async fn check_transaction_search(
    client: &aws_sdk_xray::Client,
    timeout: Duration,
) -> Result<TransactionSearch, AwsCallError> {
    let output = call("GetTraceSegmentDestination", timeout, client.get_trace_segment_destination().send()).await?;
    let destination = match output.destination() {
        Some(TraceSegmentDestination::CloudWatchLogs) => TraceDestination::CloudWatchLogs,
        Some(TraceSegmentDestination::XRay) => TraceDestination::XRay,
        Some(other) => TraceDestination::Unknown(other.as_str().to_string()),
        None => TraceDestination::Unknown(String::new()),
    };
    Ok(TransactionSearch { destination, status: output.status().map(|status| status.as_str().to_string()) })
}

/// The start-up check, ready to run in the background.
pub(crate) struct StartupCheck {
    pub client: aws_sdk_xray::Client,
    pub timeout: Duration,
    pub configured: XrayProtocol,
}

/// The start-up check: one line saying which protocol to use; a failed call is a WARN line
/// naming the permission, never a reason not to start.
pub(crate) async fn log_transaction_search(check: StartupCheck) {
    let StartupCheck { client, timeout, configured } = check;
    match check_transaction_search(&client, timeout).await {
        Ok(answer) if answer.protocol().is_some_and(|works| works != configured) => {
            tracing::warn!(destination = "xray", "{}", answer.advice(configured));
        }
        Ok(answer) => tracing::info!(destination = "xray", "{}", answer.advice(configured)),
        Err(error) => tracing::warn!(
            destination = "xray",
            %error,
            "could not tell whether Transaction Search is on (needs xray:GetTraceSegmentDestination); destinations.xray.protocol = \"{}\" is kept",
            configured.as_str()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(destination: TraceDestination, status: &str) -> TransactionSearch {
        TransactionSearch { destination, status: Some(status.to_string()) }
    }

    #[test]
    fn cloudwatch_logs_means_otlp() {
        let on = answer(TraceDestination::CloudWatchLogs, "ACTIVE");
        assert_eq!(on.protocol(), Some(XrayProtocol::Otlp));
        assert!(on.advice(XrayProtocol::Segments).contains("set destinations.xray.protocol = \"otlp\""));
        assert!(on.advice(XrayProtocol::Otlp).contains("is right for this account"));
    }

    #[test]
    fn xray_means_segments() {
        let off = answer(TraceDestination::XRay, "ACTIVE");
        assert_eq!(off.protocol(), Some(XrayProtocol::Segments));
        assert!(off.advice(XrayProtocol::Otlp).contains("set destinations.xray.protocol = \"segments\""));
    }

    #[test]
    fn a_pending_change_or_an_unknown_answer_gives_no_protocol() {
        assert_eq!(answer(TraceDestination::CloudWatchLogs, "PENDING").protocol(), None);
        let unknown = answer(TraceDestination::Unknown("Elsewhere".into()), "ACTIVE");
        assert_eq!(unknown.protocol(), None);
        assert!(unknown.advice(XrayProtocol::Segments).contains("\"Elsewhere\""));
    }
}
