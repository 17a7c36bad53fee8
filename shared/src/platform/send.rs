//! Sending through the platform API: a text inside the customer's 24 h window, or an
//! approved template any time. The call checks the window from the session at once (a text
//! outside it is refused, nothing queued), records the request under a tracking id and puts
//! an [`ApiSend`] event on the inbound queue in the conversation's group: the worker stays
//! the only writer of sessions, decides the window again and sends through the event's
//! outbox, exactly once. [`send_status`] reads where the send stands.
//!
//! Items: `TRACK#<pn>`/`<tracking id>` (`kind: send`, `customer`, `requested_by`,
//! `requested_at`, `request_hash`, `expires_at`), written before the event is queued; the
//! worker's event record `EVT#api-send:<id>` in the conversation; the delivery record
//! `OUT#<wamid>` its statuses move.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Db, PlatformError};
use crate::engine::{self, Effect, Session};
use crate::envelope::{ApiSend, Envelope, Payload, SendContent};
use crate::queue::QueueEntry;
use crate::store::dynamodb::DynamoStore;
use crate::store::keys::{self, EXPIRES_AT, PK, SK};
use crate::store::{EventRecord, Store};
use crate::tenant::MIN_RETENTION_DAYS;
use crate::whatsapp::outbound::limits::TEXT_BODY;

/// Tracking ids: this prefix and 26 base32 characters (128 bits).
pub const TRACKING_PREFIX: &str = "snd_";
/// How long a tracking item (and with it an Idempotency-Key) is kept: the shortest
/// retention a tenant may have, since it names the customer.
pub const TRACKING_KEPT: Duration = Duration::days(MIN_RETENTION_DAYS as i64);
/// Longest `Idempotency-Key` taken.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;
/// Longest template name Meta takes.
pub const MAX_TEMPLATE_NAME: usize = 512;
/// A template's components, as JSON: far above any real template, far below what the
/// queue (256 KiB) and an event record (400 KB) take.
pub const MAX_COMPONENTS_BYTES: usize = 16 * 1024;

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// One send asked for. `tenant` is the tenant's `phone_number_id`; `principal` the caller's
/// id (`key:<id>`, `person:<sub>`).
#[derive(Debug, Clone, Copy)]
pub struct SendRequest<'a> {
    pub tenant: &'a str,
    /// A phone number with or without `+`, or a business-scoped user id (`BR.1502...`).
    pub customer: &'a str,
    pub content: &'a SendContent,
    pub principal: &'a str,
    /// The caller's `Idempotency-Key`: the same key and body give the same tracking id and
    /// one send; the same key with another body is a conflict.
    pub idempotency_key: Option<&'a str>,
}

/// A send accepted: its tracking id and the customer as Meta knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tracking {
    pub id: String,
    pub customer: String,
    pub requested_at: DateTime<Utc>,
}

