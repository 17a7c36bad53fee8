//! Pacing arithmetic shared by every sender container, with no I/O: the per-number slot
//! budget (throughput), the slow-down after Meta's 130429, and the portfolio's messaging
//! limit over a moving 24 h.
//!
//! **Throughput.** Time is cut into 100 ms slots; every container takes its send tokens
//! from one counter item per (number, slot) with a conditional `ADD`, so the budget holds
//! across containers. Slot `k` gets `floor((k+1)·r/10) − floor(k·r/10)` tokens for a rate
//! of `r` per second: ten consecutive slots hold exactly `r`, and any one-second window,
//! which overlaps at most eleven slots, at most `r + ceil(r/10)` (88 for 80/s). A rate
//! under 10/s spreads its tokens over the slots instead of sending bursts.
//!
//! **Messaging limit.** Meta counts unique customers reached outside a service window in a
//! moving 24 h, per business portfolio. The senders count every campaign recipient they
//! send to (conservative: a customer with an open window, or reached twice, counts again)
//! in one counter per portfolio and hour, and the window is the sum of the current hour
//! and the 24 before it: it covers between 24 and 25 hours, never less, so the budget is
//! never overstated.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// One pacing slot.
pub const SLOT: Duration = Duration::from_millis(100);
const SLOT_MILLIS: i64 = 100;
const SLOTS_PER_SECOND: u64 = 10;

/// How long a 130429 keeps the number slowed down, and the lowest share of its
/// throughput it falls to.
pub const SLOWDOWN_FOR: TimeDelta = TimeDelta::seconds(60);
pub const SLOWEST_FACTOR: f64 = 0.1;

/// Hour counters summed for the moving 24 h (the current hour and the 24 before it).
pub const DAILY_BUCKETS: i64 = 25;

/// The slot `at` falls in.
pub fn slot_of(at: DateTime<Utc>) -> u64 {
    u64::try_from(at.timestamp_millis() / SLOT_MILLIS).unwrap_or(0)
}

pub fn slot_start(slot: u64) -> DateTime<Utc> {
    let millis = i64::try_from(slot).unwrap_or(i64::MAX / SLOT_MILLIS) * SLOT_MILLIS;
    DateTime::from_timestamp_millis(millis).unwrap_or(DateTime::UNIX_EPOCH)
}

/// Tokens of `slot` for `rate` sends per second (see the module's notes).
pub fn slot_budget(slot: u64, rate: u32) -> u32 {
    let rate = u64::from(rate);
    let before = slot * rate / SLOTS_PER_SECOND;
    let through = (slot + 1) * rate / SLOTS_PER_SECOND;
    u32::try_from(through - before).unwrap_or(u32::MAX)
}

/// A number Meta throttled (130429): its rate is `factor` of the configured throughput
/// until `until`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Slowdown {
    pub factor: f64,
    pub until: DateTime<Utc>,
}

impl Slowdown {
    /// After a 130429 at `now`: half the rate in force (down to [`SLOWEST_FACTOR`]), for
    /// [`SLOWDOWN_FOR`] from now.
    pub fn after_throttle(previous: Option<Slowdown>, now: DateTime<Utc>) -> Slowdown {
        let factor = factor_at(previous, now);
        Slowdown {
            factor: (factor / 2.0).max(SLOWEST_FACTOR),
            until: now + SLOWDOWN_FOR,
        }
    }
}

/// The share of its throughput a number may use at `now`.
pub fn factor_at(slowdown: Option<Slowdown>, now: DateTime<Utc>) -> f64 {
    match slowdown {
        Some(slowdown) if now < slowdown.until => slowdown.factor.clamp(SLOWEST_FACTOR, 1.0),
        _ => 1.0,
    }
}

/// The rate in force: the configured throughput times the slow-down factor, at least 1.
pub fn effective_rate(throughput_per_second: u32, factor: f64) -> u32 {
    // Throughput is at most 1,000: the product fits and rounds down.
    ((f64::from(throughput_per_second) * factor).floor() as u32).max(1)
}

/// The hour counter `at` adds to (hours since the epoch).
pub fn hour_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(3600)
}

