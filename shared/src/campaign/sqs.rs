//! SQS adapter of the [`CampaignQueue`] port: the standard campaign queue.

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use super::{Batch, CampaignQueue, CampaignQueueError};
use crate::queue::MAX_BATCH_ENTRIES;

/// Attempts at entries SQS did not accept.
const ATTEMPTS: u32 = 3;

#[derive(Clone)]
pub struct SqsCampaignQueue {
    client: Client,
    queue_url: String,
}

impl SqsCampaignQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// Sends up to ten batches; returns those SQS did not accept.
    async fn send_some<'a>(
        &self,
        batches: Vec<&'a Batch>,
        delay: i32,
    ) -> Result<Vec<&'a Batch>, CampaignQueueError> {
        let entries = batches
            .iter()
            .enumerate()
            .map(|(index, batch)| {
                SendMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .message_body(batch.to_json())
                    .delay_seconds(delay)
                    .build()
                    .map_err(|e| CampaignQueueError(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let output = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| CampaignQueueError(DisplayErrorContext(e).to_string()))?;
        output
            .failed()
            .iter()
            .map(|failure| {
                tracing::warn!(code = failure.code(), "campaign queue refused an entry");
                failure
                    .id()
                    .parse::<usize>()
                    .ok()
                    .and_then(|index| batches.get(index).copied())
                    .ok_or_else(|| CampaignQueueError(format!("unknown entry {}", failure.id())))
            })
            .collect()
    }
}

impl CampaignQueue for SqsCampaignQueue {
    async fn enqueue(&self, batches: &[Batch], delay: Duration) -> Result<(), CampaignQueueError> {
        let delay = i32::try_from(delay.as_secs().min(900)).unwrap_or(900);
        for chunk in batches.chunks(MAX_BATCH_ENTRIES) {
            let mut left: Vec<&Batch> = chunk.iter().collect();
            for _ in 0..ATTEMPTS {
                left = self.send_some(left, delay).await?;
                if left.is_empty() {
                    break;
                }
            }
            if !left.is_empty() {
                return Err(CampaignQueueError(format!(
                    "{} batch messages not accepted",
                    left.len()
                )));
            }
        }
        Ok(())
    }
}
