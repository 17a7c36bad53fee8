//! Putting envelopes on the inbound FIFO queue: entries with the design's group and dedup
//! ids, batches within SQS's limits, in-process retries of what was not accepted, and
//! per-conversation order.

pub mod schedule;

#[cfg(feature = "sqs")]
pub mod sqs;

use std::future::Future;
use std::time::Duration;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::envelope::Envelope;
use crate::support::retry::RetryPolicy;

/// SQS `SendMessageBatch` limits.
pub const MAX_BATCH_ENTRIES: usize = 10;
pub const MAX_BATCH_BYTES: usize = 256 * 1024;
/// Longest group or deduplication id SQS takes.
pub const MAX_ID_LEN: usize = 128;
/// Conversations are spread over this many lanes sent concurrently; each lane is sent in
/// order, so messages of one conversation keep their order.
const LANES: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    pub group_id: String,
    pub dedup_id: String,
    pub body: String,
}

impl QueueEntry {
    pub fn from_envelope(envelope: &Envelope) -> Self {
        Self {
            group_id: sqs_safe_id(envelope.group_key()),
            dedup_id: sqs_safe_id(envelope.idempotency_key()),
            body: envelope.to_json(),
        }
    }
}

/// SQS takes ids of up to 128 printable ASCII characters. Anything else (a hostile or
/// unusual id inside a validly signed body) is replaced by a digest, deterministically, so
/// a retried POST maps to the same id.
pub fn sqs_safe_id(id: String) -> String {
    let valid = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b.is_ascii_punctuation());
    if valid {
        id
    } else {
        format!("sha256-{}", hex::encode(Sha256::digest(id.as_bytes())))
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{0}")]
pub struct QueueError(pub String);

/// Port: the inbound queue.
pub trait InboundQueue: Send + Sync {
    /// Sends at most [`MAX_BATCH_ENTRIES`] entries in one call and returns the positions
    /// (indexes into `entries`) the queue did not accept, or an error when the call failed.
    fn send_batch(
        &self,
        entries: &[&QueueEntry],
    ) -> impl Future<Output = Result<Vec<usize>, QueueError>> + Send;
}

/// Longest wait between two sends of a lane: the webhook answers Meta within seconds.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EnqueueReport {
    pub accepted: usize,
    pub calls: usize,
    pub retried_entries: usize,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error(
    "{not_accepted} of {total} entries were not accepted by the queue (last error: {last_error})"
)]
pub struct EnqueueError {
    pub not_accepted: usize,
    pub total: usize,
    pub last_error: String,
    pub report: EnqueueReport,
}

/// Sends every entry, retrying what the queue did not accept. Succeeds only when all of
/// them were accepted. When a batch keeps failing, the rest of its lane is not sent, so a
/// conversation's later messages never overtake an earlier one; the caller's retry (Meta
/// redelivers on a 5xx) sends them again and the dedup ids make that safe.
pub async fn enqueue_all<Q: InboundQueue>(
    queue: &Q,
    entries: &[QueueEntry],
    policy: RetryPolicy,
) -> Result<EnqueueReport, EnqueueError> {
    let mut lanes: Vec<Vec<&QueueEntry>> = vec![Vec::new(); LANES];
    for entry in entries {
        lanes[lane_of(&entry.group_id)].push(entry);
    }
    let results = futures::future::join_all(
        lanes
            .iter()
            .filter(|lane| !lane.is_empty())
            .map(|lane| send_lane(queue, lane, policy)),
    )
    .await;

    let mut report = EnqueueReport::default();
    let mut last_error = None;
    for lane in results {
        report.accepted += lane.report.accepted;
        report.calls += lane.report.calls;
        report.retried_entries += lane.report.retried_entries;
        last_error = lane.error.or(last_error);
    }
    match last_error {
        None => Ok(report),
        Some(last_error) => Err(EnqueueError {
            not_accepted: entries.len() - report.accepted,
            total: entries.len(),
            last_error,
            report,
        }),
    }
}

struct LaneOutcome {
    report: EnqueueReport,
    error: Option<String>,
}

async fn send_lane<Q: InboundQueue>(
    queue: &Q,
    lane: &[&QueueEntry],
    policy: RetryPolicy,
) -> LaneOutcome {
    let mut report = EnqueueReport::default();
    for batch in batches(lane) {
        let mut pending: Vec<&QueueEntry> = batch.to_vec();
        let mut attempt = 0;
        loop {
            report.calls += 1;
            let failure = match queue.send_batch(&pending).await {
                Ok(failed) if failed.is_empty() => None,
                Ok(failed) => {
                    let still: Vec<_> = failed
                        .iter()
                        .filter_map(|&i| pending.get(i).copied())
                        .collect();
                    let message = format!("{} entries rejected", still.len());
                    Some((still, message))
                }
                Err(QueueError(message)) => Some((pending.clone(), message)),
            };
            let Some((still, message)) = failure else {
                report.accepted += pending.len();
                break;
            };
            report.accepted += pending.len() - still.len();
            attempt += 1;
            if attempt >= policy.attempts {
                tracing::warn!(error = %message, attempts = attempt, "queue did not accept a batch");
                return LaneOutcome {
                    report,
                    error: Some(message),
                };
            }
            report.retried_entries += still.len();
            pending = still;
            tokio::time::sleep(policy.backoff(attempt, MAX_BACKOFF)).await;
        }
    }
    LaneOutcome {
        report,
        error: None,
    }
}

