//! SQS adapter of the [`InboundQueue`] port.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use crate::queue::{InboundQueue, QueueEntry, QueueError};

#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

impl InboundQueue for SqsQueue {
    async fn send_batch(&self, entries: &[&QueueEntry]) -> Result<Vec<usize>, QueueError> {
        let request_entries = entries
            .iter()
            .enumerate()
            .map(|(index, entry)| {
                SendMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .message_body(entry.body.clone())
                    .message_group_id(entry.group_id.clone())
                    .message_deduplication_id(entry.dedup_id.clone())
                    .build()
                    .map_err(|e| QueueError(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let output = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(request_entries))
            .send()
            .await
            .map_err(|e| QueueError(DisplayErrorContext(e).to_string()))?;
        let mut failed = Vec::with_capacity(output.failed().len());
        for failure in output.failed() {
            tracing::warn!(
                code = failure.code(),
                sender_fault = failure.sender_fault(),
                "queue refused an entry"
            );
            let index = failure
                .id()
                .parse()
                .map_err(|_| QueueError(format!("unknown batch entry id {:?}", failure.id())))?;
            failed.push(index);
        }
        Ok(failed)
    }
}
