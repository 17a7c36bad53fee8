//! The inbound queue's consumer. Per record: read the event's record and the session; a
//! completed event is a duplicate, a started one resumes its outbox; a new one runs
//! `engine::step` (asking the AI attendant when the engine says so), commits the new
//! session with the event's record (its outbox) and runs the outbox.
//!
//! In parts: [`batch`] (FIFO order per group, failures fail the rest of the group),
//! `record` (duplicate, resume or apply), `apply` (the conversation and the commit),
//! `outbox` (sends and the other effects, each marked done), `desk` (the agents' desk and
//! the supervisors' alerts), `signals` (the suppression list and Meta's account signals),
//! `replies` (a conversation's campaign, replies and opt-outs counted on it), `publish`
//! (events for the tenant's subscribers),
//! `counters` (the invocation's metrics), [`config`].

pub mod aws;
pub mod batch;
pub mod config;

mod apply;
mod counters;
mod desk;
mod erase;
mod outbox;
mod publish;
mod record;
mod replies;
mod signals;

#[cfg(test)]
mod tests;

use std::sync::{Arc, PoisonError};
use std::time::Duration as StdDuration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Duration, Utc};
use shared::ai::Assistant;
use shared::campaign::{CampaignStore, DailyCount};
use shared::desk::{AlertTopic, Desk, DeskError};
use shared::hooks::HookQueue;
use shared::secrets::{AiSecretCache, PerTenantSecrets, SecretSource, TenantSecrets, TenantTokens};
use shared::store::{Store, StoreError};
use shared::support::cache::TtlCache;
use shared::support::deadline::Deadline;
use shared::tenant::{MIN_RETENTION_DAYS, Tenant};
use shared::whatsapp::{CALL_TIMEOUT, SendError, Sender};
use thiserror::Error;
use tokio::sync::{Mutex, Semaphore};

pub use config::{Config, Settings};
use counters::Counts;

const CACHE_TTL: StdDuration = StdDuration::from_secs(60);
/// A record starts only with room for one call to Meta and the store's reads and writes
/// around it; later records of the batch are reported failed, unprocessed.
pub const RECORD_NEEDS: StdDuration = CALL_TIMEOUT.saturating_add(StdDuration::from_secs(1));
const PARKED_DAYS: i64 = 14;

/// Media forwarded to the desk at once per container: each holds its file (up to 16 MB)
/// in memory, and a batch of ten videos must not exhaust a 256 MB worker.
pub const MEDIA_FORWARDS_AT_ONCE: usize = 4;

/// The adapters a worker runs on: AWS and the real APIs in `main.rs`, in-memory twins in
/// the unit tests.
pub trait Adapters: Send + Sync + 'static {
    type Store: Store;
    /// Campaign recipients and counters: the statuses of campaign sends; and the
    /// portfolio's messaging-limit count, which the worker's template sends add to.
    type Campaigns: CampaignStore + DailyCount;
    type Sender: Sender;
    type Tokens: TenantTokens;
    type Assistant: Assistant;
    type Desk: Desk;
    type Alerts: AlertTopic;
    /// The source of `<stack>/ai`, the Anthropic key.
    type AiSecret: SecretSource;
    /// The hooks queue: events for the tenants' subscribers.
    type EventsOut: HookQueue;
}

pub struct Ports<A: Adapters> {
    pub store: A::Store,
    pub campaigns: A::Campaigns,
    pub sender: A::Sender,
    pub tokens: A::Tokens,
    pub assistant: A::Assistant,
    pub desk: A::Desk,
    /// The SLA alert topic, when the stack has one.
    pub alerts: Option<A::Alerts>,
    pub ai_secrets: AiSecretCache<A::AiSecret>,
    /// The hooks queue, when the stack names one (`HOOKS_QUEUE_URL`).
    pub events_out: Option<A::EventsOut>,
}

/// Test hooks: a clock override and a crash point. Only a build with the `test-hooks`
/// feature sets them (from the environment); otherwise they stay off.
#[derive(Default)]
pub struct Hooks {
    pub clock_offset: Duration,
    pub crash_after_effects: Option<usize>,
}

/// The hooks a `test-hooks` build reads from `TEST_CLOCK` (an RFC 3339 time the clock
/// starts at) and `TEST_CRASH_AFTER_EFFECTS` (abort after that many effects).
#[cfg(feature = "test-hooks")]
pub fn hooks() -> Hooks {
    let clock_offset = std::env::var("TEST_CLOCK")
        .ok()
        .and_then(|at| at.parse::<DateTime<Utc>>().ok())
        .map(|at| at - Utc::now())
        .unwrap_or_default();
    let crash_after_effects = std::env::var("TEST_CRASH_AFTER_EFFECTS")
        .ok()
        .and_then(|n| n.parse().ok());
    Hooks {
        clock_offset,
        crash_after_effects,
    }
}

/// A test that asks for hooks from a build without them must fail loudly, not pass by luck.
#[cfg(not(feature = "test-hooks"))]
pub fn hooks() -> Hooks {
    for variable in ["TEST_CLOCK", "TEST_CRASH_AFTER_EFFECTS"] {
        if std::env::var_os(variable).is_some() {
            eprintln!(
                "{variable} is set but this build has no test hooks: build with --features worker/test-hooks"
            );
            std::process::exit(2);
        }
    }
    Hooks::default()
}

