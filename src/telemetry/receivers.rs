//! What each receiver accepted, refused and rejected, per signal and reason, as `/status`
//! serves it (`receivers`) and `waggle status` prints it: read from the receiver counters
//! `/metrics` exports (`waggle_receiver_{accepted,refused}_items_total`,
//! `waggle_receiver_rejected_requests_total`), so the two always agree.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One receiver's figures for one signal, since start.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiverFigures {
    /// Items taken by every target lane.
    pub accepted: u64,
    /// Items turned away for lack of room, by reason (the caller was asked to retry).
    #[serde(default)]
    pub refused: BTreeMap<String, u64>,
    /// Requests or datagrams rejected as bad, by reason.
    #[serde(default)]
    pub rejected_requests: BTreeMap<String, u64>,
}

/// Receiver → signal → figures.
pub type ReceiverReport = BTreeMap<String, BTreeMap<String, ReceiverFigures>>;

/// Reads the receiver counters out of Prometheus text.
pub fn from_metrics(metrics: &str) -> ReceiverReport {
    let mut report = ReceiverReport::new();
    for line in metrics.lines().filter(|line| !line.starts_with('#')) {
        let Some((name_and_labels, value)) = line.rsplit_once(' ') else { continue };
        let Some((name, labels)) = name_and_labels.split_once('{') else { continue };
        let labels: BTreeMap<&str, &str> = labels
            .trim_end_matches('}')
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .map(|(key, value)| (key, value.trim_matches('"')))
            .collect();
        let count = value.parse::<f64>().unwrap_or(0.0) as u64;
        let (Some(receiver), Some(signal)) = (labels.get("receiver"), labels.get("signal")) else { continue };
        let reason = labels.get("reason").map(|r| (*r).to_string()).unwrap_or_default();
        let known = matches!(
            name,
            "waggle_receiver_accepted_items_total"
                | "waggle_receiver_refused_items_total"
                | "waggle_receiver_rejected_requests_total"
        );
        if !known {
            continue;
        }
        let figures = report.entry((*receiver).to_string()).or_default().entry((*signal).to_string()).or_default();
        match name {
            "waggle_receiver_accepted_items_total" => figures.accepted += count,
            "waggle_receiver_refused_items_total" if count > 0 => {
                *figures.refused.entry(reason).or_default() += count;
            }
            "waggle_receiver_rejected_requests_total" if count > 0 => {
                *figures.rejected_requests.entry(reason).or_default() += count;
            }
            _ => {}
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Receiver, Signal};
    use crate::telemetry::metrics::{Metrics, RefusalLabels};

    #[test]
    fn the_registrys_receiver_counters_are_read_by_receiver_signal_and_reason() {
        let metrics = Metrics::new();
        let labels = Metrics::receiver(Receiver::OtlpHttp, Signal::Traces);
        metrics.accepted.get_or_create(&labels).inc_by(12);
        metrics.refused.get_or_create(&Metrics::refusal(Receiver::OtlpHttp, Signal::Traces, "queue_full")).inc_by(3);
        let rejected = RefusalLabels { receiver: Receiver::XrayUdp, signal: "traces", reason: "malformed" };
        metrics.rejected_requests.get_or_create(&rejected).inc();
        let report = from_metrics(&metrics.encode());
        assert_eq!(
            report["otlp_http"]["traces"],
            ReceiverFigures {
                accepted: 12,
                refused: BTreeMap::from([("queue_full".into(), 3)]),
                rejected_requests: BTreeMap::new()
            }
        );
        assert_eq!(report["xray_udp"]["traces"].rejected_requests, BTreeMap::from([("malformed".into(), 1)]));
        assert_eq!(report.len(), 2);
    }
}