/// The hours whose counters make up the moving 24 h at `at`, oldest first.
pub fn daily_window(at: DateTime<Utc>) -> std::ops::RangeInclusive<i64> {
    let hour = hour_of(at);
    hour - (DAILY_BUCKETS - 1)..=hour
}

/// How many of `wanted` recipients the messaging limit still allows, with `used` counted
/// in the window; `None` (unlimited) allows all.
pub fn daily_grant(limit: Option<u32>, used: u64, wanted: u32) -> u32 {
    match limit {
        None => wanted,
        Some(limit) => {
            let left = u64::from(limit).saturating_sub(used);
            u32::try_from(left.min(u64::from(wanted))).unwrap_or(wanted)
        }
    }
}

/// When the oldest hour of the window leaves it (a deferred batch may try again then).
pub fn window_moves_at(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp((hour_of(at) + 1) * 3600, 0).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(millis).unwrap()
    }

    /// The most tokens any one-second window can hold: it overlaps at most 11 slots.
    fn worst_second(rate: u32) -> u32 {
        (1_000..1_200)
            .map(|first| {
                (first..first + 11)
                    .map(|slot| slot_budget(slot, rate))
                    .sum()
            })
            .max()
            .unwrap()
    }

    #[test]
    fn ten_slots_hold_exactly_the_rate() {
        for rate in [1, 5, 20, 33, 80, 85, 999, 1_000] {
            for first in 0..50 {
                let total: u32 = (first..first + 10)
                    .map(|slot| slot_budget(slot, rate))
                    .sum();
                assert_eq!(total, rate, "rate {rate} from slot {first}");
            }
        }
    }

    #[test]
    fn no_one_second_window_exceeds_the_rate_by_more_than_a_tenth() {
        assert_eq!(slot_budget(7, 80), 8);
        assert_eq!(worst_second(80), 88);
        assert_eq!(worst_second(1_000), 1_100);
        for rate in 1..=1_000 {
            assert!(
                worst_second(rate) <= rate + rate.div_ceil(10),
                "rate {rate}"
            );
        }
    }

    #[test]
    fn slots_are_a_tenth_of_a_second() {
        assert_eq!(slot_of(at(1_234)), 12);
        assert_eq!(slot_start(12), at(1_200));
        assert_eq!(slot_of(slot_start(99)), 99);
    }

    #[test]
    fn a_throttle_halves_the_rate_for_a_minute_down_to_a_tenth() {
        let now = at(1_000_000);
        let first = Slowdown::after_throttle(None, now);
        assert_eq!(first.factor, 0.5);
        assert_eq!(factor_at(Some(first), now + TimeDelta::seconds(59)), 0.5);
        assert_eq!(factor_at(Some(first), now + TimeDelta::seconds(60)), 1.0);
        let mut slowdown = first;
        for _ in 0..10 {
            slowdown = Slowdown::after_throttle(Some(slowdown), now);
        }
        assert_eq!(slowdown.factor, SLOWEST_FACTOR);
        let later = now + TimeDelta::seconds(120);
        assert_eq!(Slowdown::after_throttle(Some(slowdown), later).factor, 0.5);
        assert_eq!(effective_rate(80, 0.5), 40);
        assert_eq!(effective_rate(5, 0.1), 1);
    }

    #[test]
    fn the_daily_window_covers_at_least_24_hours() {
        let now = at(1_789_000_000_000);
        let window = daily_window(now);
        let oldest_start = DateTime::from_timestamp(window.start() * 3600, 0).unwrap();
        assert!(now - oldest_start >= TimeDelta::hours(24));
        assert!(now - oldest_start <= TimeDelta::hours(25));
        assert_eq!(window.count(), 25);
        assert!(window_moves_at(now) > now);
        assert!(window_moves_at(now) - now <= TimeDelta::hours(1));
    }

    #[test]
    fn the_daily_grant_is_what_the_limit_leaves() {
        assert_eq!(daily_grant(Some(250), 0, 50), 50);
        assert_eq!(daily_grant(Some(250), 230, 50), 20);
        assert_eq!(daily_grant(Some(250), 300, 50), 0);
        assert_eq!(daily_grant(None, 10_000_000, 50), 50);
    }
}