/// Where a send stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SendState {
    /// Accepted, not sent yet (on the queue, or its outcome not known yet).
    Queued,
    /// Meta took it (`wamid`).
    Sent,
    Delivered,
    Read,
    /// Meta did not deliver it (`error_codes` when Meta gave them).
    Failed,
    /// Not sent: the worker found the 24 h window closed (`reason`).
    Refused,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SendStatus {
    pub id: String,
    pub customer: String,
    pub requested_at: DateTime<Utc>,
    pub status: SendState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wamid: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_codes: Vec<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Meta's form of a customer: a phone number's digits (8 to 15, a `+` in front dropped),
/// or a business-scoped user id as Meta gave it (`CC.` or `CC.ENT.` and up to 128 letters
/// and digits).
pub fn normalise_customer(customer: &str) -> Result<String, PlatformError> {
    let given = customer.trim();
    let digits = given.strip_prefix('+').unwrap_or(given);
    if (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(digits.to_owned());
    }
    if is_business_scoped_id(given) {
        return Ok(given.to_owned());
    }
    Err(PlatformError::invalid(
        "/customer",
        "a phone number of 8 to 15 digits in international form (a leading + is optional, no spaces or signs), or a business-scoped user id such as BR.1502576394655843",
    ))
}

fn is_business_scoped_id(id: &str) -> bool {
    let Some((country, rest)) = id.split_once('.') else {
        return false;
    };
    let rest = rest.strip_prefix("ENT.").unwrap_or(rest);
    country.len() == 2
        && country.bytes().all(|b| b.is_ascii_uppercase())
        && (1..=128).contains(&rest.len())
        && rest.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Checks what a send carries against WhatsApp's rules, naming the field at fault.
pub fn validate_content(content: &SendContent) -> Result<(), PlatformError> {
    match content {
        SendContent::Text { body } => {
            let length = body.chars().count();
            if body.trim().is_empty() {
                Err(PlatformError::invalid(
                    "/content/text/body",
                    "must not be empty",
                ))
            } else if length > TEXT_BODY {
                Err(PlatformError::invalid(
                    "/content/text/body",
                    format!("at most {TEXT_BODY} characters (has {length})"),
                ))
            } else {
                Ok(())
            }
        }
        SendContent::Template {
            name,
            language,
            components,
        } => {
            let name_ok = (1..=MAX_TEMPLATE_NAME).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !name_ok {
                return Err(PlatformError::invalid(
                    "/content/template/name",
                    format!(
                        "the approved template's name: 1 to {MAX_TEMPLATE_NAME} lowercase letters, digits and underscores"
                    ),
                ));
            }
            if !is_language_code(language) {
                return Err(PlatformError::invalid(
                    "/content/template/language",
                    "the template's language code, such as pt_BR, en_US or es",
                ));
            }
            for (index, component) in components.iter().enumerate() {
                let typed = component
                    .get("type")
                    .and_then(|kind| kind.as_str())
                    .is_some_and(|kind| !kind.is_empty());
                if !typed {
                    return Err(PlatformError::invalid(
                        format!("/content/template/components/{index}"),
                        "a Graph API template component: an object with a `type`",
                    ));
                }
            }
            let size = serde_json::to_vec(components).map_or(0, |json| json.len());
            if size > MAX_COMPONENTS_BYTES {
                return Err(PlatformError::invalid(
                    "/content/template/components",
                    format!("at most {MAX_COMPONENTS_BYTES} bytes of JSON (has {size})"),
                ));
            }
            Ok(())
        }
    }
}

/// `pt_BR`, `en_US`, `es`, `zh_HK`, `ha`: Meta's language codes.
fn is_language_code(code: &str) -> bool {
    let (language, region) = code.split_once('_').unwrap_or((code, ""));
    (2..=3).contains(&language.len())
        && language.bytes().all(|b| b.is_ascii_lowercase())
        && (region.is_empty() && !code.contains('_')
            || (2..=4).contains(&region.len()) && region.bytes().all(|b| b.is_ascii_alphabetic()))
}

fn validate_idempotency_key(key: &str) -> Result<(), PlatformError> {
    let printable = key.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if key.trim().is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || !printable {
        return Err(PlatformError::invalid(
            "/header/idempotency-key",
            format!("1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"),
        ));
    }
    Ok(())
}

fn base32(bytes: &[u8; 16]) -> String {
    let mut bits: u128 = u128::from_be_bytes(*bytes);
    // 26 characters of 5 bits hold 130: the last two are zero.
    let mut out = [0u8; 26];
    for slot in out.iter_mut().rev() {
        *slot = BASE32[(bits & 0x1f) as usize];
        bits >>= 5;
    }
    String::from_utf8(out.to_vec()).expect("base32 is ASCII")
}

/// The tracking id: derived from the tenant, the caller and the Idempotency-Key (so a
/// repeat finds the first), or random without a key.
pub fn tracking_id(tenant: &str, principal: &str, idempotency_key: Option<&str>) -> String {
    let mut bytes = [0u8; 16];
    match idempotency_key {
        Some(key) => {
            let mut hasher = Sha256::new();
            for part in ["api-send", tenant, principal, key] {
                hasher.update((part.len() as u64).to_be_bytes());
                hasher.update(part.as_bytes());
            }
            bytes.copy_from_slice(&hasher.finalize()[..16]);
        }
        None => getrandom::getrandom(&mut bytes).expect("the operating system's random source"),
    }
    format!("{TRACKING_PREFIX}{}", base32(&bytes))
}

/// What makes two requests the same: the customer and the content.
fn request_hash(customer: &str, content: &SendContent) -> String {
    let mut hasher = Sha256::new();
    hasher.update(customer.as_bytes());
    hasher.update([0]);
    hasher.update(serde_json::to_vec(content).expect("content serialises"));
    hex::encode(hasher.finalize())
}

fn key(pk: String, sk: String) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(pk)),
        (SK.to_owned(), AttributeValue::S(sk)),
    ])
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

