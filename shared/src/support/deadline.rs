//! The time an invocation has left. Every call that may change something elsewhere (a
//! message to Meta, a post to the desk) starts only when its whole timeout fits before the
//! deadline: a call cut off when the function times out may still have been carried out,
//! and its redelivery would do it twice.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Kept free after a call for recording its outcome (a store write) and answering the
/// invocation.
pub const AFTER_CALL: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(Instant);

impl Deadline {
    /// `left` from now.
    pub fn after(left: Duration) -> Self {
        Self(Instant::now() + left)
    }

    /// Lambda's deadline (milliseconds since the epoch); `None` when it is not in the
    /// future (a local emulator may send none).
    pub fn from_epoch_millis(millis: u64) -> Option<Self> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
        Duration::from_millis(millis)
            .checked_sub(now)
            .filter(|left| !left.is_zero())
            .map(Self::after)
    }

    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// Whether a call that may take `timeout` can start now and still leave
    /// [`AFTER_CALL`] for recording what it did.
    pub fn fits(&self, timeout: Duration) -> bool {
        self.remaining() >= timeout + AFTER_CALL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_call_fits_only_with_room_to_record_it() {
        let deadline = Deadline::after(Duration::from_secs(20));
        assert!(deadline.fits(Duration::from_secs(10)));
        tokio::time::advance(Duration::from_secs(8)).await;
        assert!(deadline.fits(Duration::from_secs(10)));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!deadline.fits(Duration::from_secs(10)));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(deadline.remaining(), Duration::ZERO);
    }

    #[test]
    fn lambda_deadlines_in_the_past_are_none() {
        assert!(Deadline::from_epoch_millis(1_000).is_none());
        let in_a_minute = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            + 60_000;
        let deadline = Deadline::from_epoch_millis(in_a_minute).unwrap();
        assert!(deadline.remaining() > Duration::from_secs(50));
    }
}
