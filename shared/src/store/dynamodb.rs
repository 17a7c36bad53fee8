//! DynamoDB adapter of the [`Store`] port, on the single-table layout of [`crate::store::keys`].

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use crate::desk::{DeskLink, SlaLevel, Ticket};
use crate::engine::{Effect, Session};
use crate::envelope::{Envelope, StatusUpdate};
use crate::store::keys::{self, EXPIRES_AT, PK, SK};
use crate::store::{
    Claim, Commit, LogEntry, PendingEffect, ScheduleStore, StatusChange, Store, StoreError,
    StoredSession, Waiting, status_rank,
};
use crate::tenant::Tenant;

/// Idempotency records outlive Meta's 7 days of retries.
const IDEMPOTENCY_DAYS: i64 = 8;

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

type Item = HashMap<String, AttributeValue>;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

fn unavailable<E: std::error::Error + 'static, R: std::fmt::Debug>(
    error: SdkError<E, R>,
) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(error).to_string())
}

fn text<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        _ => Err(StoreError::Corrupt(format!(
            "attribute `{name}` missing or not a string"
        ))),
    }
}

fn number(item: &Item, name: &str) -> Result<i64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("attribute `{name}` is not a number"))),
        _ => Err(StoreError::Corrupt(format!(
            "attribute `{name}` missing or not a number"
        ))),
    }
}

fn json<T: serde::de::DeserializeOwned>(item: &Item, name: &str) -> Result<T, StoreError> {
    serde_json::from_str(text(item, name)?)
        .map_err(|e| StoreError::Corrupt(format!("`{name}`: {e}")))
}

/// A conditional write's outcome: whether it was applied; a failed condition is an answer,
/// not an error.
fn applied<O, E: std::error::Error + 'static, R: std::fmt::Debug>(
    result: Result<O, SdkError<E, R>>,
) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(error) if is_conditional_failure(&error) => Ok(false),
        Err(error) => Err(unavailable(error)),
    }
}

fn is_conditional_failure<E: std::fmt::Debug, R>(error: &SdkError<E, R>) -> bool {
    // Conditional failures come back as ConditionalCheckFailedException, or as a cancelled
    // transaction whose reasons include ConditionalCheckFailed.
    let text = format!("{:?}", error.as_service_error());
    text.contains("ConditionalCheckFailed")
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn get(&self, key_item: Item) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_item))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output.item)
    }

    async fn put_item(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn delete_item(&self, key: Item) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Writes `item` unless one with its key exists; returns whether it wrote.
    async fn put_new(&self, item: Item) -> Result<bool, StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        applied(put)
    }

    fn log_item(&self, conversation: &str, entry: &LogEntry, expires_at: DateTime<Utc>) -> Item {
        let mut item = key(
            conversation.to_owned(),
            keys::message_log(entry.at.timestamp_millis(), &entry.wamid),
        );
        item.insert(
            "direction".into(),
            s(if entry.inbound { "in" } else { "out" }),
        );
        item.insert("type".into(), s(&entry.kind));
        item.insert("wamid".into(), s(&entry.wamid));
        if let Some(body) = &entry.text {
            item.insert("text".into(), s(body));
        }
        item.insert(EXPIRES_AT.into(), n(expires_at.timestamp()));
        item
    }
}

impl Store for DynamoStore {
    async fn claim(
        &self,
        key_text: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let mut item = key(keys::idempotency(key_text), keys::IDEM);
        item.insert("status".into(), s("in_progress"));
        item.insert("lease_until".into(), n(lease_until.timestamp_millis()));
        item.insert(
            EXPIRES_AT.into(),
            n((now + chrono::Duration::days(IDEMPOTENCY_DAYS)).timestamp()),
        );
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR (#status = :in_progress AND lease_until < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", s("in_progress"))
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(Claim::Fresh),
            Err(error) if is_conditional_failure(&error) => {
                let existing = self
                    .get(key(keys::idempotency(key_text), keys::IDEM))
                    .await?
                    .ok_or_else(|| StoreError::Unavailable("claim vanished".into()))?;
                Ok(match text(&existing, "status")? {
                    "completed" => Claim::Duplicate,
                    "applied" => Claim::Resume,
                    _ => Claim::Busy,
                })
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn release(&self, key_text: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::idempotency(key_text), keys::IDEM)))
            .condition_expression("#status = :in_progress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", s("in_progress"))
            .send()
            .await;
        applied(result).map(drop)
    }

