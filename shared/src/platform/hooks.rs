//! A tenant's event subscriptions, one code path for the API and the ops CLI: create, list,
//! read, change (URL, events, description, enabled), rotate the signing secret, delete.
//!
//! Items as `hooks::dynamodb` lays them out (`TENANT#<pn>`/`HOOK#<id>`, the subscription as
//! JSON in `subscription`, its health beside it, kept by the deliveries). Every change ends
//! with [`refresh_summary`] (the producers read the enabled subscriptions from the tenant's
//! config item) and an audit entry: `hook.create`, `hook.update`, `hook.rotate_secret`,
//! `hook.delete`, never with the secret or the URL's query string.
//!
//! The signing secret (`whsec_` and 32 random bytes, base64url) is shown once, when it is
//! made (create, rotate), and kept only in the tenant's hooks secret,
//! `<HOOKS_SECRET_PREFIX><pn>` = `{"<subscription id>": "<secret>"}`, which the delivery
//! function reads. It is written before the item, so a subscription never exists without
//! one, and removed after the item.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::access::Owner;
use super::audit::{self, Entry};
use super::{Db, PlatformError};
use crate::hooks::dynamodb::{
    self as items, FAILING_SINCE, LAST_ERROR, LAST_FAILURE_AT, LAST_SUCCESS_AT, SUBSCRIPTION,
};
use crate::hooks::{EventType, MAX_SUBSCRIPTIONS, Subscription, check_url};
use crate::store::keys::{self, PK, SK};

type Item = HashMap<String, AttributeValue>;

/// The longest description.
pub const MAX_DESCRIPTION: usize = 200;
pub const ID_PREFIX: &str = "hook_";
pub const SECRET_PREFIX: &str = "whsec_";
const ID_CHARS: usize = 20;
const ID_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
/// Tries of a change that met another writer (the deliveries' health updates, a second
/// person) before it is answered as a conflict.
const ATTEMPTS: usize = 3;

/// A subscription with its delivery health, as the API and the CLI show it (never its
/// secret).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hook {
    #[serde(flatten)]
    pub subscription: Subscription,
    /// Since when every delivery failed (cleared by a success, and by enabling it again).
    pub failing_since: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    /// What the last failed delivery met (a status, a timeout), never the body.
    pub last_error: Option<String>,
}

/// A subscription just given a secret (created, rotated): `secret` is shown this once.
#[derive(Debug, Clone)]
pub struct WithSecret {
    pub hook: Hook,
    pub secret: String,
}

/// What a new subscription says, or an update changes (`None`: unchanged).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields {
    pub url: Option<String>,
    /// Event type names (`message.received`...).
    pub events: Option<Vec<String>>,
    /// `Some(None)` clears it.
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
}

/// The tenants' hooks secrets in Secrets Manager, `<prefix><pn>`.
#[derive(Clone, Debug)]
pub struct HookSecrets {
    pub client: aws_sdk_secretsmanager::Client,
    /// `<stack>/hooks/` (`HOOKS_SECRET_PREFIX`).
    pub prefix: String,
}

impl HookSecrets {
    pub fn new(client: aws_sdk_secretsmanager::Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            prefix: prefix.into(),
        }
    }

    pub fn name(&self, tenant: &str) -> String {
        format!("{}{tenant}", self.prefix)
    }

    /// The tenant's secrets by subscription id; `None` while the tenant has none.
    pub async fn read(&self, tenant: &str) -> Result<Option<Map<String, Value>>, PlatformError> {
        let name = self.name(tenant);
        let output = match self.client.get_secret_value().secret_id(&name).send().await {
            Ok(output) => output,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(error) => return Err(PlatformError::database(error)),
        };
        // Never quote the text: it is the secret.
        serde_json::from_str::<Map<String, Value>>(output.secret_string().unwrap_or_default())
            .map(Some)
            .map_err(|_| PlatformError::Database(format!("the secret {name} is not a JSON object")))
    }

    /// Sets (`Some`) or removes (`None`) one subscription's secret, keeping the others:
    /// read, merge, write, and read back, again when another change of the same tenant's
    /// secret got in between (Secrets Manager has no conditional write).
    async fn set(&self, tenant: &str, id: &str, secret: Option<&str>) -> Result<(), PlatformError> {
        let name = self.name(tenant);
        let holds = |secrets: &Option<Map<String, Value>>| {
            secrets
                .as_ref()
                .and_then(|s| s.get(id))
                .and_then(Value::as_str)
                == secret
        };
        for _ in 0..ATTEMPTS {
            let current = self.read(tenant).await?;
            if holds(&current) {
                return Ok(());
            }
            let mut secrets = current.clone().unwrap_or_default();
            match secret {
                Some(secret) => secrets.insert(id.to_owned(), Value::from(secret)),
                None => secrets.remove(id),
            };
            let text = Value::Object(secrets).to_string();
            if current.is_none() {
                let created = self
                    .client
                    .create_secret()
                    .name(&name)
                    .description("The signing secrets of the tenant's event subscriptions")
                    .secret_string(text)
                    .send()
                    .await;
                match created {
                    Ok(_) => {}
                    // Another change created it first: merge into that one.
                    Err(error)
                        if error
                            .as_service_error()
                            .is_some_and(|e| e.is_resource_exists_exception()) =>
                    {
                        continue;
                    }
                    Err(error) => return Err(PlatformError::database(error)),
                }
            } else {
                self.client
                    .put_secret_value()
                    .secret_id(&name)
                    .secret_string(text)
                    .send()
                    .await
                    .map_err(PlatformError::database)?;
            }
            if holds(&self.read(tenant).await?) {
                return Ok(());
            }
        }
        Err(PlatformError::Conflict(
            "the tenant's hooks secret changed meanwhile: retry".into(),
        ))
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).expect("the operating system's random source");
    bytes
}

