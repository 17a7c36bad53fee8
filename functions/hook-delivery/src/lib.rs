//! The hook delivery: each record of the hooks queue is a producer's batch of events (each
//! for every enabled subscription of the tenant that wants its type) or one event's retry
//! for one subscription. Every delivery is signed afresh and posted ([`target`]); a failed
//! one goes back on the queue alone with a growing delay ([`schedule`]) until a day after its
//! first failure. The subscription's health is kept on its item, each attempt in its log,
//! and a subscription failing for three days is disabled with an alert.
//!
//! A record fails (SQS redelivers it) only when it cannot be read, or when the table or the
//! queue is down: a subscriber's failure is never the record's.

pub mod schedule;
pub mod secrets;
pub mod store;
pub mod target;

#[cfg(test)]
mod memory;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::json;
use shared::desk::AlertTopic;
use shared::hooks::{
    DeliveryEntry, DeliveryOutcome, EVENT_ID_HEADER, EVENT_TYPE_HEADER, HookEvent, HookMessage,
    HookQueue, MESSAGE_VERSION, SIGNATURE_HEADER, Subscription,
};
use shared::secrets::{HookSecrets, PerTenantSecrets, SecretError};
use shared::store::StoreError;
use shared::store::keys::TABLE_NAME;
use shared::support::cache::TtlCache;
use shared::support::config::{ConfigError, HOOKS_QUEUE_URL, HOOKS_SECRET_PREFIX, required};
use shared::support::deadline::Deadline;
use shared::support::metrics::Metrics;
use thiserror::Error;
use tokio::sync::Semaphore;

use crate::schedule::{AfterFailure, DISABLE_AFTER, after_failure, jitter, too_old};
use crate::secrets::HookSecretCache;
use crate::store::{Customer, HookStore};
use crate::target::{PostError, Poster, REQUEST_TIMEOUT};

/// Subscriptions are read again after this long (as tenants are everywhere).
pub const SUBSCRIPTIONS_TTL: Duration = Duration::from_secs(60);
/// Deliveries of one invocation at once.
pub const CONCURRENCY: usize = 16;
/// Deliveries to one subscription at once: a slow endpoint holds a few slots, not all.
pub const PER_SUBSCRIPTION: usize = 4;
/// What a delivery needs besides the request: its health, log and retry writes.
const AFTER_REQUEST: Duration = Duration::from_secs(3);

/// The function's configuration, from the environment template.yaml sets.
pub struct Settings {
    pub table: String,
    pub queue_url: String,
    pub secret_prefix: String,
    pub alert_topic_arn: String,
}

impl Settings {
    pub fn from_env() -> Result<Settings, ConfigError> {
        Ok(Settings {
            table: required(TABLE_NAME)?,
            queue_url: required(HOOKS_QUEUE_URL)?,
            secret_prefix: required(HOOKS_SECRET_PREFIX)?,
            alert_topic_arn: required("SLA_ALERT_TOPIC_ARN")?,
        })
    }
}

/// The concrete adapters (AWS in `main.rs`, twins in the tests).
pub trait Adapters {
    type Store: HookStore;
    type Queue: HookQueue;
    type Alerts: AlertTopic;
    type Secrets: PerTenantSecrets<HookSecrets>;
    type Poster: Poster;
}

pub struct Services<A: Adapters> {
    pub store: A::Store,
    pub queue: A::Queue,
    pub alerts: A::Alerts,
    pub secrets: A::Secrets,
    pub poster: A::Poster,
}

/// Why a record goes back to SQS.
#[derive(Debug, Clone, Error)]
pub enum RecordError {
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    Store(String),
    #[error("hooks queue: {0}")]
    Queue(String),
}

impl From<StoreError> for RecordError {
    fn from(error: StoreError) -> Self {
        RecordError::Store(error.to_string())
    }
}

/// One event for one subscription.
struct Job {
    record: usize,
    phone_number_id: String,
    subscription: Subscription,
    event: HookEvent,
    /// Failed attempts before this one.
    failed_before: u32,
    first_failed_at: Option<DateTime<Utc>>,
}

impl Job {
    fn attempt(&self) -> u32 {
        self.failed_before + 1
    }
}

