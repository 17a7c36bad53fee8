//! The customer's data rights (LGPD art. 18): the export of everything stored about one
//! customer number of a tenant, and its erasure. The API and the ops CLI call these same
//! functions.
//!
//! What belongs to a customer is defined once, by the store's `customer_items`: the export
//! shows it and the worker's erasure removes exactly it. The erasure is an event on the
//! customer's queue group (the worker is the only writer of sessions, so no commit running
//! at the same time brings the data back): [`request_erase`] records its tracking item
//! (`TRACK#<pn>`/`era_...`, naming the customer only by hash) and enqueues it; the worker
//! writes what it removed there, which [`erasure_status`] reads.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::access::Owner;
use super::{Db, PlatformError, audit};
use crate::envelope::{Envelope, EraseRequest, Payload};
use crate::queue::QueueEntry;
use crate::store::dynamodb::DynamoStore;
use crate::store::dynamodb::customer::{ERASURE_KEPT_DAYS, erasure_state};
use crate::store::keys::{self, EXPIRES_AT, PK, SK};
use crate::store::{CustomerItemKind, DeskContactErased, Store};
use crate::tenant::Tenant;

/// The tracking id's prefix.
pub const ERASURE_PREFIX: &str = "era_";
/// The longest customer id taken (phone numbers and business-scoped user ids are shorter).
pub const MAX_CUSTOMER: usize = 128;
/// Attributes that hold a JSON document as text: the export shows them as JSON.
const JSON_ATTRIBUTES: [&str; 4] = ["session", "effects", "link", "envelope"];

/// Everything stored about one customer of a tenant, item by item as stored (attributes
/// holding JSON documents shown as JSON). Expired items are left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerExport {
    pub phone_number_id: String,
    pub customer: String,
    pub exported_at: DateTime<Utc>,
    /// The conversation's state.
    pub session: Option<Value>,
    /// One per event of the conversation: what the customer wrote, what was done and sent.
    pub events: Vec<Value>,
    /// Items earlier versions kept in the conversation (message log, outbox).
    pub legacy: Vec<Value>,
    /// The desk (Chatwoot) contact and conversation of the last handoff.
    pub desk_link: Option<Value>,
    pub queue_entries: Vec<Value>,
    /// When agents took the customer (for the wait estimate).
    pub taken: Vec<Value>,
    /// Owed a follow-up at the next opening.
    pub opening: Option<Value>,
    /// The AI attendant's spend on the customer's conversations.
    pub ai_usage: Vec<Value>,
    /// Messages kept while the number had no tenant.
    pub parked: Vec<Value>,
    /// Delivery statuses of the messages sent to the customer.
    pub deliveries: Vec<Value>,
    /// Sends to the customer requested through the API.
    pub sends: Vec<Value>,
}

impl CustomerExport {
    /// How many items it holds.
    pub fn items(&self) -> usize {
        usize::from(self.session.is_some())
            + usize::from(self.desk_link.is_some())
            + usize::from(self.opening.is_some())
            + [
                &self.events,
                &self.legacy,
                &self.queue_entries,
                &self.taken,
                &self.ai_usage,
                &self.parked,
                &self.deliveries,
                &self.sends,
            ]
            .iter()
            .map(|list| list.len())
            .sum::<usize>()
    }
}

/// Where an erasure stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasureProgress {
    Pending,
    Done,
}

/// An erasure's tracking, as the API and the CLI show it (no customer number: the request
/// is recorded by hash only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureStatus {
    pub id: String,
    pub state: ErasureProgress,
    pub requested_at: DateTime<Utc>,
    pub requested_by: String,
    pub done_at: Option<DateTime<Utc>>,
    /// Items removed per kind (every kind, 0 where there was none), once done.
    pub removed: BTreeMap<String, u64>,
    /// `deleted`, `not_found`, `no_desk` or `refused` (a person must delete it), once done.
    pub desk_contact: Option<String>,
}

