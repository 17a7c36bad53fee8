//! DynamoDB adapter of the [`Store`] port, on the single-table layout of [`crate::store::keys`].

pub mod customer;
mod replies;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem, Update,
};
use chrono::{DateTime, NaiveDate, Utc};

use crate::desk::{DeskLink, SlaLevel, Ticket};
use crate::engine::{Effect, Session};
use crate::envelope::{Envelope, StatusUpdate, WabaSignal};
use crate::report::Tally;
use crate::store::keys::{self, EXPIRES_AT, PK, SK};
use crate::store::{
    CampaignReply, Commit, ConversationStart, DayCount, DeskContactErased, Erasure, ErasureState,
    EventRecord, Loaded, LogEntry, Removed, ScheduleStore, StatusChange, Store, StoreError,
    StoredSession, SuppressionChange, Unsettled, WabaWrite, Waiting, status_rank,
};
use crate::support::retry::RetryPolicy;
use crate::tenant::Tenant;

/// A record rewritten from an earlier version's outbox is kept as long as those were.
const LEGACY_KEPT_DAYS: i64 = 8;
/// Batch reads DynamoDB leaves unprocessed (throttling) are asked again this many times.
const UNPROCESSED_ATTEMPTS: u32 = 4;
const MAX_UNPROCESSED_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

pub(crate) fn unavailable<E: std::error::Error + 'static, R: std::fmt::Debug>(
    error: SdkError<E, R>,
) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(error).to_string())
}

pub(crate) fn text<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        _ => Err(StoreError::Corrupt(format!(
            "attribute `{name}` missing or not a string"
        ))),
    }
}

pub(crate) fn number(item: &Item, name: &str) -> Result<i64, StoreError> {
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
pub(crate) fn applied<O, E: std::error::Error + 'static, R: std::fmt::Debug>(
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

    /// One id's entry on the tenant's suppression list (the platform API reads it).
    pub async fn suppression(
        &self,
        phone_number_id: &str,
        id: &str,
    ) -> Result<Option<crate::store::Suppressed>, StoreError> {
        let Some(item) = self
            .get(key(
                keys::suppression(phone_number_id),
                keys::customer_hash(phone_number_id, id),
            ))
            .await?
        else {
            return Ok(None);
        };
        let since = DateTime::from_timestamp(number(&item, "since")?, 0)
            .ok_or_else(|| StoreError::Corrupt("`since` is out of range".into()))?;
        let source = text(&item, "source")?;
        let source = crate::store::SuppressionSource::parse(source)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown suppression source {source:?}")))?;
        Ok(Some(crate::store::Suppressed { since, source }))
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
}

impl DynamoStore {
    /// A transaction; a failed condition is the event's [`StoreError::Conflict`].
    async fn transact(
        &self,
        writes: Vec<TransactWriteItem>,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if is_conditional_failure(&error) => Err(StoreError::Conflict {
                expected: expected_version,
            }),
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Raises the day's maxima to the event's where they are larger: one conditional
    /// update each (a maximum only grows, so doing it again changes nothing).
    async fn raise_maxima(
        &self,
        phone_number_id: &str,
        count: DayCount<'_>,
    ) -> Result<(), StoreError> {
        for (name, value) in count.tally.maxima() {
            if value == 0 {
                continue;
            }
            let update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(
                    keys::report(phone_number_id),
                    keys::report_day(count.day),
                )))
                .update_expression("SET #max = :value, #expires = :expires")
                .condition_expression("attribute_not_exists(#max) OR #max < :value")
                .expression_attribute_names("#max", name)
                .expression_attribute_names("#expires", EXPIRES_AT)
                .expression_attribute_values(":value", n(value))
                .expression_attribute_values(":expires", report_expires(count.day))
                .send()
                .await;
            applied(update)?;
        }
        Ok(())
    }

    /// Items by key (up to 100), in one round trip (`None` where absent), in `wanted`'s
    /// order; strongly consistent when asked (eventually: half the read units).
    async fn get_items(
        &self,
        wanted: &[Item],
        consistent: bool,
    ) -> Result<Vec<Option<Item>>, StoreError> {
        let read = BatchRead {
            consistent,
            attempts: UNPROCESSED_ATTEMPTS,
            max_wait: MAX_UNPROCESSED_WAIT,
        };
        let found = batch_get(&self.client, &self.table, wanted, read).await?;
        let same_key = |item: &Item, wanted: &Item| {
            item.get(PK) == wanted.get(PK) && item.get(SK) == wanted.get(SK)
        };
        Ok(wanted
            .iter()
            .map(|w| found.iter().find(|item| same_key(item, w)).cloned())
            .collect())
    }

    /// The record an earlier version kept for `key_text`: its idempotency item and outbox
    /// items. One with effects pending is rewritten as a record, so the outbox resumes.
    async fn legacy_record(
        &self,
        conversation: &str,
        key_text: &str,
    ) -> Result<Option<EventRecord>, StoreError> {
        let Some(claim) = self
            .get(key(keys::idempotency(key_text), keys::IDEM))
            .await?
        else {
            return Ok(None);
        };
        let completed = match text(&claim, "status")? {
            "completed" => true,
            "applied" => false,
            // Claimed, never committed: nothing happened.
            _ => return Ok(None),
        };
        let prefix = keys::outbox_prefix(key_text);
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(conversation))
            .expression_attribute_values(":prefix", s(prefix))
            .send()
            .await
            .map_err(unavailable)?;
        // Sort keys hold the sequence zero-padded: key order is outbox order.
        let mut effects = Vec::new();
        let mut done = 0;
        for item in output.items() {
            if text(item, "status")? == "done" && done == effects.len() {
                done += 1;
            }
            effects.push(json::<Effect>(item, "effect")?);
        }
        let done = if completed { effects.len() } else { done };
        let record = EventRecord {
            done,
            ..EventRecord::new(Utc::now(), "migrated", effects)
        };
        if !record.is_complete() {
            let expires = n((Utc::now() + chrono::Duration::days(LEGACY_KEPT_DAYS)).timestamp());
            let mut item = record_item(conversation, key_text, &record, &expires);
            // Its lines are in the earlier message log already.
            item.insert("migrated".into(), AttributeValue::Bool(true));
            self.put_new(item).await?;
        }
        Ok(Some(record))
    }
}

