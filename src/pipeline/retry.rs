//! When to try a failed send again: exponential backoff with jitter, a server's own
//! `Retry-After` honoured, and a time budget after which the data is given up on (and counted).

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Retry settings of one lane (config keys under `destinations.<name>.retry`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetryPolicy {
    /// Wait before the first retry.
    #[serde(with = "humantime_serde")]
    pub initial_interval: Duration,
    /// Longest wait between two attempts (a server's Retry-After may ask for more).
    #[serde(with = "humantime_serde")]
    pub max_interval: Duration,
    /// Give up on a request this long after its first attempt; 0 retries until shutdown.
    #[serde(with = "humantime_serde")]
    pub max_elapsed_time: Duration,
    /// Each wait is the previous one times this.
    pub multiplier: f64,
    /// Each wait is randomised by ± this fraction, so senders do not retry in lock-step.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(30),
            max_elapsed_time: Duration::from_secs(300),
            multiplier: 2.0,
            jitter: 0.5,
        }
    }
}

/// The retry state of one request.
#[derive(Debug)]
pub struct Backoff<'a> {
    policy: &'a RetryPolicy,
    next_interval: Duration,
    elapsed: Duration,
}

impl RetryPolicy {
    pub fn start(&self) -> Backoff<'_> {
        Backoff { policy: self, next_interval: self.initial_interval, elapsed: Duration::ZERO }
    }
}

impl Backoff<'_> {
    /// How long to wait before the next attempt, or `None` when the time budget is spent.
    /// `server_delay` is the destination's own Retry-After; the wait is never shorter than it.
    pub fn next_delay(&mut self, server_delay: Option<Duration>) -> Option<Duration> {
        let jittered = jitter(self.next_interval, self.policy.jitter);
        let delay = match server_delay {
            Some(asked) => asked.max(jittered),
            None => jittered,
        };
        let scaled = self.next_interval.as_secs_f64() * self.policy.multiplier.max(1.0);
        self.next_interval = Duration::from_secs_f64(scaled.min(self.policy.max_interval.as_secs_f64()));
        let budget = self.policy.max_elapsed_time;
        if !budget.is_zero() && self.elapsed + delay > budget {
            return None;
        }
        self.elapsed += delay;
        Some(delay)
    }
}

fn jitter(interval: Duration, fraction: f64) -> Duration {
    let fraction = fraction.clamp(0.0, 1.0);
    if fraction == 0.0 {
        return interval;
    }
    let factor = rand::rng().random_range((1.0 - fraction)..=(1.0 + fraction));
    Duration::from_secs_f64(interval.as_secs_f64() * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steady(initial: u64, max: u64, budget: u64) -> RetryPolicy {
        RetryPolicy {
            initial_interval: Duration::from_secs(initial),
            max_interval: Duration::from_secs(max),
            max_elapsed_time: Duration::from_secs(budget),
            multiplier: 2.0,
            jitter: 0.0,
        }
    }

    #[test]
    fn waits_grow_exponentially_up_to_the_cap() {
        let policy = steady(1, 5, 0);
        let mut backoff = policy.start();
        let waits: Vec<u64> = (0..5).map(|_| backoff.next_delay(None).unwrap().as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 5, 5]);
    }

    #[test]
    fn server_retry_after_is_a_floor() {
        let policy = steady(1, 30, 0);
        let mut backoff = policy.start();
        assert_eq!(backoff.next_delay(Some(Duration::from_secs(7))), Some(Duration::from_secs(7)));
    }

    #[test]
    fn gives_up_when_the_budget_is_spent() {
        let policy = steady(1, 30, 6);
        let mut backoff = policy.start();
        assert_eq!(backoff.next_delay(None), Some(Duration::from_secs(1)));
        assert_eq!(backoff.next_delay(None), Some(Duration::from_secs(2)));
        // 1 + 2 + 4 = 7 > 6
        assert_eq!(backoff.next_delay(None), None);
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let policy = RetryPolicy { jitter: 0.5, ..steady(10, 10, 0) };
        let mut backoff = policy.start();
        for _ in 0..200 {
            let wait = backoff.next_delay(None).unwrap().as_secs_f64();
            assert!((5.0..=15.0).contains(&wait), "{wait}");
        }
    }
}