fn new_id() -> String {
    let tail: String = random_bytes::<ID_CHARS>()
        .iter()
        .map(|byte| ID_ALPHABET[usize::from(*byte) % ID_ALPHABET.len()] as char)
        .collect();
    format!("{ID_PREFIX}{tail}")
}

fn new_secret() -> String {
    format!(
        "{SECRET_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    )
}

/// Whether `id` can name a subscription (anything else is not found without a read).
pub fn is_id(id: &str) -> bool {
    id.strip_prefix(ID_PREFIX).is_some_and(|tail| {
        tail.len() == ID_CHARS && tail.bytes().all(|b| ID_ALPHABET.contains(&b))
    })
}

/// The subscriber's URL, by [`check_url`]'s rules, as it will be called.
pub fn validate_url(text: &str) -> Result<String, PlatformError> {
    check_url(text)
        .map(String::from)
        .map_err(|rule| PlatformError::invalid("/url", rule.to_string()))
}

/// The event types by their names: at least one, each known, none twice.
pub fn validate_events(names: &[String]) -> Result<Vec<EventType>, PlatformError> {
    if names.is_empty() {
        return Err(PlatformError::invalid("/events", "at least one event type"));
    }
    let mut events = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        let pointer = format!("/events/{index}");
        let Some(event) = EventType::parse(name) else {
            let known: Vec<&str> = EventType::ALL.iter().map(|t| t.name()).collect();
            return Err(PlatformError::invalid(
                pointer,
                format!("unknown event type (one of {})", known.join(", ")),
            ));
        };
        if events.contains(&event) {
            return Err(PlatformError::invalid(
                pointer,
                format!("`{}` is listed twice", event.name()),
            ));
        }
        events.push(event);
    }
    Ok(events)
}

/// At most [`MAX_DESCRIPTION`] characters as sent, no control characters; blank is none.
pub fn validate_description(text: Option<&str>) -> Result<Option<String>, PlatformError> {
    let Some(text) = text else {
        return Ok(None);
    };
    if text.chars().count() > MAX_DESCRIPTION {
        return Err(PlatformError::invalid(
            "/description",
            format!("at most {MAX_DESCRIPTION} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(PlatformError::invalid(
            "/description",
            "no control characters",
        ));
    }
    Ok(Some(text.trim().to_owned()).filter(|text| !text.is_empty()))
}

/// The URL as audit entries name it: without its query string and fragment, where a
/// subscriber may keep a token.
fn url_for_audit(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut url) => {
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
        Err(_) => String::new(),
    }
}

fn key(tenant: &str, id: &str) -> Item {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(keys::tenant(tenant))),
        (SK.to_owned(), AttributeValue::S(keys::hook(id))),
    ])
}

/// A health time as the deliveries keep it: RFC 3339, or Unix seconds.
fn time(item: &Item, name: &str) -> Option<DateTime<Utc>> {
    match item.get(name)? {
        AttributeValue::S(text) => DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        AttributeValue::N(seconds) => Utc.timestamp_opt(seconds.parse().ok()?, 0).single(),
        _ => None,
    }
}

fn from_item(item: &Item) -> Result<Hook, PlatformError> {
    let subscription =
        items::parse(item).map_err(|error| PlatformError::Database(error.to_string()))?;
    Ok(Hook {
        subscription,
        failing_since: time(item, FAILING_SINCE),
        last_success_at: time(item, LAST_SUCCESS_AT),
        last_failure_at: time(item, LAST_FAILURE_AT),
        last_error: item.get(LAST_ERROR).and_then(|v| v.as_s().ok()).cloned(),
    })
}

