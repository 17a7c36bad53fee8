//! Messages the worker parked because their number had no tenant yet (`PARKED#<pn>` items,
//! the envelope JSON in `envelope`, a TTL in `expires_at`). Once the tenant exists they are
//! replayed: each envelope goes back to the inbound FIFO queue in its conversation's group
//! (`<pn>:<customer>`) under a dedup id of its own, `<idempotency key>:replay:<parked at
//! ms>`, and the item is deleted once SQS accepted it. Not the webhook's dedup id: SQS
//! silently drops a message whose dedup id it saw in the last five minutes, so a tenant
//! set up right after its first customer wrote would lose that message. The worker dedups
//! on the envelope's idempotency key. The id is fixed per parked item: a replay run again
//! within those minutes (after a failed delete) does not queue it twice.

use std::io::Write;

use aws_sdk_dynamodb::types::AttributeValue;
use shared::envelope::{Envelope, Payload};
use shared::queue::sqs_safe_id;
use shared::store::keys;

use crate::dlq::resend_dedup_id;
use crate::error::OpsError;
use crate::tenants;

pub const ENVELOPE: &str = "envelope";

/// One parked item.
#[derive(Debug, Clone)]
pub struct Parked {
    /// The item's sort key, `<epoch ms>#<key>`.
    pub sk: String,
    /// The envelope exactly as stored (what replay sends).
    pub body: String,
    /// The envelope, or why it cannot be read.
    pub envelope: Result<Envelope, String>,
}

impl Parked {
    /// `(group id, dedup id)` to send it with.
    pub fn ids(&self) -> Option<(String, String)> {
        let envelope = self.envelope.as_ref().ok()?;
        let parked_at = self.sk.split('#').next().filter(|at| !at.is_empty())?;
        Some((
            sqs_safe_id(envelope.group_key()),
            resend_dedup_id(&envelope.idempotency_key(), "replay", parked_at),
        ))
    }
}

/// The parked items of a number, oldest first. Items past their `expires_at` are left out:
/// DynamoDB deletes expired items lazily, so they count as gone.
pub async fn list(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    phone_number_id: &str,
) -> Result<Vec<Parked>, OpsError> {
    let now = chrono::Utc::now().timestamp();
    let mut pages = client
        .query()
        .table_name(table)
        .key_condition_expression("#pk = :pk")
        .expression_attribute_names("#pk", keys::PK)
        .expression_attribute_values(":pk", AttributeValue::S(keys::parked(phone_number_id)))
        .consistent_read(true)
        .into_paginator()
        .items()
        .send();
    let mut parked = Vec::new();
    while let Some(item) = pages.next().await {
        let item =
            item.map_err(|e| OpsError::aws(format!("DynamoDB Query on table {table}"), e))?;
        let expires_at = item
            .get(keys::EXPIRES_AT)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok());
        if expires_at.is_some_and(|at| at <= now) {
            continue;
        }
        let sk = item
            .get(keys::SK)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        let body = item
            .get(ENVELOPE)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        let envelope = Envelope::from_json(&body).map_err(|e| e.to_string());
        parked.push(Parked { sk, body, envelope });
    }
    Ok(parked)
}

/// A short description of what an envelope carries (no message text: it is customer data).
fn describe(envelope: &Envelope) -> String {
    match &envelope.payload {
        Payload::Message(m) => format!("message {}", m.message_type),
        Payload::Status(s) => format!("status {}", s.status),
        Payload::Echo(_) => "business app echo".into(),
        Payload::Desk(d) => format!("desk event {}", d.id),
        Payload::Timer(t) => format!("timer {}", t.id),
        Payload::Erase(e) => format!("erasure {}", e.id),
        Payload::Send(s) => format!("api send {}", s.id),
        Payload::Preference(p) => format!("marketing preference {}", p.value),
        Payload::WabaSignal(w) => format!("{} {}", w.signal.field(), w.signal.event()),
    }
}

/// `ops parked list`: `<sk>  <group id>  <idempotency key>  <kind>`, oldest first.
pub async fn list_command(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    phone_number_id: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), OpsError> {
    let parked = list(client, table, phone_number_id).await?;
    for item in &parked {
        match &item.envelope {
            Ok(envelope) => writeln!(
                out,
                "{}\t{}\t{}\t{}",
                item.sk,
                envelope.group_key(),
                envelope.idempotency_key(),
                describe(envelope)
            )?,
            Err(error) => writeln!(out, "{}\t-\t-\tunreadable: {error}", item.sk)?,
        }
    }
    writeln!(
        err,
        "{} parked message(s) for {phone_number_id}",
        parked.len()
    )?;
    Ok(())
}

/// `ops parked replay`: refuses while the tenant does not exist or is disabled (the worker
/// would park the messages again). Unreadable envelopes stay parked and make the command fail.
pub async fn replay(
    dynamodb: &aws_sdk_dynamodb::Client,
    sqs: &aws_sdk_sqs::Client,
    table: &str,
    queue_url: &str,
    phone_number_id: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), OpsError> {
    let db = shared::platform::Db::new(dynamodb.clone(), table);
    tenants::check_replayable(&db, phone_number_id).await?;
    let parked = list(dynamodb, table, phone_number_id).await?;
    let mut replayed = 0;
    let mut left = 0;
    for item in &parked {
        let Some((group_id, dedup_id)) = item.ids() else {
            left += 1;
            let error = item.envelope.as_ref().err().cloned().unwrap_or_default();
            writeln!(err, "left {} parked: unreadable envelope: {error}", item.sk)?;
            continue;
        };
        let sent = async {
            sqs.send_message()
                .queue_url(queue_url)
                .message_body(&item.body)
                .message_group_id(group_id)
                .message_deduplication_id(dedup_id)
                .send()
                .await
                .map_err(|e| OpsError::aws("SQS SendMessage", e))?;
            dynamodb
                .delete_item()
                .table_name(table)
                .key(keys::PK, AttributeValue::S(keys::parked(phone_number_id)))
                .key(keys::SK, AttributeValue::S(item.sk.clone()))
                .send()
                .await
                .map_err(|e| OpsError::aws(format!("DynamoDB DeleteItem on table {table}"), e))
        };
        if let Err(error) = sent.await {
            writeln!(
                err,
                "replayed {replayed} parked message(s) before failing at {}",
                item.sk
            )?;
            return Err(error);
        }
        replayed += 1;
    }
    writeln!(
        out,
        "replayed {replayed} parked message(s) of {phone_number_id} to {queue_url}"
    )?;
    if left > 0 {
        return Err(OpsError::Incomplete(format!(
            "{left} parked message(s) could not be replayed and were left in the table"
        )));
    }
    Ok(())
}
