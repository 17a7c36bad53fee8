//! SNS adapter of the [`AlertTopic`] port: SLA alerts published to the topic the template
//! defines, for supervisors subscribed by e-mail, SMS or their own tooling.

use aws_sdk_sns::Client;
use aws_sdk_sns::error::DisplayErrorContext;

use crate::desk::{AlertError, AlertTopic};

pub struct SnsTopic {
    client: Client,
    topic_arn: String,
}

impl SnsTopic {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

impl AlertTopic for SnsTopic {
    async fn publish(&self, subject: &str, message: &str) -> Result<(), AlertError> {
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            // SNS subjects: at most 100 characters.
            .subject(crate::support::text::truncate_chars(subject, 100))
            .message(message)
            .send()
            .await
            .map_err(|e| AlertError(DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}