/// The conversation's session, possibly a moment old (the worker decides again).
async fn session(db: &Db, tenant: &str, customer: &str) -> Result<Option<Session>, PlatformError> {
    let output = db
        .client
        .get_item()
        .table_name(&db.table)
        .set_key(Some(key(
            keys::conversation(tenant, customer),
            keys::SESSION.to_owned(),
        )))
        .projection_expression("#session")
        .expression_attribute_names("#session", "session")
        .send()
        .await
        .map_err(PlatformError::database)?;
    output
        .item
        .as_ref()
        .and_then(|item| text(item, "session"))
        .map(|json| {
            serde_json::from_str(&json)
                .map_err(|_| PlatformError::Database("a session is not readable".into()))
        })
        .transpose()
}

/// A tracking item of the tenant, if there is one under `id`.
struct Tracked {
    customer: String,
    requested_at: DateTime<Utc>,
    request_hash: String,
}

async fn tracked(db: &Db, tenant: &str, id: &str) -> Result<Option<Tracked>, PlatformError> {
    let output = db
        .client
        .get_item()
        .table_name(&db.table)
        .set_key(Some(key(keys::tracking(tenant), id.to_owned())))
        .consistent_read(true)
        .send()
        .await
        .map_err(PlatformError::database)?;
    let Some(item) = output.item else {
        return Ok(None);
    };
    let expired = item
        .get(EXPIRES_AT)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<i64>().ok())
        .is_some_and(|at| at <= Utc::now().timestamp());
    if text(&item, "kind").as_deref() != Some("send") || expired {
        return Ok(None);
    }
    let corrupt = || PlatformError::Database("a tracking item is not readable".into());
    Ok(Some(Tracked {
        customer: text(&item, "customer").ok_or_else(corrupt)?,
        requested_at: text(&item, "requested_at")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .ok_or_else(corrupt)?
            .with_timezone(&Utc),
        request_hash: text(&item, "request_hash").ok_or_else(corrupt)?,
    }))
}

/// The answer to a request whose tracking id exists: the same request gets the same
/// tracking; another body under the same key is a conflict.
fn repeat(id: &str, tracked: Tracked, hash: &str) -> Result<Tracking, PlatformError> {
    if tracked.request_hash != hash {
        return Err(PlatformError::Conflict(
            "this Idempotency-Key was used with another request".into(),
        ));
    }
    Ok(Tracking {
        id: id.to_owned(),
        customer: tracked.customer,
        requested_at: tracked.requested_at,
    })
}

async fn enqueue(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    send: ApiSend,
) -> Result<(), PlatformError> {
    let entry = QueueEntry::from_envelope(&Envelope::new(Payload::Send(send)));
    sqs.send_message()
        .queue_url(queue_url)
        .message_group_id(entry.group_id)
        .message_deduplication_id(entry.dedup_id)
        .message_body(entry.body)
        .send()
        .await
        .map_err(|error| {
            PlatformError::Queue(aws_sdk_sqs::error::DisplayErrorContext(error).to_string())
        })?;
    Ok(())
}

