//! The store port: what the worker needs from its database, in domain terms. The DynamoDB
//! adapter is [`dynamodb`]; [`memory`] is its in-memory twin for unit tests.
//!
//! Each event a conversation handles leaves one [`EventRecord`] in the conversation: what
//! it was (the transcript line), the effects the engine produced (the outbox) and how many
//! of them are done. It is written once, in one transaction with the new session, and
//! after each effect its `done` count moves on. A redelivery finds the record and resumes
//! at the first effect not done, or does nothing when all are: no second reply, nothing
//! lost. Records outlive Meta's retries (7 days): the tenant's retention is at least 8.
//! Delivery statuses need no record: the delivery item only moves forward.

pub mod keys;

#[cfg(any(test, feature = "testing"))]
pub mod contract;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(any(test, feature = "testing"))]
pub mod memory;

use std::collections::BTreeMap;
use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::desk::{DeskLink, SlaLevel, Ticket};
use crate::engine::{CampaignRef, Effect, Session};
use crate::envelope::{Envelope, Signal, StatusUpdate, WabaSignal};
use crate::report::Tally;
use crate::tenant::Priority;
use crate::tenant::Tenant;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub session: Session,
    pub version: u64,
}

/// One handled event of a conversation: its transcript line and its outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub at: DateTime<Utc>,
    /// The message type (`text`, `interactive`...) or the event's kind (`status`,
    /// `desk_reply`, `timer_sla_warning`, `echo`...).
    pub kind: String,
    /// A customer's message (not a business-side event).
    pub inbound: bool,
    /// What the customer wrote (a tapped choice reads as its title).
    pub text: Option<String>,
    pub effects: Vec<Effect>,
    /// Effects carried out, in order: `effects[done..]` are pending.
    pub done: usize,
    /// The wamids Meta gave the messages sent so far, in order.
    pub sent: Vec<String>,
    /// The send in `effects[done]` whose outcome is unknown (Meta may have taken it): it is
    /// not sent again until a status settles it or the wait for one is over.
    pub unsettled: Option<Unsettled>,
    /// Sends a status webhook proved Meta took (effect sequence -> wamid), written while
    /// the worker did not know yet.
    pub settled: BTreeMap<usize, String>,
    /// Sends Meta refused for good (effect sequence -> Graph's error code, when it gave
    /// one): done, nothing delivered.
    pub failed: BTreeMap<usize, Option<i64>>,
}

/// A send with an unknown outcome: effect `sequence`, since `since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unsettled {
    pub sequence: usize,
    pub since: DateTime<Utc>,
}

/// `biz_opaque_callback_data` of an outbox send: `<event key>#<effect sequence>`, so its
/// status webhooks find the effect.
pub fn callback_data(key: &str, sequence: usize) -> String {
    format!("{key}#{sequence}")
}

/// The event key and effect sequence a status's callback data names.
pub fn parse_callback_data(data: &str) -> Option<(&str, usize)> {
    let (key, sequence) = data.rsplit_once('#')?;
    Some((key, sequence.parse().ok()?)).filter(|(key, _)| !key.is_empty())
}

impl EventRecord {
    /// A business-side event's record (nothing done yet); a customer's message also sets
    /// `inbound` and `text`.
    pub fn new(at: DateTime<Utc>, kind: impl Into<String>, effects: Vec<Effect>) -> Self {
        Self {
            at,
            kind: kind.into(),
            inbound: false,
            text: None,
            effects,
            done: 0,
            sent: Vec::new(),
            unsettled: None,
            settled: BTreeMap::new(),
            failed: BTreeMap::new(),
        }
    }

    pub fn is_complete(&self) -> bool {
        self.done >= self.effects.len()
    }

    /// The transcript lines of this event: the customer's message, then what was sent.
    pub fn log_entries(&self, key: &str) -> Vec<LogEntry> {
        let mut entries = vec![LogEntry {
            at: self.at,
            wamid: key.to_owned(),
            inbound: self.inbound,
            kind: self.kind.clone(),
            text: self.text.clone(),
        }];
        let sends = self.effects[..self.done.min(self.effects.len())]
            .iter()
            .filter_map(|effect| match effect {
                Effect::Send { message } => Some(message),
                _ => None,
            });
        for (index, message) in sends.enumerate() {
            entries.push(LogEntry {
                at: self.at,
                wamid: self.sent.get(index).cloned().unwrap_or_default(),
                inbound: false,
                kind: message.kind().into(),
                text: Some(message.transcript_text()),
            });
        }
        entries
    }
}