/// The item of an event's record.
fn record_item(
    conversation: &str,
    key_text: &str,
    record: &EventRecord,
    expires: &AttributeValue,
) -> Item {
    let mut item = key(conversation.to_owned(), keys::event(key_text));
    item.insert("at".into(), n(record.at.timestamp_millis()));
    item.insert("kind".into(), s(&record.kind));
    if record.inbound {
        item.insert("inbound".into(), AttributeValue::Bool(true));
    }
    if let Some(body) = &record.text {
        item.insert("text".into(), s(body));
    }
    item.insert(
        "effects".into(),
        s(serde_json::to_string(&record.effects).expect("effects serialise")),
    );
    item.insert("done".into(), n(record.done));
    if !record.sent.is_empty() {
        item.insert(
            "sent".into(),
            AttributeValue::L(record.sent.iter().map(s).collect()),
        );
    }
    if let Some(unsettled) = &record.unsettled {
        item.insert(UNSETTLED_SEQUENCE.into(), n(unsettled.sequence));
        item.insert(
            UNSETTLED_SINCE.into(),
            n(unsettled.since.timestamp_millis()),
        );
    }
    for (sequence, wamid) in &record.settled {
        item.insert(settled_attribute(*sequence), s(wamid));
    }
    for (sequence, code) in &record.failed {
        item.insert(failed_attribute(*sequence), failure_code(*code));
    }
    item.insert(EXPIRES_AT.into(), expires.clone());
    item
}

/// The record's send with an unknown outcome: its effect sequence and since when (ms).
const UNSETTLED_SEQUENCE: &str = "unsettled_sequence";
const UNSETTLED_SINCE: &str = "unsettled_since";
const SETTLED_PREFIX: &str = "settled_";

const FAILED_PREFIX: &str = "failed_";

/// The record's attribute holding Graph's error code for send `sequence` refused for good.
fn failed_attribute(sequence: usize) -> String {
    format!("{FAILED_PREFIX}{sequence}")
}

fn failure_code(code: Option<i64>) -> AttributeValue {
    code.map_or(AttributeValue::Null(true), n)
}

/// The record's attribute holding the wamid a status settled effect `sequence` with.
fn settled_attribute(sequence: usize) -> String {
    format!("{SETTLED_PREFIX}{sequence}")
}

