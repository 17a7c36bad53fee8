//! API keys: `sdk_<p|t>_<id>_<secret>`, shown once at creation and stored only as the
//! SHA-256 of the whole key. The 32 random bytes of the secret cannot be guessed at any hash
//! speed, so a plain hash is enough (a slow password hash would only cost CPU per call), and
//! looking a key up by its hash means no secret is ever compared in our code.
//!
//! Items: `APIKEY#<sha256 hex>`/`KEY` (what authentication reads: one strongly consistent
//! GetItem, so a revocation holds at once) and `KEYS#<owner>`/`<id>` (the owner's list,
//! with the hash so revocation finds the other item). Both carry the same metadata.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::access::{Owner, Scope};
use super::{Continuation, Db, Page, PlatformError};
use crate::store::keys::{PK, SK};

/// How stale `last_used_at` may get before a call refreshes it: one write per key and hour,
/// not one per call.
const LAST_USED_GRANULARITY: Duration = Duration::hours(1);
const ID_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
pub const MAX_NAME: usize = 80;

/// A key's metadata, as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    /// Public: shown in lists and in the key itself (`sdk_t_<id>_...`).
    pub id: String,
    #[serde(skip)]
    pub owner: Owner,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A key just created: `secret` is the whole key, shown this once.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub secret: String,
    pub key: ApiKey,
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).expect("the operating system's random source");
    bytes
}

