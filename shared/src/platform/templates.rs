//! The tenant's message templates as the stack knows them: the `WABA#<waba_id>` /
//! `TEMPLATE#<name>#<language>` items, written by Meta's template webhooks (through the
//! worker) and by a sync from Graph's list. A sync counts as Meta's word at the time it
//! ran: a webhook older than it changes nothing.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Db, PlatformError};
use crate::envelope::{Signal, WabaSignal};
use crate::store::Store;
use crate::store::dynamodb::DynamoStore;
use crate::store::keys::{self, SK};
use crate::support::deadline::Deadline;
use crate::tenant::Tenant;
use crate::whatsapp::{TemplateCatalog, TemplateListing};

/// A template as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredTemplate {
    pub name: String,
    pub language: String,
    /// Meta's latest status (APPROVED, PAUSED, DISABLED, ...).
    pub status: Option<String>,
    pub category: Option<String>,
    pub reason: Option<String>,
    /// Meta's latest quality score (GREEN, YELLOW, RED, UNKNOWN), once a webhook gave one.
    pub quality: Option<String>,
    /// When Meta said the status.
    pub at: Option<DateTime<Utc>>,
}

/// The tenant, or [`PlatformError::NotFound`].
pub async fn tenant(db: &Db, phone_number_id: &str) -> Result<Tenant, PlatformError> {
    store(db)
        .tenant(phone_number_id)
        .await
        .map_err(|e| PlatformError::Database(e.to_string()))?
        .ok_or(PlatformError::NotFound)
}

fn store(db: &Db) -> DynamoStore {
    DynamoStore::new(db.client.clone(), db.table.clone())
}

/// The account's templates as stored, by name then language.
pub async fn stored(db: &Db, waba_id: &str) -> Result<Vec<StoredTemplate>, PlatformError> {
    let mut templates = Vec::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let page = db
            .client
            .query()
            .table_name(&db.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", AttributeValue::S(keys::waba(waba_id)))
            .expression_attribute_values(":prefix", AttributeValue::S("TEMPLATE#".into()))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(PlatformError::database)?;
        templates.extend(page.items().iter().filter_map(template_of));
        match page.last_evaluated_key {
            Some(key) => start = Some(key),
            None => return Ok(templates),
        }
    }
}

fn template_of(item: &HashMap<String, AttributeValue>) -> Option<StoredTemplate> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    };
    let sk = text(SK)?;
    let (name, language) = sk.strip_prefix("TEMPLATE#")?.rsplit_once('#')?;
    let at = match item.get("at") {
        Some(AttributeValue::N(at)) => at
            .parse()
            .ok()
            .and_then(|at| DateTime::from_timestamp(at, 0)),
        _ => None,
    };
    Some(StoredTemplate {
        name: name.to_owned(),
        language: language.to_owned(),
        status: text("status"),
        category: text("category"),
        reason: text("reason"),
        quality: text("quality"),
        at,
    })
}

/// Reads the account's templates from Graph (with the tenant's token) and stores each as
/// Meta's word at `now`. Returns what Graph listed.
pub async fn sync<C: TemplateCatalog>(
    db: &Db,
    catalog: &C,
    waba_id: &str,
    token: &str,
    now: DateTime<Utc>,
    deadline: Deadline,
) -> Result<Vec<TemplateListing>, PlatformError> {
    let listings = catalog
        .templates(waba_id, token, deadline)
        .await
        .map_err(|e| PlatformError::Refused(format!("Graph's template list: {e}")))?;
    let store = store(db);
    for listing in &listings {
        let signal = WabaSignal {
            waba_id: waba_id.to_owned(),
            at: now.timestamp(),
            signal: Signal::TemplateStatus {
                name: listing.name.clone(),
                language: listing.language.clone(),
                event: listing.status.clone(),
                category: listing.category.clone(),
                reason: None,
            },
        };
        store
            .record_waba_signal(&signal)
            .await
            .map_err(|e| PlatformError::Database(e.to_string()))?;
    }
    Ok(listings)
}
