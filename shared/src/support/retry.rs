//! Jittered exponential backoff, shared by the queue, Graph and Claude clients.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Calls per batch, the first included.
    pub attempts: u32,
    /// First backoff; doubled each attempt, with jitter.
    pub base_delay: Duration,
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1 for the first): `base_delay` doubled per
    /// attempt, at most `cap`, with jitter (0.5x to 1.5x, still at most `cap`).
    pub fn backoff(&self, attempt: u32, cap: Duration) -> Duration {
        self.base_delay
            .saturating_mul(1 << (attempt.max(1) - 1).min(10))
            .min(cap)
            .mul_f64(0.5 + fastrand::f64())
            .min(cap)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            base_delay: Duration::from_millis(50),
        }
    }
}
