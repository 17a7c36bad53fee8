//! When a failed delivery is tried again, and when it is given up: pure, so the tests can
//! count what a dead endpoint gets over a day.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::hooks::{MAX_EVENT_AGE, RETRY_HORIZON};

/// The delay after the first failure.
pub const FIRST_DELAY: Duration = Duration::from_secs(30);
/// SQS's longest delay: the backoff stops doubling there.
pub const MAX_DELAY: Duration = Duration::from_secs(900);
/// A subscription still failing this long after its first failure (of a run with no success
/// between) is disabled at its next failure.
pub const DISABLE_AFTER: chrono::Duration = chrono::Duration::days(3);

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Back on the queue, alone, visible after this long.
    Retry(Duration),
    /// Past the horizon: recorded, never tried again.
    GiveUp,
}

/// The delay after `failed` failed attempts (1 or more): 30 s doubling up to 15 minutes,
/// less up to a fifth by `jitter` (0 to 1), so events that failed together spread out.
pub fn retry_delay(failed: u32, jitter: f64) -> Duration {
    let doublings = failed.saturating_sub(1).min(16);
    let base = FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY);
    base.mul_f64(1.0 - 0.2 * jitter.clamp(0.0, 1.0))
}

/// A jitter (0 to 1) of the event, the subscription and the attempt: the same retry of the
/// same delivery always waits the same, and different deliveries differ.
pub fn jitter(event_id: &str, subscription_id: &str, failed: u32) -> f64 {
    let mut hasher = DefaultHasher::new();
    (event_id, subscription_id, failed).hash(&mut hasher);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// After the `failed`th failed attempt, at `now`, of a delivery that first failed at
/// `first_failed_at`: another attempt, unless [`RETRY_HORIZON`] has passed.
pub fn after_failure(
    first_failed_at: DateTime<Utc>,
    now: DateTime<Utc>,
    failed: u32,
    jitter: f64,
) -> AfterFailure {
    if now - first_failed_at >= RETRY_HORIZON {
        AfterFailure::GiveUp
    } else {
        AfterFailure::Retry(retry_delay(failed, jitter))
    }
}

/// An event older than [`MAX_EVENT_AGE`] is not delivered any more (given up).
pub fn too_old(occurred_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now - occurred_at > MAX_EVENT_AGE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn the_delay_doubles_from_30_seconds_to_the_sqs_maximum() {
        let delays: Vec<u64> = (1..=8).map(|n| retry_delay(n, 0.0).as_secs()).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 900, 900, 900]);
        assert_eq!(retry_delay(1_000, 0.0), MAX_DELAY);
        assert_eq!(retry_delay(1, 1.0), Duration::from_secs(24));
        for n in 1..40 {
            let delay = retry_delay(n, jitter("evt_1", "hk_1", n));
            assert!(
                delay <= MAX_DELAY && delay >= FIRST_DELAY.mul_f64(0.8),
                "{delay:?}"
            );
        }
        assert_eq!(jitter("evt_1", "hk_1", 3), jitter("evt_1", "hk_1", 3));
        assert_ne!(jitter("evt_1", "hk_1", 3), jitter("evt_2", "hk_1", 3));
    }

    /// Every attempt of a delivery to an endpoint that never answers: the first at the
    /// first failure, then one per delay until the horizon.
    fn attempts_of_a_dead_endpoint(jitter: f64) -> u32 {
        let first = at("2026-12-07T12:00:00Z");
        let mut now = first;
        let mut failed = 0;
        loop {
            failed += 1;
            match after_failure(first, now, failed, jitter) {
                AfterFailure::GiveUp => return failed,
                AfterFailure::Retry(delay) => now += chrono::Duration::from_std(delay).unwrap(),
            }
        }
    }

    /// The closing note's figure: a dead endpoint gets 101 attempts over its day (125 when
    /// every delay is a fifth shorter), the last one given up.
    #[test]
    fn a_dead_endpoint_gets_about_a_hundred_attempts_over_a_day() {
        assert_eq!(attempts_of_a_dead_endpoint(0.0), 101);
        assert_eq!(attempts_of_a_dead_endpoint(1.0), 125);
        let typical = attempts_of_a_dead_endpoint(0.5);
        assert!((101..=125).contains(&typical), "{typical}");
    }

    #[test]
    fn a_failure_past_the_horizon_gives_up() {
        let first = at("2026-12-07T12:00:00Z");
        assert_eq!(
            after_failure(first, at("2026-12-08T11:59:59Z"), 90, 0.0),
            AfterFailure::Retry(MAX_DELAY)
        );
        assert_eq!(
            after_failure(first, at("2026-12-08T12:00:00Z"), 91, 0.0),
            AfterFailure::GiveUp
        );
        assert!(!too_old(first, at("2026-12-10T12:00:00Z")));
        assert!(too_old(first, at("2026-12-10T12:00:01Z")));
    }
}