/// What the worker reads before handling an event: its record, if it was handled before,
/// and the conversation's session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    pub record: Option<EventRecord>,
    pub session: Option<StoredSession>,
}

/// One line of a conversation's transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub at: DateTime<Utc>,
    pub wamid: String,
    pub inbound: bool,
    pub kind: String,
    pub text: Option<String>,
}

/// A new session and the event's record, written in one transaction.
#[derive(Debug, Clone)]
pub struct Commit<'a> {
    pub key: &'a str,
    pub phone_number_id: &'a str,
    pub customer: &'a str,
    /// `None` when the event changed no session (nothing to write).
    pub session: Option<&'a Session>,
    /// `None` when the conversation had no session yet.
    pub expected_version: Option<u64>,
    pub record: &'a EventRecord,
    /// The tenant's retention from now: for the record and the session.
    pub expires_at: DateTime<Utc>,
    /// The AI attendant answered in this step: its spend so far is recorded for reports.
    pub ai_used: bool,
    /// What the event adds to its tenant's day, counted in the same transaction (`None`
    /// or an empty tally: no write).
    pub report: Option<DayCount<'a>>,
    /// The customer opted out or back in with this event: the suppression list changes in
    /// the same transaction, so a redelivery finds it done with the record.
    pub suppression: Option<&'a SuppressionChange>,
}

/// Why a customer is on a tenant's suppression list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionSource {
    /// They wrote an opt-out word in the conversation.
    Words,
    /// They stopped marketing messages in WhatsApp (`user_preferences`).
    Meta,
    /// The tenant recorded an opt-out made elsewhere, through the platform API.
    Api,
}

impl SuppressionSource {
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionSource::Words => "words",
            SuppressionSource::Meta => "meta",
            SuppressionSource::Api => "api",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Words, Self::Meta, Self::Api]
            .into_iter()
            .find(|source| source.as_str() == text)
    }
}

/// A customer put on a tenant's suppression list or taken off it, by every id they are
/// known by (their number, their business-scoped user id). Stored hashed
/// ([`keys::customer_hash`]), never in clear, so the list outlives retention and erasure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuppressionChange {
    Suppress {
        ids: Vec<String>,
        source: SuppressionSource,
        since: DateTime<Utc>,
    },
    /// Opting back in deletes the entries.
    Allow { ids: Vec<String> },
}

impl SuppressionChange {
    pub fn ids(&self) -> &[String] {
        match self {
            SuppressionChange::Suppress { ids, .. } | SuppressionChange::Allow { ids } => ids,
        }
    }
}

/// An entry of a tenant's suppression list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppressed {
    pub since: DateTime<Utc>,
    pub source: SuppressionSource,
}

/// A campaign send's reply pointer (`CAMPAIGN_REPLY#<pn>` / [`keys::customer_hash`]), live
/// and not replied to yet: the conversation the customer opens next answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignReply {
    pub campaign: CampaignRef,
    pub sent_at: DateTime<Utc>,
    /// The form of the customer's id the send went to (its key).
    pub customer: String,
}

/// What the worker reads when a message opens a conversation: whether its event was
/// erased (only asked with no session) and the campaign send it answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversationStart {
    pub erased: bool,
    pub reply: Option<CampaignReply>,
}

/// Where a WABA signal is kept and what it writes: the `WABA#<waba_id>` item's sort key,
/// the attribute holding the time that orders signals about that subject (the latest
/// wins), and the attributes it sets (`None`: removed). Both adapters write through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WabaWrite {
    pub sk: String,
    pub at_attribute: &'static str,
    pub at: i64,
    pub attributes: Vec<(&'static str, Option<String>)>,
}

