//! SQS adapter of the [`HookQueue`] port: the standard hooks queue.

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;

use super::{HookMessage, HookQueue, HookQueueError};

/// SQS's longest delay.
const MAX_DELAY: Duration = Duration::from_secs(900);

#[derive(Clone)]
pub struct SqsHookQueue {
    client: Client,
    queue_url: String,
}

impl SqsHookQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

impl HookQueue for SqsHookQueue {
    async fn publish(&self, message: &HookMessage, delay: Duration) -> Result<(), HookQueueError> {
        let body = serde_json::to_string(message).expect("hook messages serialise");
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(delay.min(MAX_DELAY).as_secs() as i32)
            .send()
            .await
            .map_err(|e| HookQueueError(DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}
