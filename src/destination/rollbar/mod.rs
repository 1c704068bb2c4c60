//! The Rollbar destination: one item per `POST {endpoint}item/`, JSON, with the token in
//! `X-Rollbar-Access-Token`. Items are made from OpenTelemetry exceptions
//! ([`crate::translate::otlp_to_rollbar`]) or relayed from the Rollbar SDKs
//! ([`crate::receiver::rollbar_relay`]).
//!
//! | answer | what waggle does |
//! |---|---|
//! | 2xx | sent |
//! | 429 | retried with backoff; `X-Rate-Limit-Remaining-Seconds` or `Retry-After` is a floor |
//! | 5xx, network error, timeout | retried with backoff |
//! | 401, 403 | permanent: `/status` says "Rollbar rejected the access token", WARN once a minute, counted as `unauthorized` |
//! | 413 | permanent: counted as `too_large` with Rollbar's message |
//! | 422 | permanent: counted as `invalid` with Rollbar's message |
//! | other 4xx | permanent: counted as `rejected` with Rollbar's message |
//!
//! `settings` holds the keys, `setup` turns them into a client (or an off reason), `request`
//! builds the items (`recent` keeps one exception from being sent twice, `relayed` carries
//! the SDKs' items), `client` sends them, `classify` reads the answers.

mod classify;
mod client;
mod recent;
mod relayed;
mod request;
mod settings;
mod setup;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::destination::{Built, ExportError, Exporter, Sent};
use crate::model::{SharedBatch, Signal};
use crate::telemetry::ratelimit::LogLimiter;
use crate::telemetry::status::DestinationStatus;
use crate::translate::otlp_to_rollbar::RollbarTranslation;

pub(crate) use client::{HyperClient, PostError, RollbarClient, TOKEN_HEADER};
pub(crate) use relayed::relayed_batch;
pub(crate) use request::RollbarRequest;
pub use settings::RollbarSettings;
pub(crate) use setup::RollbarError;
pub(crate) use setup::{RollbarSetup, setup};

/// Sends items to Rollbar through a [`RollbarClient`].
pub(crate) struct Rollbar<C = HyperClient> {
    client: C,
    translation: RollbarTranslation,
    recent: recent::RecentItems,
    status: Arc<DestinationStatus>,
    token_warning: LogLimiter,
}

impl<C: RollbarClient> Rollbar<C> {
    pub(crate) fn new(client: C, settings: &RollbarSettings, status: Arc<DestinationStatus>) -> Self {
        Rollbar {
            client,
            translation: RollbarTranslation {
                environment: settings.environment.clone(),
                log_errors: settings.log_errors,
            },
            recent: recent::RecentItems::new(),
            status,
            token_warning: LogLimiter::new(Duration::from_secs(60)),
        }
    }

    /// Says on `/status`, and at WARN once a minute, that Rollbar refused the token.
    fn report_rejected_token(&self, problem: String, status: u16) {
        if let Some(suppressed) = self.token_warning.check() {
            tracing::warn!(destination = "rollbar", status, suppressed, "{problem}; check ROLLBAR_ACCESS_TOKEN");
        }
        self.status.record_problem(problem);
    }
}

impl<C: RollbarClient> Exporter for Rollbar<C> {
    type Request = RollbarRequest;

    fn build(&self, signal: Signal, batches: &[SharedBatch]) -> Built<RollbarRequest> {
        request::build(&self.translation, &self.recent, signal, batches)
    }

    fn items(_request: &RollbarRequest) -> usize {
        1
    }

    async fn send(&self, request: &mut RollbarRequest) -> Result<Sent, ExportError> {
        let response = self.client.post(request.body.clone()).await.map_err(classify::unanswered)?;
        if let Some(problem) = classify::token_problem(response.status) {
            self.report_rejected_token(problem, response.status.as_u16());
        }
        classify::classify(response.status, &response.headers, &response.body, SystemTime::now())
    }
}

#[cfg(test)]
mod tests;