fn new_id() -> String {
    random_bytes::<8>()
        .iter()
        .map(|byte| ID_ALPHABET[usize::from(*byte) % ID_ALPHABET.len()] as char)
        .collect()
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `token` has the shape of one of our keys (so the caller is not a JWT).
pub fn looks_like_key(token: &str) -> bool {
    token.starts_with("sdk_")
}

fn item_key(pk: String, sk: &str) -> std::collections::HashMap<String, AttributeValue> {
    [
        (PK.to_owned(), AttributeValue::S(pk)),
        (SK.to_owned(), AttributeValue::S(sk.to_owned())),
    ]
    .into()
}

fn metadata(key: &ApiKey, hashed: &str) -> std::collections::HashMap<String, AttributeValue> {
    [
        ("key_id", AttributeValue::S(key.id.clone())),
        ("owner", AttributeValue::S(key.owner.key().to_owned())),
        ("name", AttributeValue::S(key.name.clone())),
        (
            "scopes",
            AttributeValue::L(
                key.scopes
                    .iter()
                    .map(|s| AttributeValue::S(s.as_str().into()))
                    .collect(),
            ),
        ),
        ("created_by", AttributeValue::S(key.created_by.clone())),
        ("created_at", AttributeValue::S(key.created_at.to_rfc3339())),
        ("hash", AttributeValue::S(hashed.to_owned())),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

fn text(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn time(
    item: &std::collections::HashMap<String, AttributeValue>,
    name: &str,
) -> Option<DateTime<Utc>> {
    text(item, name)
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn from_item(
    item: &std::collections::HashMap<String, AttributeValue>,
) -> Result<ApiKey, PlatformError> {
    let corrupt = || PlatformError::Database("an API key item is not readable".into());
    let scopes = item
        .get("scopes")
        .and_then(|v| v.as_l().ok())
        .ok_or_else(corrupt)?
        .iter()
        .map(|v| v.as_s().ok().and_then(|s| s.parse().ok()))
        .collect::<Option<Vec<Scope>>>()
        .ok_or_else(corrupt)?;
    Ok(ApiKey {
        id: text(item, "key_id").ok_or_else(corrupt)?,
        owner: Owner::from_key(&text(item, "owner").ok_or_else(corrupt)?),
        name: text(item, "name").unwrap_or_default(),
        scopes,
        created_by: text(item, "created_by").unwrap_or_default(),
        created_at: time(item, "created_at").ok_or_else(corrupt)?,
        revoked_at: time(item, "revoked_at"),
        last_used_at: time(item, "last_used_at"),
    })
}

/// Checks a new key's name and scopes: the field at fault is named.
pub fn validate(name: &str, scopes: &[Scope]) -> Result<(), PlatformError> {
    if name.trim().is_empty() || name.chars().count() > MAX_NAME {
        return Err(PlatformError::invalid(
            "/name",
            format!("1 to {MAX_NAME} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(PlatformError::invalid("/name", "no control characters"));
    }
    if scopes.is_empty() {
        return Err(PlatformError::invalid("/scopes", "at least one scope"));
    }
    Ok(())
}

/// Creates a key for `owner`; the secret in the answer is never stored.
pub async fn create(
    db: &Db,
    owner: Owner,
    name: &str,
    scopes: &[Scope],
    created_by: &str,
    now: DateTime<Utc>,
) -> Result<NewKey, PlatformError> {
    validate(name, scopes)?;
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    let id = new_id();
    let kind = if owner == Owner::Platform { "p" } else { "t" };
    let secret = format!(
        "sdk_{kind}_{id}_{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    );
    let hashed = hash(&secret);
    let key = ApiKey {
        id: id.clone(),
        owner: owner.clone(),
        name: name.trim().to_owned(),
        scopes,
        created_by: created_by.to_owned(),
        created_at: now,
        revoked_at: None,
        last_used_at: None,
    };
    let put = |pk: String, sk: &str| -> Result<TransactWriteItem, PlatformError> {
        let mut item = metadata(&key, &hashed);
        item.extend(item_key(pk, sk));
        let put = Put::builder()
            .table_name(&db.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(PlatformError::database)?;
        Ok(TransactWriteItem::builder().put(put).build())
    };
    db.client
        .transact_write_items()
        .transact_items(put(format!("APIKEY#{hashed}"), "KEY")?)
        .transact_items(put(format!("KEYS#{}", owner.key()), &id)?)
        .send()
        .await
        .map_err(PlatformError::database)?;
    Ok(NewKey { secret, key })
}

/// The key `secret` names, unless it is unknown or revoked. Refreshes `last_used_at` at most
/// once an hour.
pub async fn authenticate(
    db: &Db,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<Option<ApiKey>, PlatformError> {
    if !looks_like_key(secret) || secret.len() > 200 {
        return Ok(None);
    }
    let hashed = hash(secret);
    let found = db
        .client
        .get_item()
        .table_name(&db.table)
        .set_key(Some(item_key(format!("APIKEY#{hashed}"), "KEY")))
        .consistent_read(true)
        .send()
        .await
        .map_err(PlatformError::database)?;
    let Some(item) = found.item else {
        return Ok(None);
    };
    let key = from_item(&item)?;
    if key.revoked_at.is_some() {
        return Ok(None);
    }
    if key
        .last_used_at
        .is_none_or(|at| now - at > LAST_USED_GRANULARITY)
    {
        touch(db, &key, &hashed, now).await;
    }
    Ok(Some(key))
}

/// Best effort: a failed refresh of `last_used_at` must not fail the call it describes.
async fn touch(db: &Db, key: &ApiKey, hashed: &str, now: DateTime<Utc>) {
    let stamp = AttributeValue::S(now.to_rfc3339());
    let update = |pk: String, sk: &str| {
        Update::builder()
            .table_name(&db.table)
            .set_key(Some(item_key(pk, sk)))
            .update_expression("SET last_used_at = :now")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", stamp.clone())
            .build()
            .map(|update| TransactWriteItem::builder().update(update).build())
    };
    let (Ok(own), Ok(listed)) = (
        update(format!("APIKEY#{hashed}"), "KEY"),
        update(format!("KEYS#{}", key.owner.key()), &key.id),
    ) else {
        return;
    };
    if let Err(error) = db
        .client
        .transact_write_items()
        .transact_items(own)
        .transact_items(listed)
        .send()
        .await
    {
        tracing::warn!(key_id = %key.id, error = %PlatformError::database(error), "could not record the key's last use");
    }
}

/// The owner's keys, oldest first, revoked ones included (with `revoked_at`).
pub async fn list(
    db: &Db,
    owner: &Owner,
    limit: i32,
    from: Option<&Continuation>,
) -> Result<Page<ApiKey>, PlatformError> {
    let page = db
        .client
        .query()
        .table_name(&db.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("KEYS#{}", owner.key())))
        .limit(limit)
        .set_exclusive_start_key(from.map(Continuation::start_key))
        .send()
        .await
        .map_err(PlatformError::database)?;
    Ok(Page {
        items: page
            .items()
            .iter()
            .map(from_item)
            .collect::<Result<_, _>>()?,
        next: Continuation::from_last_evaluated(page.last_evaluated_key()),
    })
}

/// Revokes the owner's key `id`: [`PlatformError::NotFound`] when the owner has no such key.
/// Revoking twice keeps the first time.
pub async fn revoke(
    db: &Db,
    owner: &Owner,
    id: &str,
    now: DateTime<Utc>,
) -> Result<ApiKey, PlatformError> {
    let listed = db
        .client
        .get_item()
        .table_name(&db.table)
        .set_key(Some(item_key(format!("KEYS#{}", owner.key()), id)))
        .consistent_read(true)
        .send()
        .await
        .map_err(PlatformError::database)?
        .item
        .ok_or(PlatformError::NotFound)?;
    let mut key = from_item(&listed)?;
    if key.revoked_at.is_some() {
        return Ok(key);
    }
    let hashed = text(&listed, "hash")
        .ok_or_else(|| PlatformError::Database("an API key item has no hash".into()))?;
    let stamp = AttributeValue::S(now.to_rfc3339());
    let update = |pk: String, sk: &str| -> Result<TransactWriteItem, PlatformError> {
        let update = Update::builder()
            .table_name(&db.table)
            .set_key(Some(item_key(pk, sk)))
            .update_expression("SET revoked_at = if_not_exists(revoked_at, :now)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", stamp.clone())
            .build()
            .map_err(PlatformError::database)?;
        Ok(TransactWriteItem::builder().update(update).build())
    };
    db.client
        .transact_write_items()
        .transact_items(update(format!("APIKEY#{hashed}"), "KEY")?)
        .transact_items(update(format!("KEYS#{}", owner.key()), id)?)
        .send()
        .await
        .map_err(PlatformError::database)?;
    key.revoked_at = Some(now);
    Ok(key)
}
