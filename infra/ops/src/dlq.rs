//! Redriving the inbound DLQ by hand: receive, send to the inbound queue with the same
//! message group (and message attributes) under a new deduplication id, then delete from
//! the DLQ. moto has no StartMessageMoveTask.
//!
//! The new dedup id matters: SQS silently drops a message whose dedup id it saw in the
//! last five minutes, so a message that reached the DLQ quickly would be lost on the way
//! back under its own id. The worker dedups on the envelope's idempotency key, never on the
//! queue's id. The new id is fixed per DLQ copy (`<key>:redrive:<DLQ message id>`): a
//! message is deleted only after the inbound queue accepted it, and if the run stops in
//! between, the copy left in the DLQ is sent under the same id again, which a redrive
//! within the five minutes does not queue twice.

use std::io::Write;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use shared::envelope::Envelope;
use shared::queue::sqs_safe_id;

use crate::error::OpsError;

/// Long enough that a message being moved is not received twice in one run.
const VISIBILITY_TIMEOUT_SECONDS: i32 = 120;
/// Short long-poll: real SQS's short polling may answer empty while messages remain.
const WAIT_SECONDS: i32 = 1;

/// What a redrive did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Redriven {
    pub moved: usize,
    /// Messages left in the DLQ because their FIFO ids could not be known.
    pub left: usize,
}

/// The `(group id, dedup id)` a DLQ message is sent back with: its own group (or the one
/// its envelope implies) and a dedup id the queue has not seen, built from its envelope's
/// idempotency key (or, for a body that is no envelope, its dedup id) and the DLQ copy.
pub fn ids_of(message: &Message) -> Option<(String, String)> {
    let attributes = message.attributes();
    let attribute = |name: MessageSystemAttributeName| {
        attributes
            .and_then(|a| a.get(&name))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let envelope = || Envelope::from_json(message.body()?).ok();
    let group = attribute(MessageSystemAttributeName::MessageGroupId)
        .or_else(|| envelope().map(|e| sqs_safe_id(e.group_key())))?;
    let key = envelope()
        .map(|e| e.idempotency_key())
        .or_else(|| attribute(MessageSystemAttributeName::MessageDeduplicationId))?;
    let copy = message.message_id()?;
    Some((group, resend_dedup_id(&key, "redrive", copy)))
}

/// A deduplication id for sending `key`'s event again (`<key>:<how>:<which copy>`), within
/// SQS's 128 printable characters (a digest when longer).
pub fn resend_dedup_id(key: &str, how: &str, copy: &str) -> String {
    sqs_safe_id(format!("{key}:{how}:{copy}"))
}

/// Moves up to `max` messages (all when `None`) from `dlq_url` to `queue_url`.
pub async fn redrive(
    client: &Client,
    dlq_url: &str,
    queue_url: &str,
    max: Option<usize>,
    err: &mut dyn Write,
) -> Result<Redriven, OpsError> {
    if dlq_url.trim_end_matches('/') == queue_url.trim_end_matches('/') {
        return Err(OpsError::Invalid(
            "the DLQ and the inbound queue are the same queue".into(),
        ));
    }
    let mut done = Redriven::default();
    loop {
        let handled = done.moved + done.left;
        let batch = match max {
            Some(max) if handled >= max => break,
            Some(max) => (max - handled).min(10),
            None => 10,
        };
        let output = client
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(batch as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .visibility_timeout(VISIBILITY_TIMEOUT_SECONDS)
            .wait_time_seconds(WAIT_SECONDS)
            .send()
            .await
            .map_err(|e| OpsError::aws("SQS ReceiveMessage", e))?;
        let messages = output.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for message in messages {
            let id = message.message_id().unwrap_or("?").to_owned();
            let Some((group_id, dedup_id)) = ids_of(&message) else {
                done.left += 1;
                writeln!(
                    err,
                    "left message {id} in the DLQ: it has no message group or deduplication id \
                     and its body is not an envelope"
                )?;
                continue;
            };
            if let Err(error) =
                move_one(client, dlq_url, queue_url, message, group_id, dedup_id).await
            {
                writeln!(
                    err,
                    "moved {} message(s) before failing at message {id}",
                    done.moved
                )?;
                return Err(error);
            }
            done.moved += 1;
        }
    }
    Ok(done)
}

async fn move_one(
    client: &Client,
    dlq_url: &str,
    queue_url: &str,
    message: Message,
    group_id: String,
    dedup_id: String,
) -> Result<(), OpsError> {
    client
        .send_message()
        .queue_url(queue_url)
        .set_message_body(message.body)
        .set_message_attributes(message.message_attributes)
        .message_group_id(group_id)
        .message_deduplication_id(dedup_id)
        .send()
        .await
        .map_err(|e| OpsError::aws("SQS SendMessage", e))?;
    client
        .delete_message()
        .queue_url(dlq_url)
        .set_receipt_handle(message.receipt_handle)
        .send()
        .await
        .map_err(|e| OpsError::aws("SQS DeleteMessage", e))?;
    Ok(())
}

/// `ops dlq redrive`.
pub async fn command(
    client: &Client,
    dlq_url: &str,
    queue_url: &str,
    max: Option<usize>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), OpsError> {
    let done = redrive(client, dlq_url, queue_url, max, err).await?;
    writeln!(
        out,
        "moved {} message(s) from {dlq_url} to {queue_url}",
        done.moved
    )?;
    if done.left > 0 {
        return Err(OpsError::Incomplete(format!(
            "{} message(s) were left in the DLQ",
            done.left
        )));
    }
    Ok(())
}