/// Splits a lane into batches within the entry-count and payload-size limits.
fn batches<'a>(lane: &'a [&'a QueueEntry]) -> Vec<&'a [&'a QueueEntry]> {
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (index, entry) in lane.iter().enumerate() {
        let size = entry.body.len();
        let full = index - start == MAX_BATCH_ENTRIES || bytes + size > MAX_BATCH_BYTES;
        if full && index > start {
            batches.push(&lane[start..index]);
            start = index;
            bytes = 0;
        }
        bytes += size;
    }
    if start < lane.len() {
        batches.push(&lane[start..]);
    }
    batches
}

fn lane_of(group_id: &str) -> usize {
    // FNV-1a: stable and cheap; only spreads conversations over lanes.
    let hash = group_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (hash % LANES as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn entry(group: &str, id: usize, size: usize) -> QueueEntry {
        QueueEntry {
            group_id: group.into(),
            dedup_id: format!("wamid.{id}"),
            body: "x".repeat(size),
        }
    }

    /// Accepts everything except the dedup ids it is told to refuse, a number of times each.
    #[derive(Default)]
    struct FakeQueue {
        accepted: Mutex<Vec<String>>,
        refuse: Mutex<Vec<(String, usize)>>,
        fail_calls: Mutex<usize>,
        call_sizes: Mutex<Vec<usize>>,
    }

    impl InboundQueue for FakeQueue {
        async fn send_batch(&self, entries: &[&QueueEntry]) -> Result<Vec<usize>, QueueError> {
            self.call_sizes.lock().unwrap().push(entries.len());
            {
                let mut fail_calls = self.fail_calls.lock().unwrap();
                if *fail_calls > 0 {
                    *fail_calls -= 1;
                    return Err(QueueError("throttled".into()));
                }
            }
            let mut failed = Vec::new();
            for (index, entry) in entries.iter().enumerate() {
                let mut refuse = self.refuse.lock().unwrap();
                match refuse
                    .iter_mut()
                    .find(|(id, n)| *id == entry.dedup_id && *n > 0)
                {
                    Some((_, n)) => {
                        *n -= 1;
                        failed.push(index);
                    }
                    None => self.accepted.lock().unwrap().push(entry.dedup_id.clone()),
                }
            }
            Ok(failed)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn sends_everything_in_batches_of_ten_keeping_each_conversation_in_order() {
        let entries: Vec<_> = (0..95)
            .map(|i| entry(&format!("pn:{}", i % 7), i, 10))
            .collect();
        let queue = FakeQueue::default();
        let report = enqueue_all(&queue, &entries, RetryPolicy::default())
            .await
            .unwrap();
        assert_eq!(report.accepted, 95);
        assert!(
            queue
                .call_sizes
                .lock()
                .unwrap()
                .iter()
                .all(|&n| n <= MAX_BATCH_ENTRIES)
        );
        let accepted = queue.accepted.lock().unwrap();
        for group in 0..7 {
            let order: Vec<_> = accepted
                .iter()
                .filter_map(|id| id.strip_prefix("wamid.")?.parse::<usize>().ok())
                .filter(|i| i % 7 == group)
                .collect();
            assert!(order.is_sorted(), "group {group} out of order: {order:?}");
            assert_eq!(
                order.len(),
                entries
                    .iter()
                    .filter(|e| e.group_id == format!("pn:{group}"))
                    .count()
            );
        }
    }

    #[test]
    fn batches_respect_the_payload_limit() {
        let entries: Vec<_> = (0..5).map(|i| entry("g", i, 100 * 1024)).collect();
        let refs: Vec<_> = entries.iter().collect();
        let sizes: Vec<_> = batches(&refs).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [2, 2, 1]);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_only_the_entries_that_were_refused() {
        let entries: Vec<_> = (0..10).map(|i| entry("g", i, 10)).collect();
        let queue = FakeQueue::default();
        queue.refuse.lock().unwrap().push(("wamid.9".into(), 2));
        *queue.fail_calls.lock().unwrap() = 1;
        let report = enqueue_all(&queue, &entries, RetryPolicy::default())
            .await
            .unwrap();
        assert_eq!(report.accepted, 10);
        assert_eq!(*queue.call_sizes.lock().unwrap(), [10, 10, 1, 1]);
        assert_eq!(queue.accepted.lock().unwrap().len(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn reports_failure_and_stops_the_lane_when_retries_run_out() {
        let entries: Vec<_> = (0..25).map(|i| entry("one-conversation", i, 10)).collect();
        let queue = FakeQueue::default();
        queue
            .refuse
            .lock()
            .unwrap()
            .push(("wamid.3".into(), usize::MAX));
        let error = enqueue_all(&queue, &entries, RetryPolicy::default())
            .await
            .unwrap_err();
        assert_eq!((error.not_accepted, error.total), (16, 25));
        // Nothing after the stuck batch was sent: its conversation keeps its order.
        let first_batch_but_3: Vec<_> = (0..10)
            .filter(|&i| i != 3)
            .map(|i| format!("wamid.{i}"))
            .collect();
        assert_eq!(*queue.accepted.lock().unwrap(), first_batch_but_3);
    }

    #[test]
    fn ids_sqs_would_refuse_become_stable_digests() {
        assert_eq!(sqs_safe_id("wamid.HBg=:read".into()), "wamid.HBg=:read");
        let odd = sqs_safe_id("número com espaço".into());
        assert!(odd.starts_with("sha256-") && odd.len() <= MAX_ID_LEN);
        assert_eq!(odd, sqs_safe_id("número com espaço".into()));
        assert!(sqs_safe_id("x".repeat(200)).starts_with("sha256-"));
        assert!(sqs_safe_id(String::new()).starts_with("sha256-"));
    }
}
