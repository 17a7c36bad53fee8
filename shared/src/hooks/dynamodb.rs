//! The subscriptions' items, shared by the subscription routes (create, change, delete) and
//! the delivery function (health, disabling one that fails for days).
//!
//! | item | pk | sk |
//! | --- | --- | --- |
//! | a subscription (`subscription`: JSON of [`Subscription`]; `failing_since`, `last_success_at`, `last_failure_at`, `last_error` kept by the deliveries) | `TENANT#<pn>` | `HOOK#<id>` |
//! | the producers' summary of the enabled ones (`hooks`: JSON of [`Subscribed`]s) | `TENANT#<pn>` | `CONFIG` |
//! | one delivery attempt (`entry`: JSON of [`DeliveryEntry`], `expires_at` 7 days on), written by the delivery function | `HOOKLOG#<pn>#<id>` | `<RFC 3339 ms>#<event id>#<attempt>` |
//!
//! Every change of a subscription ends with [`refresh_summary`], which rewrites `hooks` on
//! the config item from the subscriptions themselves, so two writers converge on what is
//! stored.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};

use super::{DeliveryEntry, Subscribed, Subscription, summary};
use crate::store::StoreError;
use crate::store::keys::{self, EXPIRES_AT, PK, SK};

pub const SUBSCRIPTION: &str = "subscription";
pub const FAILING_SINCE: &str = "failing_since";
pub const LAST_SUCCESS_AT: &str = "last_success_at";
pub const LAST_FAILURE_AT: &str = "last_failure_at";
pub const LAST_ERROR: &str = "last_error";
/// A delivery log item's JSON.
pub const ENTRY: &str = "entry";

type Item = HashMap<String, AttributeValue>;

fn failed(error: impl std::error::Error + 'static) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(error).to_string())
}

/// A subscription item's [`Subscription`].
pub fn parse(item: &Item) -> Result<Subscription, StoreError> {
    let text = item
        .get(SUBSCRIPTION)
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("`{SUBSCRIPTION}` is missing")))?;
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("`{SUBSCRIPTION}`: {e}")))
}

/// The tenant's subscription items, in id order (strongly consistent: a change is read back
/// by the summary that follows it).
pub async fn items(
    client: &Client,
    table: &str,
    phone_number_id: &str,
) -> Result<Vec<Item>, StoreError> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .query()
            .table_name(table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", AttributeValue::S(keys::tenant(phone_number_id)))
            .expression_attribute_values(":prefix", AttributeValue::S(keys::HOOK_PREFIX.into()))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(failed)?;
        items.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(items);
        }
    }
}

/// The tenant's subscriptions.
pub async fn list(
    client: &Client,
    table: &str,
    phone_number_id: &str,
) -> Result<Vec<Subscription>, StoreError> {
    items(client, table, phone_number_id)
        .await?
        .iter()
        .map(parse)
        .collect()
}

/// Rewrites the config item's `hooks` from the stored subscriptions and returns it. A tenant
/// without a config item has nothing to rewrite (the condition keeps one from appearing).
pub async fn refresh_summary(
    client: &Client,
    table: &str,
    phone_number_id: &str,
) -> Result<Vec<Subscribed>, StoreError> {
    let subscribed = summary(&list(client, table, phone_number_id).await?);
    let result = client
        .update_item()
        .table_name(table)
        .key(PK, AttributeValue::S(keys::tenant(phone_number_id)))
        .key(SK, AttributeValue::S(keys::CONFIG.into()))
        .update_expression("SET #hooks = :hooks")
        .condition_expression("attribute_exists(#pk)")
        .expression_attribute_names("#hooks", keys::TENANT_HOOKS)
        .expression_attribute_names("#pk", PK)
        .expression_attribute_values(
            ":hooks",
            AttributeValue::S(serde_json::to_string(&subscribed).expect("summaries serialise")),
        )
        .send()
        .await;
    crate::store::dynamodb::applied(result)?;
    Ok(subscribed)
}