/// A customer id as Meta gives it: a phone number or a business-scoped user id.
pub fn check_customer(customer: &str) -> Result<(), PlatformError> {
    let valid = !customer.is_empty()
        && customer.len() <= MAX_CUSTOMER
        && customer
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if valid {
        Ok(())
    } else {
        Err(PlatformError::invalid(
            "/customer",
            format!(
                "a WhatsApp id: 1 to {MAX_CUSTOMER} letters, digits, '.', '-' or '_' (a phone number in digits, no '+')"
            ),
        ))
    }
}

fn store(db: &Db) -> DynamoStore {
    DynamoStore::new(db.client.clone(), db.table.clone())
}

/// The tenant, or [`PlatformError::NotFound`].
async fn tenant(db: &Db, phone_number_id: &str) -> Result<Tenant, PlatformError> {
    store(db)
        .tenant(phone_number_id)
        .await
        .map_err(|e| PlatformError::Database(e.to_string()))?
        .ok_or(PlatformError::NotFound)
}

/// An attribute as JSON (numbers stay numbers where they fit).
fn attribute_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(text) => Value::String(text.clone()),
        AttributeValue::N(number) => number
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| number.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(number.clone())),
        AttributeValue::Bool(flag) => Value::Bool(*flag),
        AttributeValue::L(values) => Value::Array(values.iter().map(attribute_json).collect()),
        AttributeValue::M(map) => Value::Object(
            map.iter()
                .map(|(name, value)| (name.clone(), attribute_json(value)))
                .collect(),
        ),
        AttributeValue::Ss(values) => json!(values),
        AttributeValue::Ns(values) => json!(values),
        _ => Value::Null,
    }
}

fn item_json(item: &HashMap<String, AttributeValue>) -> Value {
    let mut object: serde_json::Map<String, Value> = item
        .iter()
        .map(|(name, value)| {
            let json = match value {
                AttributeValue::S(text) if JSON_ATTRIBUTES.contains(&name.as_str()) => {
                    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone()))
                }
                _ => attribute_json(value),
            };
            (name.clone(), json)
        })
        .collect();
    object.sort_keys();
    Value::Object(object)
}

/// Everything stored about `customer` of tenant `phone_number_id` (see [`CustomerExport`]).
/// Recorded in the tenant's audit log, by the customer's hash; nothing is handed out
/// unrecorded.
pub async fn export(
    db: &Db,
    phone_number_id: &str,
    customer: &str,
    requested_by: &str,
) -> Result<CustomerExport, PlatformError> {
    check_customer(customer)?;
    let tenant = tenant(db, phone_number_id).await?;
    let now = Utc::now();
    let items = store(db)
        .customer_items(&tenant, customer, now)
        .await
        .map_err(|e| PlatformError::Database(e.to_string()))?;
    let mut export = CustomerExport {
        phone_number_id: phone_number_id.to_owned(),
        customer: customer.to_owned(),
        exported_at: now,
        ..CustomerExport::default()
    };
    for (kind, item) in &items {
        let json = item_json(item);
        use CustomerItemKind as Kind;
        match kind {
            Kind::Session => export.session = Some(json),
            Kind::Event => export.events.push(json),
            Kind::Legacy => export.legacy.push(json),
            Kind::DeskLink => export.desk_link = Some(json),
            Kind::QueueEntry => export.queue_entries.push(json),
            Kind::Taken => export.taken.push(json),
            Kind::Opening => export.opening = Some(json),
            Kind::AiUsage => export.ai_usage.push(json),
            Kind::Parked => export.parked.push(json),
            Kind::Delivery => export.deliveries.push(json),
            Kind::Tracking => export.sends.push(json),
        }
    }
    audit::record(
        db,
        &Owner::Tenant(phone_number_id.to_owned()),
        &audit::Entry {
            at: now,
            actor: requested_by.to_owned(),
            action: "customer.export".into(),
            target: keys::customer_hash(phone_number_id, customer),
            detail: json!({"items": export.items()}),
        },
    )
    .await?;
    Ok(export)
}

