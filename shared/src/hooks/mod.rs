//! Events out: what a tenant's subscribers (n8n, Typebot, the tenant's own systems) receive,
//! and the rules every part of the path shares.
//!
//! The worker (and the other producers) put at most one [`HookMessage::Batch`] per record on
//! the hooks queue, and only when the tenant's config item lists a subscription that wants
//! one of the record's events ([`Subscribed`], read with the tenant: no extra call). The
//! hook-delivery function matches each event with the tenant's current subscriptions, signs
//! and posts it, and puts a failed delivery back on the queue alone as a
//! [`HookMessage::Retry`] with a growing delay.
//!
//! Signing ([`signature`], [`verify`]): `X-Hook-Signature: t=<unix seconds>,v1=<hex>`, the
//! HMAC-SHA256 of `<t>.<raw body>` under the subscription's secret. A subscriber recomputes it
//! over the raw bytes, compares in constant time and refuses a `t` outside its replay window
//! ([`REPLAY_WINDOW`]); the event's `id` is stable across retries, so a subscriber drops what
//! it has already seen.
//!
//! Where a subscriber may live ([`check_url`], [`is_public`]): https only, no credentials in
//! the URL, and every address the host resolves to public: never private, loopback,
//! link-local, shared (CGNAT), multicast or reserved. The delivery connects only to the
//! addresses it checked and never follows a redirect.

use std::net::{IpAddr, Ipv4Addr};

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// The events' JSON version (`v`). A breaking change gets a new number; fields are added
/// within a version.
pub const EVENT_VERSION: u32 = 1;
/// The queue messages' version; a delivery function that meets another one fails the
/// record, it never guesses.
pub const MESSAGE_VERSION: u32 = 1;

pub const SIGNATURE_HEADER: &str = "x-hook-signature";
pub const EVENT_ID_HEADER: &str = "x-hook-event-id";
pub const EVENT_TYPE_HEADER: &str = "x-hook-event-type";
/// How far a signature's timestamp may be from the subscriber's clock; older deliveries
/// are refused as replays. Each retry is signed afresh, so a late retry still passes.
pub const REPLAY_WINDOW: chrono::Duration = chrono::Duration::minutes(5);
/// Subscriptions per tenant.
pub const MAX_SUBSCRIPTIONS: usize = 10;
/// How long a failed delivery is tried again, from its first failure; then it is given up.
pub const RETRY_HORIZON: chrono::Duration = chrono::Duration::hours(24);
/// The oldest event delivered: the hooks queue keeps a message 2 days, and a retry goes on
/// for [`RETRY_HORIZON`] after that. Anything older (a message redriven from the dead-letter
/// queue) is given up. Below the shortest retention a tenant may set, and what the erased
/// customers' items outlive (`store::keys::ERASED_KEPT_DAYS`).
pub const MAX_EVENT_AGE: chrono::Duration = chrono::Duration::days(3);

/// What happened. The wire names (`message.received`...) are the `type` of an event and
/// what a subscription lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    /// A customer's message (text, a tapped choice, media ids).
    #[serde(rename = "message.received")]
    MessageReceived,
    /// A message the stack sent: the bot's, the AI attendant's, an agent's, the API's.
    #[serde(rename = "message.sent")]
    MessageSent,
    /// Meta's delivery status of a message the stack sent.
    #[serde(rename = "message.status")]
    MessageStatus,
    /// A new conversation (the first message, or the first after the session timed out).
    #[serde(rename = "conversation.started")]
    ConversationStarted,
    /// The bot handed the conversation to a department's queue.
    #[serde(rename = "conversation.handed_over")]
    ConversationHandedOver,
    /// An agent took the conversation on the desk.
    #[serde(rename = "conversation.assigned")]
    ConversationAssigned,
    /// The conversation ended (resolved on the desk, or left by the customer).
    #[serde(rename = "conversation.closed")]
    ConversationClosed,
    /// The customer answered the satisfaction survey.
    #[serde(rename = "nps.answered")]
    NpsAnswered,
    /// The customer opted out of campaigns (their words or Meta's marketing preference).
    #[serde(rename = "customer.opted_out")]
    CustomerOptedOut,
    /// The customer opted back in.
    #[serde(rename = "customer.opted_in")]
    CustomerOptedIn,
    /// A campaign moved (submitted, approved, started, paused, resumed, cancelled, done).
    #[serde(rename = "campaign.state_changed")]
    CampaignStateChanged,
}