fn json(subscription: &Subscription) -> AttributeValue {
    AttributeValue::S(serde_json::to_string(subscription).expect("subscriptions serialise"))
}

async fn item(db: &Db, tenant: &str, id: &str) -> Result<Item, PlatformError> {
    if !is_id(id) {
        return Err(PlatformError::NotFound);
    }
    db.client
        .get_item()
        .table_name(&db.table)
        .set_key(Some(key(tenant, id)))
        .consistent_read(true)
        .send()
        .await
        .map_err(PlatformError::database)?
        .item
        .ok_or(PlatformError::NotFound)
}

async fn refresh_summary(db: &Db, tenant: &str) -> Result<(), PlatformError> {
    items::refresh_summary(&db.client, &db.table, tenant)
        .await
        .map(drop)
        .map_err(|error| PlatformError::Database(error.to_string()))
}

/// Records the change in the tenant's log. The change is done already (and a secret may
/// have been made that the answer must show): a failed record is logged as an error for
/// the alarm, and the call still succeeds.
async fn record(
    db: &Db,
    tenant: &str,
    actor: &str,
    action: &str,
    target: &str,
    detail: Value,
    at: DateTime<Utc>,
) {
    let entry = Entry {
        at,
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail,
    };
    if let Err(error) = audit::record(db, &Owner::Tenant(tenant.to_owned()), &entry).await {
        tracing::error!(action, error = %error, "could not record an audit entry");
    }
}

/// The tenant's subscriptions, oldest first.
pub async fn list(db: &Db, tenant: &str) -> Result<Vec<Hook>, PlatformError> {
    let mut hooks = items::items(&db.client, &db.table, tenant)
        .await
        .map_err(|error| PlatformError::Database(error.to_string()))?
        .iter()
        .map(from_item)
        .collect::<Result<Vec<_>, _>>()?;
    hooks.sort_by(|a, b| {
        (a.subscription.created_at, &a.subscription.id)
            .cmp(&(b.subscription.created_at, &b.subscription.id))
    });
    Ok(hooks)
}

/// The tenant's subscription `id` (another tenant's reads as missing).
pub async fn get(db: &Db, tenant: &str, id: &str) -> Result<Hook, PlatformError> {
    from_item(&item(db, tenant, id).await?)
}

async fn tenant_exists(db: &Db, tenant: &str) -> Result<bool, PlatformError> {
    let found = db
        .client
        .get_item()
        .table_name(&db.table)
        .key(PK, AttributeValue::S(keys::tenant(tenant)))
        .key(SK, AttributeValue::S(keys::CONFIG.to_owned()))
        .projection_expression("pk")
        .send()
        .await
        .map_err(PlatformError::database)?;
    Ok(found.item.is_some())
}

