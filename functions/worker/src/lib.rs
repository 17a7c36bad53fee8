//! The inbound queue's consumer. Per record: claim the event, load tenant and session, run
//! `engine::step` (asking the AI attendant when the engine says so, and stepping again with
//! its answer), commit the new session with its effects as an outbox, run the outbox.
//! Records of one conversation (message group) run in order; when one fails, it and every
//! later record of its group are reported failed, so SQS redelivers them in order.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Duration, Utc};
use shared::ai::{self, AiConversation, AiOutcome, Answer, Assistant, Usage};
use shared::desk::{
    self, AlertTopic, Customer, Desk, DeskError, DeskPost, File, Handoff, MediaRef, SlaLevel,
    Ticket, TranscriptLine,
};
use shared::engine::{self, Effect, Event, Outcome};
use shared::envelope::{
    DeskAction, DeskEvent, Envelope, InboundMessage, Payload, StatusUpdate, Timer,
};
use shared::secrets::{AppSecretCache, SecretSource, TenantSecrets, TenantTokens};
use shared::store::{Claim, Commit, LogEntry, StatusChange, Store, StoreError};
use shared::support::cache::TtlCache;
use shared::support::metrics::Metrics;
use shared::support::text::truncate_chars;
use shared::tenant::{Chatwoot, Tenant};
use shared::whatsapp::outbound::{Outbound, TemplateComponent};
use shared::whatsapp::{SendError, Sender};
use thiserror::Error;
use tokio::sync::{Mutex, Semaphore};

/// Meta error: the customer is outside the 24 h service window.
const OUTSIDE_WINDOW: i64 = 131047;
const CACHE_TTL: StdDuration = StdDuration::from_secs(60);
const PARKED_DAYS: i64 = 14;
/// Kept free for the commit and the sends after the AI attendant answers: this much, or a
/// quarter of the time left when the invocation is shorter.
const AFTER_AI: Duration = Duration::seconds(15);

pub struct Config {
    /// Messages older than this when they arrive (a backlog replayed after an outage) are
    /// recorded but not answered.
    pub stale_after: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            stale_after: Duration::hours(1),
        }
    }
}

/// Test hooks: a clock override and a crash point. Only a build with the `test-hooks`
/// feature sets them (from the environment); otherwise they stay off.
#[derive(Default)]
pub struct Hooks {
    pub clock_offset: Duration,
    pub crash_after_effects: Option<usize>,
}