/// An event's record read back (the inverse of `record_item`).
fn event_record(item: &Item) -> Result<EventRecord, StoreError> {
    let at = number(item, "at")?;
    Ok(EventRecord {
        at: DateTime::from_timestamp_millis(at)
            .ok_or_else(|| StoreError::Corrupt(format!("record time {at}")))?,
        kind: text(item, "kind")?.to_owned(),
        inbound: matches!(item.get("inbound"), Some(AttributeValue::Bool(true))),
        text: text(item, "text").ok().map(str::to_owned),
        effects: json(item, "effects")?,
        done: number(item, "done")? as usize,
        sent: match item.get("sent") {
            Some(AttributeValue::L(values)) => values
                .iter()
                .map(|v| {
                    v.as_s()
                        .cloned()
                        .map_err(|_| StoreError::Corrupt("sent".into()))
                })
                .collect::<Result<_, _>>()?,
            _ => Vec::new(),
        },
        unsettled: match item.get(UNSETTLED_SEQUENCE) {
            Some(_) => Some(Unsettled {
                sequence: number(item, UNSETTLED_SEQUENCE)? as usize,
                since: DateTime::from_timestamp_millis(number(item, UNSETTLED_SINCE)?)
                    .ok_or_else(|| StoreError::Corrupt(UNSETTLED_SINCE.into()))?,
            }),
            None => None,
        },
        settled: item
            .iter()
            .filter_map(|(name, value)| {
                let sequence = name.strip_prefix(SETTLED_PREFIX)?.parse().ok()?;
                Some((sequence, value.as_s().ok()?.clone()))
            })
            .collect(),
        failed: item
            .iter()
            .filter_map(|(name, value)| {
                let sequence = name.strip_prefix(FAILED_PREFIX)?.parse().ok()?;
                Some((
                    sequence,
                    value.as_n().ok().and_then(|code| code.parse().ok()),
                ))
            })
            .collect(),
    })
}

impl Store for DynamoStore {
    async fn tenant(&self, phone_number_id: &str) -> Result<Option<Tenant>, StoreError> {
        match self
            .get(key(keys::tenant(phone_number_id), keys::CONFIG))
            .await?
        {
            Some(item) => {
                let mut tenant: Tenant = json(&item, keys::TENANT_CONFIG)?;
                tenant.disabled = item
                    .get(keys::TENANT_DISABLED)
                    .is_some_and(|v| v.as_bool() == Ok(&true));
                if item.contains_key(keys::TENANT_HOOKS) {
                    tenant.hooks = json(&item, keys::TENANT_HOOKS)?;
                }
                Ok(Some(tenant))
            }
            None => Ok(None),
        }
    }

    async fn load(
        &self,
        phone_number_id: &str,
        customer: &str,
        key_text: &str,
    ) -> Result<Loaded, StoreError> {
        let conversation = keys::conversation(phone_number_id, customer);
        let record_key = key(conversation.clone(), keys::event(key_text));
        let session_key = key(conversation.clone(), keys::SESSION);
        let mut items = self.get_items(&[record_key, session_key], true).await?;
        let session_item = items.pop().flatten();
        let record_item = items.pop().flatten();
        let session = session_item
            .as_ref()
            .map(|item| {
                Ok::<_, StoreError>(StoredSession {
                    session: json(item, "session")?,
                    version: number(item, "version")? as u64,
                })
            })
            .transpose()?;
        let record = match record_item {
            Some(item) => Some(event_record(&item)?),
            // A session written before records moved into the conversation: the event may
            // have been handled then, under the earlier idempotency record.
            None if session_item.as_ref().is_some_and(|item| {
                number(item, "layout").ok() != Some(i64::from(keys::SESSION_LAYOUT))
            }) =>
            {
                self.legacy_record(&conversation, key_text).await?
            }
            None => None,
        };
        Ok(Loaded { record, session })
    }