impl EventType {
    pub const ALL: [EventType; 11] = [
        EventType::MessageReceived,
        EventType::MessageSent,
        EventType::MessageStatus,
        EventType::ConversationStarted,
        EventType::ConversationHandedOver,
        EventType::ConversationAssigned,
        EventType::ConversationClosed,
        EventType::NpsAnswered,
        EventType::CustomerOptedOut,
        EventType::CustomerOptedIn,
        EventType::CampaignStateChanged,
    ];

    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            EventType::MessageReceived => "message.received",
            EventType::MessageSent => "message.sent",
            EventType::MessageStatus => "message.status",
            EventType::ConversationStarted => "conversation.started",
            EventType::ConversationHandedOver => "conversation.handed_over",
            EventType::ConversationAssigned => "conversation.assigned",
            EventType::ConversationClosed => "conversation.closed",
            EventType::NpsAnswered => "nps.answered",
            EventType::CustomerOptedOut => "customer.opted_out",
            EventType::CustomerOptedIn => "customer.opted_in",
            EventType::CampaignStateChanged => "campaign.state_changed",
        }
    }

    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Events that carry what a customer wrote or received: they follow the tenant's
    /// retention and a customer's erasure.
    pub fn carries_customer_data(self) -> bool {
        self != EventType::CampaignStateChanged
    }
}

/// One event as a subscriber receives it (the request body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookEvent {
    pub v: u32,
    /// Stable across retries and redeliveries: the subscriber's deduplication key.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub occurred_at: DateTime<Utc>,
    /// The tenant: its number id.
    pub phone_number_id: String,
    /// The customer (a phone number or Meta's business-scoped user id), for events of a
    /// conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// The type's own fields (see `docs/hooks.md`).
    pub data: Value,
}

impl HookEvent {
    /// An event of `source` (a record's idempotency key, a campaign move's id): the `index`th
    /// one it produced, so the same source always yields the same ids.
    pub fn new(
        event_type: EventType,
        source: &str,
        index: usize,
        occurred_at: DateTime<Utc>,
        phone_number_id: &str,
        customer: Option<&str>,
        data: Value,
    ) -> Self {
        HookEvent {
            v: EVENT_VERSION,
            id: event_id(phone_number_id, source, index),
            event_type,
            occurred_at,
            phone_number_id: phone_number_id.into(),
            customer: customer.map(Into::into),
            data,
        }
    }
}

/// `evt_` and 32 hex digits of a hash of the tenant, the source and the index: it names
/// neither the customer nor the message.
pub fn event_id(phone_number_id: &str, source: &str, index: usize) -> String {
    let digest = Sha256::new()
        .chain_update(phone_number_id.as_bytes())
        .chain_update([0])
        .chain_update(source.as_bytes())
        .chain_update([0])
        .chain_update(index.to_be_bytes())
        .finalize();
    format!("evt_{}", hex::encode(&digest[..16]))
}

/// A subscription as the producers see it, on the tenant's config item (`hooks`): enough to
/// decide whether anything is wanted, nothing secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribed {
    pub id: String,
    pub events: Vec<EventType>,
}

/// What a conversation's step did that subscribers may want, kept small on the event's
/// record (`Effect::Publish`) so a redelivery publishes the same events: the message itself
/// and the messages sent are read from the envelope and the record when published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fact", rename_all = "snake_case")]
pub enum Fact {
    Started,
    HandedOver {
        department: String,
        reason: String,
    },
    Assigned {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
    },
    /// `by`: `agent` (resolved on the desk) or `bot` (ended without a person).
    Closed {
        by: String,
    },
    NpsAnswered {
        score: u64,
    },
    /// `source`: `words` (the customer's) or `meta` (Meta's marketing preference).
    OptedOut {
        source: String,
    },
    OptedIn {
        source: String,
    },
    /// The message answers this campaign's send (a field of `message.received`).
    AnswersCampaign {
        campaign_id: String,
    },
}