impl WabaWrite {
    pub fn of(signal: &WabaSignal) -> Self {
        let at = signal.at;
        let (sk, at_attribute, attributes) = match &signal.signal {
            Signal::TemplateStatus {
                name,
                language,
                event,
                category,
                reason,
            } => (
                keys::waba_template(name, language),
                "at",
                vec![
                    ("status", Some(event.clone())),
                    ("category", category.clone()),
                    ("reason", reason.clone()),
                ],
            ),
            // Quality has its own time: a quality change must not hide an older status.
            Signal::TemplateQuality {
                name,
                language,
                quality,
                ..
            } => (
                keys::waba_template(name, language),
                "quality_at",
                vec![("quality", Some(quality.clone()))],
            ),
            Signal::NumberQuality {
                display_phone_number,
                event,
                messaging_limit,
            } => (
                keys::waba_number(display_phone_number),
                "at",
                vec![
                    ("quality_event", Some(event.clone())),
                    ("messaging_limit", messaging_limit.clone()),
                ],
            ),
            Signal::Account {
                event,
                restrictions,
            } => (
                keys::WABA_ACCOUNT.to_owned(),
                "at",
                vec![
                    ("event", Some(event.clone())),
                    (
                        "restriction",
                        Some(restrictions.join(",")).filter(|r| !r.is_empty()),
                    ),
                ],
            ),
        };
        Self {
            sk,
            at_attribute,
            at,
            attributes,
        }
    }
}

/// A tenant's local day and what an event adds to it.
#[derive(Debug, Clone, Copy)]
pub struct DayCount<'a> {
    pub day: NaiveDate,
    pub tally: &'a Tally,
}

/// Whether a status moved the delivery record forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusChange {
    Applied {
        previous: Option<String>,
    },
    /// Older than what the record already holds (or after `failed`, which is final).
    Ignored,
}

#[derive(Debug, Error)]
pub enum StoreError {
    /// The record exists already or the session changed under this event: the
    /// redelivery finds out which.
    #[error("the event's record or its session changed under it (version {expected:?})")]
    Conflict { expected: Option<u64> },
    #[error("stored item is not readable: {0}")]
    Corrupt(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// The kinds of items that hold one customer's data: the export groups them, an erasure
/// counts what it removed of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerItemKind {
    Session,
    /// An event's record: transcript line and outbox.
    Event,
    /// Items of earlier versions in the conversation's partition (`MSG#`, `OUTBOX#`).
    Legacy,
    DeskLink,
    QueueEntry,
    Taken,
    Opening,
    AiUsage,
    Parked,
    Delivery,
    /// The tracking of an API send to the customer.
    Tracking,
}

impl CustomerItemKind {
    pub const ALL: [CustomerItemKind; 11] = [
        CustomerItemKind::Session,
        CustomerItemKind::Event,
        CustomerItemKind::Legacy,
        CustomerItemKind::DeskLink,
        CustomerItemKind::QueueEntry,
        CustomerItemKind::Taken,
        CustomerItemKind::Opening,
        CustomerItemKind::AiUsage,
        CustomerItemKind::Parked,
        CustomerItemKind::Delivery,
        CustomerItemKind::Tracking,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CustomerItemKind::Session => "session",
            CustomerItemKind::Event => "event",
            CustomerItemKind::Legacy => "legacy",
            CustomerItemKind::DeskLink => "desk_link",
            CustomerItemKind::QueueEntry => "queue_entry",
            CustomerItemKind::Taken => "taken",
            CustomerItemKind::Opening => "opening",
            CustomerItemKind::AiUsage => "ai_usage",
            CustomerItemKind::Parked => "parked",
            CustomerItemKind::Delivery => "delivery",
            CustomerItemKind::Tracking => "tracking",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// Items removed by an erasure, per kind.
pub type Removed = BTreeMap<CustomerItemKind, u64>;

/// Erasure `id` of one customer of a tenant (the tenant's config names its departments).
#[derive(Debug, Clone, Copy)]
pub struct Erasure<'a> {
    pub id: &'a str,
    pub tenant: &'a Tenant,
    pub customer: &'a str,
}

/// What became of the customer's desk contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeskContactErased {
    /// The tenant has no desk.
    NoDesk,
    /// The desk had no contact for the customer.
    NotFound,
    Deleted,
    /// The desk refused the deletion (token, permissions): a person must delete it.
    Refused,
}

impl DeskContactErased {
    pub fn as_str(self) -> &'static str {
        match self {
            DeskContactErased::NoDesk => "no_desk",
            DeskContactErased::NotFound => "not_found",
            DeskContactErased::Deleted => "deleted",
            DeskContactErased::Refused => "refused",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::NoDesk, Self::NotFound, Self::Deleted, Self::Refused]
            .into_iter()
            .find(|outcome| outcome.as_str() == name)
    }
}

/// An erasure's tracking, as the worker reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErasureState {
    pub done_at: Option<DateTime<Utc>>,
    pub removed: Removed,
    pub desk_contact: Option<DeskContactErased>,
}

/// How long a tombstone keeps a retry of an erased event from doing anything: past Meta's
/// 7 days of retries.
pub const TOMBSTONE_DAYS: i64 = 8;