/// The subscription's latest `limit` delivery attempts, newest first (another tenant's
/// subscription of the same id is another partition). Expired items are left out.
pub async fn recent_deliveries(
    client: &Client,
    table: &str,
    phone_number_id: &str,
    subscription_id: &str,
    limit: usize,
) -> Result<Vec<DeliveryEntry>, StoreError> {
    let now = Utc::now().timestamp();
    let mut entries = Vec::new();
    let mut start = None;
    while entries.len() < limit {
        let page = client
            .query()
            .table_name(table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(keys::hook_log(phone_number_id, subscription_id)),
            )
            .scan_index_forward(false)
            .limit(i32::try_from(limit - entries.len()).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(failed)?;
        for item in page.items.unwrap_or_default() {
            let expired = item
                .get(EXPIRES_AT)
                .and_then(|v| v.as_n().ok())
                .and_then(|at| at.parse::<i64>().ok())
                .is_some_and(|at| at <= now);
            if expired {
                continue;
            }
            let text = item
                .get(ENTRY)
                .and_then(|v| v.as_s().ok())
                .ok_or_else(|| StoreError::Corrupt(format!("`{ENTRY}` is missing")))?;
            entries.push(
                serde_json::from_str(text)
                    .map_err(|e| StoreError::Corrupt(format!("`{ENTRY}`: {e}")))?,
            );
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    entries.truncate(limit);
    Ok(entries)
}

fn subscription_key(phone_number_id: &str, subscription_id: &str) -> Item {
    HashMap::from([
        (
            PK.to_owned(),
            AttributeValue::S(keys::tenant(phone_number_id)),
        ),
        (
            SK.to_owned(),
            AttributeValue::S(keys::hook(subscription_id)),
        ),
    ])
}

fn time(at: DateTime<Utc>) -> AttributeValue {
    AttributeValue::S(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// A delivery succeeded: the subscription is healthy again. A deleted subscription stays
/// deleted (the write is conditional).
pub async fn record_success(
    client: &Client,
    table: &str,
    phone_number_id: &str,
    subscription_id: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let result = client
        .update_item()
        .table_name(table)
        .set_key(Some(subscription_key(phone_number_id, subscription_id)))
        .update_expression("REMOVE #failing SET #success = :at")
        .condition_expression("attribute_exists(#pk)")
        .expression_attribute_names("#failing", FAILING_SINCE)
        .expression_attribute_names("#success", LAST_SUCCESS_AT)
        .expression_attribute_names("#pk", PK)
        .expression_attribute_values(":at", time(at))
        .send()
        .await;
    crate::store::dynamodb::applied(result)?;
    Ok(())
}

/// A delivery failed with `error` (short: a status or an error class, never the answer's
/// body). Returns since when the subscription has been failing, or `None` when it was
/// deleted meanwhile.
pub async fn record_failure(
    client: &Client,
    table: &str,
    phone_number_id: &str,
    subscription_id: &str,
    at: DateTime<Utc>,
    error: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let result = client
        .update_item()
        .table_name(table)
        .set_key(Some(subscription_key(phone_number_id, subscription_id)))
        .update_expression(
            "SET #failing = if_not_exists(#failing, :at), #failure = :at, #error = :error",
        )
        .condition_expression("attribute_exists(#pk)")
        .expression_attribute_names("#failing", FAILING_SINCE)
        .expression_attribute_names("#failure", LAST_FAILURE_AT)
        .expression_attribute_names("#error", LAST_ERROR)
        .expression_attribute_names("#pk", PK)
        .expression_attribute_values(":at", time(at))
        .expression_attribute_values(":error", AttributeValue::S(error.to_owned()))
        // The whole item: an attribute SET to its own value (if_not_exists) is not "updated".
        .return_values(ReturnValue::AllNew)
        .send()
        .await;
    let output = match result {
        Ok(output) => output,
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            return Ok(None);
        }
        Err(error) => return Err(failed(error)),
    };
    let since = output
        .attributes
        .as_ref()
        .and_then(|a| a.get(FAILING_SINCE))
        .and_then(|v| v.as_s().ok())
        .and_then(|text| text.parse::<DateTime<Utc>>().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("`{FAILING_SINCE}` is not a time")))?;
    Ok(Some(since))
}

/// Disables the subscription with `reason`, unless it is already disabled or gone: returns
/// whether this call disabled it, so one failing delivery among many alerts once. The
/// write is conditional on the subscription as read (a change made meanwhile is read
/// again). The producers' summary is the caller's to refresh ([`refresh_summary`]).
pub async fn disable(
    client: &Client,
    table: &str,
    phone_number_id: &str,
    subscription_id: &str,
    reason: &str,
) -> Result<bool, StoreError> {
    for _ in 0..3 {
        let item = client
            .get_item()
            .table_name(table)
            .set_key(Some(subscription_key(phone_number_id, subscription_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?
            .item;
        let Some(item) = item else {
            return Ok(false);
        };
        let mut subscription = parse(&item)?;
        if !subscription.enabled {
            return Ok(false);
        }
        subscription.enabled = false;
        subscription.disabled_reason = Some(reason.to_owned());
        let result = client
            .update_item()
            .table_name(table)
            .set_key(Some(subscription_key(phone_number_id, subscription_id)))
            .update_expression("SET #subscription = :new")
            .condition_expression("#subscription = :old")
            .expression_attribute_names("#subscription", SUBSCRIPTION)
            .expression_attribute_values(
                ":new",
                AttributeValue::S(
                    serde_json::to_string(&subscription).expect("subscriptions serialise"),
                ),
            )
            .expression_attribute_values(":old", item[SUBSCRIPTION].clone())
            .send()
            .await;
        if crate::store::dynamodb::applied(result)? {
            return Ok(true);
        }
    }
    Err(StoreError::Unavailable(
        "the subscription kept changing while being disabled".into(),
    ))
}

/// Writes one delivery attempt's log item, expiring [`keys::HOOK_LOG_KEPT`] after it.
pub async fn log_delivery(
    client: &Client,
    table: &str,
    phone_number_id: &str,
    subscription_id: &str,
    entry: &DeliveryEntry,
) -> Result<(), StoreError> {
    let expires = (entry.at + keys::HOOK_LOG_KEPT).timestamp();
    client
        .put_item()
        .table_name(table)
        .item(
            PK,
            AttributeValue::S(keys::hook_log(phone_number_id, subscription_id)),
        )
        .item(
            SK,
            AttributeValue::S(keys::hook_log_entry(
                entry.at,
                &entry.event_id,
                entry.attempt,
            )),
        )
        .item(
            ENTRY,
            AttributeValue::S(serde_json::to_string(entry).expect("entries serialise")),
        )
        .item(EXPIRES_AT, AttributeValue::N(expires.to_string()))
        .send()
        .await
        .map_err(failed)?;
    Ok(())
}

/// When each of these customers (tenant, customer) was erased, for those erased in the last
/// [`keys::ERASED_KEPT_DAYS`]: one eventually consistent batch read (the erasure is written
/// long before a delivery that could miss it; one that runs at the same moment races it
/// either way).
pub async fn erased(
    client: &Client,
    table: &str,
    customers: &[(String, String)],
) -> Result<HashMap<(String, String), DateTime<Utc>>, StoreError> {
    use crate::store::dynamodb::{BatchRead, batch_get};
    let key_of =
        |(pn, customer): &(String, String)| (keys::erased(pn), keys::erased_entry(pn, customer));
    let distinct: std::collections::BTreeSet<(String, String)> =
        customers.iter().map(key_of).collect();
    let wanted: Vec<Item> = distinct
        .into_iter()
        .map(|(pk, sk)| {
            HashMap::from([
                (PK.to_owned(), AttributeValue::S(pk)),
                (SK.to_owned(), AttributeValue::S(sk)),
            ])
        })
        .collect();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let read = BatchRead {
        consistent: false,
        attempts: 6,
        max_wait: std::time::Duration::from_secs(1),
    };
    let now = Utc::now().timestamp();
    let mut erased_at: HashMap<(String, String), DateTime<Utc>> = HashMap::new();
    for item in batch_get(client, table, &wanted, read).await? {
        let live = item
            .get(EXPIRES_AT)
            .and_then(|v| v.as_n().ok())
            .and_then(|at| at.parse::<i64>().ok())
            .is_none_or(|at| at > now);
        let at = item
            .get(keys::ERASED_AT)
            .and_then(|v| v.as_s().ok())
            .and_then(|text| text.parse::<DateTime<Utc>>().ok());
        let (Some(pk), Some(sk), Some(at)) = (
            item.get(PK).and_then(|v| v.as_s().ok()),
            item.get(SK).and_then(|v| v.as_s().ok()),
            at,
        ) else {
            continue;
        };
        if !live {
            continue;
        }
        erased_at.insert((pk.clone(), sk.clone()), at);
    }
    Ok(customers
        .iter()
        .filter_map(|c| erased_at.get(&key_of(c)).map(|at| (c.clone(), *at)))
        .collect())
}
