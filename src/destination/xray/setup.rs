//! From `destinations.xray` settings and the AWS access found to a running exporter and
//! telemetry, or the reason the destination stays off (shown at start-up and on `/status`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::client::{Identity, SdkXrayClient};
use super::exporter::Xray;
use super::otlp::XrayOtlp;
use super::settings::{XrayProtocol, XraySettings};
use super::telemetry::{BackendErrors, Telemetry, TelemetryCounts};
use super::transaction_search::StartupCheck;
use crate::aws::{AwsAccess, AwsContext, AwsUnavailable, access, client};
use crate::destination::aws_otlp::{SignedOtlpClient, endpoint_base, otlp_url};
use crate::telemetry::counts::{DestinationCounts, ReceiverCounts};
use crate::telemetry::status::DestinationStatus;
use crate::translate::otlp_to_xray::XrayTranslation;

/// The AWS access the X-Ray destination and the sampling proxy use.
pub(crate) fn aws_access(xray: &XraySettings) -> AwsAccess {
    AwsAccess {
        region: xray.region.clone(),
        role_arn: xray.role_arn.clone(),
        local_mode: xray.local_mode,
        proxy_address: xray.proxy_address.clone(),
    }
}

/// An X-Ray destination ready to start: its `/status` reason and what it is built from.
pub(crate) struct XraySetup {
    /// Why it is on: where PutTraceSegments goes.
    pub(crate) reason: String,
    client: SdkXrayClient,
    /// With `protocol = "otlp"`: the signed client of the OTLP endpoint.
    otlp: Option<SignedOtlpClient>,
    translation: XrayTranslation,
    max_documents: usize,
    /// The telemetry's identity and interval, when it is on.
    telemetry: Option<(Identity, Duration)>,
    check: StartupCheck,
}

/// The exporter the configured protocol uses.
pub(crate) enum XrayExporter {
    Segments(Xray),
    Otlp(Box<XrayOtlp>),
}

/// What runs once the destination is on.
pub(crate) struct XrayParts {
    pub(crate) exporter: XrayExporter,
    pub(crate) telemetry: Option<Telemetry>,
    /// Whether Transaction Search is on, asked once in the background.
    pub(crate) check: StartupCheck,
}

/// The destination ready to start, or why it stays off.
pub(crate) fn set_up(
    xray: &XraySettings,
    aws: Option<&Result<AwsContext, AwsUnavailable>>,
    env: &BTreeMap<String, String>,
) -> Result<XraySetup, String> {
    if !xray.enabled {
        return Err("disabled by destinations.xray.enabled = false".to_string());
    }
    let context = access::usable(aws)?;
    if xray.no_verify_ssl {
        tracing::warn!(
            "NoVerifySSL / destinations.xray.no_verify_ssl is not supported: certificates are always verified"
        );
    }
    let sdk_client = client::xray_client(context, xray.endpoint.as_deref());
    let target = client::endpoint_description(xray.endpoint.as_deref(), env, &["AWS_ENDPOINT_URL_XRAY"]);
    let (otlp, reason) = match xray.protocol {
        XrayProtocol::Segments => (None, format!("PutTraceSegments to {target} in {}", context.region)),
        XrayProtocol::Otlp => {
            let env_names = ["AWS_ENDPOINT_URL_XRAY", "AWS_ENDPOINT_URL"];
            let base = endpoint_base(xray.endpoint.as_deref(), env, &env_names, "xray", &context.region);
            let url = otlp_url(&base, "/v1/traces").map_err(|error| format!("destinations.xray.endpoint: {error}"))?;
            let reason = format!("OTLP to {url} in {} (SigV4, service xray)", context.region);
            let signed =
                SignedOtlpClient::new(url, "xray", context.region.clone(), context.credentials.clone(), xray.timeout)?;
            (Some(signed), reason)
        }
    };
    let check = StartupCheck { client: sdk_client.clone(), timeout: xray.timeout, configured: xray.protocol };
    let translation = XrayTranslation {
        indexed_attributes: xray.indexed_attributes.clone(),
        index_all_attributes: xray.index_all_attributes,
        validate_trace_id_time: xray.validate_trace_id_time,
    };
    Ok(XraySetup {
        reason,
        client: SdkXrayClient::new(sdk_client, xray.timeout),
        otlp,
        check,
        translation,
        max_documents: xray.max_documents_per_call,
        telemetry: xray
            .telemetry
            .then(|| (Identity::from_env(env, xray.resource_arn.clone()), xray.telemetry_interval)),
    })
}

impl XraySetup {
    /// The exporter (credential problems shown on `status`) and, when on, the telemetry
    /// reading the lane's and the UDP receiver's counts.
    pub(crate) fn start(
        self,
        status: Arc<DestinationStatus>,
        lane: Arc<DestinationCounts>,
        receiver: Arc<ReceiverCounts>,
    ) -> XrayParts {
        let errors = Arc::new(BackendErrors::default());
        let exporter = match self.otlp {
            Some(otlp) => XrayExporter::Otlp(Box::new(XrayOtlp::new(otlp, status))),
            None => XrayExporter::Segments(Xray::new(
                self.client.clone(),
                self.translation,
                self.max_documents,
                Arc::clone(&errors),
                status,
            )),
        };
        let telemetry = self.telemetry.map(|(identity, interval)| Telemetry {
            client: self.client,
            counts: TelemetryCounts { lane, receiver, errors },
            identity,
            interval,
        });
        XrayParts { exporter, telemetry, check: self.check }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disabled_destination_says_so() {
        let settings = XraySettings { enabled: false, ..XraySettings::default() };
        let off = set_up(&settings, None, &BTreeMap::new()).err();
        assert_eq!(off.as_deref(), Some("disabled by destinations.xray.enabled = false"));
    }

    #[test]
    fn without_aws_access_it_says_why() {
        let unavailable = Err(AwsUnavailable::NoRegion);
        let off = set_up(&XraySettings::default(), Some(&unavailable), &BTreeMap::new()).err().unwrap_or_default();
        assert!(off.starts_with("no AWS region"), "{off}");
        let off = set_up(&XraySettings::default(), None, &BTreeMap::new()).err();
        assert_eq!(off.as_deref(), Some("AWS access was not looked up"));
    }
}