/// A new subscription (enabled unless `fields.enabled` says otherwise) and its secret,
/// shown this once. At most [`MAX_SUBSCRIPTIONS`] per tenant.
pub async fn create(
    db: &Db,
    secrets: &HookSecrets,
    tenant: &str,
    fields: &Fields,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<WithSecret, PlatformError> {
    let url = validate_url(
        fields
            .url
            .as_deref()
            .ok_or_else(|| PlatformError::invalid("/url", "required"))?,
    )?;
    let events = validate_events(
        fields
            .events
            .as_deref()
            .ok_or_else(|| PlatformError::invalid("/events", "required"))?,
    )?;
    let description = validate_description(fields.description.clone().flatten().as_deref())?;
    if !tenant_exists(db, tenant).await? {
        return Err(PlatformError::NotFound);
    }
    let existing = items::items(&db.client, &db.table, tenant)
        .await
        .map_err(|error| PlatformError::Database(error.to_string()))?
        .len();
    if existing >= MAX_SUBSCRIPTIONS {
        return Err(PlatformError::Refused(format!(
            "a tenant has at most {MAX_SUBSCRIPTIONS} subscriptions: delete one first"
        )));
    }
    let enabled = fields.enabled.unwrap_or(true);
    let subscription = Subscription {
        id: new_id(),
        url,
        events,
        enabled,
        description,
        created_at: now,
        created_by: actor.to_owned(),
        disabled_reason: (!enabled).then(|| format!("created disabled by {actor}")),
    };
    let secret = new_secret();
    secrets.set(tenant, &subscription.id, Some(&secret)).await?;
    let mut item = key(tenant, &subscription.id);
    item.insert(SUBSCRIPTION.to_owned(), json(&subscription));
    db.client
        .put_item()
        .table_name(&db.table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await
        .map_err(PlatformError::database)?;
    if let Err(error) = refresh_summary(db, tenant).await {
        // Not in the producers' summary, it would never get an event: take it back, so
        // the caller's retry makes it again instead of a second one.
        let _ = db
            .client
            .delete_item()
            .table_name(&db.table)
            .set_key(Some(key(tenant, &subscription.id)))
            .send()
            .await;
        return Err(error);
    }
    record(
        db,
        tenant,
        actor,
        "hook.create",
        &subscription.id,
        serde_json::json!({
            "url": url_for_audit(&subscription.url),
            "events": subscription.events,
            "enabled": subscription.enabled,
        }),
        now,
    )
    .await;
    Ok(WithSecret {
        hook: Hook {
            subscription,
            failing_since: None,
            last_success_at: None,
            last_failure_at: None,
            last_error: None,
        },
        secret,
    })
}

/// Changes what `fields` names. Disabling records who did; enabling clears why it was
/// disabled and since when it failed, so it starts afresh.
pub async fn update(
    db: &Db,
    tenant: &str,
    id: &str,
    fields: &Fields,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Hook, PlatformError> {
    let url = fields.url.as_deref().map(validate_url).transpose()?;
    let events = fields.events.as_deref().map(validate_events).transpose()?;
    let description = fields
        .description
        .as_ref()
        .map(|d| validate_description(d.as_deref()))
        .transpose()?;
    for _ in 0..ATTEMPTS {
        let stored = item(db, tenant, id).await?;
        let current = from_item(&stored)?;
        let mut next = current.subscription.clone();
        if let Some(url) = &url {
            next.url.clone_from(url);
        }
        if let Some(events) = &events {
            next.events.clone_from(events);
        }
        if let Some(description) = &description {
            next.description.clone_from(description);
        }
        let enabling = fields.enabled == Some(true) && !next.enabled;
        match fields.enabled {
            Some(true) if enabling => {
                next.enabled = true;
                next.disabled_reason = None;
            }
            Some(false) if next.enabled => {
                next.enabled = false;
                next.disabled_reason = Some(format!("disabled by {actor}"));
            }
            _ => {}
        }
        if next == current.subscription {
            return Ok(current);
        }
        let update = if enabling {
            "SET #subscription = :next REMOVE #failing_since"
        } else {
            "SET #subscription = :next"
        };
        let mut request = db
            .client
            .update_item()
            .table_name(&db.table)
            .set_key(Some(key(tenant, id)))
            .update_expression(update)
            .condition_expression("#subscription = :current")
            .expression_attribute_names("#subscription", SUBSCRIPTION)
            .expression_attribute_values(":next", json(&next))
            .expression_attribute_values(":current", stored[SUBSCRIPTION].clone());
        if enabling {
            request = request.expression_attribute_names("#failing_since", FAILING_SINCE);
        }
        match request.send().await {
            Ok(_) => {}
            Err(error) if format!("{error:?}").contains("ConditionalCheckFailed") => continue,
            Err(error) => return Err(PlatformError::database(error)),
        }
        refresh_summary(db, tenant).await?;
        let old = &current.subscription;
        let mut detail = Map::new();
        if next.url != old.url {
            detail.insert("url".into(), Value::from(url_for_audit(&next.url)));
        }
        if next.events != old.events {
            detail.insert("events".into(), serde_json::json!(next.events));
        }
        if next.description != old.description {
            detail.insert("description".into(), serde_json::json!(next.description));
        }
        if next.enabled != old.enabled {
            detail.insert("enabled".into(), Value::from(next.enabled));
        }
        record(
            db,
            tenant,
            actor,
            "hook.update",
            id,
            Value::Object(detail),
            now,
        )
        .await;
        return Ok(Hook {
            subscription: next,
            failing_since: if enabling {
                None
            } else {
                current.failing_since
            },
            ..current
        });
    }
    Err(PlatformError::Conflict(
        "the subscription changed meanwhile: read it again".into(),
    ))
}

/// A new secret for the subscription, shown this once; the old one stops signing at once.
pub async fn rotate_secret(
    db: &Db,
    secrets: &HookSecrets,
    tenant: &str,
    id: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<WithSecret, PlatformError> {
    let hook = get(db, tenant, id).await?;
    let secret = new_secret();
    secrets.set(tenant, id, Some(&secret)).await?;
    refresh_summary(db, tenant).await?;
    record(
        db,
        tenant,
        actor,
        "hook.rotate_secret",
        id,
        serde_json::json!({}),
        now,
    )
    .await;
    Ok(WithSecret { hook, secret })
}

/// Deletes the subscription, then its secret.
pub async fn delete(
    db: &Db,
    secrets: &HookSecrets,
    tenant: &str,
    id: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Hook, PlatformError> {
    if !is_id(id) {
        return Err(PlatformError::NotFound);
    }
    let removed = db
        .client
        .delete_item()
        .table_name(&db.table)
        .set_key(Some(key(tenant, id)))
        .condition_expression("attribute_exists(pk)")
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
        .send()
        .await;
    let hook = match removed {
        Ok(output) => from_item(&output.attributes.unwrap_or_default())?,
        Err(error) if format!("{error:?}").contains("ConditionalCheckFailed") => {
            return Err(PlatformError::NotFound);
        }
        Err(error) => return Err(PlatformError::database(error)),
    };
    refresh_summary(db, tenant).await?;
    secrets.set(tenant, id, None).await?;
    record(
        db,
        tenant,
        actor,
        "hook.delete",
        id,
        serde_json::json!({"url": url_for_audit(&hook.subscription.url)}),
        now,
    )
    .await;
    Ok(hook)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    fn pointer_and_detail(error: PlatformError) -> (String, String) {
        match error {
            PlatformError::Invalid { pointer, detail } => (pointer, detail),
            other => panic!("not a validation error: {other}"),
        }
    }

    #[test]
    fn ids_and_secrets_have_their_prefix_and_enough_randomness() {
        let id = new_id();
        assert!(is_id(&id), "{id}");
        assert_ne!(id, new_id());
        assert!(!is_id("hook_short"));
        assert!(!is_id(&id.replace("hook_", "hk_")));
        let secret = new_secret();
        let tail = secret.strip_prefix(SECRET_PREFIX).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(tail).unwrap().len(), 32);
    }

    #[test]
    fn urls_are_refused_with_their_field_and_rule() {
        for (url, rule) in [
            ("http://hooks.example.com/x", "https"),
            ("https://10.0.0.1/x", "private"),
            ("https://169.254.169.254/latest", "link-local"),
            ("https://127.0.0.1/x", "loopback"),
            (
                "https://user:pass@hooks.example.com/x",
                "user name or password",
            ),
            ("not a url", "not a URL"),
        ] {
            let (pointer, detail) = pointer_and_detail(validate_url(url).unwrap_err());
            assert_eq!(pointer, "/url");
            assert!(detail.contains(rule), "{url}: {detail}");
        }
        assert_eq!(
            validate_url("https://n8n.example.com/webhook/abc?token=1").unwrap(),
            "https://n8n.example.com/webhook/abc?token=1"
        );
    }

    #[test]
    fn events_are_known_listed_once_and_at_least_one() {
        assert_eq!(
            validate_events(&names(&["message.received", "nps.answered"])).unwrap(),
            [EventType::MessageReceived, EventType::NpsAnswered]
        );
        let (pointer, detail) = pointer_and_detail(validate_events(&[]).unwrap_err());
        assert_eq!(
            (pointer.as_str(), detail.as_str()),
            ("/events", "at least one event type")
        );
        let (pointer, detail) = pointer_and_detail(
            validate_events(&names(&["message.received", "message.deleted"])).unwrap_err(),
        );
        assert_eq!(pointer, "/events/1");
        assert!(detail.starts_with("unknown event type"), "{detail}");
        assert!(detail.contains("campaign.state_changed"), "{detail}");
        let (pointer, detail) = pointer_and_detail(
            validate_events(&names(&["nps.answered", "message.sent", "nps.answered"])).unwrap_err(),
        );
        assert_eq!(pointer, "/events/2");
        assert!(detail.contains("twice"), "{detail}");
    }

    #[test]
    fn descriptions_are_short_and_blank_is_none() {
        assert_eq!(validate_description(Some("  ")).unwrap(), None);
        assert_eq!(
            validate_description(Some(" CRM sync ")).unwrap().as_deref(),
            Some("CRM sync")
        );
        let long = "x".repeat(MAX_DESCRIPTION + 1);
        let (pointer, detail) = pointer_and_detail(validate_description(Some(&long)).unwrap_err());
        assert_eq!(pointer, "/description");
        assert!(detail.contains("200"), "{detail}");
    }

    #[test]
    fn audit_entries_name_the_url_without_its_query() {
        assert_eq!(
            url_for_audit("https://n8n.example.com/webhook/abc?token=s3cret#frag"),
            "https://n8n.example.com/webhook/abc"
        );
    }
}
