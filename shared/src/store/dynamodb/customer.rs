//! One customer's items, found the same way for the export and for the erasure: an erasure
//! removes exactly what an export shows. The erasure writes the tombstones of the event keys
//! first (a crash after the deletes would leave nothing to derive them from) with the
//! customer's `ERASED#` item (the hook deliveries still queued drop their events), then deletes
//! in transactions that also count what they removed on the erasure's tracking item, so the
//! counts hold across a crash and a redelivery.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, PutRequest, TransactWriteItem, Update, WriteRequest,
};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

use super::{BatchRead, DynamoStore, Item, batch_get, key, n, s, text, unavailable};
use crate::envelope::Envelope;
use crate::store::keys::{self, EXPIRES_AT, PK, SK};
use crate::store::{
    CustomerItemKind, DeskContactErased, Erasure, ErasureState, Removed, StoreError, TOMBSTONE_DAYS,
};
use crate::support::retry::RetryPolicy;
use crate::tenant::{MIN_RETENTION_DAYS, Tenant};

/// Deletes per transaction (DynamoDB takes 100 actions; one is the tracking's count).
const DELETES_PER_TRANSACTION: usize = 50;
/// Keys per BatchGetItem and items per BatchWriteItem.
const BATCH_WRITE: usize = 25;
const UNPROCESSED_ATTEMPTS: u32 = 6;
const MAX_UNPROCESSED_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
/// The attribute of an erasure's tracking counting the items of a kind it removed.
const REMOVED_PREFIX: &str = "removed_";
/// How long an erasure's tracking item is kept: the record that the erasure happened
/// (only hashes, no number), for as long as a claim about it can be made (5 years).
pub const ERASURE_KEPT_DAYS: i64 = 5 * 365;

/// An unexpired item at `now` (DynamoDB deletes expired items lazily, moto never).
pub(super) fn live(item: &Item, now: DateTime<Utc>) -> bool {
    match item.get(EXPIRES_AT).and_then(|v| v.as_n().ok()) {
        Some(at) => at.parse::<i64>().map_or(true, |at| at > now.timestamp()),
        None => true,
    }
}

fn sort_key(item: &Item) -> &str {
    text(item, SK).unwrap_or_default()
}

