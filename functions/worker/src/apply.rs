//! Applying a new event: the engine's step (with the AI attendant's answer when it asks),
//! then one commit of the session and the event's record with its effects. Delivery
//! statuses move their delivery record forward and need no event record, unless a failure
//! outside the 24 h window calls for the tenant's fallback template.

use chrono::{DateTime, Utc};
use shared::ai::{self, AiConversation, AiOutcome, Answer, Usage};
use shared::campaign::{self, CampaignStore, DeliveryUpdate};
use shared::engine::{self, Effect, Event, Input, OptWord, Outcome};
use shared::envelope::{DeskAction, Envelope, Payload, StatusUpdate, Timer};
use shared::store::{
    CampaignReply, Commit, DayCount, EventRecord, StatusChange, Store, StoredSession,
    SuppressionChange, SuppressionSource, parse_callback_data,
};
use shared::support::deadline::Deadline;
use shared::tenant::Tenant;
use shared::whatsapp::outbound::Outbound;
use tokio::sync::Mutex;

use crate::counters::Counts;
use crate::desk::DeskOrigin;
use crate::signals;
use crate::{Adapters, Worker, WorkerError};

/// Meta error: the customer is outside the 24 h service window.
const OUTSIDE_WINDOW: i64 = 131047;
/// Kept free for the commit and the sends after the AI attendant answers: this much, or a
/// quarter of the time left when the invocation is shorter.
const AFTER_AI: std::time::Duration = std::time::Duration::from_secs(15);