/// Status ranks: statuses only move forward; `failed` is final.
pub fn status_rank(status: &str) -> u8 {
    match status {
        "sent" => 1,
        "delivered" => 2,
        "read" => 3,
        "played" => 4,
        "failed" => 100,
        _ => 0,
    }
}

pub trait Store: Send + Sync {
    /// The event's record and the conversation's session, read together.
    fn load(
        &self,
        phone_number_id: &str,
        customer: &str,
        key: &str,
    ) -> impl Future<Output = Result<Loaded, StoreError>> + Send;

    /// The event's record (unless one exists: [`StoreError::Conflict`]), the session
    /// (optimistic lock on its version), the conversation's AI spend when `ai_used` and
    /// the day's counters, all or nothing. The day's maxima are raised just before (an
    /// idempotent write: a retried commit may raise them again, never lower them).
    fn commit(&self, commit: Commit<'_>) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Effect `sequence` of the event is carried out (`sent`: the wamid of the message it
    /// sent).
    fn effect_done(
        &self,
        phone_number_id: &str,
        customer: &str,
        key: &str,
        sequence: usize,
        sent: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Effect `sequence` is a send Meta refused for good: done, with Graph's error code
    /// (`None`: refused before sending, or no code) kept on the record in the same write.
    fn send_failed(
        &self,
        phone_number_id: &str,
        customer: &str,
        key: &str,
        sequence: usize,
        code: Option<i64>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The event's record alone (a status settling a send), possibly a moment old.
    fn event_record(
        &self,
        phone_number_id: &str,
        customer: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<EventRecord>, StoreError>> + Send;

    /// Records that effect `sequence`'s send has had an unknown outcome since `since`, or
    /// with `None` that it is about to be sent again; either only while no status settled
    /// it. Returns the wamid of the status that did. ([`Store::effect_done`] clears it.)
    fn mark_unsettled(
        &self,
        phone_number_id: &str,
        customer: &str,
        key: &str,
        sequence: usize,
        since: Option<DateTime<Utc>>,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// A status webhook proves Meta took effect `sequence`'s message as `wamid`: kept on
    /// the record while the effect is not done, ignored after.
    fn settle(
        &self,
        phone_number_id: &str,
        customer: &str,
        key: &str,
        sequence: usize,
        wamid: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn tenant(
        &self,
        phone_number_id: &str,
    ) -> impl Future<Output = Result<Option<Tenant>, StoreError>> + Send;

    fn update_status(
        &self,
        status: &StatusUpdate,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<StatusChange, StoreError>> + Send;

    /// Puts a conversation in its department's human queue (idempotent: the entry's key
    /// comes from the ticket).
    fn enqueue_human(
        &self,
        phone_number_id: &str,
        customer: &str,
        ticket: &Ticket,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Takes a conversation out of the queue; `taken_at` (an agent took it) is kept for the
    /// department's wait estimate.
    fn leave_queue(
        &self,
        phone_number_id: &str,
        customer: &str,
        ticket: &Ticket,
        taken_at: Option<DateTime<Utc>>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// 1 for the next customer to be served.
    fn queue_position(
        &self,
        phone_number_id: &str,
        customer: &str,
        ticket: &Ticket,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send;

    /// Records `position` as told when it is the first told or better than the last;
    /// returns whether it was recorded (and so is to be told).
    fn position_told(
        &self,
        phone_number_id: &str,
        customer: &str,
        ticket: &Ticket,
        position: u32,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records on the queue entry the SLA alert sent for it.
    fn mark_alerted(
        &self,
        phone_number_id: &str,
        customer: &str,
        ticket: &Ticket,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Lists the customer for the opening follow-up (`until`: the opening it waits for).
    fn await_opening(
        &self,
        phone_number_id: &str,
        customer: &str,
        until: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn opening_done(
        &self,
        phone_number_id: &str,
        customer: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// When the department's customers were taken by agents since `since`.
    fn recent_takes(
        &self,
        phone_number_id: &str,
        department: &str,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<DateTime<Utc>>, StoreError>> + Send;

    fn desk_link(
        &self,
        phone_number_id: &str,
        customer: &str,
    ) -> impl Future<Output = Result<Option<DeskLink>, StoreError>> + Send;

    fn save_desk_link(
        &self,
        phone_number_id: &str,
        customer: &str,
        link: &DeskLink,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Drops the link of an earlier handoff when the desk refused to open the current
    /// one: the customer's messages must not land in that old conversation.
    fn forget_desk_link(
        &self,
        phone_number_id: &str,
        customer: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The conversation's messages since `since`, oldest first.
    fn transcript(
        &self,
        phone_number_id: &str,
        customer: &str,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<LogEntry>, StoreError>> + Send;

    /// Keeps an event whose tenant does not exist (yet), for the ops CLI to replay.
    fn park(
        &self,
        envelope: &Envelope,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The tenant's days from `from` to `to` (inclusive) that counted something, in order;
    /// one query.
    fn report_days(
        &self,
        phone_number_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl Future<Output = Result<Vec<(NaiveDate, Tally)>, StoreError>> + Send;
    /// Whether the event `key` of the tenant's number belongs to an erased conversation
    /// (its tombstone, possibly a moment old).
    fn erased(
        &self,
        phone_number_id: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// One batch read, when a message opens a conversation: the tombstone of event `key`
    /// (when given: the conversation has no session) and the reply pointers of the
    /// customer's ids `customers` (the latest live send not replied to wins).
    fn conversation_start(
        &self,
        phone_number_id: &str,
        key: Option<&str>,
        customers: &[String],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<ConversationStart, StoreError>> + Send;

    /// Marks the send replied to (conditional on the pointer still naming it, unreplied)
    /// and then adds `n_replied` to its campaign: `false` when someone marked it first.
    /// A crash between the two loses that count, never doubles it.
    fn campaign_replied(
        &self,
        phone_number_id: &str,
        reply: &CampaignReply,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The customer opted out: the live pointer of their ids (one batch read) is marked
    /// opted out, once per send, and `n_opted_out` added to its campaign. Returns that
    /// campaign's id when it was counted now.
    fn campaign_opted_out(
        &self,
        phone_number_id: &str,
        customers: &[String],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Drops a message's delivery record: a status of a message of an erased conversation
    /// created it again.
    fn forget_delivery(&self, wamid: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Erasure `id`'s tracking, when there is one.
    fn erasure(
        &self,
        phone_number_id: &str,
        id: &str,
    ) -> impl Future<Output = Result<Option<ErasureState>, StoreError>> + Send;

    /// Removes every item of the customer (what the export lists), after writing the
    /// tombstones of its event keys; each batch removed is counted on the erasure's
    /// tracking in the same transaction. Returns what this call removed.
    fn erase(
        &self,
        erasure: Erasure<'_>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Removed, StoreError>> + Send;

    /// Whether any of the customer's ids is on the tenant's suppression list: one read per
    /// id, until one is found. Only a message holding an opt-out or opt-in word asks.
    fn suppressed(
        &self,
        phone_number_id: &str,
        ids: &[String],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Changes the suppression list outside an event's commit (Meta's preference webhook,
    /// the platform API): puts and deletes, so doing it again changes nothing.
    fn change_suppression(
        &self,
        phone_number_id: &str,
        change: &SuppressionChange,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Writes a WABA signal on its subject's item ([`WabaWrite`]) unless the item holds a
    /// later one. Returns whether it was written (the same signal again is, unchanged).
    fn record_waba_signal(
        &self,
        signal: &WabaSignal,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Erasure `id` is done: when, and what became of the desk contact.
    fn erasure_done(
        &self,
        erasure: Erasure<'_>,
        desk_contact: DeskContactErased,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A waiting customer as the SLA sweep reads the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub customer: String,
    pub priority: Priority,
    pub entered_at: DateTime<Utc>,
    pub told_position: Option<u32>,
    pub alerted: Option<SlaLevel>,
}

/// What the schedules read: tenants without a table scan, a department's queue in order of
/// service, who waits for the opening follow-up.
pub trait ScheduleStore: Send + Sync {
    fn tenant_ids(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    fn tenant(
        &self,
        phone_number_id: &str,
    ) -> impl Future<Output = Result<Option<Tenant>, StoreError>> + Send;

    /// The whole queue, first to be served first; also the read capacity it consumed.
    fn waiting(
        &self,
        phone_number_id: &str,
        department: &str,
    ) -> impl Future<Output = Result<(Vec<Waiting>, f64), StoreError>> + Send;

    /// `(customer, until)` of everyone owed the opening follow-up.
    fn awaiting_opening(
        &self,
        phone_number_id: &str,
    ) -> impl Future<Output = Result<Vec<(String, DateTime<Utc>)>, StoreError>> + Send;
}