/// The months (`yyyy-mm`) from `from`'s to `to`'s, in order.
fn months(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<String> {
    let mut month = NaiveDate::from_ymd_opt(from.year(), from.month(), 1).expect("a month");
    let last = NaiveDate::from_ymd_opt(to.year(), to.month(), 1).expect("a month");
    let mut all = Vec::new();
    while month <= last {
        all.push(month.format("%Y-%m").to_string());
        month = month
            .checked_add_months(chrono::Months::new(1))
            .expect("a later month");
    }
    all
}

/// The event key an item stands for, whose tombstone keeps a retry from recreating it.
pub(crate) fn event_key(kind: CustomerItemKind, item: &Item) -> Option<String> {
    let sk = sort_key(item);
    match kind {
        CustomerItemKind::Event => sk.strip_prefix(keys::EVENT_PREFIX).map(str::to_owned),
        CustomerItemKind::Legacy => {
            if let Some(rest) = sk.strip_prefix("OUTBOX#") {
                rest.rsplit_once('#').map(|(key, _)| key.to_owned())
            } else {
                sk.strip_prefix(keys::MESSAGE_LOG_PREFIX)
                    .and_then(|rest| rest.split_once('#'))
                    .map(|(_, wamid)| wamid.to_owned())
            }
        }
        CustomerItemKind::Parked => text(item, "envelope")
            .ok()
            .and_then(|body| Envelope::from_json(body).ok())
            .map(|envelope| envelope.idempotency_key()),
        _ => None,
    }
}

/// The wamids of the messages an event's record (or an earlier log item) says were sent.
fn sent_wamids(item: &Item) -> Vec<String> {
    let mut wamids: Vec<String> = match item.get("sent") {
        Some(AttributeValue::L(values)) => values
            .iter()
            .filter_map(|v| v.as_s().ok().cloned())
            .collect(),
        _ => Vec::new(),
    };
    wamids.extend(
        item.iter()
            .filter(|(name, _)| name.starts_with("settled_"))
            .filter_map(|(_, value)| value.as_s().ok().cloned()),
    );
    if sort_key(item).starts_with(keys::MESSAGE_LOG_PREFIX)
        && text(item, "direction").ok() == Some("out")
    {
        wamids.extend(text(item, "wamid").ok().map(str::to_owned));
    }
    wamids
}

impl DynamoStore {
    /// Every item of a partition (optionally filtered), strongly consistent, paginated.
    async fn query_partition(
        &self,
        pk: String,
        filter: Option<(&str, &str, AttributeValue)>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk.clone()))
                .set_exclusive_start_key(start);
            if let Some((attribute, placeholder, value)) = &filter {
                query = query
                    .filter_expression(format!("#f = {placeholder}"))
                    .expression_attribute_names("#f", *attribute)
                    .expression_attribute_values(*placeholder, value.clone());
            }
            let output = query.send().await.map_err(unavailable)?;
            items.extend(output.items.unwrap_or_default());
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// Items by key, strongly consistent; an export may wait longer on throttling.
    async fn get_many(&self, wanted: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let read = BatchRead {
            consistent: true,
            attempts: UNPROCESSED_ATTEMPTS,
            max_wait: MAX_UNPROCESSED_WAIT,
        };
        batch_get(&self.client, &self.table, &wanted, read).await
    }

    /// Every unexpired item at `now` that holds data of `customer` of `tenant`, with its
    /// kind: the conversation's partition (session, event records, desk link, earlier
    /// versions' items), its human-queue entries and takes in each of the tenant's
    /// departments, the opening follow-up, the AI spend of the months the tenant's retention
    /// reaches, parked messages naming the customer, the delivery records of the messages the
    /// records list as sent, and the tracking of API sends to the customer.
    pub async fn customer_items(
        &self,
        tenant: &Tenant,
        customer: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<(CustomerItemKind, Item)>, StoreError> {
        use CustomerItemKind as Kind;
        let number = tenant.phone_number_id.as_str();
        let mut found = Vec::new();
        let suffix = format!("#{customer}");
        for item in self
            .query_partition(keys::conversation(number, customer), None)
            .await?
        {
            let kind = match sort_key(&item) {
                keys::SESSION => Kind::Session,
                keys::DESK => Kind::DeskLink,
                sk if sk.starts_with(keys::EVENT_PREFIX) => Kind::Event,
                _ => Kind::Legacy,
            };
            found.push((kind, item));
        }
        let mut wamids: Vec<String> = found
            .iter()
            .flat_map(|(_, item)| sent_wamids(item))
            .collect();
        wamids.sort();
        wamids.dedup();
        let deliveries = self
            .get_many(
                wamids
                    .iter()
                    .map(|wamid| key(keys::outbound(wamid), keys::STATUS))
                    .collect(),
            )
            .await?;
        found.extend(
            deliveries
                .into_iter()
                .filter(|item| {
                    text(item, "customer").ok() == Some(customer)
                        && text(item, "phone_number_id").ok() == Some(number)
                })
                .map(|item| (Kind::Delivery, item)),
        );
        for department in &tenant.departments {
            let queue = self
                .query_partition(
                    keys::human_queue(number, &department.id),
                    Some(("customer", ":customer", s(customer))),
                )
                .await?;
            found.extend(
                queue
                    .into_iter()
                    .filter(|item| sort_key(item).ends_with(&suffix))
                    .map(|item| (Kind::QueueEntry, item)),
            );
            let taken = self
                .query_partition(keys::taken(number, &department.id), None)
                .await?;
            found.extend(
                taken
                    .into_iter()
                    .filter(|item| sort_key(item).ends_with(&suffix))
                    .map(|item| (Kind::Taken, item)),
            );
        }
        if let Some(item) = self.get(key(keys::opening(number), customer)).await? {
            found.push((Kind::Opening, item));
        }
        let retention = Duration::days(i64::from(tenant.retention_days.max(MIN_RETENTION_DAYS)));
        for month in months(now - retention, now) {
            let usage = self
                .query_partition(keys::ai_usage(number, &month), None)
                .await?;
            found.extend(
                usage
                    .into_iter()
                    .filter(|item| sort_key(item).ends_with(&suffix))
                    .map(|item| (Kind::AiUsage, item)),
            );
        }
        let parked = self.query_partition(keys::parked(number), None).await?;
        found.extend(
            parked
                .into_iter()
                .filter(|item| {
                    text(item, "envelope")
                        .ok()
                        .and_then(|body| Envelope::from_json(body).ok())
                        .is_some_and(|envelope| envelope.conversation() == Some((number, customer)))
                })
                .map(|item| (Kind::Parked, item)),
        );
        let sends = self
            .query_partition(
                keys::tracking(number),
                Some(("customer", ":customer", s(customer))),
            )
            .await?;
        found.extend(sends.into_iter().map(|item| (Kind::Tracking, item)));
        found.retain(|(_, item)| live(item, now));
        Ok(found)
    }

    /// Writes every item (puts), retrying what DynamoDB leaves unprocessed.
    async fn put_all(&self, items: Vec<Item>) -> Result<(), StoreError> {
        for chunk in items.chunks(BATCH_WRITE) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|item| {
                    PutRequest::builder()
                        .set_item(Some(item.clone()))
                        .build()
                        .map(|put| WriteRequest::builder().put_request(put).build())
                        .map_err(|e| StoreError::Unavailable(e.to_string()))
                })
                .collect::<Result<_, _>>()?;
            let mut attempt = 0;
            while !requests.is_empty() {
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(unavailable)?;
                requests = output
                    .unprocessed_items
                    .and_then(|mut tables| tables.remove(&self.table))
                    .unwrap_or_default();
                if !requests.is_empty() {
                    attempt += 1;
                    if attempt > UNPROCESSED_ATTEMPTS {
                        return Err(StoreError::Unavailable(
                            "writes left unprocessed after retries (throttled)".into(),
                        ));
                    }
                    let wait = RetryPolicy::default().backoff(attempt, MAX_UNPROCESSED_WAIT);
                    tokio::time::sleep(wait).await;
                }
            }
        }
        Ok(())
    }

    pub(super) async fn tombstoned(
        &self,
        phone_number_id: &str,
        event_key: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // Eventually consistent (half a read unit): tombstones are written long before a
        // retry comes.
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::tombstone(phone_number_id),
                keys::tombstone_entry(event_key),
            )))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output.item.is_some_and(|item| live(&item, now)))
    }

    pub(super) async fn read_erasure(
        &self,
        phone_number_id: &str,
        id: &str,
    ) -> Result<Option<ErasureState>, StoreError> {
        let Some(item) = self.get(key(keys::tracking(phone_number_id), id)).await? else {
            return Ok(None);
        };
        Ok(Some(erasure_state(&item)?))
    }

    pub(super) async fn erase_customer(
        &self,
        erasure: Erasure<'_>,
        now: DateTime<Utc>,
    ) -> Result<Removed, StoreError> {
        let number = erasure.tenant.phone_number_id.as_str();
        let mut items = self
            .customer_items(erasure.tenant, erasure.customer, now)
            .await?;
        let mut seen = BTreeSet::new();
        items.retain(|(_, item)| {
            seen.insert((
                text(item, PK).map(str::to_owned).ok(),
                text(item, SK).map(str::to_owned).ok(),
            ))
        });
        let event_keys: BTreeSet<String> = items
            .iter()
            .filter_map(|(kind, item)| event_key(*kind, item))
            .collect();
        let expires = n((now + Duration::days(TOMBSTONE_DAYS)).timestamp());
        let mut tombstones: Vec<Item> = event_keys
            .iter()
            .map(|event_key| {
                let mut item = key(keys::tombstone(number), keys::tombstone_entry(event_key));
                item.insert(EXPIRES_AT.into(), expires.clone());
                item
            })
            .collect();
        // The hook deliveries still queued carry what the customer wrote: they read this
        // and drop the events from before the erasure.
        let mut erased = key(
            keys::erased(number),
            keys::erased_entry(number, erasure.customer),
        );
        erased.insert(keys::ERASED_AT.into(), s(now.to_rfc3339()));
        erased.insert(
            EXPIRES_AT.into(),
            n((now + Duration::days(keys::ERASED_KEPT_DAYS)).timestamp()),
        );
        tombstones.push(erased);
        self.put_all(tombstones).await?;
        let mut removed = Removed::new();
        for chunk in items.chunks(DELETES_PER_TRANSACTION) {
            let mut counts: HashMap<CustomerItemKind, u64> = HashMap::new();
            let mut writes = Vec::with_capacity(chunk.len() + 1);
            for (kind, item) in chunk {
                *counts.entry(*kind).or_default() += 1;
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .key(PK, item[PK].clone())
                    .key(SK, item[SK].clone())
                    .build()
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                writes.push(TransactWriteItem::builder().delete(delete).build());
            }
            let mut update = Update::builder()
                .table_name(&self.table)
                .key(PK, s(keys::tracking(number)))
                .key(SK, s(erasure.id));
            let mut additions = Vec::new();
            for (index, (kind, count)) in counts.iter().enumerate() {
                additions.push(format!("#k{index} :v{index}"));
                update = update
                    .expression_attribute_names(
                        format!("#k{index}"),
                        format!("{REMOVED_PREFIX}{}", kind.as_str()),
                    )
                    .expression_attribute_values(format!(":v{index}"), n(count));
            }
            let update = update
                .update_expression(format!("ADD {}", additions.join(", ")))
                .build()
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            writes.push(TransactWriteItem::builder().update(update).build());
            self.client
                .transact_write_items()
                .set_transact_items(Some(writes))
                .send()
                .await
                .map_err(unavailable)?;
            for (kind, count) in counts {
                *removed.entry(kind).or_default() += count;
            }
        }
        Ok(removed)
    }

    pub(super) async fn finish_erasure(
        &self,
        erasure: Erasure<'_>,
        desk_contact: DeskContactErased,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let number = erasure.tenant.phone_number_id.as_str();
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::tracking(number), erasure.id)))
            .update_expression(
                "SET done_at = :now, desk_contact = :desk, #kind = if_not_exists(#kind, :erase), \
                 customer_hash = if_not_exists(customer_hash, :hash), \
                 expires_at = if_not_exists(expires_at, :expires)",
            )
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_values(":now", s(now.to_rfc3339()))
            .expression_attribute_values(":desk", s(desk_contact.as_str()))
            .expression_attribute_values(":erase", s("erase"))
            .expression_attribute_values(":hash", s(keys::customer_hash(number, erasure.customer)))
            .expression_attribute_values(
                ":expires",
                n((now + Duration::days(ERASURE_KEPT_DAYS)).timestamp()),
            )
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// An erasure's tracking item read back.
pub fn erasure_state(item: &Item) -> Result<ErasureState, StoreError> {
    let done_at = match text(item, "done_at") {
        Ok(at) => Some(
            at.parse()
                .map_err(|_| StoreError::Corrupt("erasure `done_at` is not a time".into()))?,
        ),
        Err(_) => None,
    };
    let removed = item
        .iter()
        .filter_map(|(name, value)| {
            let kind = CustomerItemKind::parse(name.strip_prefix(REMOVED_PREFIX)?)?;
            Some((kind, value.as_n().ok()?.parse().ok()?))
        })
        .collect();
    Ok(ErasureState {
        done_at,
        removed,
        desk_contact: text(item, "desk_contact")
            .ok()
            .and_then(DeskContactErased::parse),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_months_a_retention_reaches_run_in_order() {
        let at = |t: &str| t.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            months(at("2026-10-20T00:00:00Z"), at("2027-01-02T00:00:00Z")),
            ["2026-10", "2026-11", "2026-12", "2027-01"]
        );
        assert_eq!(
            months(at("2026-11-30T00:00:00Z"), at("2026-11-30T00:00:00Z")),
            ["2026-11"]
        );
    }

    #[test]
    fn items_name_the_event_keys_their_tombstones_hold() {
        let item = |sk: &str| key("CONV#1#2".into(), sk);
        assert_eq!(
            event_key(CustomerItemKind::Event, &item("EVT#wamid.A")).as_deref(),
            Some("wamid.A")
        );
        assert_eq!(
            event_key(CustomerItemKind::Legacy, &item("OUTBOX#wamid.B#003")).as_deref(),
            Some("wamid.B")
        );
        assert_eq!(
            event_key(
                CustomerItemKind::Legacy,
                &item("MSG#0001795453200000#wamid.C")
            )
            .as_deref(),
            Some("wamid.C")
        );
        assert_eq!(event_key(CustomerItemKind::Session, &item("SESSION")), None);
    }
}