impl<A: Adapters> Worker<A> {
    /// Steps the conversation with a new event, commits the session and the event's
    /// record, and returns the record (its outbox runs next).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn apply(
        &self,
        envelope: &Envelope,
        key: &str,
        stored: Option<StoredSession>,
        reply: Option<CampaignReply>,
        tenant: &Tenant,
        now: DateTime<Utc>,
        deadline: Deadline,
        counts: &Mutex<Counts>,
    ) -> Result<EventRecord, WorkerError> {
        let (number, customer) = envelope
            .conversation()
            .expect("only events of a conversation are applied");
        let mut record = EventRecord::new(now, "", Vec::new());
        // The customer's ids, when a message the engine answers holds an opt word: the only
        // case the suppression list is read on this path.
        let mut opt_ids = None;
        // A stale opt-out is not answered, but it is honoured.
        let mut unanswered_opt_out = None;
        let event = match &envelope.payload {
            Payload::Message(message) => {
                record.kind = message.message_type.clone();
                record.inbound = true;
                // A tapped choice reads as its title in the transcript.
                record.text = message
                    .text
                    .clone()
                    .or_else(|| message.reply.as_ref().map(|r| r.title.clone()));
                let sent_at = DateTime::from_timestamp(message.timestamp, 0).unwrap_or(now);
                let opt_word = engine::opt_word(tenant, &Input::from_message(message));
                if now - sent_at > self.config.stale_after {
                    if opt_word == Some(OptWord::Out) {
                        unanswered_opt_out = Some(SuppressionChange::Suppress {
                            ids: signals::customer_ids(message),
                            source: SuppressionSource::Words,
                            since: now,
                        });
                    }
                    counts.lock().await.stale += 1;
                    tracing::info!(
                        age_seconds = (now - sent_at).num_seconds(),
                        "stale message recorded, not answered"
                    );
                    // Still forwarded while a person has the conversation.
                    stored.is_some().then(|| Event::late_message(message))
                } else {
                    let event = Event::from_message(message)
                        .answering(reply.as_ref().map(|r| r.campaign.clone()));
                    match opt_word {
                        Some(_) => {
                            let ids = signals::customer_ids(message);
                            let suppressed = self.ports.store.suppressed(number, &ids).await?;
                            opt_ids = Some(ids);
                            Some(event.suppressed(suppressed))
                        }
                        None => Some(event),
                    }
                }
            }
            Payload::Echo(echo) => {
                counts.lock().await.echoes += 1;
                record.kind = "echo".into();
                Some(Event::BusinessEcho {
                    sent_at: echo.timestamp,
                })
            }
            Payload::Desk(desk) => {
                counts.lock().await.desk_events += 1;
                record.kind = match desk.action {
                    DeskAction::AgentReply { .. } => "desk_reply",
                    DeskAction::Assigned { .. } => "desk_assigned",
                    DeskAction::Resolved => "desk_resolved",
                }
                .into();
                match self.desk_origin(tenant, desk).await? {
                    DeskOrigin::Current => Some(Event::Desk(desk.action.clone())),
                    // An agent's reply still reaches the customer from an earlier
                    // conversation; an assignment or resolution there must not act on the
                    // current handoff.
                    DeskOrigin::Earlier if matches!(desk.action, DeskAction::AgentReply { .. }) => {
                        Some(Event::Desk(desk.action.clone()))
                    }
                    DeskOrigin::Earlier => {
                        tracing::info!(
                            event = record.kind,
                            "desk event about an earlier conversation of this customer; ignored"
                        );
                        None
                    }
                    DeskOrigin::Refused(refusal) => {
                        record.effects = self.refuse(desk, &record.kind, refusal, counts).await;
                        None
                    }
                }
            }
            Payload::Timer(timer) => {
                counts.lock().await.timers += 1;
                record.kind = match timer.timer {
                    Timer::SlaWarning { .. } => "timer_sla_warning",
                    Timer::SlaBreach { .. } => "timer_sla_breach",
                    Timer::QueuePosition { .. } => "timer_position",
                    Timer::Opening { .. } => "timer_opening",
                }
                .into();
                // A schedule's timer for a conversation that no longer exists: nothing is due.
                stored.is_some().then(|| Event::Timer(timer.timer.clone()))
            }
            // Decided from the session as it is now: no session is written.
            Payload::Send(send) => {
                record.kind = "api_send".into();
                let session = stored.as_ref().map(|s| &s.session);
                match engine::api_send(session, &send.content, now) {
                    Ok(message) => {
                        counts.lock().await.api_sends += 1;
                        record.effects = vec![Effect::Send { message }];
                    }
                    Err(refusal) => {
                        counts.lock().await.api_sends_refused += 1;
                        tracing::info!(%refusal, "API send refused");
                        record.text = Some(refusal.to_string());
                    }
                }
                None
            }
            Payload::Status(_) => unreachable!("statuses are applied by apply_status"),
            Payload::Erase(_) => unreachable!("erasures are carried out by erase"),
            Payload::Preference(_) => unreachable!("preferences are applied by apply_preference"),
            Payload::WabaSignal(_) => unreachable!("account signals have no conversation"),
        };
        let expected_version = stored.as_ref().map(|s| s.version);
        // A late message changes no session: its record is written alone.
        let late = matches!(event, Some(Event::LateMessage { .. }));
        let outcome = event.map(|event| {
            engine::step(
                stored.map(|s| s.session),
                number,
                customer,
                &event,
                now,
                tenant,
            )
        });
        let (outcome, ai_used) = match (outcome, &envelope.payload) {
            (Some(outcome), Payload::Message(message)) => {
                let (outcome, asked) = self
                    .ask_ai(
                        outcome,
                        number,
                        customer,
                        &message.wamid,
                        tenant,
                        now,
                        deadline,
                        counts,
                    )
                    .await;
                (Some(outcome), asked)
            }
            (outcome, _) => (outcome, false),
        };
        if let Some(outcome) = &outcome {
            record.effects = outcome.effects.clone();
        }
        let suppression = unanswered_opt_out.or_else(|| {
            opt_ids.and_then(|ids| signals::suppression_change(&mut record.effects, ids, now))
        });
        // Events out: nothing is worked out for a tenant without subscriptions.
        if !tenant.hooks.is_empty() {
            let facts = crate::publish::facts(
                envelope,
                outcome.as_ref().filter(|_| !late),
                &record.effects,
                suppression.as_ref(),
            );
            record.effects.extend(crate::publish::publish_effect(
                &tenant.hooks,
                envelope,
                &record.effects,
                facts,
            ));
        }
        if let Some(outcome) = &outcome {
            tracing::info!(
                event = record.kind,
                state = %outcome.session.state.business_name(),
                effects = outcome.effects.len(),
                "conversation stepped"
            );
        }
        self.ports
            .store
            .commit(Commit {
                key,
                phone_number_id: number,
                customer,
                session: outcome.as_ref().filter(|_| !late).map(|o| &o.session),
                expected_version,
                record: &record,
                expires_at: now + self.retention(number).await?,
                ai_used,
                // Counted on the tenant's local day, with the event: exactly once.
                report: outcome.as_ref().filter(|_| !late).map(|o| DayCount {
                    day: now.with_timezone(&tenant.timezone).date_naive(),
                    tally: &o.report,
                }),
                suppression: suppression.as_ref(),
            })
            .await?;
        // The session names the send only when this message opened its conversation. The
        // counts are not worth delaying the answer for: one that fails is logged and lost
        // (the record is committed, so a redelivery would not count it either).
        if let Some(reply) = reply.filter(|reply| {
            outcome
                .as_ref()
                .is_some_and(|o| o.session.campaign.as_ref() == Some(&reply.campaign))
        }) && let Err(error) = self.count_reply(number, &reply, now, counts).await
        {
            tracing::warn!(%error, campaign = %reply.campaign.id, "campaign reply not counted");
        }
        match &suppression {
            Some(SuppressionChange::Suppress { ids, .. }) => {
                counts.lock().await.opt_outs += 1;
                if let Err(error) = self.count_opt_out(number, ids, now, counts).await {
                    tracing::warn!(%error, "campaign opt-out not counted");
                }
            }
            Some(SuppressionChange::Allow { .. }) => counts.lock().await.opt_ins += 1,
            None => {}
        }
        if let Payload::Message(message) = &envelope.payload
            && !ai_used
            && record
                .effects
                .iter()
                .any(|e| matches!(e, Effect::Send { .. }))
        {
            self.mark_read(number, &message.wamid).await;
        }
        Ok(record)
    }

    /// Carries out an [`Effect::AskAi`] before the commit: Claude's answer goes back into
    /// the engine, and the session and every effect are then committed together. A crash
    /// before the commit asks again on redelivery, and nothing was sent yet. Returns whether
    /// the attendant was asked.
    #[allow(clippy::too_many_arguments)]
    async fn ask_ai(
        &self,
        mut outcome: Outcome,
        number: &str,
        customer: &str,
        wamid: &str,
        tenant: &Tenant,
        now: DateTime<Utc>,
        deadline: Deadline,
        counts: &Mutex<Counts>,
    ) -> (Outcome, bool) {
        if outcome.effects.last() != Some(&Effect::AskAi) {
            return (outcome, false);
        }
        outcome.effects.pop();
        let remaining = deadline.remaining();
        let left = remaining.saturating_sub(AFTER_AI.min(remaining / 4));
        let until = tokio::time::Instant::now() + left;
        let started = std::time::Instant::now();
        // The engine starts the AI history before it asks; nothing is cloned for the call.
        let no_history = AiConversation::default();
        let conversation = outcome.session.ai.as_ref().unwrap_or(&no_history);
        let secrets = self.ports.ai_secrets.get().await;
        let key = secrets
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|secrets| secrets.anthropic_api_key());
        let answer = match key {
            // The customer sees "typing..." while Claude thinks; the mark runs alongside.
            Ok(key) => {
                let answering = ai::answer(&self.ports.assistant, key, tenant, conversation, until);
                tokio::join!(self.mark_read(number, wamid), answering).1
            }
            Err(error) => Answer {
                outcome: AiOutcome::Failed {
                    error: format!("AI secret: {error}"),
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
            number,
            customer,
            &Event::AiAnswered(answer),
            now,
            tenant,
        );
        outcome.effects.extend(answered.effects);
        outcome.report.add(&answered.report);
        (
            Outcome {
                session: answered.session,
                effects: outcome.effects,
                report: outcome.report,
            },
            true,
        )
    }

    /// Moves the delivery record forward (one conditional write: a duplicate or an older
    /// status changes nothing). A message that failed outside the 24 h window is followed
    /// by the tenant's approved template, when it has one: that goes through an event
    /// record written before the status, so a crash in between still sends it, once.
    pub(crate) async fn apply_status(
        &self,
        envelope: &Envelope,
        status: &StatusUpdate,
        key: &str,
        now: DateTime<Utc>,
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        if let Some((campaign_id, seq)) = status
            .callback_data
            .as_deref()
            .and_then(campaign::parse_callback_data)
        {
            return self
                .apply_campaign_status(status, key, campaign_id, seq, counts)
                .await;
        }
        let (number, customer) = (&status.phone_number_id, &status.customer);
        let tenant = self.tenant(number).await?;
        if let Some(tenant) = &tenant {
            self.publish_wanted(
                tenant,
                crate::publish::status_event(status, key, now),
                counts,
            )
            .await?;
        }
        let expires_at = now + self.retention(number).await?;
        // A disabled tenant's statuses are recorded, but nothing is sent for it.
        let fallback = tenant
            .as_ref()
            .filter(|t| !t.disabled)
            .and_then(|t| t.templates.window_fallback.as_ref())
            .filter(|_| status.status == "failed" && status.error_codes.contains(&OUTSIDE_WINDOW));
        let Some(template) = fallback else {
            let change = self
                .ports
                .store
                .update_status(status, now, expires_at)
                .await?;
            counts.lock().await.statuses += 1;
            return self.settle_send(status, &change, now).await;
        };
        let record = match self.ports.store.load(number, customer, key).await?.record {
            Some(record) => record,
            // The failed message belongs to an erased conversation: nothing is sent to it.
            None if self.of_erased_event(status, now).await? => return Ok(()),
            None => {
                let record = EventRecord::new(
                    now,
                    "status",
                    vec![Effect::Send {
                        message: Outbound::Template {
                            name: template.name.clone(),
                            language: template.language.clone(),
                            components: Vec::new(),
                        },
                    }],
                );
                self.ports
                    .store
                    .commit(Commit {
                        key,
                        phone_number_id: number,
                        customer,
                        session: None,
                        expected_version: None,
                        record: &record,
                        expires_at,
                        ai_used: false,
                        report: None,
                        suppression: None,
                    })
                    .await?;
                record
            }
        };
        let change = self
            .ports
            .store
            .update_status(status, now, expires_at)
            .await?;
        counts.lock().await.statuses += 1;
        self.settle_send(status, &change, now).await?;
        self.run_outbox(envelope, number, customer, key, &record, counts)
            .await
    }

    /// A campaign send's status moves its recipient's delivery forward and the campaign's
    /// counters, at most once per status (by rank); the recipient item is the send's
    /// delivery record, so no `OUT#` item is written. A recipient left `sending` by a
    /// sender that did not learn Meta's answer is settled here as sent (see
    /// `shared::campaign::sender`).
    async fn apply_campaign_status(
        &self,
        status: &StatusUpdate,
        key: &str,
        campaign_id: &str,
        seq: u32,
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        let update = DeliveryUpdate {
            phone_number_id: &status.phone_number_id,
            campaign_id,
            seq,
            status: &status.status,
            wamid: &status.wamid,
            error_code: status.error_codes.first().copied(),
        };
        if let Some(tenant) = self.tenant(&status.phone_number_id).await? {
            let mut event = crate::publish::status_event(status, key, self.now());
            event.data["campaign_id"] = serde_json::json!(campaign_id);
            self.publish_wanted(&tenant, event, counts).await?;
        }
        if !self.ports.campaigns.delivery(&update).await? {
            tracing::debug!(
                campaign = campaign_id,
                seq,
                "campaign status changes nothing"
            );
        }
        counts.lock().await.statuses += 1;
        Ok(())
    }

    /// A message's first status proves Meta took it: when its send (named by the callback
    /// data) is not done yet, its outcome may be unknown to the worker, so the record keeps
    /// the wamid and the send is not made again. One read per message sent; a write only
    /// on that rare path.
    async fn settle_send(
        &self,
        status: &StatusUpdate,
        change: &StatusChange,
        now: DateTime<Utc>,
    ) -> Result<(), WorkerError> {
        let first = matches!(change, StatusChange::Applied { previous: None });
        let Some((key, sequence)) = status
            .callback_data
            .as_deref()
            .filter(|_| first)
            .and_then(parse_callback_data)
        else {
            return Ok(());
        };
        let (number, customer) = (&status.phone_number_id, &status.customer);
        let store = &self.ports.store;
        match store.event_record(number, customer, key).await? {
            Some(record) if record.done <= sequence => {
                tracing::info!(sequence, "status settles a send not marked done");
                store
                    .settle(number, customer, key, sequence, &status.wamid)
                    .await?;
            }
            Some(_) => {}
            // The record is gone: a status of a message of an erased conversation created
            // the delivery record again (a rare path: one more read).
            None => {
                if store.erased(number, key, now).await? {
                    store.forget_delivery(&status.wamid).await?;
                }
            }
        }
        Ok(())
    }

    /// Whether a status's callback data names an event of an erased conversation.
    async fn of_erased_event(
        &self,
        status: &StatusUpdate,
        now: DateTime<Utc>,
    ) -> Result<bool, WorkerError> {
        match status
            .callback_data
            .as_deref()
            .and_then(parse_callback_data)
        {
            Some((key, _)) => Ok(self
                .ports
                .store
                .erased(&status.phone_number_id, key, now)
                .await?),
            None => Ok(false),
        }
    }
}