    async fn complete(&self, key_text: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::idempotency(key_text), keys::IDEM)))
            .update_expression("SET #status = :completed REMOVE lease_until")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":completed", s("completed"))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn tenant(&self, phone_number_id: &str) -> Result<Option<Tenant>, StoreError> {
        match self
            .get(key(keys::tenant(phone_number_id), keys::CONFIG))
            .await?
        {
            Some(item) => Ok(Some(json(&item, "config")?)),
            None => Ok(None),
        }
    }

    async fn session(
        &self,
        phone_number_id: &str,
        customer: &str,
    ) -> Result<Option<StoredSession>, StoreError> {
        let conversation = keys::conversation(phone_number_id, customer);
        match self.get(key(conversation, keys::SESSION)).await? {
            Some(item) => Ok(Some(StoredSession {
                session: json(&item, "session")?,
                version: number(&item, "version")? as u64,
            })),
            None => Ok(None),
        }
    }

    async fn commit(&self, commit: Commit<'_>) -> Result<(), StoreError> {
        let conversation = keys::conversation(commit.phone_number_id, commit.customer);
        let mut writes = Vec::new();
        if let Some(session) = commit.session {
            writes.push(session_put(
                &self.table,
                &conversation,
                session,
                commit.expected_version,
            )?);
        }
        for (sequence, effect) in commit.effects.iter().enumerate() {
            let mut item = key(conversation.clone(), keys::outbox(commit.key, sequence));
            item.insert(
                "effect".into(),
                s(serde_json::to_string(effect).expect("effects serialise")),
            );
            item.insert("status".into(), s("pending"));
            item.insert(EXPIRES_AT.into(), n(commit.expires_at.timestamp()));
            writes.push(put(&self.table, item, None)?);
        }
        writes.push(put(
            &self.table,
            self.log_item(&conversation, &commit.inbound, commit.expires_at),
            None,
        )?);
        if let (true, Some(session)) = (commit.ai_used, commit.session)
            && let Some(ai) = &session.ai
        {
            let month = session.started_at.format("%Y-%m").to_string();
            let mut item = key(
                keys::ai_usage(commit.phone_number_id, &month),
                keys::ai_usage_entry(&session.started_at, commit.customer),
            );
            item.insert("requests".into(), n(ai.usage.requests));
            item.insert("input_tokens".into(), n(ai.usage.input_tokens));
            item.insert("output_tokens".into(), n(ai.usage.output_tokens));
            for (name, tokens) in [
                (
                    "cache_creation_input_tokens",
                    ai.usage.cache_creation_input_tokens,
                ),
                ("cache_read_input_tokens", ai.usage.cache_read_input_tokens),
            ] {
                if tokens > 0 {
                    item.insert(name.into(), n(tokens));
                }
            }
            item.insert("answers".into(), n(ai.answers));
            item.insert(EXPIRES_AT.into(), n(commit.expires_at.timestamp()));
            writes.push(put(&self.table, item, None)?);
        }
        let claim = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(keys::idempotency(commit.key), keys::IDEM)))
            .update_expression("SET #status = :applied")
            .condition_expression("#status = :in_progress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":applied", s("applied"))
            .expression_attribute_values(":in_progress", s("in_progress"))
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        writes.push(TransactWriteItem::builder().update(claim).build());

        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if is_conditional_failure(&error) => Err(StoreError::Conflict {
                expected: commit.expected_version,
            }),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn pending_effects(
        &self,
        phone_number_id: &str,
        customer: &str,
        key_text: &str,
    ) -> Result<Vec<PendingEffect>, StoreError> {
        let prefix = keys::outbox_prefix(key_text);
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(keys::conversation(phone_number_id, customer)))
            .expression_attribute_values(":prefix", s(prefix.clone()))
            .send()
            .await
            .map_err(unavailable)?;
        let mut pending = Vec::new();
        for item in output.items() {
            if text(item, "status")? != "pending" {
                continue;
            }
            let sequence = text(item, SK)?[prefix.len()..]
                .parse()
                .map_err(|_| StoreError::Corrupt("outbox sequence".into()))?;
            pending.push(PendingEffect {
                sequence,
                effect: json::<Effect>(item, "effect")?,
            });
        }
        pending.sort_by_key(|p| p.sequence);
        Ok(pending)
    }

    async fn effect_done(
        &self,
        phone_number_id: &str,
        customer: &str,
        key_text: &str,
        sequence: usize,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::conversation(phone_number_id, customer),
                keys::outbox(key_text, sequence),
            )))
            .update_expression("SET #status = :done")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":done", s("done"))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn record_outbound(
        &self,
        phone_number_id: &str,
        customer: &str,
        entry: LogEntry,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let conversation = keys::conversation(phone_number_id, customer);
        let mut delivery = key(keys::outbound(&entry.wamid), keys::STATUS);
        delivery.insert("phone_number_id".into(), s(phone_number_id));
        delivery.insert("customer".into(), s(customer));
        delivery.insert("status".into(), s("accepted"));
        delivery.insert("rank".into(), n(0));
        delivery.insert(EXPIRES_AT.into(), n(expires_at.timestamp()));
        let log = self.log_item(&conversation, &entry, expires_at);
        // Two plain writes, not a transaction (which bills double): each is idempotent.
        self.put_item(log).await?;
        // A status may have arrived before this record: never move it back.
        self.put_new(delivery).await.map(drop)
    }

    async fn update_status(
        &self,
        status: &StatusUpdate,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<StatusChange, StoreError> {
        let rank = status_rank(&status.status);
        let codes = status
            .error_codes
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::outbound(&status.wamid), keys::STATUS)))
            .update_expression(
                "SET #status = :status, #rank = :rank, updated_at = :now, error_codes = :codes, \
                 phone_number_id = if_not_exists(phone_number_id, :pn), \
                 customer = if_not_exists(customer, :customer), expires_at = :expires",
            )
            .condition_expression("attribute_not_exists(#rank) OR #rank < :rank")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#rank", "rank")
            .expression_attribute_values(":status", s(&status.status))
            .expression_attribute_values(":rank", n(rank))
            .expression_attribute_values(":now", s(now.to_rfc3339()))
            .expression_attribute_values(":codes", s(codes))
            .expression_attribute_values(":pn", s(&status.phone_number_id))
            .expression_attribute_values(":customer", s(&status.customer))
            .expression_attribute_values(":expires", n(expires_at.timestamp()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedOld)
            .send()
            .await;
        match result {
            Ok(output) => Ok(StatusChange::Applied {
                previous: output
                    .attributes
                    .as_ref()
                    .and_then(|old| text(old, "status").ok().map(str::to_owned)),
            }),
            Err(error) if is_conditional_failure(&error) => Ok(StatusChange::Ignored),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn enqueue_human(
        &self,
        phone_number_id: &str,
        customer: &str,
        ticket: &Ticket,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut item = key(
            keys::human_queue(phone_number_id, &ticket.department),
            keys::queue_entry(ticket, customer),
        );
        item.insert("customer".into(), s(customer));
        item.insert(
            "reason".into(),
            s(serde_json::to_value(ticket.reason)
                .expect("reasons serialise")
                .as_str()
                .unwrap_or_default()),
        );
        item.insert("priority".into(), s(ticket.priority.as_str()));
        item.insert("entered_at".into(), s(ticket.entered_at.to_rfc3339()));
        if let Some(level) = ticket.alerted {
            item.insert("alerted".into(), s(level.as_str()));
        }
        item.insert(EXPIRES_AT.into(), n(expires_at.timestamp()));
        // A retried effect must not reset what the entry learnt since (told position).
        self.put_new(item).await.map(drop)
    }

    async fn leave_queue(
        &self,
        phone_number_id: &str,
        customer: &str,
        ticket: &Ticket,
        taken_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::human_queue(phone_number_id, &ticket.department),
                keys::queue_entry(ticket, customer),
            )))
            .send()
            .await
            .map_err(unavailable)?;
        if let Some(taken_at) = taken_at {
            let mut item = key(
                keys::taken(phone_number_id, &ticket.department),
                keys::taken_entry(taken_at.timestamp_millis(), customer),
            );
            item.insert("taken_at".into(), s(taken_at.to_rfc3339()));
            let kept = taken_at + crate::desk::ESTIMATE_WINDOW;
            item.insert(EXPIRES_AT.into(), n(kept.timestamp()));
            self.put_item(item).await?;
        }
        Ok(())
    }

    async fn queue_position(
        &self,
        phone_number_id: &str,
        customer: &str,
        ticket: &Ticket,
    ) -> Result<u32, StoreError> {
        // Counts the entries ahead (smaller keys); a count reads them but returns no items.
        let mut ahead = 0;
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk < :mine")
                .filter_expression("attribute_not_exists(expires_at) OR expires_at > :now")
                .expression_attribute_values(
                    ":pk",
                    s(keys::human_queue(phone_number_id, &ticket.department)),
                )
                .expression_attribute_values(":mine", s(keys::queue_entry(ticket, customer)))
                .expression_attribute_values(":now", n(Utc::now().timestamp()))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            ahead += output.count as u32;
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(ahead + 1);
            }
        }
    }

    async fn position_told(
        &self,
        phone_number_id: &str,
        customer: &str,
        ticket: &Ticket,
        position: u32,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::human_queue(phone_number_id, &ticket.department),
                keys::queue_entry(ticket, customer),
            )))
            .update_expression("SET told_position = :position")
            // Gone already (taken meanwhile), or told this place or a better one.
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(told_position) OR told_position > :position)",
            )
            .expression_attribute_values(":position", n(position))
            .send()
            .await;
        applied(result)
    }

    async fn mark_alerted(
        &self,
        phone_number_id: &str,
        customer: &str,
        ticket: &Ticket,
    ) -> Result<(), StoreError> {
        let Some(level) = ticket.alerted else {
            return Ok(());
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::human_queue(phone_number_id, &ticket.department),
                keys::queue_entry(ticket, customer),
            )))
            .update_expression("SET alerted = :level")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":level", s(level.as_str()))
            .send()
            .await;
        applied(result).map(drop)
    }

    async fn await_opening(
        &self,
        phone_number_id: &str,
        customer: &str,
        until: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut item = key(keys::opening(phone_number_id), customer);
        item.insert("until".into(), s(until.to_rfc3339()));
        item.insert(EXPIRES_AT.into(), n(expires_at.timestamp()));
        self.put_item(item).await
    }

    async fn opening_done(&self, phone_number_id: &str, customer: &str) -> Result<(), StoreError> {
        self.delete_item(key(keys::opening(phone_number_id), customer))
            .await
    }

    async fn recent_takes(
        &self,
        phone_number_id: &str,
        department: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk >= :since")
            .expression_attribute_values(":pk", s(keys::taken(phone_number_id, department)))
            .expression_attribute_values(
                ":since",
                s(keys::taken_entry(since.timestamp_millis(), "")),
            )
            .projection_expression("taken_at")
            // The newest 20 are enough for a pace.
            .scan_index_forward(false)
            .limit(20)
            .send()
            .await
            .map_err(unavailable)?;
        output
            .items()
            .iter()
            .map(|item| {
                text(item, "taken_at")?
                    .parse()
                    .map_err(|_| StoreError::Corrupt("`taken_at` is not a time".into()))
            })
            .collect()
    }

    async fn desk_link(
        &self,
        phone_number_id: &str,
        customer: &str,
    ) -> Result<Option<DeskLink>, StoreError> {
        let item = self
            .get(key(
                keys::conversation(phone_number_id, customer),
                keys::DESK,
            ))
            .await?;
        item.map(|item| json(&item, "link")).transpose()
    }

    async fn save_desk_link(
        &self,
        phone_number_id: &str,
        customer: &str,
        link: &DeskLink,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut item = key(keys::conversation(phone_number_id, customer), keys::DESK);
        item.insert(
            "link".into(),
            s(serde_json::to_string(link).expect("links serialise")),
        );
        item.insert("conversation_id".into(), n(link.conversation_id));
        item.insert(EXPIRES_AT.into(), n(expires_at.timestamp()));
        self.put_item(item).await
    }

    async fn forget_desk_link(
        &self,
        phone_number_id: &str,
        customer: &str,
    ) -> Result<(), StoreError> {
        self.delete_item(key(
            keys::conversation(phone_number_id, customer),
            keys::DESK,
        ))
        .await
    }

    async fn transcript(
        &self,
        phone_number_id: &str,
        customer: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<LogEntry>, StoreError> {
        let mut entries = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("pk = :pk AND sk BETWEEN :since AND :end")
                .expression_attribute_values(
                    ":pk",
                    s(keys::conversation(phone_number_id, customer)),
                )
                .expression_attribute_values(
                    ":since",
                    s(keys::message_log(since.timestamp_millis(), "")),
                )
                .expression_attribute_values(":end", s(format!("{}~", keys::MESSAGE_LOG_PREFIX)))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            for item in output.items() {
                entries.push(log_entry(item)?);
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(entries);
            }
        }
    }

    async fn park(
        &self,
        envelope: &Envelope,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (phone_number_id, _) = envelope.conversation();
        let mut item = key(
            keys::parked(phone_number_id),
            keys::parked_entry(now.timestamp_millis(), &envelope.idempotency_key()),
        );
        item.insert("envelope".into(), s(envelope.to_json()));
        item.insert(EXPIRES_AT.into(), n(expires_at.timestamp()));
        self.put_item(item).await
    }
}