impl Fact {
    /// The event it becomes; `None` for a fact that only adds to another event.
    pub fn event_type(&self) -> Option<EventType> {
        Some(match self {
            Fact::Started => EventType::ConversationStarted,
            Fact::HandedOver { .. } => EventType::ConversationHandedOver,
            Fact::Assigned { .. } => EventType::ConversationAssigned,
            Fact::Closed { .. } => EventType::ConversationClosed,
            Fact::NpsAnswered { .. } => EventType::NpsAnswered,
            Fact::OptedOut { .. } => EventType::CustomerOptedOut,
            Fact::OptedIn { .. } => EventType::CustomerOptedIn,
            Fact::AnswersCampaign { .. } => return None,
        })
    }

    /// The event's `data`.
    pub fn data(&self) -> Value {
        match self {
            Fact::Started | Fact::AnswersCampaign { .. } => Value::Object(Default::default()),
            Fact::HandedOver { department, reason } => {
                serde_json::json!({"department": department, "reason": reason})
            }
            Fact::Assigned { agent } => match agent {
                Some(agent) => serde_json::json!({ "agent": agent }),
                None => serde_json::json!({}),
            },
            Fact::Closed { by } => serde_json::json!({ "by": by }),
            Fact::NpsAnswered { score } => serde_json::json!({ "score": score }),
            Fact::OptedOut { source } | Fact::OptedIn { source } => {
                serde_json::json!({ "source": source })
            }
        }
    }
}

/// A subscription as stored (`TENANT#<pn>`/`HOOK#<id>`, attribute `subscription` as JSON):
/// what the tenant set. Its health is kept beside it by the delivery function
/// (`failing_since`, `last_success_at`, `last_failure_at`, `last_error`) and its deliveries
/// as log items (see `hooks::dynamodb`). The signing secret is never here: it sits in the
/// tenant's hooks secret, `<stack>/hooks/<pn>`, keyed by the subscription id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub url: String,
    pub events: Vec<EventType>,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The principal that created it (an API key's or a person's id, `ops:<user>`).
    pub created_by: String,
    /// Why it is disabled: a person's choice, or failing for days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
}

impl Subscription {
    pub fn subscribed(&self) -> Subscribed {
        Subscribed {
            id: self.id.clone(),
            events: self.events.clone(),
        }
    }
}

/// The producers' view of a tenant's subscriptions: the enabled ones.
pub fn summary(subscriptions: &[Subscription]) -> Vec<Subscribed> {
    subscriptions
        .iter()
        .filter(|s| s.enabled)
        .map(Subscription::subscribed)
        .collect()
}

/// Whether any of the tenant's subscriptions wants `event_type`.
pub fn wanted(subscribed: &[Subscribed], event_type: EventType) -> bool {
    subscribed.iter().any(|s| s.events.contains(&event_type))
}

/// A message on the hooks queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HookMessage {
    /// A producer's events, each for every subscription that wants it.
    Batch {
        v: u32,
        phone_number_id: String,
        events: Vec<HookEvent>,
    },
    /// One event for one subscription, after `attempt` failed deliveries.
    Retry {
        v: u32,
        phone_number_id: String,
        subscription_id: String,
        event: HookEvent,
        attempt: u32,
        first_failed_at: DateTime<Utc>,
    },
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The subscriber answered 2xx.
    Delivered,
    /// Not delivered (an answer other than 2xx, a network error, a timeout, an address
    /// refused, no signing secret): tried again later.
    Failed,
    /// Not delivered and not tried again: past [`RETRY_HORIZON`] or [`MAX_EVENT_AGE`], or the
    /// failure that disabled the subscription.
    GaveUp,
    /// Not sent at all: the subscription was deleted or disabled meanwhile, or the customer
    /// was erased after the event.
    Dropped,
}

/// One delivery attempt as its log item keeps it (`HOOKLOG#<pn>#<subscription id>`, attribute
/// `entry`) and the API shows it: no customer data, never the subscriber's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryEntry {
    pub at: DateTime<Utc>,
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub outcome: DeliveryOutcome,
    /// The subscriber's HTTP status, when it answered.
    #[serde(default)]
    pub status: Option<u16>,
    /// Why it failed, short: `status 500`, `timeout`, `connect`, `address refused`,
    /// `redirect 302`, `no secret`, `erased`, `disabled`...
    #[serde(default)]
    pub error: Option<String>,
    /// How long the request took, when one was made.
    #[serde(default)]
    pub ms: Option<u64>,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{0}")]
pub struct HookQueueError(pub String);