/// An event not sent to a subscription, and why (logged, counted).
struct Skipped {
    record: usize,
    phone_number_id: String,
    subscription_id: String,
    event: HookEvent,
    attempt: u32,
    outcome: DeliveryOutcome,
    reason: &'static str,
}

/// Why an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Status(u16),
    Post(PostError),
    NoSecret,
}

impl Failure {
    fn short(self) -> String {
        match self {
            Failure::Status(status) if (300..400).contains(&status) => {
                format!("redirect {status}")
            }
            Failure::Status(status) => format!("status {status}"),
            Failure::Post(error) => error.short().to_owned(),
            Failure::NoSecret => "no secret".to_owned(),
        }
    }
}

/// What an invocation did, for its metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub delivered: usize,
    pub failed: usize,
    pub gave_up: usize,
    pub dropped: usize,
    pub disabled: usize,
    pub deferred: usize,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.delivered += other.delivered;
        self.failed += other.failed;
        self.gave_up += other.gave_up;
        self.dropped += other.dropped;
        self.disabled += other.disabled;
        self.deferred += other.deferred;
    }
}

type Clock = Box<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub struct HookDelivery<A: Adapters> {
    services: Services<A>,
    subscriptions: TtlCache<Arc<Vec<Subscription>>>,
    secrets: HookSecretCache,
    clock: Clock,
}

impl<A: Adapters> HookDelivery<A> {
    pub fn new(services: Services<A>) -> Self {
        Self {
            services,
            subscriptions: TtlCache::new(SUBSCRIPTIONS_TTL),
            secrets: HookSecretCache::default(),
            clock: Box::new(Utc::now),
        }
    }

    /// The same with another clock (the tests' days of failures).
    pub fn with_clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Delivers the records' events; reports the records to redeliver.
    pub async fn handle(&self, event: SqsEvent, deadline: Deadline) -> SqsBatchResponse {
        self.handle_counted(event, deadline).await.0
    }

