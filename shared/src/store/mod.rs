//! The store port: what the worker needs from its database, in domain terms. The DynamoDB
//! adapter is `crate::store::dynamodb`; tests use an in-memory fake.
//!
//! An inbound event moves through an idempotency record like Powertools' one:
//! `in_progress` (claimed, with a lease) -> `applied` (new session and its effects committed
//! together as an outbox) -> `completed` (every effect carried out). A retry finds the
//! record and resumes the outbox instead of running the conversation again.

pub mod keys;

#[cfg(feature = "dynamodb")]
pub mod dynamodb;

use std::future::Future;

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::desk::{DeskLink, SlaLevel, Ticket};
use crate::engine::{Effect, Session};
use crate::envelope::{Envelope, StatusUpdate};
use crate::tenant::Priority;
use crate::tenant::Tenant;

/// What a claim on an event's idempotency key found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First time: run the conversation.
    Fresh,
    /// Committed before, effects may be pending: resume the outbox.
    Resume,
    /// Already completed: do nothing.
    Duplicate,
    /// Another invocation holds a live lease on it: try again later.
    Busy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub session: Session,
    pub version: u64,
}

/// One message in a conversation's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub at: DateTime<Utc>,
    pub wamid: String,
    pub inbound: bool,
    pub kind: String,
    pub text: Option<String>,
}

/// A new session and the effects it produced, written in one transaction.
#[derive(Debug, Clone)]
pub struct Commit<'a> {
    pub key: &'a str,
    pub session: Option<&'a Session>,
    /// `None` when the conversation had no session yet.
    pub expected_version: Option<u64>,
    pub phone_number_id: &'a str,
    pub customer: &'a str,
    pub effects: &'a [Effect],
    pub inbound: LogEntry,
    pub expires_at: DateTime<Utc>,
    /// The AI attendant answered in this step: its spend so far is recorded for reports.
    pub ai_used: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEffect {
    pub sequence: usize,
    pub effect: Effect,
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
    #[error("the session changed under this event (version {expected:?})")]
    Conflict { expected: Option<u64> },
    #[error("stored item is not readable: {0}")]
    Corrupt(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

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
    fn claim(
        &self,
        key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Drops an `in_progress` claim after a failure, so the redelivery can run at once.
    fn release(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn complete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn tenant(
        &self,
        phone_number_id: &str,
    ) -> impl Future<Output = Result<Option<Tenant>, StoreError>> + Send;

    fn session(
        &self,
        phone_number_id: &str,
        customer: &str,
    ) -> impl Future<Output = Result<Option<StoredSession>, StoreError>> + Send;

    /// Session (optimistic lock on its version), outbox, inbound log, the conversation's AI
    /// spend when `ai_used`, and the claim moving to `applied`, all or nothing.
    fn commit(&self, commit: Commit<'_>) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn pending_effects(
        &self,
        phone_number_id: &str,
        customer: &str,
        key: &str,
    ) -> impl Future<Output = Result<Vec<PendingEffect>, StoreError>> + Send;

    fn effect_done(
        &self,
        phone_number_id: &str,
        customer: &str,
        key: &str,
        sequence: usize,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Logs a message the business sent and opens its delivery record.
    fn record_outbound(
        &self,
        phone_number_id: &str,
        customer: &str,
        entry: LogEntry,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

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