    async fn commit(&self, commit: Commit<'_>) -> Result<(), StoreError> {
        let conversation = keys::conversation(commit.phone_number_id, commit.customer);
        let expires = n(commit.expires_at.timestamp());
        let record = record_item(&conversation, commit.key, commit.record, &expires);
        let new_record = "attribute_not_exists(pk)";
        let report = commit.report.filter(|count| !count.tally.is_empty());
        if let Some(count) = report {
            self.raise_maxima(commit.phone_number_id, count).await?;
        }
        let mut writes = vec![put(&self.table, record, Some(new_record))?];
        if let Some(count) = report {
            writes.push(report_update(&self.table, commit.phone_number_id, count)?);
        }
        if let Some(change) = commit.suppression {
            writes.extend(suppression_writes(
                &self.table,
                commit.phone_number_id,
                change,
            )?);
        }
        let Some(session) = commit.session else {
            if writes.len() > 1 {
                return self.transact(writes, commit.expected_version).await;
            }
            // One item: a conditional put costs half a transaction.
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(record_item(
                    &conversation,
                    commit.key,
                    commit.record,
                    &expires,
                )))
                .condition_expression(new_record)
                .send()
                .await;
            return match applied(put)? {
                true => Ok(()),
                false => Err(StoreError::Conflict {
                    expected: commit.expected_version,
                }),
            };
        };
        writes.push(session_put(
            &self.table,
            &conversation,
            session,
            commit.expected_version,
            &expires,
        )?);
        if let (true, Some(ai)) = (commit.ai_used, &session.ai) {
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
            item.insert(EXPIRES_AT.into(), expires.clone());
            writes.push(put(&self.table, item, None)?);
        }
        self.transact(writes, commit.expected_version).await
    }

    async fn effect_done(
        &self,
        phone_number_id: &str,
        customer: &str,
        key_text: &str,
        sequence: usize,
        sent: Option<&str>,
    ) -> Result<(), StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::conversation(phone_number_id, customer),
                keys::event(key_text),
            )))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":done", n(sequence + 1));
        // A send done is settled.
        let remove = format!(" REMOVE {UNSETTLED_SEQUENCE}, {UNSETTLED_SINCE}");
        let update = match sent {
            None => update.update_expression(format!("SET done = :done{remove}")),
            Some(wamid) => update
                .update_expression(format!(
                    "SET done = :done, sent = list_append(if_not_exists(sent, :none), :wamid){remove}"
                ))
                .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
                .expression_attribute_values(":wamid", AttributeValue::L(vec![s(wamid)])),
        };
        match applied(update.send().await)? {
            true => Ok(()),
            false => Err(StoreError::Corrupt(format!(
                "no record of event {key_text} to mark"
            ))),
        }
    }

    async fn send_failed(
        &self,
        phone_number_id: &str,
        customer: &str,
        key_text: &str,
        sequence: usize,
        code: Option<i64>,
    ) -> Result<(), StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::conversation(phone_number_id, customer),
                keys::event(key_text),
            )))
            .condition_expression("attribute_exists(pk)")
            .update_expression(format!(
                "SET done = :done, #failed = :code REMOVE {UNSETTLED_SEQUENCE}, {UNSETTLED_SINCE}"
            ))
            .expression_attribute_names("#failed", failed_attribute(sequence))
            .expression_attribute_values(":done", n(sequence + 1))
            .expression_attribute_values(":code", failure_code(code));
        match applied(update.send().await)? {
            true => Ok(()),
            false => Err(StoreError::Corrupt(format!(
                "no record of event {key_text} to mark"
            ))),
        }
    }

    async fn event_record(
        &self,
        phone_number_id: &str,
        customer: &str,
        key_text: &str,
    ) -> Result<Option<EventRecord>, StoreError> {
        // Eventually consistent (half a read unit): an older copy shows fewer effects done,
        // which at worst costs a `settle` whose condition then fails.
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::conversation(phone_number_id, customer),
                keys::event(key_text),
            )))
            .send()
            .await
            .map_err(unavailable)?;
        output.item.as_ref().map(event_record).transpose()
    }

    async fn mark_unsettled(
        &self,
        phone_number_id: &str,
        customer: &str,
        key_text: &str,
        sequence: usize,
        since: Option<DateTime<Utc>>,
    ) -> Result<Option<String>, StoreError> {
        let record_key = key(
            keys::conversation(phone_number_id, customer),
            keys::event(key_text),
        );
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(record_key.clone()))
            .condition_expression(
                "attribute_exists(pk) AND done = :sequence AND attribute_not_exists(#settled)",
            )
            .expression_attribute_names("#settled", settled_attribute(sequence))
            .expression_attribute_values(":sequence", n(sequence));
        let update = match since {
            Some(since) => update
                .update_expression(format!(
                    "SET {UNSETTLED_SEQUENCE} = :sequence, {UNSETTLED_SINCE} = :since"
                ))
                .expression_attribute_values(":since", n(since.timestamp_millis())),
            None => {
                update.update_expression(format!("REMOVE {UNSETTLED_SEQUENCE}, {UNSETTLED_SINCE}"))
            }
        };
        if applied(update.send().await)? {
            return Ok(None);
        }
        let record = self.get(record_key).await?;
        match record.as_ref().map(event_record).transpose()? {
            Some(record) if record.settled.contains_key(&sequence) => {
                Ok(record.settled.get(&sequence).cloned())
            }
            _ => Err(StoreError::Conflict { expected: None }),
        }
    }

    async fn settle(
        &self,
        phone_number_id: &str,
        customer: &str,
        key_text: &str,
        sequence: usize,
        wamid: &str,
    ) -> Result<(), StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::conversation(phone_number_id, customer),
                keys::event(key_text),
            )))
            .update_expression("SET #settled = :wamid")
            .condition_expression("attribute_exists(pk) AND done <= :sequence")
            .expression_attribute_names("#settled", settled_attribute(sequence))
            .expression_attribute_values(":wamid", s(wamid))
            .expression_attribute_values(":sequence", n(sequence));
        // Done already: nothing left to settle.
        applied(update.send().await).map(|_| ())
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
        // Records (`EVT#`) and the earlier message log (`MSG#`) sort next to each other.
        let mut entries = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("pk = :pk AND sk BETWEEN :first AND :last")
                .expression_attribute_values(
                    ":pk",
                    s(keys::conversation(phone_number_id, customer)),
                )
                .expression_attribute_values(":first", s(keys::EVENT_PREFIX))
                .expression_attribute_values(":last", s(format!("{}~", keys::MESSAGE_LOG_PREFIX)))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            for item in output.items() {
                let sort_key = text(item, SK)?;
                if let Some(event_key) = sort_key.strip_prefix(keys::EVENT_PREFIX) {
                    if !item.contains_key("migrated") {
                        entries.extend(event_record(item)?.log_entries(event_key));
                    }
                } else {
                    entries.push(log_entry(item)?);
                }
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        // Record times are kept to the millisecond.
        let since = DateTime::from_timestamp_millis(since.timestamp_millis()).unwrap_or(since);
        entries.retain(|entry| entry.at >= since);
        // Stable: an event's lines keep their order.
        entries.sort_by_key(|entry| entry.at);
        Ok(entries)
    }

    async fn suppressed(&self, phone_number_id: &str, ids: &[String]) -> Result<bool, StoreError> {
        for id in ids {
            let output = self
                .client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(key(
                    keys::suppression(phone_number_id),
                    keys::customer_hash(phone_number_id, id),
                )))
                .projection_expression("pk")
                .consistent_read(true)
                .send()
                .await
                .map_err(unavailable)?;
            if output.item.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn change_suppression(
        &self,
        phone_number_id: &str,
        change: &SuppressionChange,
    ) -> Result<(), StoreError> {
        for id in change.ids() {
            let entry = key(
                keys::suppression(phone_number_id),
                keys::customer_hash(phone_number_id, id),
            );
            match change {
                SuppressionChange::Suppress { source, since, .. } => {
                    self.put_item(suppression_item(entry, *source, *since))
                        .await?
                }
                SuppressionChange::Allow { .. } => self.delete_item(entry).await?,
            }
        }
        Ok(())
    }

    async fn record_waba_signal(&self, signal: &WabaSignal) -> Result<bool, StoreError> {
        let write = WabaWrite::of(signal);
        let mut sets = vec!["#at = :at".to_owned()];
        let mut removes = Vec::new();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::waba(&signal.waba_id), write.sk)))
            .condition_expression("attribute_not_exists(#at) OR #at <= :at")
            .expression_attribute_names("#at", write.at_attribute)
            .expression_attribute_values(":at", n(write.at));
        for (index, (name, value)) in write.attributes.into_iter().enumerate() {
            update = update.expression_attribute_names(format!("#a{index}"), name);
            match value {
                Some(value) => {
                    sets.push(format!("#a{index} = :a{index}"));
                    update = update.expression_attribute_values(format!(":a{index}"), s(value));
                }
                None => removes.push(format!("#a{index}")),
            }
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        applied(update.update_expression(expression).send().await)
    }

    async fn park(
        &self,
        envelope: &Envelope,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Some((phone_number_id, _)) = envelope.conversation() else {
            return Err(StoreError::Corrupt(
                "an account signal belongs to no tenant's number: nothing to park it for".into(),
            ));
        };
        let mut item = key(
            keys::parked(phone_number_id),
            keys::parked_entry(now.timestamp_millis(), &envelope.idempotency_key()),
        );
        item.insert("envelope".into(), s(envelope.to_json()));
        item.insert(EXPIRES_AT.into(), n(expires_at.timestamp()));
        self.put_item(item).await
    }

    async fn report_days(
        &self,
        phone_number_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, Tally)>, StoreError> {
        // Eventually consistent: half the read units, and a report may be a moment old.
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(keys::report(phone_number_id)))
            .expression_attribute_values(":from", s(keys::report_day(from)))
            .expression_attribute_values(":to", s(keys::report_day(to)))
            .into_paginator()
            .items()
            .send();
        let mut days = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(unavailable)?;
            let day = text(&item, SK)?;
            let day = day
                .strip_prefix("DAY#")
                .and_then(|day| NaiveDate::parse_from_str(day, "%Y-%m-%d").ok())
                .ok_or_else(|| StoreError::Corrupt(format!("report day `{day}`")))?;
            let counters = item.iter().filter_map(|(name, value)| {
                let value = value.as_n().ok()?.parse::<u64>().ok()?;
                Some((name.as_str(), value))
            });
            days.push((day, Tally::from_attributes(counters)));
        }
        Ok(days)
    }

    async fn erased(
        &self,
        phone_number_id: &str,
        key_text: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.tombstoned(phone_number_id, key_text, now).await
    }

    async fn conversation_start(
        &self,
        phone_number_id: &str,
        key: Option<&str>,
        customers: &[String],
        now: DateTime<Utc>,
    ) -> Result<ConversationStart, StoreError> {
        self.read_conversation_start(phone_number_id, key, customers, now)
            .await
    }

    async fn campaign_replied(
        &self,
        phone_number_id: &str,
        reply: &CampaignReply,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.mark_replied(phone_number_id, reply, now).await
    }

    async fn campaign_opted_out(
        &self,
        phone_number_id: &str,
        customers: &[String],
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        self.mark_opted_out(phone_number_id, customers, now).await
    }

    async fn forget_delivery(&self, wamid: &str) -> Result<(), StoreError> {
        self.delete_item(key(keys::outbound(wamid), keys::STATUS))
            .await
    }

    async fn erasure(
        &self,
        phone_number_id: &str,
        id: &str,
    ) -> Result<Option<ErasureState>, StoreError> {
        self.read_erasure(phone_number_id, id).await
    }

    async fn erase(&self, erasure: Erasure<'_>, now: DateTime<Utc>) -> Result<Removed, StoreError> {
        self.erase_customer(erasure, now).await
    }

    async fn erasure_done(
        &self,
        erasure: Erasure<'_>,
        desk_contact: DeskContactErased,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.finish_erasure(erasure, desk_contact, now).await
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

/// When a report day expires: [`keys::REPORT_KEPT_DAYS`] after the day.
fn report_expires(day: NaiveDate) -> AttributeValue {
    let kept = day + chrono::Duration::days(keys::REPORT_KEPT_DAYS);
    n(kept.and_time(chrono::NaiveTime::MIN).and_utc().timestamp())
}

/// The day's counters, added to (`ADD` creates the item and its attributes at zero).
fn report_update(
    table: &str,
    phone_number_id: &str,
    count: DayCount<'_>,
) -> Result<TransactWriteItem, StoreError> {
    let mut names = HashMap::from([("#expires".to_owned(), EXPIRES_AT.to_owned())]);
    let mut values = HashMap::from([(":expires".to_owned(), report_expires(count.day))]);
    let mut adds = Vec::new();
    for (index, (name, value)) in count
        .tally
        .counters()
        .into_iter()
        .filter(|(_, value)| *value > 0)
        .enumerate()
    {
        adds.push(format!("#c{index} :c{index}"));
        names.insert(format!("#c{index}"), name.to_owned());
        values.insert(format!(":c{index}"), n(value));
    }
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(key(
            keys::report(phone_number_id),
            keys::report_day(count.day),
        )))
        .update_expression(format!("ADD {} SET #expires = :expires", adds.join(", ")))
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .build()
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// The suppression list's entries of a change, one per id: puts or deletes.
fn suppression_writes(
    table: &str,
    phone_number_id: &str,
    change: &SuppressionChange,
) -> Result<Vec<TransactWriteItem>, StoreError> {
    change
        .ids()
        .iter()
        .map(|id| {
            let entry = key(
                keys::suppression(phone_number_id),
                keys::customer_hash(phone_number_id, id),
            );
            match change {
                SuppressionChange::Suppress { source, since, .. } => {
                    put(table, suppression_item(entry, *source, *since), None)
                }
                SuppressionChange::Allow { .. } => {
                    let delete = Delete::builder()
                        .table_name(table)
                        .set_key(Some(entry))
                        .build()
                        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                    Ok(TransactWriteItem::builder().delete(delete).build())
                }
            }
        })
        .collect()
}

/// No `expires_at`: the entry holds only a hash and must outlive the customer's data.
/// How a [`batch_get`] reads and how long it insists on what DynamoDB left unprocessed.
#[derive(Debug, Clone, Copy)]
pub struct BatchRead {
    pub consistent: bool,
    pub attempts: u32,
    pub max_wait: std::time::Duration,
}

/// Items by key, in calls of at most 100 keys, asking again with backoff for what DynamoDB
/// left unprocessed (throttled) up to `read.attempts` times; absent items are not returned.
pub async fn batch_get(
    client: &Client,
    table: &str,
    keys: &[Item],
    read: BatchRead,
) -> Result<Vec<Item>, StoreError> {
    const MAX_KEYS: usize = 100;
    let mut found = Vec::new();
    for chunk in keys.chunks(MAX_KEYS) {
        let mut request = KeysAndAttributes::builder()
            .set_keys(Some(chunk.to_vec()))
            .consistent_read(read.consistent)
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let mut attempt = 0;
        loop {
            let output = client
                .batch_get_item()
                .request_items(table, request)
                .send()
                .await
                .map_err(unavailable)?;
            found.extend(
                output
                    .responses
                    .and_then(|mut tables| tables.remove(table))
                    .unwrap_or_default(),
            );
            match output
                .unprocessed_keys
                .and_then(|mut tables| tables.remove(table))
            {
                Some(rest) if !rest.keys().is_empty() => {
                    attempt += 1;
                    if attempt > read.attempts {
                        return Err(StoreError::Unavailable(
                            "reads left unprocessed after retries (throttled)".into(),
                        ));
                    }
                    request = rest;
                    let wait = RetryPolicy::default().backoff(attempt, read.max_wait);
                    tokio::time::sleep(wait).await;
                }
                _ => break,
            }
        }
    }
    Ok(found)
}

/// A suppression-list entry: the key, since when and who said so.
pub fn suppression_item(
    mut entry: Item,
    source: crate::store::SuppressionSource,
    since: DateTime<Utc>,
) -> Item {
    entry.insert("since".into(), n(since.timestamp()));
    entry.insert("source".into(), s(source.as_str()));
    entry
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
    expires: &AttributeValue,
) -> Result<TransactWriteItem, StoreError> {
    let mut item = key(conversation.to_owned(), keys::SESSION);
    item.insert(
        "session".into(),
        s(serde_json::to_string(session).expect("sessions serialise")),
    );
    item.insert("state".into(), s(session.state.business_name()));
    // The conversation list's index: unchanged by most writes, so they cost it nothing.
    item.insert(
        keys::GSI1PK.into(),
        s(keys::conversations(&session.phone_number_id)),
    );
    // A number: the smallest sort key, and the session item stays under 1 KB longer.
    item.insert(
        keys::GSI1SK.into(),
        n(session.started_at.timestamp_millis()),
    );
    item.insert(keys::STAGE.into(), s(session.stage().as_str()));
    if let Some(department) = session.listed_department() {
        item.insert(keys::DEPARTMENT.into(), s(department));
    }
    item.insert("version".into(), n(expected_version.map_or(1, |v| v + 1)));
    item.insert("layout".into(), n(keys::SESSION_LAYOUT));
    item.insert(EXPIRES_AT.into(), expires.clone());
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