    /// [`Self::handle`], with what the invocation did.
    pub async fn handle_counted(
        &self,
        event: SqsEvent,
        deadline: Deadline,
    ) -> (SqsBatchResponse, Counts) {
        let (counts, failed) = self.records(&event, deadline).await;
        let mut metrics = Metrics::new("hook-delivery");
        metrics
            .count("HooksDelivered", counts.delivered)
            .count("HooksFailed", counts.failed)
            .count("HooksGaveUp", counts.gave_up)
            .count("HooksDropped", counts.dropped)
            .count("HooksDisabled", counts.disabled)
            .count("HooksDeferred", counts.deferred);
        metrics.emit();
        let mut response = SqsBatchResponse::default();
        for (index, record) in event.records.iter().enumerate() {
            if let Some(error) = failed.get(&index) {
                let id = record.message_id.clone().unwrap_or_default();
                tracing::warn!(message_id = %id, %error, "hooks record to be redelivered");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
        tracing::info!(
            records = event.records.len(),
            delivered = counts.delivered,
            failed = counts.failed,
            gave_up = counts.gave_up,
            dropped = counts.dropped,
            disabled = counts.disabled,
            deferred = counts.deferred,
            redelivered = response.batch_item_failures.len(),
            "hooks batch handled"
        );
        (response, counts)
    }

    /// What the records came to, and the records that failed with why.
    async fn records(
        &self,
        event: &SqsEvent,
        deadline: Deadline,
    ) -> (Counts, HashMap<usize, RecordError>) {
        let now = self.now();
        let mut failed: HashMap<usize, RecordError> = HashMap::new();
        let mut messages = Vec::new();
        for (index, record) in event.records.iter().enumerate() {
            match parse(record.body.as_deref().unwrap_or("")) {
                Ok(message) => messages.push((index, message)),
                Err(error) => {
                    failed.insert(index, error);
                }
            }
        }

        let tenants: BTreeSet<&str> = messages.iter().map(|(_, m)| tenant(m)).collect();
        let mut subscriptions = HashMap::new();
        for pn in tenants {
            match self.subscriptions_of(pn).await {
                Ok(found) => {
                    subscriptions.insert(pn.to_owned(), found);
                }
                Err(error) => {
                    let error = RecordError::from(error);
                    for (index, message) in &messages {
                        if tenant(message) == pn {
                            failed.insert(*index, error.clone());
                        }
                    }
                }
            }
        }

        let mut jobs = Vec::new();
        let mut skipped = Vec::new();
        for (index, message) in messages {
            let Some(found) = subscriptions.get(tenant(&message)) else {
                continue;
            };
            plan(index, message, found, &mut jobs, &mut skipped);
        }

        // The customers erased after their event was produced: one batch read.
        let customers: Vec<Customer> = jobs
            .iter()
            .filter_map(|job| customer_of(&job.phone_number_id, &job.event))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let erased = if customers.is_empty() {
            HashMap::new()
        } else {
            match self.services.store.erased(&customers).await {
                Ok(erased) => erased,
                Err(error) => {
                    let error = RecordError::from(error);
                    jobs.retain(|job| {
                        let needs = customer_of(&job.phone_number_id, &job.event).is_some();
                        if needs {
                            failed.insert(job.record, error.clone());
                        }
                        !needs
                    });
                    HashMap::new()
                }
            }
        };
        // A record coming back anyway is delivered whole when it does.
        jobs.retain(|job| !failed.contains_key(&job.record));
        let mut deliverable = Vec::new();
        for job in jobs {
            let erased_at = customer_of(&job.phone_number_id, &job.event)
                .and_then(|customer| erased.get(&customer));
            let skip = |outcome, reason| Skipped {
                record: job.record,
                phone_number_id: job.phone_number_id.clone(),
                subscription_id: job.subscription.id.clone(),
                event: job.event.clone(),
                attempt: job.attempt(),
                outcome,
                reason,
            };
            if erased_at.is_some_and(|at| job.event.occurred_at <= *at) {
                skipped.push(skip(DeliveryOutcome::Dropped, "erased"));
            } else if too_old(job.event.occurred_at, now) {
                skipped.push(skip(DeliveryOutcome::GaveUp, "too old"));
            } else {
                deliverable.push(job);
            }
        }

        let mut counts = Counts::default();
        for skip in &skipped {
            match self.record_skipped(skip, now).await {
                Ok(()) => match skip.outcome {
                    DeliveryOutcome::GaveUp => counts.gave_up += 1,
                    _ => counts.dropped += 1,
                },
                Err(error) => {
                    failed.insert(skip.record, error);
                }
            }
        }

        let secrets = self.secrets_for(&deliverable).await;
        let limits = per_subscription_limits(&deliverable);
        let deliverable = interleaved(deliverable);
        let results: Vec<(usize, Result<Counts, RecordError>)> =
            futures::stream::iter(deliverable.iter().map(|job| {
                let secret = secrets.get(&job.phone_number_id);
                let limit =
                    limits[&(job.phone_number_id.clone(), job.subscription.id.clone())].clone();
                async move {
                    let _permit = limit.acquire_owned().await.expect("never closed");
                    (job.record, self.deliver(job, secret, deadline).await)
                }
            }))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for (record, result) in results {
            match result {
                Ok(done) => counts.add(done),
                Err(error) => {
                    failed.insert(record, error);
                }
            }
        }
        (counts, failed)
    }

    async fn subscriptions_of(&self, pn: &str) -> Result<Arc<Vec<Subscription>>, StoreError> {
        if let Some(found) = self.subscriptions.get(pn) {
            return Ok(found);
        }
        let found = Arc::new(self.services.store.subscriptions(pn).await?);
        self.subscriptions.insert(pn, found.clone());
        Ok(found)
    }

    /// This container's cached subscriptions see a disabled one at once (others within
    /// [`SUBSCRIPTIONS_TTL`]): its queued retries are dropped from the next batch on.
    fn cache_disabled(&self, pn: &str, subscription_id: &str) {
        if let Some(cached) = self.subscriptions.get(pn) {
            let mut subscriptions = (*cached).clone();
            for subscription in &mut subscriptions {
                if subscription.id == subscription_id {
                    subscription.enabled = false;
                }
            }
            self.subscriptions.insert(pn, Arc::new(subscriptions));
        }
    }

    /// Each tenant's secrets, read (or taken from the cache) once for the invocation.
    async fn secrets_for(
        &self,
        jobs: &[Job],
    ) -> HashMap<String, Result<Arc<HookSecrets>, SecretError>> {
        let mut wanted: HashMap<&str, BTreeSet<&str>> = HashMap::new();
        for job in jobs {
            wanted
                .entry(&job.phone_number_id)
                .or_default()
                .insert(&job.subscription.id);
        }
        let mut secrets = HashMap::new();
        for (pn, ids) in wanted {
            let ids: Vec<&str> = ids.into_iter().collect();
            let found = self.secrets.get(&self.services.secrets, pn, &ids).await;
            if let Err(error) = &found {
                tracing::error!(%error, "hook secrets could not be read: deliveries fail closed");
            }
            secrets.insert(pn.to_owned(), found);
        }
        secrets
    }

    async fn record_skipped(&self, skip: &Skipped, now: DateTime<Utc>) -> Result<(), RecordError> {
        tracing::info!(
            event_id = %skip.event.id,
            subscription = %skip.subscription_id,
            reason = skip.reason,
            "hook event not delivered"
        );
        let entry = DeliveryEntry {
            at: now,
            event_id: skip.event.id.clone(),
            event_type: skip.event.event_type,
            attempt: skip.attempt,
            outcome: skip.outcome,
            status: None,
            error: Some(skip.reason.to_owned()),
            ms: None,
        };
        self.services
            .store
            .log(&skip.phone_number_id, &skip.subscription_id, &entry)
            .await?;
        Ok(())
    }

    /// One attempt of one job, and what follows it.
    async fn deliver(
        &self,
        job: &Job,
        secrets: Option<&Result<Arc<HookSecrets>, SecretError>>,
        deadline: Deadline,
    ) -> Result<Counts, RecordError> {
        if !deadline.fits(REQUEST_TIMEOUT + AFTER_REQUEST) {
            return self.defer(job).await;
        }
        let secret = secrets
            .and_then(|s| s.as_ref().ok())
            .and_then(|s| s.signing_secret(&job.subscription.id));
        let result = match secret {
            None => Err((Failure::NoSecret, None)),
            Some(secret) => {
                let body = serde_json::to_vec(&job.event).expect("events serialise");
                let timestamp = self.now().timestamp();
                let headers = [
                    ("content-type", "application/json".to_owned()),
                    (
                        SIGNATURE_HEADER,
                        shared::hooks::signature(secret, timestamp, &body),
                    ),
                    (EVENT_ID_HEADER, job.event.id.clone()),
                    (EVENT_TYPE_HEADER, job.event.event_type.name().to_owned()),
                ];
                match self
                    .services
                    .poster
                    .post(&job.subscription.url, &headers, body)
                    .await
                {
                    Ok(answer) if (200..300).contains(&answer.status) => Ok(answer),
                    Ok(answer) => Err((Failure::Status(answer.status), Some(answer))),
                    Err(error) => Err((Failure::Post(error), None)),
                }
            }
        };
        let now = self.now();
        let pn = job.phone_number_id.as_str();
        let id = job.subscription.id.as_str();
        let mut entry = DeliveryEntry {
            at: now,
            event_id: job.event.id.clone(),
            event_type: job.event.event_type,
            attempt: job.attempt(),
            outcome: DeliveryOutcome::Delivered,
            status: None,
            error: None,
            ms: None,
        };
        let mut counts = Counts::default();
        match result {
            Ok(answer) => {
                entry.status = Some(answer.status);
                entry.ms = Some(answer.elapsed.as_millis() as u64);
                self.services.store.delivered(pn, id, now).await?;
                counts.delivered = 1;
            }
            Err((failure, answer)) => {
                entry.status = answer.map(|a| a.status);
                entry.ms = answer.map(|a| a.elapsed.as_millis() as u64);
                entry.error = Some(failure.short());
                let (outcome, disabled) = self.failed(job, failure, now).await?;
                entry.outcome = outcome;
                counts.disabled = usize::from(disabled);
                match outcome {
                    DeliveryOutcome::Failed => counts.failed = 1,
                    _ => counts.gave_up = 1,
                }
            }
        }
        tracing::info!(
            event_id = %job.event.id,
            subscription = %id,
            attempt = entry.attempt,
            outcome = ?entry.outcome,
            error = entry.error.as_deref().unwrap_or(""),
            "hook delivery"
        );
        self.services.store.log(pn, id, &entry).await?;
        Ok(counts)
    }

    /// After a failed attempt: the subscription's health, then disabled (a run of failures
    /// longer than [`DISABLE_AFTER`]), given up (past the horizon) or queued again. Returns
    /// the attempt's outcome and whether this failure disabled the subscription.
    async fn failed(
        &self,
        job: &Job,
        failure: Failure,
        now: DateTime<Utc>,
    ) -> Result<(DeliveryOutcome, bool), RecordError> {
        let pn = job.phone_number_id.as_str();
        let id = job.subscription.id.as_str();
        let short = failure.short();
        let Some(failing_since) = self.services.store.failed(pn, id, now, &short).await? else {
            // Deleted meanwhile: nothing to retry for.
            return Ok((DeliveryOutcome::GaveUp, false));
        };
        if now - failing_since > DISABLE_AFTER {
            let disabled = self.disable(job, failing_since, &short).await?;
            self.cache_disabled(pn, id);
            return Ok((DeliveryOutcome::GaveUp, disabled));
        }
        let failed = job.attempt();
        let first_failed_at = job.first_failed_at.unwrap_or(now);
        match after_failure(
            first_failed_at,
            now,
            failed,
            jitter(&job.event.id, id, failed),
        ) {
            AfterFailure::GiveUp => Ok((DeliveryOutcome::GaveUp, false)),
            AfterFailure::Retry(delay) => {
                self.retry(job, failed, first_failed_at, delay).await?;
                Ok((DeliveryOutcome::Failed, false))
            }
        }
    }

    /// Disables the subscription and, when this call did it, alerts the tenant's admins
    /// once and rewrites the producers' summary.
    async fn disable(
        &self,
        job: &Job,
        failing_since: DateTime<Utc>,
        last_error: &str,
    ) -> Result<bool, RecordError> {
        let pn = job.phone_number_id.as_str();
        let id = job.subscription.id.as_str();
        let since = failing_since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let reason = format!("failing since {since} (last: {last_error})");
        if !self.services.store.disable(pn, id, &reason).await? {
            return Ok(false);
        }
        tracing::warn!(subscription = %id, %reason, "hook subscription disabled");
        let subject = format!("Event subscription {id} disabled");
        // JSON, as the SLA and campaign alerts on the same topic.
        let message = json!({
            "kind": "hook_disabled",
            "phone_number_id": pn,
            "subscription_id": id,
            "failing_since": since,
            "last_error": last_error,
        })
        .to_string();
        if let Err(error) = self.services.alerts.publish(&subject, &message).await {
            tracing::error!(%error, subscription = %id, "hook disabled alert not sent");
        }
        // The disable is what stops the deliveries; a stale summary only makes producers
        // queue events that are then not delivered.
        if let Err(error) = self.services.store.refresh_summary(pn).await {
            tracing::error!(%error, "producers' hook summary not refreshed");
        }
        Ok(true)
    }

    async fn retry(
        &self,
        job: &Job,
        attempt: u32,
        first_failed_at: DateTime<Utc>,
        delay: Duration,
    ) -> Result<(), RecordError> {
        let message = HookMessage::Retry {
            v: MESSAGE_VERSION,
            phone_number_id: job.phone_number_id.clone(),
            subscription_id: job.subscription.id.clone(),
            event: job.event.clone(),
            attempt,
            first_failed_at,
        };
        self.services
            .queue
            .publish(&message, delay)
            .await
            .map_err(|e| RecordError::Queue(e.0))
    }

    /// No time left in this invocation to try: back on the queue as it was (no failed
    /// attempt counted), at once.
    async fn defer(&self, job: &Job) -> Result<Counts, RecordError> {
        let first_failed_at = job.first_failed_at.unwrap_or_else(|| self.now());
        self.retry(job, job.failed_before, first_failed_at, Duration::ZERO)
            .await?;
        Ok(Counts {
            deferred: 1,
            ..Counts::default()
        })
    }
}

fn parse(body: &str) -> Result<HookMessage, RecordError> {
    let message: HookMessage =
        serde_json::from_str(body).map_err(|e| RecordError::Malformed(format!("body: {e}")))?;
    let v = match &message {
        HookMessage::Batch { v, .. } | HookMessage::Retry { v, .. } => *v,
    };
    if v != MESSAGE_VERSION {
        return Err(RecordError::Malformed(format!(
            "message version {v}, this function reads {MESSAGE_VERSION}"
        )));
    }
    Ok(message)
}

fn tenant(message: &HookMessage) -> &str {
    match message {
        HookMessage::Batch {
            phone_number_id, ..
        }
        | HookMessage::Retry {
            phone_number_id, ..
        } => phone_number_id,
    }
}

/// The customer an event's erasure check reads, when it carries customer data.
fn customer_of(phone_number_id: &str, event: &HookEvent) -> Option<Customer> {
    let customer = event.customer.as_ref()?;
    event
        .event_type
        .carries_customer_data()
        .then(|| (phone_number_id.to_owned(), customer.clone()))
}

/// A batch's events for every enabled subscription of the tenant that wants them; a retry
/// for its subscription if it is still there and enabled.
fn plan(
    record: usize,
    message: HookMessage,
    subscriptions: &[Subscription],
    jobs: &mut Vec<Job>,
    skipped: &mut Vec<Skipped>,
) {
    match message {
        HookMessage::Batch {
            phone_number_id,
            events,
            ..
        } => {
            for event in events {
                if event.phone_number_id != phone_number_id {
                    tracing::warn!(event_id = %event.id, "an event of another tenant in a batch: ignored");
                    continue;
                }
                for subscription in subscriptions
                    .iter()
                    .filter(|s| s.enabled && s.events.contains(&event.event_type))
                {
                    jobs.push(Job {
                        record,
                        phone_number_id: phone_number_id.clone(),
                        subscription: subscription.clone(),
                        event: event.clone(),
                        failed_before: 0,
                        first_failed_at: None,
                    });
                }
            }
        }
        HookMessage::Retry {
            phone_number_id,
            subscription_id,
            event,
            attempt,
            first_failed_at,
            ..
        } => match subscriptions.iter().find(|s| s.id == subscription_id) {
            Some(subscription)
                if subscription.enabled && event.phone_number_id == phone_number_id =>
            {
                jobs.push(Job {
                    record,
                    phone_number_id,
                    subscription: subscription.clone(),
                    event,
                    failed_before: attempt,
                    first_failed_at: Some(first_failed_at),
                });
            }
            found => skipped.push(Skipped {
                record,
                phone_number_id,
                subscription_id,
                event,
                attempt: attempt + 1,
                outcome: DeliveryOutcome::Dropped,
                reason: if found.is_some() {
                    "disabled"
                } else {
                    "subscription gone"
                },
            }),
        },
    }
}

fn per_subscription_limits(jobs: &[Job]) -> HashMap<(String, String), Arc<Semaphore>> {
    jobs.iter()
        .map(|job| (job.phone_number_id.clone(), job.subscription.id.clone()))
        .collect::<HashSet<_>>()
        .into_iter()
        .map(|key| (key, Arc::new(Semaphore::new(PER_SUBSCRIPTION))))
        .collect()
}

/// The jobs taking turns by subscription, so one subscription's many events do not queue
/// everyone else's behind them.
fn interleaved(jobs: Vec<Job>) -> Vec<Job> {
    let mut queues: Vec<((String, String), std::collections::VecDeque<Job>)> = Vec::new();
    for job in jobs {
        let key = (job.phone_number_id.clone(), job.subscription.id.clone());
        match queues.iter_mut().find(|(k, _)| *k == key) {
            Some((_, queue)) => queue.push_back(job),
            None => queues.push((key, std::collections::VecDeque::from([job]))),
        }
    }
    let mut order = Vec::new();
    while queues.iter().any(|(_, q)| !q.is_empty()) {
        for (_, queue) in &mut queues {
            if let Some(job) = queue.pop_front() {
                order.push(job);
            }
        }
    }
    order
}