/// The erasure's tracking id: from the caller's idempotency key when there is one (the same
/// request made again gets the same id), random otherwise.
fn erasure_id(phone_number_id: &str, requested_by: &str, idempotency_key: Option<&str>) -> String {
    let bytes: [u8; 13] = match idempotency_key {
        Some(key) => {
            let digest = Sha256::digest(
                format!("erase\n{phone_number_id}\n{requested_by}\n{key}").as_bytes(),
            );
            digest[..13].try_into().expect("13 bytes of 32")
        }
        None => {
            let mut random = [0u8; 13];
            getrandom::getrandom(&mut random).expect("the operating system's random source");
            random
        }
    };
    format!("{ERASURE_PREFIX}{}", hex::encode(bytes))
}

/// Records the erasure of `customer` of tenant `phone_number_id` and puts it on the
/// customer's queue group; returns its tracking id. The worker carries it out (see the
/// module). With an `idempotency_key`, the same request made again returns the same id;
/// the key reused for another customer is a conflict. Recorded in the tenant's audit log.
pub async fn request_erase(
    db: &Db,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    phone_number_id: &str,
    customer: &str,
    requested_by: &str,
    idempotency_key: Option<&str>,
) -> Result<String, PlatformError> {
    check_customer(customer)?;
    tenant(db, phone_number_id).await?;
    let id = erasure_id(phone_number_id, requested_by, idempotency_key);
    let customer_hash = keys::customer_hash(phone_number_id, customer);
    let request_hash = hex::encode(Sha256::digest(format!("erase\n{customer_hash}").as_bytes()));
    let now = Utc::now();
    let item: HashMap<String, AttributeValue> = [
        (PK, AttributeValue::S(keys::tracking(phone_number_id))),
        (SK, AttributeValue::S(id.clone())),
        ("kind", AttributeValue::S("erase".into())),
        ("customer_hash", AttributeValue::S(customer_hash.clone())),
        ("requested_by", AttributeValue::S(requested_by.to_owned())),
        ("requested_at", AttributeValue::S(now.to_rfc3339())),
        ("request_hash", AttributeValue::S(request_hash.clone())),
        (
            EXPIRES_AT,
            AttributeValue::N(
                (now + Duration::days(ERASURE_KEPT_DAYS))
                    .timestamp()
                    .to_string(),
            ),
        ),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    let put = db
        .client
        .put_item()
        .table_name(&db.table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await;
    let new = match put {
        Ok(_) => true,
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            let existing = tracking_item(db, phone_number_id, &id).await?;
            let same = existing
                .as_ref()
                .and_then(|item| item.get("request_hash"))
                .and_then(|value| value.as_s().ok())
                == Some(&request_hash);
            if !same {
                return Err(PlatformError::Conflict(
                    "the Idempotency-Key was used for another request".into(),
                ));
            }
            false
        }
        Err(error) => return Err(PlatformError::database(error)),
    };
    // Sent again for a repeated request too: its first attempt may have failed here, and
    // the worker does a done erasure once.
    let entry = QueueEntry::from_envelope(&Envelope::new(Payload::Erase(EraseRequest {
        phone_number_id: phone_number_id.to_owned(),
        customer: customer.to_owned(),
        id: id.clone(),
    })));
    let sent = sqs
        .send_message()
        .queue_url(queue_url)
        .message_body(entry.body)
        .message_group_id(entry.group_id)
        .message_deduplication_id(entry.dedup_id)
        .send()
        .await;
    if let Err(error) = sent {
        if new {
            // Not left pending forever: the request failed as a whole. Best effort.
            let _ = db
                .client
                .delete_item()
                .table_name(&db.table)
                .key(PK, AttributeValue::S(keys::tracking(phone_number_id)))
                .key(SK, AttributeValue::S(id.clone()))
                .send()
                .await;
        }
        return Err(PlatformError::Queue(
            aws_sdk_sqs::error::DisplayErrorContext(error).to_string(),
        ));
    }
    if new {
        // The erasure is under way and its tracking records who asked: a failed audit
        // entry is logged for the alarm, and the request still succeeds.
        let entry = audit::Entry {
            at: now,
            actor: requested_by.to_owned(),
            action: "customer.erase".into(),
            target: id.clone(),
            detail: json!({"customer_hash": customer_hash}),
        };
        let owner = Owner::Tenant(phone_number_id.to_owned());
        if let Err(error) = audit::record(db, &owner, &entry).await {
            tracing::error!(%error, erasure = %id, "could not record an audit entry");
        }
    }
    Ok(id)
}

async fn tracking_item(
    db: &Db,
    phone_number_id: &str,
    id: &str,
) -> Result<Option<HashMap<String, AttributeValue>>, PlatformError> {
    let output = db
        .client
        .get_item()
        .table_name(&db.table)
        .key(PK, AttributeValue::S(keys::tracking(phone_number_id)))
        .key(SK, AttributeValue::S(id.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .map_err(PlatformError::database)?;
    Ok(output.item)
}

/// Erasure `id` of tenant `phone_number_id`: pending, or done with what it removed. `None`
/// for an id that is not an erasure of this tenant (another tenant's included).
pub async fn erasure_status(
    db: &Db,
    phone_number_id: &str,
    id: &str,
) -> Result<Option<ErasureStatus>, PlatformError> {
    if !id.starts_with(ERASURE_PREFIX) || id.len() > 64 {
        return Ok(None);
    }
    let Some(item) = tracking_item(db, phone_number_id, id).await? else {
        return Ok(None);
    };
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    if text("kind").as_deref() != Some("erase") {
        return Ok(None);
    }
    let state = erasure_state(&item).map_err(|e| PlatformError::Database(e.to_string()))?;
    let requested_at = text("requested_at")
        .and_then(|at| at.parse().ok())
        .ok_or_else(|| PlatformError::Database(format!("erasure {id}: no requested_at")))?;
    let done = state.done_at.is_some();
    Ok(Some(ErasureStatus {
        id: id.to_owned(),
        state: if done {
            ErasureProgress::Done
        } else {
            ErasureProgress::Pending
        },
        requested_at,
        requested_by: text("requested_by").unwrap_or_default(),
        done_at: state.done_at,
        removed: if done {
            CustomerItemKind::ALL
                .iter()
                .map(|kind| {
                    (
                        kind.as_str().to_owned(),
                        state.removed.get(kind).copied().unwrap_or(0),
                    )
                })
                .collect()
        } else {
            BTreeMap::new()
        },
        desk_contact: state
            .desk_contact
            .map(DeskContactErased::as_str)
            .map(str::to_owned),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_are_whatsapp_ids_and_nothing_that_breaks_a_key() {
        for good in ["5511987654321", "BR.1a2b3c", "user_1-x"] {
            assert!(check_customer(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "+5511987654321",
            "55#11",
            "55:11",
            "a b",
            &"9".repeat(129),
        ] {
            assert!(
                matches!(check_customer(bad), Err(PlatformError::Invalid { ref pointer, .. }) if pointer == "/customer"),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_idempotency_key_gives_the_same_id_per_caller_and_tenant() {
        let id = erasure_id("111", "key:a", Some("k1"));
        assert!(id.starts_with(ERASURE_PREFIX) && id.len() == ERASURE_PREFIX.len() + 26);
        assert_eq!(id, erasure_id("111", "key:a", Some("k1")));
        assert_ne!(id, erasure_id("111", "key:b", Some("k1")));
        assert_ne!(id, erasure_id("222", "key:a", Some("k1")));
        assert_ne!(
            erasure_id("111", "key:a", None),
            erasure_id("111", "key:a", None)
        );
    }

    #[test]
    fn items_read_as_json_with_their_documents_decoded() {
        let item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("CONV#1#2".into())),
            ("done".to_owned(), AttributeValue::N("2".into())),
            (
                "session".to_owned(),
                AttributeValue::S(r#"{"state":"Menu"}"#.into()),
            ),
            (
                "text".to_owned(),
                AttributeValue::S(r#"{"not":"decoded"}"#.into()),
            ),
            (
                "sent".to_owned(),
                AttributeValue::L(vec![AttributeValue::S("wamid.A".into())]),
            ),
        ]);
        assert_eq!(
            item_json(&item),
            json!({"pk": "CONV#1#2", "done": 2, "session": {"state": "Menu"}, "text": r#"{"not":"decoded"}"#, "sent": ["wamid.A"]})
        );
    }
}
