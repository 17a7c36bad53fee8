//! The subscriptions' items, shared by the subscription routes (create, change, delete) and
//! the delivery function (health, disabling one that fails for days).
//!
//! | item | pk | sk |
//! | --- | --- | --- |
//! | a subscription (`subscription`: JSON of [`Subscription`]; `failing_since`, `last_success_at`, `last_failure_at`, `last_error` kept by the deliveries) | `TENANT#<pn>` | `HOOK#<id>` |
//! | the producers' summary of the enabled ones (`hooks`: JSON of [`Subscribed`]s) | `TENANT#<pn>` | `CONFIG` |
//!
//! Every change of a subscription ends with [`refresh_summary`], which rewrites `hooks` on
//! the config item from the subscriptions themselves, so two writers converge on what is
//! stored.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{Subscribed, Subscription, summary};
use crate::store::StoreError;
use crate::store::keys::{self, PK, SK};

pub const SUBSCRIPTION: &str = "subscription";
pub const FAILING_SINCE: &str = "failing_since";
pub const LAST_SUCCESS_AT: &str = "last_success_at";
pub const LAST_FAILURE_AT: &str = "last_failure_at";
pub const LAST_ERROR: &str = "last_error";

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
