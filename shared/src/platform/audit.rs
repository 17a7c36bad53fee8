//! The audit log: every change to configuration, keys, members, approvals and every data
//! request, with who made it and when. Entries name customers only by hash.
//!
//! Items: `AUDIT#<owner>`/`<RFC 3339 ms>#<random>`, newest last in key order; kept two years.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::access::Owner;
use super::{Continuation, Db, Page, PlatformError};
use crate::store::keys::{self, EXPIRES_AT, PK, SK};

/// One change, as recorded and listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub at: DateTime<Utc>,
    /// `key:<id>` or `person:<sub>`.
    pub actor: String,
    /// What was done: `key.create`, `member.remove`, `tenant.update`, ...
    pub action: String,
    /// What it was done to: a key id, a person's sub, a version, a tracking id.
    pub target: String,
    /// Details without customer data in clear (a number appears as its hash).
    pub detail: serde_json::Value,
}

pub async fn record(db: &Db, owner: &Owner, entry: &Entry) -> Result<(), PlatformError> {
    let sk = keys::audit_entry(entry.at, fastrand::u32(..));
    let item: HashMap<String, AttributeValue> = [
        (PK, AttributeValue::S(keys::audit(owner.key()))),
        (SK, AttributeValue::S(sk)),
        ("actor", AttributeValue::S(entry.actor.clone())),
        ("action", AttributeValue::S(entry.action.clone())),
        ("target", AttributeValue::S(entry.target.clone())),
        ("detail", AttributeValue::S(entry.detail.to_string())),
        (
            EXPIRES_AT,
            AttributeValue::N((entry.at + keys::AUDIT_KEPT).timestamp().to_string()),
        ),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    db.client
        .put_item()
        .table_name(&db.table)
        .set_item(Some(item))
        .send()
        .await
        .map_err(PlatformError::database)?;
    Ok(())
}

/// The owner's entries, newest first.
pub async fn list(
    db: &Db,
    owner: &Owner,
    limit: i32,
    from: Option<&Continuation>,
) -> Result<Page<Entry>, PlatformError> {
    let page = db
        .client
        .query()
        .table_name(&db.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(keys::audit(owner.key())))
        .scan_index_forward(false)
        .limit(limit)
        .set_exclusive_start_key(from.map(Continuation::start_key))
        .send()
        .await
        .map_err(PlatformError::database)?;
    let text = |item: &HashMap<String, AttributeValue>, name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let items = page
        .items()
        .iter()
        .map(|item| {
            let sk = text(item, SK);
            let at = sk
                .split_once('#')
                .and_then(|(at, _)| DateTime::parse_from_rfc3339(at).ok())
                .ok_or_else(|| PlatformError::Database("an audit entry is not readable".into()))?;
            Ok(Entry {
                at: at.with_timezone(&Utc),
                actor: text(item, "actor"),
                action: text(item, "action"),
                target: text(item, "target"),
                detail: serde_json::from_str(&text(item, "detail"))
                    .unwrap_or(serde_json::Value::Null),
            })
        })
        .collect::<Result<_, PlatformError>>()?;
    Ok(Page {
        items,
        next: Continuation::from_last_evaluated(page.last_evaluated_key()),
    })
}