#[derive(Debug, Error)]
pub enum WorkerError {
    #[error("record body: {0}")]
    Envelope(#[from] shared::envelope::EnvelopeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("another invocation is handling this event")]
    Busy,
    #[error("send failed, retry later: {0}")]
    Send(SendError),
    #[error("tenant secret: {0}")]
    Secret(#[from] shared::secrets::SecretError),
    #[error("desk: {0}")]
    Desk(DeskError),
    #[error(transparent)]
    Alert(#[from] desk::AlertError),
}

/// Chatwoot limits a message's content to 150,000 characters.
const MAX_NOTE_CHARS: usize = 150_000;

/// Media forwarded to the desk at once per container: each holds its file (up to 16 MB)
/// in memory, and a batch of ten videos must not exhaust a 256 MB worker.
pub const MEDIA_FORWARDS_AT_ONCE: usize = 4;

pub struct Worker<S, G, T, A, D, N, K> {
    store: S,
    sender: G,
    tokens: T,
    assistant: A,
    desk: D,
    alerts: Option<N>,
    /// The stack secret, for the Anthropic key.
    app_secrets: AppSecretCache<K>,
    config: Config,
    hooks: Hooks,
    tenants: TtlCache<Option<Arc<Tenant>>>,
    secret_cache: TtlCache<Arc<TenantSecrets>>,
    effects_run: Mutex<usize>,
    media_permits: Semaphore,
}

/// Counters of one invocation.
#[derive(Default)]
struct Counts {
    handled: usize,
    duplicates: usize,
    parked: usize,
    stale: usize,
    sent: usize,
    permanent_send_failures: usize,
    needs_attention: usize,
    statuses: usize,
    failed: usize,
    ai: Usage,
    ai_failures: usize,
    ai_handoffs: usize,
    desk_events: usize,
    desk_posts: usize,
    desk_failures: usize,
    echoes: usize,
    timers: usize,
    sla_alerts: usize,
    sla_alert_failures: usize,
}

/// The adapters a worker runs on.
pub struct Ports<S, G, T, A, D, N, K> {
    pub store: S,
    pub sender: G,
    pub tokens: T,
    pub assistant: A,
    pub desk: D,
    /// The SLA alert topic, when the stack has one.
    pub alerts: Option<N>,
    /// The stack secret, for the Anthropic key.
    pub app_secrets: AppSecretCache<K>,
}

impl<S: Store, G: Sender, T: TenantTokens, A: Assistant, D: Desk, N: AlertTopic, K: SecretSource>
    Worker<S, G, T, A, D, N, K>
{
    pub fn new(ports: Ports<S, G, T, A, D, N, K>, config: Config, hooks: Hooks) -> Self {
        Self {
            store: ports.store,
            sender: ports.sender,
            tokens: ports.tokens,
            assistant: ports.assistant,
            desk: ports.desk,
            alerts: ports.alerts,
            app_secrets: ports.app_secrets,
            config,
            hooks,
            tenants: TtlCache::new(CACHE_TTL),
            secret_cache: TtlCache::new(CACHE_TTL),
            effects_run: Mutex::new(0),
            media_permits: Semaphore::new(MEDIA_FORWARDS_AT_ONCE),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.hooks.clock_offset
    }

    /// Handles a batch; conversations run concurrently, each in arrival order.
    pub async fn handle(&self, event: SqsEvent, deadline: DateTime<Utc>) -> SqsBatchResponse {
        let mut groups: Vec<(String, Vec<&SqsMessage>)> = Vec::new();
        for record in &event.records {
            let group = record
                .attributes
                .get("MessageGroupId")
                .cloned()
                .unwrap_or_default();
            match groups.iter_mut().find(|(g, _)| *g == group) {
                Some((_, records)) => records.push(record),
                None => groups.push((group, vec![record])),
            }
        }
        let counts = Mutex::new(Counts::default());
        let results = futures::future::join_all(
            groups
                .iter()
                .map(|(_, records)| self.handle_group(records, deadline, &counts)),
        )
        .await;
        let counts = counts.into_inner();
        let mut metrics = Metrics::new("worker");
        metrics
            .count("Handled", counts.handled)
            .count("Duplicates", counts.duplicates)
            .count("Parked", counts.parked)
            .count("StaleMessages", counts.stale)
            .count("Sent", counts.sent)
            .count("PermanentSendFailures", counts.permanent_send_failures)
            .count("NeedsAttention", counts.needs_attention)
            .count("StatusUpdates", counts.statuses)
            .count("FailedRecords", counts.failed)
            .count("AiRequests", counts.ai.requests as usize)
            .count("AiInputTokens", counts.ai.input_tokens as usize)
            .count("AiOutputTokens", counts.ai.output_tokens as usize)
            .count(
                "AiCacheWriteTokens",
                counts.ai.cache_creation_input_tokens as usize,
            )
            .count(
                "AiCacheReadTokens",
                counts.ai.cache_read_input_tokens as usize,
            )
            .count("AiFailures", counts.ai_failures)
            .count("AiHandoffs", counts.ai_handoffs)
            .count("DeskEvents", counts.desk_events)
            .count("DeskPosts", counts.desk_posts)
            .count("DeskFailures", counts.desk_failures)
            .count("BusinessEchoes", counts.echoes)
            .count("Timers", counts.timers)
            .count("SlaAlertsSent", counts.sla_alerts)
            .count("SlaAlertFailures", counts.sla_alert_failures);
        metrics.emit();
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = results
            .into_iter()
            .flatten()
            .map(|id| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                failure
            })
            .collect();
        response
    }

    /// Runs a group's records in order; returns the ids of the failed one and all after it.
    async fn handle_group(
        &self,
        records: &[&SqsMessage],
        deadline: DateTime<Utc>,
        counts: &Mutex<Counts>,
    ) -> Vec<String> {
        for (index, record) in records.iter().enumerate() {
            if let Err(error) = self.handle_record(record, deadline, counts).await {
                tracing::warn!(%error, "record failed; it and the rest of its conversation will be redelivered");
                let failed: Vec<String> = records[index..]
                    .iter()
                    .map(|r| r.message_id.clone().unwrap_or_default())
                    .collect();
                counts.lock().await.failed += failed.len();
                return failed;
            }
        }
        Vec::new()
    }

    async fn handle_record(
        &self,
        record: &SqsMessage,
        deadline: DateTime<Utc>,
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        let envelope = Envelope::from_json(record.body.as_deref().unwrap_or_default())?;
        let key = envelope.idempotency_key();
        let now = self.now();
        match self.store.claim(&key, now, deadline).await? {
            Claim::Duplicate => {
                counts.lock().await.duplicates += 1;
                return Ok(());
            }
            Claim::Busy => return Err(WorkerError::Busy),
            Claim::Resume => {}
            Claim::Fresh => {
                let applied = match &envelope.payload {
                    Payload::Message(message) => {
                        self.apply_message(&envelope, message, &key, now, deadline, counts)
                            .await
                    }
                    Payload::Status(status) => self.apply_status(status, &key, now, counts).await,
                    Payload::Echo(echo) => {
                        counts.lock().await.echoes += 1;
                        let event = Event::BusinessEcho {
                            sent_at: echo.timestamp,
                        };
                        self.apply_business(&envelope, Some(event), "echo", &key, now)
                            .await
                    }
                    Payload::Desk(desk) => {
                        counts.lock().await.desk_events += 1;
                        let kind = match desk.action {
                            DeskAction::AgentReply { .. } => "desk_reply",
                            DeskAction::Assigned { .. } => "desk_assigned",
                            DeskAction::Resolved => "desk_resolved",
                        };
                        let event = if self.about_an_earlier_conversation(&envelope, desk).await? {
                            tracing::info!(
                                event = kind,
                                "desk event about an earlier conversation of this customer; ignored"
                            );
                            None
                        } else {
                            Some(Event::Desk(desk.action.clone()))
                        };
                        self.apply_business(&envelope, event, kind, &key, now).await
                    }
                    Payload::Timer(timer) => {
                        counts.lock().await.timers += 1;
                        let kind = match timer.timer {
                            Timer::SlaWarning { .. } => "timer_sla_warning",
                            Timer::SlaBreach { .. } => "timer_sla_breach",
                            Timer::QueuePosition { .. } => "timer_position",
                            Timer::Opening { .. } => "timer_opening",
                        };
                        let event = Event::Timer(timer.timer.clone());
                        self.apply_business(&envelope, Some(event), kind, &key, now)
                            .await
                    }
                };
                if let Err(error) = applied {
                    self.store.release(&key).await?;
                    return Err(error);
                }
            }
        }
        let (number, customer) = envelope.conversation();
        self.run_outbox(number, customer, &key, counts).await?;
        self.store.complete(&key).await?;
        counts.lock().await.handled += 1;
        Ok(())
    }

    async fn tenant(&self, phone_number_id: &str) -> Result<Option<Arc<Tenant>>, StoreError> {
        if let Some(cached) = self.tenants.get(phone_number_id) {
            return Ok(cached);
        }
        let tenant = self.store.tenant(phone_number_id).await?.map(Arc::new);
        self.tenants.insert(phone_number_id, tenant.clone());
        Ok(tenant)
    }

    async fn secrets(&self, phone_number_id: &str) -> Result<Arc<TenantSecrets>, WorkerError> {
        if let Some(secrets) = self.secret_cache.get(phone_number_id) {
            return Ok(secrets);
        }
        let secrets = Arc::new(self.tokens.tenant_secrets(phone_number_id).await?);
        self.secret_cache.insert(phone_number_id, secrets.clone());
        Ok(secrets)
    }

    /// Runs the conversation for one message and commits the result with its effects.
    async fn apply_message(
        &self,
        envelope: &Envelope,
        message: &InboundMessage,
        key: &str,
        now: DateTime<Utc>,
        deadline: DateTime<Utc>,
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        let number = &message.phone_number_id;
        let Some(tenant) = self.tenant(number).await? else {
            tracing::warn!(phone_number_id = %number, "message for an unknown tenant parked");
            self.store
                .park(envelope, now, now + Duration::days(PARKED_DAYS))
                .await?;
            counts.lock().await.parked += 1;
            return Ok(());
        };
        let stored = self.store.session(number, &message.customer).await?;
        let expected_version = stored.as_ref().map(|s| s.version);
        let sent_at = DateTime::from_timestamp(message.timestamp, 0).unwrap_or(now);
        let stale = now - sent_at > self.config.stale_after;
        let outcome = if stale {
            counts.lock().await.stale += 1;
            tracing::info!(
                age_seconds = (now - sent_at).num_seconds(),
                "stale message recorded, not answered"
            );
            None
        } else {
            let outcome = engine::step(
                stored.map(|s| s.session),
                number,
                &message.customer,
                &Event::from_message(message),
                now,
                &tenant,
            );
            Some(
                self.ask_ai(outcome, message, &tenant, now, deadline, counts)
                    .await,
            )
        };
        let ai_used = outcome.as_ref().is_some_and(|(_, asked)| *asked);
        let outcome = outcome.map(|(outcome, _)| outcome);
        let expires_at = now + Duration::days(i64::from(tenant.retention_days));
        let effects = outcome.as_ref().map_or(&[][..], |o| &o.effects[..]);
        self.store
            .commit(Commit {
                key,
                session: outcome.as_ref().map(|o| &o.session),
                expected_version,
                phone_number_id: number,
                customer: &message.customer,
                effects,
                inbound: LogEntry {
                    at: now,
                    wamid: message.wamid.clone(),
                    inbound: true,
                    kind: message.message_type.clone(),
                    // A tapped choice reads as its title in the transcript.
                    text: message
                        .text
                        .clone()
                        .or_else(|| message.reply.as_ref().map(|r| r.title.clone())),
                },
                expires_at,
                ai_used,
            })
            .await?;
        if let Some(outcome) = &outcome {
            tracing::info!(
                state = %outcome.session.state.business_name(),
                effects = outcome.effects.len(),
                "conversation stepped"
            );
            if !ai_used && effects.iter().any(|e| matches!(e, Effect::Send { .. })) {
                self.mark_read(number, &message.wamid).await;
            }
        }
        Ok(())
    }

    /// Carries out an [`Effect::AskAi`] before the commit: Claude's answer goes back into
    /// the engine, and the session and every effect are then committed together. A crash
    /// before the commit asks again on redelivery, and nothing was sent yet. Returns whether
    /// the attendant was asked.
    async fn ask_ai(
        &self,
        mut outcome: Outcome,
        message: &InboundMessage,
        tenant: &Tenant,
        now: DateTime<Utc>,
        deadline: DateTime<Utc>,
        counts: &Mutex<Counts>,
    ) -> (Outcome, bool) {
        if outcome.effects.last() != Some(&Effect::AskAi) {
            return (outcome, false);
        }
        outcome.effects.pop();
        // The customer sees "typing..." while Claude thinks.
        self.mark_read(&message.phone_number_id, &message.wamid)
            .await;
        let remaining = deadline - Utc::now();
        let left = (remaining - AFTER_AI.min(remaining / 4))
            .to_std()
            .unwrap_or_default();
        let until = tokio::time::Instant::now() + left;
        let started = std::time::Instant::now();
        // The engine starts the AI history before it asks; nothing is cloned for the call.
        let no_history = AiConversation::default();
        let conversation = outcome.session.ai.as_ref().unwrap_or(&no_history);
        let secrets = self.app_secrets.get().await;
        let key = secrets
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|secrets| secrets.anthropic_api_key());
        let answer = match key {
            Ok(key) => ai::answer(&self.assistant, key, tenant, conversation, until).await,
            Err(error) => Answer {
                outcome: AiOutcome::Failed {
                    error: format!("stack secret: {error}"),
                    needs_attention: true,
                },
                usage: Usage::default(),
            },
        };
        let kind = match &answer.outcome {
            AiOutcome::Reply { .. } => "reply",
            AiOutcome::Handoff { .. } => "handoff",
            AiOutcome::Failed {
                error,
                needs_attention,
            } => {
                if *needs_attention {
                    tracing::error!(%error, "AI attendant needs attention; the customer goes to a person");
                } else {
                    tracing::warn!(%error, "AI attendant failed; the customer goes to a person");
                }
                "failed"
            }
        };
        tracing::info!(
            outcome = kind,
            requests = answer.usage.requests,
            input_tokens = answer.usage.input_tokens,
            output_tokens = answer.usage.output_tokens,
            cache_write_tokens = answer.usage.cache_creation_input_tokens,
            cache_read_tokens = answer.usage.cache_read_input_tokens,
            elapsed_ms = started.elapsed().as_millis() as u64,
            budget_ms = left.as_millis() as u64,
            "AI attendant answered"
        );
        {
            let mut counts = counts.lock().await;
            counts.ai.add(answer.usage);
            match &answer.outcome {
                AiOutcome::Reply { .. } => {}
                AiOutcome::Handoff { .. } => counts.ai_handoffs += 1,
                AiOutcome::Failed {
                    needs_attention, ..
                } => {
                    counts.ai_failures += 1;
                    counts.needs_attention += usize::from(*needs_attention);
                }
            }
        }
        let answered = engine::step(
            Some(outcome.session),
            &message.phone_number_id,
            &message.customer,
            &Event::AiAnswered(answer),
            now,
            tenant,
        );
        outcome.effects.extend(answered.effects);
        (
            Outcome {
                session: answered.session,
                effects: outcome.effects,
            },
            true,
        )
    }

    /// Best effort: the customer sees the blue ticks and "typing..." while we answer.
    async fn mark_read(&self, number: &str, wamid: &str) {
        let result = match self.secrets(number).await {
            Ok(secrets) => match secrets.whatsapp_token() {
                Ok(token) => self
                    .sender
                    .mark_read(number, token, wamid, true)
                    .await
                    .map_err(|e| e.to_string()),
                Err(error) => Err(error.to_string()),
            },
            Err(error) => Err(error.to_string()),
        };
        if let Err(error) = result {
            tracing::warn!(%error, "mark as read failed");
        }
    }

    /// Moves the delivery record forward; a message that failed outside the 24 h window is
    /// followed by the tenant's approved template, when it has one.
    async fn apply_status(
        &self,
        status: &StatusUpdate,
        key: &str,
        now: DateTime<Utc>,
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        let tenant = self.tenant(&status.phone_number_id).await?;
        let retention = tenant.as_ref().map_or(90, |t| i64::from(t.retention_days));
        let change = self
            .store
            .update_status(status, now, now + Duration::days(retention))
            .await?;
        counts.lock().await.statuses += 1;
        let mut effects = Vec::new();
        let outside_window =
            status.status == "failed" && status.error_codes.contains(&OUTSIDE_WINDOW);
        if let (StatusChange::Applied { .. }, true, Some(tenant)) =
            (&change, outside_window, &tenant)
            && let Some(template) = &tenant.templates.window_fallback
        {
            effects.push(Effect::Send {
                message: Outbound::Template {
                    name: template.name.clone(),
                    language: template.language.clone(),
                    components: Vec::new(),
                },
            });
        }
        self.store
            .commit(Commit {
                key,
                session: None,
                expected_version: None,
                phone_number_id: &status.phone_number_id,
                customer: &status.customer,
                effects: &effects,
                inbound: LogEntry {
                    at: now,
                    wamid: format!("{}:{}", status.wamid, status.status),
                    inbound: true,
                    kind: "status".into(),
                    text: None,
                },
                expires_at: now + Duration::days(retention),
                ai_used: false,
            })
            .await?;
        Ok(())
    }

    /// Runs the pending effects in order, marking each done. A send that should be retried
    /// stops here and fails the record: the redelivery resumes at this effect.
    async fn run_outbox(
        &self,
        number: &str,
        customer: &str,
        key: &str,
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        for pending in self.store.pending_effects(number, customer, key).await? {
            match &pending.effect {
                Effect::Send { message } => self.send(number, customer, message, counts).await?,
                Effect::EnqueueHuman { ticket } => {
                    let tenant = self.tenant(number).await?;
                    let retention = tenant.map_or(90, |t| i64::from(t.retention_days));
                    let expires_at = self.now() + Duration::days(retention);
                    self.store
                        .enqueue_human(number, customer, ticket, expires_at)
                        .await?
                }
                Effect::LeaveQueue { ticket, taken_at } => {
                    self.store
                        .leave_queue(number, customer, ticket, *taken_at)
                        .await?
                }
                Effect::MarkAlerted { ticket } => {
                    self.store.mark_alerted(number, customer, ticket).await?
                }
                Effect::AlertSupervisors {
                    level,
                    ticket,
                    waited_minutes,
                    customer_name,
                } => {
                    let alert = SlaAlert {
                        level: *level,
                        ticket,
                        waited_minutes: *waited_minutes,
                        customer_name: customer_name.as_deref(),
                    };
                    self.alert_supervisors(number, customer, &alert, counts)
                        .await?
                }
                Effect::AwaitOpening { until } => {
                    let expires_at = *until + Duration::days(PARKED_DAYS);
                    self.store
                        .await_opening(number, customer, *until, expires_at)
                        .await?
                }
                Effect::OpeningDone => self.store.opening_done(number, customer).await?,
                Effect::TellPosition { ticket } => {
                    self.tell_position(number, customer, ticket, counts).await?
                }
                Effect::OpenDesk { handoff } => {
                    self.open_desk(number, customer, handoff, counts).await?
                }
                Effect::ForwardToDesk {
                    text,
                    media,
                    private,
                } => {
                    self.forward_to_desk(number, customer, text, media, *private, counts)
                        .await?
                }
                // Answered before the commit (`ask_ai`), never stored in the outbox.
                Effect::AskAi => {}
            }
            self.store
                .effect_done(number, customer, key, pending.sequence)
                .await?;
            self.crash_point().await;
        }
        Ok(())
    }

    async fn send(
        &self,
        number: &str,
        customer: &str,
        message: &Outbound,
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        let secrets = self.secrets(number).await?;
        match self
            .sender
            .send(number, secrets.whatsapp_token()?, customer, message)
            .await
        {
            Ok(sent) => {
                counts.lock().await.sent += 1;
                let now = self.now();
                let retention = self
                    .tenant(number)
                    .await?
                    .map_or(90, |t| i64::from(t.retention_days));
                self.store
                    .record_outbound(
                        number,
                        customer,
                        LogEntry {
                            at: now,
                            wamid: sent.wamid,
                            inbound: false,
                            kind: message.kind().into(),
                            text: text_of(message),
                        },
                        now + Duration::days(retention),
                    )
                    .await?;
                Ok(())
            }
            Err(error @ (SendError::GiveUp { .. } | SendError::Invalid(_))) => {
                // Permanent: recorded and counted, never retried.
                tracing::error!(%error, phone_number_id = %number, "message not delivered, giving up");
                counts.lock().await.permanent_send_failures += 1;
                Ok(())
            }
            Err(error @ SendError::Alarm { .. }) => {
                tracing::error!(%error, phone_number_id = %number, "send needs a person (token or policy)");
                counts.lock().await.needs_attention += 1;
                Err(WorkerError::Send(error))
            }
            Err(error) => Err(WorkerError::Send(error)),
        }
    }

    /// Runs an event from the business side (an agent on the desk, or the business's own
    /// WhatsApp app) through the conversation and commits the result.
    /// Assignments and resolutions in a desk conversation other than the customer's
    /// current one (an earlier one left open) must not act on the current handoff. An
    /// agent's reply still reaches the customer, from whichever conversation.
    async fn about_an_earlier_conversation(
        &self,
        envelope: &Envelope,
        desk: &DeskEvent,
    ) -> Result<bool, WorkerError> {
        let Some(conversation_id) = desk.conversation_id else {
            return Ok(false);
        };
        if matches!(desk.action, DeskAction::AgentReply { .. }) {
            return Ok(false);
        }
        let (number, customer) = envelope.conversation();
        Ok(self
            .store
            .desk_link(number, customer)
            .await?
            .is_some_and(|link| link.conversation_id != conversation_id))
    }

    /// Steps the conversation with an event that is not a customer message (`None`: only
    /// recorded) and commits.
    async fn apply_business(
        &self,
        envelope: &Envelope,
        event: Option<Event>,
        kind: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), WorkerError> {
        let (number, customer) = envelope.conversation();
        let Some(tenant) = self.tenant(number).await? else {
            // Only a tenant's own desk or number produces these: it existed a moment ago.
            tracing::warn!(phone_number_id = %number, event = kind, "event for an unknown tenant dropped");
            return Ok(());
        };
        let stored = self.store.session(number, customer).await?;
        let expected_version = stored.as_ref().map(|s| s.version);
        // A schedule's timer for a conversation that no longer exists: nothing is due.
        let outcome = event
            .filter(|event| stored.is_some() || !matches!(event, Event::Timer(_)))
            .map(|event| {
                engine::step(
                    stored.map(|s| s.session),
                    number,
                    customer,
                    &event,
                    now,
                    &tenant,
                )
            });
        if let Some(outcome) = &outcome {
            tracing::info!(
                event = kind,
                state = %outcome.session.state.business_name(),
                effects = outcome.effects.len(),
                "conversation stepped"
            );
        }
        self.store
            .commit(Commit {
                key,
                session: outcome.as_ref().map(|o| &o.session),
                expected_version,
                phone_number_id: number,
                customer,
                effects: outcome.as_ref().map_or(&[][..], |o| &o.effects[..]),
                inbound: LogEntry {
                    at: now,
                    wamid: key.into(),
                    inbound: false,
                    kind: kind.into(),
                    text: None,
                },
                expires_at: now + Duration::days(i64::from(tenant.retention_days)),
                ai_used: false,
            })
            .await?;
        Ok(())
    }

    /// The tenant's `sla_alert` template to each supervisor: level, department, minutes
    /// waited, customer (name and the last digits of the number).
    async fn alert_supervisors(
        &self,
        number: &str,
        customer: &str,
        alert: &SlaAlert<'_>,
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        let Some(tenant) = self.tenant(number).await? else {
            return Ok(());
        };
        tracing::warn!(
            level = alert.level.as_str(),
            department = %alert.ticket.department,
            waited_minutes = alert.waited_minutes,
            "customer waiting past the SLA"
        );
        let department = tenant
            .department(&alert.ticket.department)
            .map_or(alert.ticket.department.as_str(), |d| d.name.as_str());
        // The last 4 characters (by character: the id comes from outside).
        let last = customer
            .char_indices()
            .rev()
            .nth(3)
            .map_or(customer, |(at, _)| &customer[at..]);
        let who = match alert.customer_name {
            Some(name) => format!("{name} (…{last})"),
            None => format!("…{last}"),
        };
        let level = match alert.level {
            SlaLevel::Warning => "alerta",
            SlaLevel::Breach => "estouro",
        };
        if let Some(topic) = &self.alerts {
            let subject = format!("SLA {level}: {department} ({})", tenant.name);
            let message = serde_json::json!({
                "level": alert.level.as_str(),
                "phone_number_id": number,
                "tenant": tenant.name,
                "department": alert.ticket.department,
                "department_name": department,
                "priority": alert.ticket.priority.as_str(),
                "waited_minutes": alert.waited_minutes,
                "entered_at": alert.ticket.entered_at,
                "customer": who,
            });
            // Best effort, like each supervisor's message below: a failed alert is logged
            // and counted, and never holds up the conversation or repeats the others.
            match topic.publish(&subject, &message.to_string()).await {
                Ok(()) => counts.lock().await.sla_alerts += 1,
                Err(error) => {
                    tracing::error!(%error, "SLA alert not published");
                    counts.lock().await.sla_alert_failures += 1;
                }
            }
        }
        let Some(template) = &tenant.templates.sla_alert else {
            return Ok(());
        };
        let message = Outbound::Template {
            name: template.name.clone(),
            language: template.language.clone(),
            components: vec![TemplateComponent {
                kind: "body".into(),
                sub_type: None,
                index: None,
                parameters: vec![
                    level.into(),
                    department.into(),
                    alert.waited_minutes.to_string(),
                    who,
                ],
            }],
        };
        for supervisor in &tenant.desk.supervisors {
            match self.send(number, supervisor, &message, counts).await {
                Ok(()) => counts.lock().await.sla_alerts += 1,
                Err(error) => {
                    tracing::error!(%error, "SLA alert not sent to a supervisor");
                    counts.lock().await.sla_alert_failures += 1;
                }
            }
        }
        Ok(())
    }

    /// The customer's place in the queue and the wait estimate, in the tenant's words.
    async fn tell_position(
        &self,
        number: &str,
        customer: &str,
        ticket: &Ticket,
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        let Some(tenant) = self.tenant(number).await? else {
            return Ok(());
        };
        let (Some(with_estimate), Some(without)) =
            (&tenant.desk.position, &tenant.desk.position_no_estimate)
        else {
            return Ok(());
        };
        let now = self.now();
        let position = self.store.queue_position(number, customer, ticket).await?;
        let takes = self
            .store
            .recent_takes(number, &ticket.department, now - desk::ESTIMATE_WINDOW)
            .await?;
        let text = match desk::estimate_minutes(&takes, position) {
            Some(minutes) => with_estimate.replace("{minutes}", &minutes.to_string()),
            None => without.clone(),
        }
        .replace("{position}", &position.to_string());
        // Recorded before sending, and only when better than what was told: a retry or a
        // late timer never tells the same place twice, nor a worse one.
        if self
            .store
            .position_told(number, customer, ticket, position)
            .await?
        {
            self.send(number, customer, &Outbound::text(text), counts)
                .await?;
        }
        Ok(())
    }

    /// Opens (or finds, on a retry) the desk conversation of a handoff and posts the
    /// summary and transcript as a private note.
    async fn open_desk(
        &self,
        number: &str,
        customer: &str,
        handoff: &Handoff,
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        let Some(DeskAccess {
            tenant,
            account,
            token,
        }) = self.desk_access(number, counts).await?
        else {
            return Ok(());
        };
        let link = match self.store.desk_link(number, customer).await? {
            Some(link) if link.ticket_at == handoff.ticket_at => link,
            earlier => {
                let who = Customer {
                    phone_number_id: number,
                    customer,
                    name: handoff.customer_name.as_deref(),
                };
                let opened = self
                    .desk
                    .open(&account, &token, &who, handoff.ticket_at)
                    .await;
                let Some(link) = self.desk_result(opened, counts).await? else {
                    if earlier.is_some() {
                        self.store.forget_desk_link(number, customer).await?;
                    }
                    return Ok(());
                };
                let retention = Duration::days(i64::from(tenant.retention_days));
                self.store
                    .save_desk_link(number, customer, &link, self.now() + retention)
                    .await?;
                link
            }
        };
        let transcript: Vec<TranscriptLine> = self
            .store
            .transcript(number, customer, handoff.started_at)
            .await?
            .into_iter()
            // What was said: no statuses, desk events, timers or business-app echoes.
            .filter(|entry| {
                !matches!(entry.kind.as_str(), "status" | "echo")
                    && !entry.kind.starts_with("desk")
                    && !entry.kind.starts_with("timer")
            })
            .map(|entry| TranscriptLine {
                at: entry.at,
                from_customer: entry.inbound,
                text: entry.text.unwrap_or_else(|| format!("[{}]", entry.kind)),
            })
            .collect();
        let note = handoff.note(tenant.timezone, &transcript);
        let post = DeskPost {
            content: truncate_chars(&note, MAX_NOTE_CHARS).to_owned(),
            private: true,
            file: None,
        };
        self.post_to_desk(&account, &token, link.conversation_id, post, counts)
            .await
    }

    /// Posts a customer's message (media downloaded from Meta and attached) or a note into
    /// the conversation's desk conversation.
    async fn forward_to_desk(
        &self,
        number: &str,
        customer: &str,
        text: &Option<String>,
        media: &Option<MediaRef>,
        private: bool,
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        let Some(DeskAccess { account, token, .. }) = self.desk_access(number, counts).await?
        else {
            return Ok(());
        };
        let Some(link) = self.store.desk_link(number, customer).await? else {
            tracing::warn!("no desk conversation to forward to");
            counts.lock().await.desk_failures += 1;
            return Ok(());
        };
        let secrets = self.secrets(number).await?;
        // Held until the post is done and the file dropped.
        let _permit = match media {
            None => None,
            Some(_) => Some(match self.media_permits.try_acquire() {
                Ok(permit) => permit,
                Err(_) => {
                    tracing::info!(
                        limit = MEDIA_FORWARDS_AT_ONCE,
                        "media forwards at the limit; this one waits for a turn"
                    );
                    self.media_permits
                        .acquire()
                        .await
                        .expect("the permits are never closed")
                }
            }),
        };
        let mut content = text.clone().unwrap_or_default();
        let file = match media {
            None => None,
            Some(media) => match self
                .sender
                .download_media(secrets.whatsapp_token()?, &media.id)
                .await
            {
                Ok(downloaded) => Some(File {
                    name: media.filename.clone().unwrap_or_else(|| {
                        let extension = downloaded
                            .mime_type
                            .split(['/', ';'])
                            .nth(1)
                            .unwrap_or("bin");
                        format!("{}.{extension}", media.kind)
                    }),
                    mime_type: downloaded.mime_type,
                    bytes: downloaded.bytes,
                }),
                Err(error) if error.is_retryable() => return Err(WorkerError::Send(error)),
                Err(error) => {
                    tracing::warn!(%error, kind = %media.kind, "customer media not downloadable; forwarded as a note");
                    content = format!("[{} não encaminhado: {error}] {content}", media.kind);
                    None
                }
            },
        };
        let post = DeskPost {
            content,
            private,
            file,
        };
        self.post_to_desk(&account, &token, link.conversation_id, post, counts)
            .await
    }

    async fn post_to_desk(
        &self,
        account: &Chatwoot,
        token: &str,
        conversation_id: u64,
        post: DeskPost,
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        let posted = self.desk.post(account, token, conversation_id, post).await;
        if self.desk_result(posted, counts).await?.is_some() {
            counts.lock().await.desk_posts += 1;
        }
        Ok(())
    }

    /// The tenant's Chatwoot account and access token, when it has a desk; a missing token
    /// is counted like a desk refusal.
    async fn desk_access(
        &self,
        number: &str,
        counts: &Mutex<Counts>,
    ) -> Result<Option<DeskAccess>, WorkerError> {
        let Some(tenant) = self.tenant(number).await? else {
            return Ok(None);
        };
        let Some(account) = tenant.desk.chatwoot.clone() else {
            return Ok(None);
        };
        let secrets = self.secrets(number).await?;
        let token = secrets
            .chatwoot_token()
            .map(str::to_owned)
            .map_err(|e| DeskError::Refused(e.to_string()));
        Ok(self
            .desk_result(token, counts)
            .await?
            .map(|token| DeskAccess {
                tenant,
                account,
                token,
            }))
    }

    /// A desk call's outcome: unavailable fails the record (SQS retries it); refused is
    /// counted for a person to look at and the conversation goes on.
    async fn desk_result<V>(
        &self,
        result: Result<V, DeskError>,
        counts: &Mutex<Counts>,
    ) -> Result<Option<V>, WorkerError> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(error @ DeskError::Unavailable(_)) => Err(WorkerError::Desk(error)),
            Err(error @ DeskError::Refused(_)) => {
                tracing::error!(%error, "the desk refused a request; needs attention");
                let mut counts = counts.lock().await;
                counts.desk_failures += 1;
                counts.needs_attention += 1;
                Ok(None)
            }
        }
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

/// What the worker needs to call a tenant's desk.
struct DeskAccess {
    tenant: Arc<Tenant>,
    account: Chatwoot,
    token: String,
}

/// What an SLA alert tells the supervisors.
struct SlaAlert<'a> {
    level: SlaLevel,
    ticket: &'a Ticket,
    waited_minutes: i64,
    customer_name: Option<&'a str>,
}

fn text_of(message: &Outbound) -> Option<String> {
    match message {
        Outbound::Text { body, .. }
        | Outbound::Buttons { body, .. }
        | Outbound::List { body, .. }
        | Outbound::Flow { body, .. } => Some(body.clone()),
        Outbound::Media { kind, .. } => Some(format!("[{kind}]")),
        Outbound::Template { name, .. } => Some(format!("template {name}")),
    }
}