/// Port: the hooks queue (a standard queue: order does not matter, each event carries its
/// time and id). The SQS adapter is `hooks::sqs`, the in-memory twin `hooks::memory`.
pub trait HookQueue: Send + Sync {
    /// Puts `message` on the queue, visible after `delay` (at most 15 minutes).
    fn publish(
        &self,
        message: &HookMessage,
        delay: std::time::Duration,
    ) -> impl std::future::Future<Output = Result<(), HookQueueError>> + Send;
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac(secret, timestamp, body))
    )
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the signature header is not `t=<unix seconds>,v1=<64 hex digits>`")]
    Malformed,
    #[error("the signature's timestamp is outside the replay window")]
    Replayed,
    #[error("the signature does not match the body")]
    Mismatch,
}

/// What a subscriber does (the README's n8n snippet does the same): parses the header,
/// refuses a timestamp more than `window` from `now`, and compares the HMAC of the raw body
/// in constant time.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: DateTime<Utc>,
    window: chrono::Duration,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut given = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => given = hex::decode(value).ok().filter(|v| v.len() == 32),
            _ => {}
        }
    }
    let (Some(timestamp), Some(given)) = (timestamp, given) else {
        return Err(SignatureError::Malformed);
    };
    if (now.timestamp() - timestamp).abs() > window.num_seconds() {
        return Err(SignatureError::Replayed);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch)
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum UrlError {
    #[error("is not a URL")]
    Invalid,
    #[error("must use https")]
    NotHttps,
    #[error("must not carry a user name or password")]
    Credentials,
    #[error("names a private, loopback, link-local or reserved address ({0})")]
    NotPublic(IpAddr),
    #[error("must not be longer than 2048 characters")]
    TooLong,
}

/// The rules a subscriber URL meets before it is stored: https, no credentials, and an IP
/// literal host only when public. A host name is checked again on every delivery, after
/// resolving ([`is_public`]).
pub fn check_url(text: &str) -> Result<url::Url, UrlError> {
    if text.len() > 2048 {
        return Err(UrlError::TooLong);
    }
    let url = url::Url::parse(text).map_err(|_| UrlError::Invalid)?;
    if url.scheme() != "https" {
        return Err(UrlError::NotHttps);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    match url.host() {
        None => Err(UrlError::Invalid),
        Some(url::Host::Ipv4(ip)) if !is_public(IpAddr::V4(ip)) => {
            Err(UrlError::NotPublic(IpAddr::V4(ip)))
        }
        Some(url::Host::Ipv6(ip)) if !is_public(IpAddr::V6(ip)) => {
            Err(UrlError::NotPublic(IpAddr::V6(ip)))
        }
        Some(_) => Ok(url),
    }
}

/// Whether a subscriber may be reached at `ip`: not private, loopback, link-local, shared
/// address space (100.64/10), multicast, broadcast, documentation, benchmarking or otherwise
/// reserved; IPv4-mapped and NAT64 IPv6 addresses are judged by their IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => {
            if let Some(v4) = ip.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let segments = ip.segments();
            // 64:ff9b::/96 (NAT64) reaches the IPv4 address in its last 32 bits.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = segments[6].to_be_bytes();
                let [c, d] = segments[7].to_be_bytes();
                return is_public_v4(Ipv4Addr::new(a, b, c, d));
            }
            !(ip.is_unspecified()
                || ip.is_loopback()
                || ip.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local, fec0::/10 site-local.
                || (segments[0] & 0xfe00) == 0xfc00
                || (segments[0] & 0xffc0) == 0xfe80
                || (segments[0] & 0xffc0) == 0xfec0
                // 2001:db8::/32 documentation, 100::/64 discard, ::/96 IPv4-compatible.
                || (segments[0] == 0x2001 && segments[1] == 0x0db8)
                || segments[..4] == [0x100, 0, 0, 0]
                || segments[..6] == [0, 0, 0, 0, 0, 0])
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        // 100.64.0.0/10 shared address space (carrier-grade NAT).
        || (a == 100 && (64..128).contains(&b))
        // 192.0.0.0/24 protocol assignments, 198.18.0.0/15 benchmarking, 240/4 reserved.
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "testing")]
pub mod memory;
#[cfg(feature = "sqs")]
pub mod sqs;

#[cfg(test)]
mod tests;