/// Accepts a send: validates it, refuses a text outside the 24 h window at once, records
/// the tracking item and queues the event. A repeat (same Idempotency-Key and body) returns
/// the first tracking and queues the event again only while the worker has not handled it
/// (the queue's dedup id and the worker's event record keep that to one send).
pub async fn request_send(
    db: &Db,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    request: &SendRequest<'_>,
    now: DateTime<Utc>,
) -> Result<Tracking, PlatformError> {
    let customer = normalise_customer(request.customer)?;
    validate_content(request.content)?;
    if let Some(key) = request.idempotency_key {
        validate_idempotency_key(key)?;
    }
    let tenant = request.tenant;
    let id = tracking_id(tenant, request.principal, request.idempotency_key);
    let hash = request_hash(&customer, request.content);
    let session = session(db, tenant, &customer).await?;
    if let Err(refusal) = engine::api_send(session.as_ref(), request.content, now) {
        // A repeat of a send accepted while the window was open is still that send.
        if request.idempotency_key.is_some()
            && let Some(tracked) = tracked(db, tenant, &id).await?
        {
            return repeat(&id, tracked, &hash);
        }
        return Err(PlatformError::Refused(refusal.to_string()));
    }
    let mut item = key(keys::tracking(tenant), id.clone());
    for (name, value) in [
        ("kind", "send".to_owned()),
        ("customer", customer.clone()),
        ("requested_by", request.principal.to_owned()),
        ("requested_at", now.to_rfc3339()),
        ("request_hash", hash.clone()),
    ] {
        item.insert(name.into(), AttributeValue::S(value));
    }
    item.insert(
        EXPIRES_AT.into(),
        AttributeValue::N((now + TRACKING_KEPT).timestamp().to_string()),
    );
    let put = db
        .client
        .put_item()
        .table_name(&db.table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await;
    let tracking = match put {
        Ok(_) => Tracking {
            id: id.clone(),
            customer: customer.clone(),
            requested_at: now,
        },
        Err(error) if format!("{error:?}").contains("ConditionalCheckFailed") => {
            let tracked = tracked(db, tenant, &id).await?.ok_or_else(|| {
                PlatformError::Conflict("the request changed while it was recorded".into())
            })?;
            let tracking = repeat(&id, tracked, &hash)?;
            if send_status(db, tenant, &id).await?.map(|s| s.status) != Some(SendState::Queued) {
                return Ok(tracking);
            }
            tracking
        }
        Err(error) => return Err(PlatformError::database(error)),
    };
    enqueue(
        sqs,
        queue_url,
        ApiSend {
            phone_number_id: tenant.to_owned(),
            customer,
            id,
            content: request.content.clone(),
        },
    )
    .await?;
    tracing::info!(tracking_id = %tracking.id, "API send queued");
    Ok(tracking)
}

/// Where the tenant's send `id` stands; `None` when the tenant has no such send (another
/// tenant's id reads the same as a missing one).
pub async fn send_status(
    db: &Db,
    tenant: &str,
    id: &str,
) -> Result<Option<SendStatus>, PlatformError> {
    if !id.starts_with(TRACKING_PREFIX) || id.len() > 64 {
        return Ok(None);
    }
    let Some(tracked) = tracked(db, tenant, id).await? else {
        return Ok(None);
    };
    let mut status = SendStatus {
        id: id.to_owned(),
        customer: tracked.customer.clone(),
        requested_at: tracked.requested_at,
        status: SendState::Queued,
        wamid: None,
        error_codes: Vec::new(),
        reason: None,
    };
    let store = DynamoStore::new(db.client.clone(), db.table.clone());
    let event_key = format!("api-send:{id}");
    let record: Option<EventRecord> = store
        .event_record(tenant, &tracked.customer, &event_key)
        .await
        .map_err(|error| PlatformError::Database(error.to_string()))?;
    let Some(record) = record else {
        return Ok(Some(status));
    };
    let Some(sequence) = record
        .effects
        .iter()
        .position(|effect| matches!(effect, Effect::Send { .. }))
    else {
        status.status = SendState::Refused;
        status.reason = record.text;
        return Ok(Some(status));
    };
    if record.done <= sequence {
        return Ok(Some(status));
    }
    if let Some(code) = record.failed.get(&sequence) {
        // Meta refused it when it was sent.
        status.status = SendState::Failed;
        status.error_codes = code.iter().copied().collect();
        return Ok(Some(status));
    }
    let Some(wamid) = record.sent.first().cloned() else {
        status.status = SendState::Failed;
        return Ok(Some(status));
    };
    status.status = SendState::Sent;
    let delivery = db
        .client
        .get_item()
        .table_name(&db.table)
        .set_key(Some(key(keys::outbound(&wamid), keys::STATUS.to_owned())))
        .send()
        .await
        .map_err(PlatformError::database)?
        .item;
    if let Some(delivery) = delivery {
        status.status = match text(&delivery, "status").as_deref() {
            Some("delivered") => SendState::Delivered,
            Some("read" | "played") => SendState::Read,
            Some("failed") => SendState::Failed,
            _ => SendState::Sent,
        };
        status.error_codes = text(&delivery, "error_codes")
            .unwrap_or_default()
            .split(',')
            .filter_map(|code| code.trim().parse().ok())
            .collect();
    }
    status.wamid = Some(wamid);
    Ok(Some(status))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn customers_are_read_as_meta_writes_them() {
        assert_eq!(
            normalise_customer("+5511987654321").unwrap(),
            "5511987654321"
        );
        assert_eq!(
            normalise_customer("5511987654321").unwrap(),
            "5511987654321"
        );
        assert_eq!(
            normalise_customer("BR.1502576394655843").unwrap(),
            "BR.1502576394655843"
        );
        assert_eq!(
            normalise_customer("US.ENT.11815799212886844830").unwrap(),
            "US.ENT.11815799212886844830"
        );
        for wrong in [
            "",
            "+",
            "1234567",
            "1234567890123456",
            "+55 11 98765-4321",
            "55-11",
            "br.123",
            "BR.",
            "++5511987654321",
        ] {
            match normalise_customer(wrong) {
                Err(PlatformError::Invalid { pointer, .. }) => assert_eq!(pointer, "/customer"),
                other => panic!("{wrong:?}: {other:?}"),
            }
        }
    }

    fn pointer(content: &SendContent) -> String {
        match validate_content(content) {
            Err(PlatformError::Invalid { pointer, .. }) => pointer,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn content_is_checked_field_by_field() {
        let text = |body: &str| SendContent::Text { body: body.into() };
        assert!(validate_content(&text("Olá")).is_ok());
        assert!(validate_content(&text(&"ç".repeat(4096))).is_ok());
        assert_eq!(pointer(&text(&"a".repeat(4097))), "/content/text/body");
        assert_eq!(pointer(&text("  ")), "/content/text/body");
        let template = |name: &str, language: &str, components| SendContent::Template {
            name: name.into(),
            language: language.into(),
            components,
        };
        for language in ["pt_BR", "en", "en_US", "zh_HK", "ha"] {
            assert!(
                validate_content(&template("pedido_pronto", language, vec![])).is_ok(),
                "{language}"
            );
        }
        assert_eq!(
            pointer(&template("Pedido Pronto", "pt_BR", vec![])),
            "/content/template/name"
        );
        assert_eq!(
            pointer(&template("", "pt_BR", vec![])),
            "/content/template/name"
        );
        for language in ["", "pt-BR", "PT_BR", "pt_", "portuguese"] {
            assert_eq!(
                pointer(&template("a", language, vec![])),
                "/content/template/language",
                "{language}"
            );
        }
        let components = vec![
            json!({"type": "body", "parameters": []}),
            json!({"parameters": []}),
        ];
        assert_eq!(
            pointer(&template("a", "pt_BR", components)),
            "/content/template/components/1"
        );
        let huge = vec![
            json!({"type": "body", "parameters": [{"type": "text", "text": "x".repeat(MAX_COMPONENTS_BYTES)}]}),
        ];
        assert_eq!(
            pointer(&template("a", "pt_BR", huge)),
            "/content/template/components"
        );
    }

    #[test]
    fn tracking_ids_follow_the_key_and_have_their_shape() {
        let id = tracking_id("111", "key:abc", Some("k1"));
        assert_eq!(id, tracking_id("111", "key:abc", Some("k1")));
        assert_ne!(id, tracking_id("111", "key:abd", Some("k1")), "per caller");
        assert_ne!(id, tracking_id("112", "key:abc", Some("k1")), "per tenant");
        assert_ne!(
            tracking_id("111", "key:abc", None),
            tracking_id("111", "key:abc", None)
        );
        for id in [id, tracking_id("111", "key:abc", None)] {
            let tail = id.strip_prefix(TRACKING_PREFIX).unwrap();
            assert_eq!(tail.len(), 26);
            assert!(tail.bytes().all(|b| BASE32.contains(&b)), "{id}");
        }
    }

    #[test]
    fn idempotency_keys_are_printable_and_bounded() {
        assert!(validate_idempotency_key("order-4711/retry 1").is_ok());
        for wrong in ["", " ", "é", "a\nb", &"k".repeat(256)] {
            assert!(validate_idempotency_key(wrong).is_err(), "{wrong:?}");
        }
    }
}
