//! The tenant's suppression list through the API and the ops CLI: a tenant records an
//! opt-out made elsewhere (`source: api`) or an opt-in, and reads whether a customer is
//! listed. The list holds hashes only ([`keys::customer_hash`]); every change is audited
//! by that hash.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::access::Owner;
use super::rights::check_customer;
use super::{Db, PlatformError, audit};
use crate::store::dynamodb::DynamoStore;
use crate::store::keys;
use crate::store::{Store, Suppressed, SuppressionChange, SuppressionSource};

fn store(db: &Db) -> DynamoStore {
    DynamoStore::new(db.client.clone(), db.table.clone())
}

/// The customer's entry on the tenant's list, if any.
pub async fn get(
    db: &Db,
    phone_number_id: &str,
    customer: &str,
) -> Result<Option<Suppressed>, PlatformError> {
    check_customer(customer)?;
    store(db)
        .suppression(phone_number_id, customer)
        .await
        .map_err(|e| PlatformError::Database(e.to_string()))
}

/// Puts the customer on the list (an opt-out made elsewhere); an entry already there is
/// kept as it is. Returns the entry.
pub async fn suppress(
    db: &Db,
    phone_number_id: &str,
    customer: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Suppressed, PlatformError> {
    if let Some(entry) = get(db, phone_number_id, customer).await? {
        return Ok(entry);
    }
    // Stored in seconds: answered as it will read back.
    let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
    let change = SuppressionChange::Suppress {
        ids: vec![customer.to_owned()],
        source: SuppressionSource::Api,
        since: now,
    };
    change_and_audit(db, phone_number_id, customer, &change, actor, now).await?;
    Ok(Suppressed {
        since: now,
        source: SuppressionSource::Api,
    })
}

/// Takes the customer off the list (an opt-in made elsewhere); returns whether they were on it.
pub async fn allow(
    db: &Db,
    phone_number_id: &str,
    customer: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<bool, PlatformError> {
    if get(db, phone_number_id, customer).await?.is_none() {
        return Ok(false);
    }
    let change = SuppressionChange::Allow {
        ids: vec![customer.to_owned()],
    };
    change_and_audit(db, phone_number_id, customer, &change, actor, now).await?;
    Ok(true)
}

async fn change_and_audit(
    db: &Db,
    phone_number_id: &str,
    customer: &str,
    change: &SuppressionChange,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), PlatformError> {
    store(db)
        .change_suppression(phone_number_id, change)
        .await
        .map_err(|e| PlatformError::Database(e.to_string()))?;
    let action = match change {
        SuppressionChange::Suppress { .. } => "suppression.add",
        SuppressionChange::Allow { .. } => "suppression.remove",
    };
    audit::record(
        db,
        &Owner::Tenant(phone_number_id.to_owned()),
        &audit::Entry {
            at: now,
            actor: actor.to_owned(),
            action: action.into(),
            target: keys::customer_hash(phone_number_id, customer),
            detail: json!({}),
        },
    )
    .await
}
