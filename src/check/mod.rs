//! `waggle check`: every destination that is on or partly configured is verified live, one
//! line each — OK, or what is wrong and the fix — for people (text) or scripts (`--json`).
//!
//! Each destination's check is one function returning its [`CheckLine`]s; [`run`] calls them
//! in order, so a new destination is one function and one line there. `reach` tells
//! reachability failures apart (DNS, connect, TLS, proxy, timeout).

mod aws;
mod cloudwatch_logs;
mod honeycomb;
mod reach;
mod rollbar;
mod xray;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::aws::connect;
use crate::config::Settings;
use crate::destination::cloudwatch_logs as cloudwatch_logs_setup;
use crate::destination::xray::setup as xray_setup;

/// What one check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Verified live.
    Ok,
    /// Configured (or partly) and not working: the message says what to fix.
    Fail,
    /// Not configured: nothing to verify (does not fail the check).
    Off,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct CheckLine {
    pub name: &'static str,
    pub outcome: Outcome,
    pub message: String,
}

impl CheckLine {
    pub fn ok(name: &'static str, message: impl Into<String>) -> Self {
        CheckLine { name, outcome: Outcome::Ok, message: message.into() }
    }

    pub fn fail(name: &'static str, message: impl Into<String>) -> Self {
        CheckLine { name, outcome: Outcome::Fail, message: message.into() }
    }

    pub fn off(name: &'static str, message: impl Into<String>) -> Self {
        CheckLine { name, outcome: Outcome::Off, message: message.into() }
    }
}

/// Every line, and whether all that was checked is OK.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub ok: bool,
    pub checks: Vec<CheckLine>,
}

impl CheckReport {
    fn new(checks: Vec<CheckLine>) -> Self {
        CheckReport { ok: checks.iter().all(|line| line.outcome != Outcome::Fail), checks }
    }

    /// One line per check: `honeycomb: OK — key accepted: …`.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for line in &self.checks {
            let label = match line.outcome {
                Outcome::Ok => "OK",
                Outcome::Fail => "FAIL",
                Outcome::Off => "off",
            };
            let _ = writeln!(text, "{}: {label} — {}", line.name, line.message);
        }
        text
    }
}

/// Checks every destination that is on or partly configured.
pub async fn run(settings: &Settings, env: &BTreeMap<String, String>) -> CheckReport {
    let mut checks = Vec::new();
    checks.extend(honeycomb::check(&settings.destinations.honeycomb, env).await);
    checks.extend(aws_checks(settings, env).await);
    checks.extend(rollbar::check(&settings.destinations.rollbar).await);
    CheckReport::new(checks)
}

/// The AWS identity line, then X-Ray and CloudWatch Logs when AWS access was found.
async fn aws_checks(settings: &Settings, env: &BTreeMap<String, String>) -> Vec<CheckLine> {
    let xray = &settings.destinations.xray;
    let cloudwatch = &settings.destinations.cloudwatch_logs;
    let xray_wants = xray.enabled || settings.receivers.xray_tcp.enabled;
    let cloudwatch_wants = cloudwatch_logs_setup::wants_aws(cloudwatch);
    if !xray_wants && !cloudwatch_wants {
        return Vec::new();
    }
    let mut lines = Vec::new();
    let xray_access = xray_setup::aws_access(xray);
    let found = connect(&xray_access, env).await;
    let partly = cloudwatch_wants || aws::hinted(&xray_access, env);
    lines.push(aws::identity("aws", &xray_access, &found, partly, xray.timeout).await);
    if xray.enabled
        && let Ok(context) = &found
    {
        lines.push(xray::check(xray, context, env).await);
        lines.push(xray::protocol(xray, context).await);
    }
    if cloudwatch_wants {
        let access = cloudwatch_logs_setup::aws_access(cloudwatch, xray);
        let own = if cloudwatch_logs_setup::same_access(&access, &xray_access) {
            None
        } else {
            let found = connect(&access, env).await;
            lines.push(aws::identity("aws (cloudwatch_logs)", &access, &found, true, cloudwatch.timeout).await);
            Some(found)
        };
        if let Ok(context) = own.as_ref().unwrap_or(&found) {
            lines.push(cloudwatch_logs::check(cloudwatch, context, env).await);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_fails_on_any_failure_but_not_on_off() {
        let report = CheckReport::new(vec![CheckLine::ok("a", "fine"), CheckLine::off("b", "not set")]);
        assert!(report.ok);
        assert_eq!(report.text(), "a: OK — fine\nb: off — not set\n");
        let report = CheckReport::new(vec![CheckLine::ok("a", "fine"), CheckLine::fail("c", "broken: fix it")]);
        assert!(!report.ok);
    }

    #[test]
    fn json_names_each_outcome() {
        let report = CheckReport::new(vec![CheckLine::fail("xray", "no")]);
        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            serde_json::json!({"ok": false, "checks": [{"name": "xray", "outcome": "fail", "message": "no"}]})
        );
    }
}