impl DynamoStore {
    /// Every item of a partition, in key order, paginated; and the read capacity consumed.
    async fn partition(
        &self,
        pk: String,
        attributes: &[&str],
    ) -> Result<(Vec<Item>, f64), StoreError> {
        // Placeholders: any attribute name may be a reserved word.
        let placeholders: Vec<String> = (0..attributes.len()).map(|i| format!("#a{i}")).collect();
        let names: HashMap<String, String> = placeholders
            .iter()
            .zip(attributes)
            .map(|(placeholder, name)| (placeholder.clone(), (*name).to_owned()))
            .collect();
        let mut items = Vec::new();
        let mut units = 0.0;
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk.clone()))
                .projection_expression(placeholders.join(", "))
                .set_expression_attribute_names(Some(names.clone()))
                .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            units += output
                .consumed_capacity
                .as_ref()
                .and_then(|c| c.capacity_units)
                .unwrap_or_default();
            items.extend(output.items.unwrap_or_default());
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok((items, units));
            }
        }
    }
}

impl ScheduleStore for DynamoStore {
    async fn tenant_ids(&self) -> Result<Vec<String>, StoreError> {
        let (items, _) = self.partition(keys::TENANTS.into(), &[SK]).await?;
        items
            .iter()
            .map(|i| text(i, SK).map(str::to_owned))
            .collect()
    }