#[derive(Debug, Error)]
pub enum WorkerError {
    #[error("record body: {0}")]
    Envelope(#[from] shared::envelope::EnvelopeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("send failed, retry later: {0}")]
    Send(SendError),
    #[error("{0}")]
    SendUnknown(SendError),
    /// A send Meta may have taken waits for its status: the redelivery looks again.
    #[error("a send's outcome is unknown since {since}; waiting for its status")]
    Unsettled { since: DateTime<Utc> },
    #[error("tenant secret: {0}")]
    Secret(#[from] shared::secrets::SecretError),
    #[error("desk: {0}")]
    Desk(DeskError),
    #[error(transparent)]
    Alert(#[from] shared::desk::AlertError),
    #[error("hooks queue: {0}")]
    Publish(shared::hooks::HookQueueError),
}

pub struct Worker<A: Adapters> {
    ports: Ports<A>,
    config: Config,
    hooks: Hooks,
    tenants: TtlCache<Option<Arc<Tenant>>>,
    secret_cache: TtlCache<Arc<TenantSecrets>>,
    effects_run: Mutex<usize>,
    media_permits: Semaphore,
    /// The current invocation's deadline (one invocation at a time per container).
    deadline: std::sync::Mutex<Deadline>,
}

impl<A: Adapters> Worker<A> {
    pub fn new(ports: Ports<A>, config: Config, hooks: Hooks) -> Self {
        Self {
            ports,
            config,
            hooks,
            tenants: TtlCache::new(CACHE_TTL),
            secret_cache: TtlCache::new(CACHE_TTL),
            effects_run: Mutex::new(0),
            media_permits: Semaphore::new(MEDIA_FORWARDS_AT_ONCE),
            deadline: std::sync::Mutex::new(Deadline::after(StdDuration::ZERO)),
        }
    }

    /// The deadline of the invocation under way: every call elsewhere fits before it.
    fn deadline(&self) -> Deadline {
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.hooks.clock_offset
    }

    /// Handles a batch; conversations run concurrently, each in arrival order. A record
    /// starts only while [`RECORD_NEEDS`] fits before `deadline`.
    pub async fn handle(&self, event: SqsEvent, deadline: Deadline) -> SqsBatchResponse {
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner) = deadline;
        let counts = Mutex::new(Counts::default());
        let response = batch::process_fifo_batch(
            &event,
            || deadline.fits(RECORD_NEEDS),
            |record| self.handle_record(record, deadline, &counts),
        )
        .await;
        let mut counts = counts.into_inner();
        counts.failed = response.batch_item_failures.len();
        counts.emit();
        response
    }

    async fn tenant(&self, phone_number_id: &str) -> Result<Option<Arc<Tenant>>, StoreError> {
        if let Some(cached) = self.tenants.get(phone_number_id) {
            return Ok(cached);
        }
        self.read_tenant(phone_number_id).await
    }

    /// The tenant an event is handled for, `None` when the number has none or the provider
    /// disabled it. A number remembered as unknown or disabled is read again: an event is
    /// parked only when the table says so, and a tenant put or enabled a moment ago (or the
    /// replay of what was parked meanwhile) is answered at once, not parked again for the
    /// cache's minute. Parked events are rare; serving tenants still come from the cache,
    /// so a disable reaches a running container within that minute.
    async fn serving_tenant(
        &self,
        phone_number_id: &str,
    ) -> Result<Option<Arc<Tenant>>, StoreError> {
        let tenant = match self.tenants.get(phone_number_id) {
            Some(Some(tenant)) if !tenant.disabled => Some(tenant),
            _ => self.read_tenant(phone_number_id).await?,
        };
        Ok(tenant.filter(|tenant| !tenant.disabled))
    }

    async fn read_tenant(&self, phone_number_id: &str) -> Result<Option<Arc<Tenant>>, StoreError> {
        let tenant = self
            .ports
            .store
            .tenant(phone_number_id)
            .await?
            .map(Arc::new);
        self.tenants.insert(phone_number_id, tenant.clone());
        Ok(tenant)
    }

    async fn secrets(&self, phone_number_id: &str) -> Result<Arc<TenantSecrets>, WorkerError> {
        if let Some(secrets) = self.secret_cache.get(phone_number_id) {
            return Ok(secrets);
        }
        let secrets = Arc::new(self.ports.tokens.tenant_secrets(phone_number_id).await?);
        self.secret_cache.insert(phone_number_id, secrets.clone());
        Ok(secrets)
    }

    /// How long the tenant keeps customer data (90 days for a number with no tenant). Never
    /// under the minimum validation enforces, even for a tenant stored before it did: an
    /// event's record must outlive Meta's retries.
    async fn retention(&self, phone_number_id: &str) -> Result<Duration, StoreError> {
        let days = self
            .tenant(phone_number_id)
            .await?
            .map_or(90, |t| t.retention_days.max(MIN_RETENTION_DAYS));
        Ok(Duration::days(i64::from(days)))
    }

    /// Test hook: dies between two effects, as a crashed container would.
    async fn crash_point(&self) {
        let mut run = self.effects_run.lock().await;
        *run += 1;
        if self.hooks.crash_after_effects == Some(*run) {
            tracing::error!(effects = *run, "test hook: crashing between effects");
            std::process::abort();
        }
    }
}
