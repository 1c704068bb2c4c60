//! Which requests the proxy forwards: `POST` to one of the three sampling paths, nothing else.

use http::Method;

/// The X-Ray API operations the proxy forwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamplingOperation {
    GetSamplingRules,
    GetSamplingTargets,
    GetSamplingStatisticSummaries,
}

impl SamplingOperation {
    pub const ALL: [SamplingOperation; 3] = [
        SamplingOperation::GetSamplingRules,
        SamplingOperation::GetSamplingTargets,
        SamplingOperation::GetSamplingStatisticSummaries,
    ];

    /// The operation's REST path.
    pub fn path(self) -> &'static str {
        match self {
            SamplingOperation::GetSamplingRules => "/GetSamplingRules",
            SamplingOperation::GetSamplingTargets => "/SamplingTargets",
            SamplingOperation::GetSamplingStatisticSummaries => "/SamplingStatisticSummaries",
        }
    }

    /// The operation a request is for: only `POST` to one of the three exact paths.
    pub fn of_request(method: &Method, path: &str) -> Option<SamplingOperation> {
        if method != Method::POST {
            return None;
        }
        SamplingOperation::ALL.into_iter().find(|operation| operation.path() == path)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_post_to_the_three_sampling_paths_is_an_operation() {
        assert_eq!(
            SamplingOperation::of_request(&Method::POST, "/GetSamplingRules"),
            Some(SamplingOperation::GetSamplingRules)
        );
        assert_eq!(
            SamplingOperation::of_request(&Method::POST, "/SamplingTargets"),
            Some(SamplingOperation::GetSamplingTargets)
        );
        assert_eq!(
            SamplingOperation::of_request(&Method::POST, "/SamplingStatisticSummaries"),
            Some(SamplingOperation::GetSamplingStatisticSummaries)
        );
        for (method, path) in [
            (Method::GET, "/GetSamplingRules"),
            (Method::PUT, "/SamplingTargets"),
            (Method::POST, "/TraceSegments"),
            (Method::POST, "/TelemetryRecords"),
            (Method::POST, "/"),
            (Method::POST, "/GetSamplingRules/"),
            (Method::POST, "/getsamplingrules"),
            (Method::POST, "//GetSamplingRules"),
        ] {
            assert_eq!(SamplingOperation::of_request(&method, path), None, "{method} {path}");
        }
    }
}