    async fn tenant(&self, phone_number_id: &str) -> Result<Option<Tenant>, StoreError> {
        Store::tenant(self, phone_number_id).await
    }

    async fn waiting(
        &self,
        phone_number_id: &str,
        department: &str,
    ) -> Result<(Vec<Waiting>, f64), StoreError> {
        let (items, units) = self
            .partition(
                keys::human_queue(phone_number_id, department),
                &[
                    "customer",
                    "priority",
                    "entered_at",
                    "told_position",
                    "alerted",
                ],
            )
            .await?;
        let waiting = items
            .iter()
            .map(|item| {
                let corrupt = |what: &str| StoreError::Corrupt(format!("queue entry: {what}"));
                Ok(Waiting {
                    customer: text(item, "customer")?.to_owned(),
                    priority: serde_json::from_value(serde_json::Value::from(text(
                        item, "priority",
                    )?))
                    .map_err(|_| corrupt("priority"))?,
                    entered_at: text(item, "entered_at")?
                        .parse()
                        .map_err(|_| corrupt("entered_at"))?,
                    told_position: number(item, "told_position").ok().map(|p| p as u32),
                    alerted: match text(item, "alerted").ok() {
                        Some("warning") => Some(SlaLevel::Warning),
                        Some("breach") => Some(SlaLevel::Breach),
                        _ => None,
                    },
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((waiting, units))
    }

    async fn awaiting_opening(
        &self,
        phone_number_id: &str,
    ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        let (items, _) = self
            .partition(keys::opening(phone_number_id), &[SK, "until"])
            .await?;
        items
            .iter()
            .map(|item| {
                let until = text(item, "until")?
                    .parse()
                    .map_err(|_| StoreError::Corrupt("opening entry: until".into()))?;
                Ok((text(item, SK)?.to_owned(), until))
            })
            .collect()
    }
}

/// A message log item read back (the inverse of `log_item`).
fn log_entry(item: &Item) -> Result<LogEntry, StoreError> {
    let sort_key = text(item, SK)?;
    let millis = sort_key
        .get(keys::MESSAGE_LOG_PREFIX.len()..keys::MESSAGE_LOG_PREFIX.len() + 13)
        .and_then(|ms| ms.parse().ok())
        .and_then(DateTime::from_timestamp_millis)
        .ok_or_else(|| StoreError::Corrupt(format!("message log key `{sort_key}`")))?;
    Ok(LogEntry {
        at: millis,
        wamid: text(item, "wamid")?.to_owned(),
        inbound: text(item, "direction")? == "in",
        kind: text(item, "type")?.to_owned(),
        text: text(item, "text").ok().map(str::to_owned),
    })
}

fn put(table: &str, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .set_condition_expression(condition.map(str::to_owned))
        .build()
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn session_put(
    table: &str,
    conversation: &str,
    session: &Session,
    expected_version: Option<u64>,
) -> Result<TransactWriteItem, StoreError> {
    let mut item = key(conversation.to_owned(), keys::SESSION);
    item.insert(
        "session".into(),
        s(serde_json::to_string(session).expect("sessions serialise")),
    );
    item.insert("state".into(), s(session.state.business_name()));
    item.insert("version".into(), n(expected_version.map_or(1, |v| v + 1)));
    let builder = Put::builder().table_name(table).set_item(Some(item));
    let builder = match expected_version {
        None => builder.condition_expression("attribute_not_exists(pk)"),
        Some(version) => builder
            .condition_expression("version = :version")
            .expression_attribute_values(":version", n(version)),
    };
    let put = builder
        .build()
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    Ok(TransactWriteItem::builder().put(put).build())
}
