//! A tenant's conversations and its human queue, read side: the list (index `gsi1`, see
//! [`crate::store::keys`]), one conversation with its transcript, and each department's
//! queue as the SLA sweep reads it.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Continuation, Db, Page, PlatformError};
use crate::engine::{Session, Stage};
use crate::store::dynamodb::DynamoStore;
use crate::store::{ScheduleStore, Store, StoreError, keys};
use crate::tenant::{Department, MIN_RETENTION_DAYS, Priority};

/// The largest page a list returns.
pub const MAX_LIMIT: usize = 100;
/// Index entries one query reads when a filter may drop most of them.
const FILTERED_BATCH: i32 = 200;
/// Queries one page may take before it returns what it has (with a cursor): a filter that
/// matches little cannot make one call read a whole tenant.
const MAX_QUERIES_PER_PAGE: usize = 5;

/// Which conversations to list: all conditions hold; `from` inclusive, `to` exclusive, on
/// the time the conversation started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub state: Option<Stage>,
    pub department: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// One conversation in a list, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationSummary {
    pub customer: String,
    pub started_at: DateTime<Utc>,
    pub state: Stage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
}

/// One conversation: where it stands and what was said, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub customer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_name: Option<String>,
    pub started_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    pub state: Stage,
    /// The business's name of the exact state (`MENU_PRINCIPAL`, `SUPORTE_PROBLEMA`...).
    pub state_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// While in a department's queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued: Option<Queued>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nps_score: Option<u8>,
    /// The campaign whose message this conversation answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    pub messages: Vec<Message>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    pub department: String,
    pub priority: Priority,
    pub entered_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the customer.
    Inbound,
    /// To the customer, or a business-side event (an agent's action, a timer).
    Outbound,
}

/// One line of the transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub at: DateTime<Utc>,
    pub direction: Direction,
    /// `text`, `interactive`, `image`... for messages; the event's kind otherwise.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The WhatsApp message id (the event's key for business-side events).
    pub id: String,
}

/// A department's queue, first to be served first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepartmentQueue {
    pub department: String,
    pub name: String,
    pub alert_after_minutes: u32,
    pub max_wait_minutes: u32,
    pub waiting: Vec<WaitingCustomer>,
    /// The longest wait in the queue now (whatever its place), in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_wait_seconds: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingCustomer {
    /// 1 for the next to be served.
    pub place: u32,
    pub customer: String,
    pub priority: Priority,
    pub entered_at: DateTime<Utc>,
    pub waited_seconds: i64,
    pub sla: SlaState,
}

/// Where a wait stands against the department's SLA (the thresholds the sweep alerts on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaState {
    Ok,
    Warning,
    Breach,
}

impl SlaState {
    pub fn of(department: &Department, waited: chrono::Duration) -> SlaState {
        if waited >= chrono::Duration::minutes(i64::from(department.sla.max_wait_minutes)) {
            SlaState::Breach
        } else if waited >= chrono::Duration::minutes(i64::from(department.sla.alert_after_minutes))
        {
            SlaState::Warning
        } else {
            SlaState::Ok
        }
    }
}

fn store_error(error: StoreError) -> PlatformError {
    PlatformError::Database(error.to_string())
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

type Item = HashMap<String, AttributeValue>;

fn text<'a>(item: &'a Item, name: &str) -> Result<&'a str, PlatformError> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        _ => Err(PlatformError::Database(format!(
            "a listed conversation lacks `{name}`"
        ))),
    }
}

