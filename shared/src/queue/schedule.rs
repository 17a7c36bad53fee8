//! What the scheduled functions share: the time they run for, and putting timers on the
//! inbound queue (group = the conversation, dedup = the timer's occurrence).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::envelope::{Envelope, Payload, TimerEvent};
use crate::queue::{self, EnqueueError, EnqueueReport, InboundQueue, QueueEntry};
use crate::support::retry::RetryPolicy;

/// The time a run is for: the schedule's `time` (EventBridge Scheduler's
/// `<aws.scheduler.scheduled-time>`, or a scheduled rule's event time), else now. A late or
/// repeated run of the same slot finds the same things due.
pub fn scheduled_time(event: &Value) -> DateTime<Utc> {
    event
        .get("time")
        .and_then(Value::as_str)
        .and_then(|time| time.parse().ok())
        .unwrap_or_else(Utc::now)
}

/// Puts the timers on the inbound queue, retrying what it did not accept.
pub async fn enqueue<Q: InboundQueue>(
    queue: &Q,
    timers: Vec<TimerEvent>,
) -> Result<EnqueueReport, EnqueueError> {
    let entries: Vec<QueueEntry> = timers
        .into_iter()
        .map(|timer| QueueEntry::from_envelope(&Envelope::new(Payload::Timer(timer))))
        .collect();
    queue::enqueue_all(queue, &entries, RetryPolicy::default()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_is_for_the_scheduled_time() {
        let event = serde_json::json!({"time": "2026-11-24T11:05:00Z"});
        assert_eq!(
            scheduled_time(&event),
            "2026-11-24T11:05:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let before = Utc::now();
        assert!(scheduled_time(&serde_json::json!({})) >= before);
    }
}