/// The tenant's conversations, newest first, `limit` at most per page (fewer when some
/// are past their retention at `now`, or a filter matched little; `next` continues).
pub async fn list(
    db: &Db,
    tenant: &str,
    filter: &Filter,
    limit: usize,
    continuation: Option<&Continuation>,
    now: DateTime<Utc>,
) -> Result<Page<ConversationSummary>, PlatformError> {
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(PlatformError::invalid(
            "/query/limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    // Epoch milliseconds, as the index's sort key holds them; `to` is exclusive.
    let from = filter.from.map(|at| at.timestamp_millis());
    let to = filter.to.map(|at| at.timestamp_millis());
    if let (Some(from), Some(to)) = (from, to)
        && from >= to
    {
        return Err(PlatformError::invalid("/query/to", "must be after `from`"));
    }
    let partition = keys::conversations(tenant);
    let start = continuation.map(Continuation::start_key);
    if let Some(start) = &start {
        let in_range = |started: i64| {
            from.is_none_or(|from| started >= from) && to.is_none_or(|to| started < to)
        };
        let fits = matches!(start.get(keys::GSI1PK), Some(AttributeValue::S(pk)) if *pk == partition)
            && matches!(start.get(keys::GSI1SK), Some(AttributeValue::N(sk)) if sk.parse().is_ok_and(in_range))
            && matches!(start.get(keys::PK), Some(AttributeValue::S(pk)) if pk.starts_with(&keys::conversation(tenant, "")))
            && start.contains_key(keys::SK);
        if !fits {
            return Err(PlatformError::invalid(
                "/query/cursor",
                "does not continue this list (its filters changed?)",
            ));
        }
    }

    let mut condition = format!("{} = :pk", keys::GSI1PK);
    let mut values = HashMap::from([(":pk".to_owned(), s(&partition))]);
    let number = |value: i64| AttributeValue::N(value.to_string());
    match (from, to) {
        (Some(from), Some(to)) => {
            condition.push_str(&format!(" AND {} BETWEEN :from AND :last", keys::GSI1SK));
            values.insert(":from".into(), number(from));
            values.insert(":last".into(), number(to - 1));
        }
        (Some(from), None) => {
            condition.push_str(&format!(" AND {} >= :from", keys::GSI1SK));
            values.insert(":from".into(), number(from));
        }
        (None, Some(to)) => {
            condition.push_str(&format!(" AND {} < :to", keys::GSI1SK));
            values.insert(":to".into(), number(to));
        }
        (None, None) => {}
    }
    let mut names = HashMap::new();
    let mut filters = Vec::new();
    if let Some(stage) = filter.state {
        filters.push("#stage = :stage");
        names.insert("#stage".to_owned(), keys::STAGE.to_owned());
        values.insert(":stage".into(), s(stage.as_str()));
    }
    if let Some(department) = &filter.department {
        filters.push("#department = :department");
        names.insert("#department".to_owned(), keys::DEPARTMENT.to_owned());
        values.insert(":department".into(), s(department));
    }

    let mut items = Vec::new();
    let mut start = start;
    for _ in 0..MAX_QUERIES_PER_PAGE {
        // Unfiltered, every entry read is returned: read no more than the page needs.
        let batch = if filters.is_empty() {
            (limit - items.len()) as i32
        } else {
            FILTERED_BATCH
        };
        let output = db
            .client
            .query()
            .table_name(&db.table)
            .index_name(keys::CONVERSATIONS_INDEX)
            .key_condition_expression(&condition)
            .set_filter_expression((!filters.is_empty()).then(|| filters.join(" AND ")))
            .set_expression_attribute_names((!names.is_empty()).then(|| names.clone()))
            .set_expression_attribute_values(Some(values.clone()))
            .scan_index_forward(false)
            .limit(batch)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(PlatformError::database)?;
        let returned = output.items.unwrap_or_default();
        let count = returned.len();
        for (index, item) in returned.iter().enumerate() {
            items.push(summary(tenant, item)?);
            if items.len() == limit {
                // Stopped inside what this query returned: resume after this entry.
                let next = if index + 1 < count {
                    Continuation::from_last_evaluated(Some(&index_key(item)))
                } else {
                    Continuation::from_last_evaluated(output.last_evaluated_key.as_ref())
                };
                return live(db, tenant, items, next, now).await;
            }
        }
        start = output.last_evaluated_key;
        if start.is_none() {
            return live(db, tenant, items, None, now).await;
        }
    }
    let next = Continuation::from_last_evaluated(start.as_ref());
    live(db, tenant, items, next, now).await
}

/// The page without the sessions past their TTL that DynamoDB has not deleted yet (the
/// index does not hold `expires_at`, which every write moves). Only a conversation that
/// started longer ago than the shortest retention can be one: those sessions' `expires_at`
/// are read, in one batch.
async fn live(
    db: &Db,
    tenant: &str,
    items: Vec<ConversationSummary>,
    next: Option<Continuation>,
    now: DateTime<Utc>,
) -> Result<Page<ConversationSummary>, PlatformError> {
    let surely_live = now - chrono::Duration::days(i64::from(MIN_RETENTION_DAYS));
    let old: Vec<Item> = items
        .iter()
        .filter(|c| c.started_at <= surely_live)
        .map(|c| {
            HashMap::from([
                (
                    keys::PK.to_owned(),
                    s(keys::conversation(tenant, &c.customer)),
                ),
                (keys::SK.to_owned(), s(keys::SESSION)),
            ])
        })
        .collect();
    if old.is_empty() {
        return Ok(Page { items, next });
    }
    let mut expired = Vec::new();
    let mut request = Some(
        KeysAndAttributes::builder()
            .set_keys(Some(old))
            .projection_expression("pk, expires_at")
            .build()
            .map_err(PlatformError::database)?,
    );
    for _ in 0..4 {
        let Some(keys_left) = request.take() else {
            break;
        };
        let output = db
            .client
            .batch_get_item()
            .request_items(&db.table, keys_left)
            .send()
            .await
            .map_err(PlatformError::database)?;
        for item in output
            .responses
            .and_then(|mut tables| tables.remove(&db.table))
            .unwrap_or_default()
        {
            let gone = match item.get(keys::EXPIRES_AT) {
                Some(AttributeValue::N(at)) => {
                    at.parse::<i64>().is_ok_and(|at| at <= now.timestamp())
                }
                _ => false,
            };
            if gone {
                expired.push(text(&item, keys::PK)?.to_owned());
            }
        }
        request = output
            .unprocessed_keys
            .and_then(|mut tables| tables.remove(&db.table))
            .filter(|rest| !rest.keys().is_empty());
    }
    if request.is_some() {
        return Err(PlatformError::Database(
            "reads left unprocessed after retries (throttled)".into(),
        ));
    }
    let items = items
        .into_iter()
        .filter(|c| !expired.contains(&keys::conversation(tenant, &c.customer)))
        .collect();
    Ok(Page { items, next })
}

/// The key of an index entry, as DynamoDB's `LastEvaluatedKey` gives it.
fn index_key(item: &Item) -> Item {
    [keys::GSI1PK, keys::GSI1SK, keys::PK, keys::SK]
        .into_iter()
        .filter_map(|name| Some((name.to_owned(), item.get(name)?.clone())))
        .collect()
}

fn summary(tenant: &str, item: &Item) -> Result<ConversationSummary, PlatformError> {
    let corrupt = |what: &str| PlatformError::Database(format!("a listed conversation's {what}"));
    let customer = text(item, keys::PK)?
        .strip_prefix(&keys::conversation(tenant, ""))
        .ok_or_else(|| corrupt("key"))?;
    let started_at = match item.get(keys::GSI1SK) {
        Some(AttributeValue::N(millis)) => millis
            .parse()
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .ok_or_else(|| corrupt("start"))?,
        _ => return Err(corrupt("start")),
    };
    let state = Stage::parse(text(item, keys::STAGE)?).ok_or_else(|| corrupt("stage"))?;
    Ok(ConversationSummary {
        customer: customer.to_owned(),
        started_at,
        state,
        department: text(item, keys::DEPARTMENT).ok().map(str::to_owned),
    })
}

/// The customer's current conversation with its transcript; `None` when there is none (or
/// it is past the tenant's retention and awaits DynamoDB's deletion).
pub async fn get(
    db: &Db,
    tenant: &str,
    customer: &str,
    now: DateTime<Utc>,
) -> Result<Option<Conversation>, PlatformError> {
    let output = db
        .client
        .get_item()
        .table_name(&db.table)
        .key(keys::PK, s(keys::conversation(tenant, customer)))
        .key(keys::SK, s(keys::SESSION))
        .consistent_read(true)
        .send()
        .await
        .map_err(PlatformError::database)?;
    let Some(item) = output.item else {
        return Ok(None);
    };
    let expired = match item.get(keys::EXPIRES_AT) {
        Some(AttributeValue::N(at)) => at.parse::<i64>().is_ok_and(|at| at <= now.timestamp()),
        _ => false,
    };
    if expired {
        return Ok(None);
    }
    let session: Session = serde_json::from_str(text(&item, "session")?)
        .map_err(|e| PlatformError::Database(format!("a session is not readable: {e}")))?;
    let store = DynamoStore::new(db.client.clone(), db.table.clone());
    let messages = store
        .transcript(tenant, customer, session.started_at)
        .await
        .map_err(store_error)?
        .into_iter()
        .map(|entry| Message {
            at: entry.at,
            direction: if entry.inbound {
                Direction::Inbound
            } else {
                Direction::Outbound
            },
            kind: entry.kind,
            text: entry.text,
            id: entry.wamid,
        })
        .collect();
    Ok(Some(Conversation {
        customer: session.customer.clone(),
        profile_name: session.profile_name.clone(),
        started_at: session.started_at,
        last_activity_at: session.last_activity_at,
        state: session.stage(),
        state_name: session.state.business_name(),
        department: session.department.clone(),
        agent: session.agent.clone(),
        queued: session.ticket.as_ref().map(|ticket| Queued {
            department: ticket.department.clone(),
            priority: ticket.priority,
            entered_at: ticket.entered_at,
        }),
        nps_score: session.nps_score,
        campaign_id: session.campaign.as_ref().map(|send| send.id.clone()),
        messages,
    }))
}

/// Each department's queue of the tenant's configuration, in its order, as the SLA sweep
/// reads it; [`PlatformError::NotFound`] for a tenant that does not exist.
pub async fn queue(
    db: &Db,
    tenant: &str,
    now: DateTime<Utc>,
) -> Result<Vec<DepartmentQueue>, PlatformError> {
    let store = DynamoStore::new(db.client.clone(), db.table.clone());
    let config = Store::tenant(&store, tenant)
        .await
        .map_err(store_error)?
        .ok_or(PlatformError::NotFound)?;
    let mut queues = Vec::new();
    for department in &config.departments {
        let (entries, _) = store
            .waiting(tenant, &department.id)
            .await
            .map_err(store_error)?;
        let waiting: Vec<WaitingCustomer> = entries
            .into_iter()
            .enumerate()
            .map(|(index, entry)| {
                let waited = now - entry.entered_at;
                WaitingCustomer {
                    place: index as u32 + 1,
                    customer: entry.customer,
                    priority: entry.priority,
                    entered_at: entry.entered_at,
                    waited_seconds: waited.num_seconds(),
                    sla: SlaState::of(department, waited),
                }
            })
            .collect();
        queues.push(DepartmentQueue {
            department: department.id.clone(),
            name: department.name.clone(),
            alert_after_minutes: department.sla.alert_after_minutes,
            max_wait_minutes: department.sla.max_wait_minutes,
            oldest_wait_seconds: waiting.iter().map(|w| w.waited_seconds).max(),
            waiting,
        });
    }
    Ok(queues)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::Sla;

    #[test]
    fn a_wait_meets_the_sla_thresholds_the_sweep_alerts_on() {
        let department = Department {
            id: "suporte".into(),
            name: "Suporte".into(),
            sla: Sla {
                alert_after_minutes: 10,
                max_wait_minutes: 30,
            },
            flow: Vec::new(),
            priority: Priority::Media,
        };
        let minutes = chrono::Duration::minutes;
        assert_eq!(SlaState::of(&department, minutes(9)), SlaState::Ok);
        assert_eq!(SlaState::of(&department, minutes(10)), SlaState::Warning);
        assert_eq!(SlaState::of(&department, minutes(30)), SlaState::Breach);
    }
}
