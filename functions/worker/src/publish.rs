//! Events out: what a step did, for the tenant's subscribers (n8n, Typebot, its systems).
//!
//! Nothing is read for it: the tenant's config item carries the enabled subscriptions'
//! event types (`Tenant::hooks`), so a tenant without subscriptions costs no call. When one
//! wants an event of a record, the record's last effect is [`Effect::Publish`] with the
//! step's small [`Fact`]s; the outbox carries it out like the sends before it, as one
//! message on the hooks queue, so a crash before it publishes on the redelivery and one
//! after it is done is not published twice by the worker (the ids are stable either way).
//! The message and the messages sent are read from the envelope and the record when
//! published. Statuses and Meta's marketing preferences have no record: they are published
//! before they are applied, so a redelivery publishes again with the same ids.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use shared::engine::{Effect, Outcome};
use shared::envelope::{DeskAction, Envelope, Payload, PreferenceChange, StatusUpdate};
use shared::hooks::{
    EventType, Fact, HookEvent, HookMessage, HookQueue, MESSAGE_VERSION, Subscribed, wanted,
};
use shared::store::{EventRecord, SuppressionChange};
use shared::support::retry::RetryPolicy;
use shared::tenant::Tenant;
use std::time::Duration;
use tokio::sync::Mutex;

use crate::counters::Counts;
use crate::{Adapters, Worker, WorkerError};

/// In-process attempts at the hooks queue before the record fails (and its redelivery
/// resumes at the publish).
const PUBLISH_ATTEMPTS: u32 = 3;

/// The facts of a step, in a fixed order (the events' ids follow it).
pub(crate) fn facts(
    envelope: &Envelope,
    outcome: Option<&Outcome>,
    effects: &[Effect],
    suppression: Option<&SuppressionChange>,
) -> Vec<Fact> {
    let mut facts = Vec::new();
    if let Some(outcome) = outcome {
        let report = &outcome.report;
        if report.started > 0 {
            facts.push(Fact::Started);
        }
        if let (Payload::Message(_), Some(campaign)) =
            (&envelope.payload, &outcome.session.campaign)
            && report.started > 0
        {
            facts.push(Fact::AnswersCampaign {
                campaign_id: campaign.id.clone(),
            });
        }
        if report.handed_over > 0 {
            let ticket = effects.iter().find_map(|effect| match effect {
                Effect::EnqueueHuman { ticket } => Some(ticket),
                _ => None,
            });
            let department = match (&ticket, &outcome.session.state) {
                (Some(ticket), _) => ticket.department.clone(),
                (None, shared::engine::State::Human { department }) => department.clone(),
                (None, _) => String::new(),
            };
            let reason = ticket.map_or_else(
                || "agent".to_owned(),
                |ticket| {
                    serde_json::to_value(ticket.reason)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                },
            );
            facts.push(Fact::HandedOver { department, reason });
        }
        if let Payload::Desk(desk) = &envelope.payload
            && let DeskAction::Assigned { agent } = &desk.action
        {
            facts.push(Fact::Assigned {
                agent: Some(agent.clone()).filter(|a| !a.is_empty()),
            });
        }
        if report.resolved > 0 {
            facts.push(Fact::Closed { by: "agent".into() });
        } else if report.bot_only > 0 {
            facts.push(Fact::Closed { by: "bot".into() });
        }
        if report.nps_answers > 0 {
            facts.push(Fact::NpsAnswered {
                score: report.nps_sum,
            });
        }
    }
    match suppression {
        Some(SuppressionChange::Suppress { source, .. }) => facts.push(Fact::OptedOut {
            source: source.as_str().into(),
        }),
        Some(SuppressionChange::Allow { .. }) => facts.push(Fact::OptedIn {
            source: "words".into(),
        }),
        None => {}
    }
    facts
}

/// The record's publish effect, when a subscription wants one of its events.
pub(crate) fn publish_effect(
    subscribed: &[Subscribed],
    envelope: &Envelope,
    effects: &[Effect],
    facts: Vec<Fact>,
) -> Option<Effect> {
    if subscribed.is_empty() {
        return None;
    }
    let received = matches!(envelope.payload, Payload::Message(_))
        && wanted(subscribed, EventType::MessageReceived);
    let sent = wanted(subscribed, EventType::MessageSent)
        && effects.iter().any(|e| matches!(e, Effect::Send { .. }));
    let any_fact = facts
        .iter()
        .filter_map(Fact::event_type)
        .any(|t| wanted(subscribed, t));
    (received || sent || any_fact).then_some(Effect::Publish { facts })
}

/// Who a record's sends come from.
fn sent_by(kind: &str) -> &'static str {
    match kind {
        "desk_reply" => "agent",
        "api_send" => "api",
        _ => "bot",
    }
}

/// The events of a record's publish effect, every one the step produced, with ids from the
/// event key and a fixed position: the message first, then the facts, then each send by its
/// effect's sequence.
pub(crate) fn record_events(
    envelope: &Envelope,
    key: &str,
    record: &EventRecord,
    facts: &[Fact],
    now: DateTime<Utc>,
) -> Vec<HookEvent> {
    let Some((number, customer)) = envelope.conversation() else {
        return Vec::new();
    };
    let event = |event_type, index, at, data| {
        HookEvent::new(event_type, key, index, at, number, Some(customer), data)
    };
    let mut events = Vec::new();
    if let Payload::Message(message) = &envelope.payload {
        let mut data = Map::new();
        data.insert("wamid".into(), json!(message.wamid));
        data.insert("kind".into(), json!(message.message_type));
        if let Some(text) = &record.text {
            data.insert("text".into(), json!(text));
        }
        if let Some(reply) = &message.reply {
            data.insert(
                "reply".into(),
                json!({"id": reply.id, "title": reply.title}),
            );
        }
        if let Some(media) = shared::engine::media_of(message) {
            data.insert(
                "media".into(),
                json!({"id": media.id, "mime_type": media.mime_type}),
            );
        }
        for fact in facts {
            if let Fact::AnswersCampaign { campaign_id } = fact {
                data.insert("campaign_id".into(), json!(campaign_id));
            }
        }
        events.push(event(
            EventType::MessageReceived,
            0,
            record.at,
            Value::Object(data),
        ));
    }
    for (position, fact) in facts.iter().enumerate() {
        if let Some(event_type) = fact.event_type() {
            events.push(event(event_type, 1 + position, record.at, fact.data()));
        }
    }
    for (sequence, message, wamid) in sends(record) {
        let mut data = Map::new();
        data.insert("wamid".into(), json!(wamid));
        data.insert("kind".into(), json!(message.kind()));
        let text = message.transcript_text();
        if !text.is_empty() {
            data.insert("text".into(), json!(text));
        }
        data.insert("by".into(), json!(sent_by(&record.kind)));
        events.push(event(
            EventType::MessageSent,
            1 + facts.len() + sequence,
            now,
            Value::Object(data),
        ));
    }
    events
}

/// The record's sends Meta took, with their wamids: `sent` holds the wamids of the sends
/// and of the queue-position messages in effect order; a position message that sent
/// nothing leaves no wamid, so when the counts differ only the sends are matched.
fn sends(record: &EventRecord) -> Vec<(usize, &shared::whatsapp::outbound::Outbound, &String)> {
    let done = &record.effects[..record.done.min(record.effects.len())];
    let taken = |sequence: &usize| !record.failed.contains_key(sequence);
    let with_positions = done
        .iter()
        .enumerate()
        .filter(|(sequence, effect)| match effect {
            Effect::Send { .. } => taken(sequence),
            Effect::TellPosition { .. } => true,
            _ => false,
        })
        .count();
    let mut wamids = record.sent.iter();
    let mut sends = Vec::new();
    for (sequence, effect) in done.iter().enumerate() {
        match effect {
            Effect::Send { message } if taken(&sequence) => {
                if let Some(wamid) = wamids.next() {
                    sends.push((sequence, message, wamid));
                }
            }
            Effect::TellPosition { .. } if with_positions == record.sent.len() => {
                wamids.next();
            }
            _ => {}
        }
    }
    sends
}

/// A delivery status as an event; its id follows the status's key (`<wamid>:<status>`).
pub(crate) fn status_event(status: &StatusUpdate, key: &str, now: DateTime<Utc>) -> HookEvent {
    let mut data = Map::new();
    data.insert("wamid".into(), json!(status.wamid));
    data.insert("status".into(), json!(status.status));
    if let Some(code) = status.error_codes.first() {
        data.insert("error_code".into(), json!(code));
    }
    let at = DateTime::from_timestamp(status.timestamp, 0)
        .filter(|_| status.timestamp > 0)
        .unwrap_or(now);
    HookEvent::new(
        EventType::MessageStatus,
        key,
        0,
        at,
        &status.phone_number_id,
        Some(&status.customer),
        Value::Object(data),
    )
}

/// Meta's marketing preference as `customer.opted_out` or `customer.opted_in`.
pub(crate) fn preference_event(
    preference: &PreferenceChange,
    key: &str,
    change: &SuppressionChange,
    now: DateTime<Utc>,
) -> HookEvent {
    let fact = match change {
        SuppressionChange::Suppress { .. } => Fact::OptedOut {
            source: "meta".into(),
        },
        SuppressionChange::Allow { .. } => Fact::OptedIn {
            source: "meta".into(),
        },
    };
    let at = DateTime::from_timestamp(preference.timestamp, 0)
        .filter(|_| preference.timestamp > 0)
        .unwrap_or(now);
    HookEvent::new(
        fact.event_type().expect("opt-outs and opt-ins are events"),
        key,
        0,
        at,
        &preference.phone_number_id,
        Some(&preference.customer),
        fact.data(),
    )
}

impl<A: Adapters> Worker<A> {
    /// Carries out a record's [`Effect::Publish`]: one message on the hooks queue.
    pub(crate) async fn publish_record(
        &self,
        envelope: &Envelope,
        key: &str,
        record: &EventRecord,
        facts: &[Fact],
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        let Some((number, _)) = envelope.conversation() else {
            return Ok(());
        };
        // Only what a subscription wants leaves the stack (the positions, and so the ids,
        // are those of every event the step produced).
        let Some(tenant) = self.tenant(number).await? else {
            return Ok(());
        };
        let events = record_events(envelope, key, record, facts, self.now())
            .into_iter()
            .filter(|event| wanted(&tenant.hooks, event.event_type))
            .collect();
        self.publish(number, events, counts).await
    }

    /// Publishes `event` when the tenant has a subscription that wants its type.
    pub(crate) async fn publish_wanted(
        &self,
        tenant: &Tenant,
        event: HookEvent,
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        if !wanted(&tenant.hooks, event.event_type) {
            return Ok(());
        }
        self.publish(&tenant.phone_number_id, vec![event], counts)
            .await
    }

    async fn publish(
        &self,
        number: &str,
        events: Vec<HookEvent>,
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        if events.is_empty() {
            return Ok(());
        }
        let Some(queue) = &self.ports.events_out else {
            counts.lock().await.events_unpublished += events.len();
            tracing::error!(
                events = events.len(),
                "a subscription wants events but HOOKS_QUEUE_URL is not set; not published"
            );
            return Ok(());
        };
        let published = events.len();
        let message = HookMessage::Batch {
            v: MESSAGE_VERSION,
            phone_number_id: number.into(),
            events,
        };
        let policy = RetryPolicy {
            attempts: PUBLISH_ATTEMPTS,
            base_delay: Duration::from_millis(100),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match queue.publish(&message, Duration::ZERO).await {
                Ok(()) => break,
                Err(error) if attempt >= policy.attempts => {
                    return Err(WorkerError::Publish(error));
                }
                Err(error) => {
                    tracing::warn!(%error, attempt, "hooks queue refused the events; retrying");
                    tokio::time::sleep(policy.backoff(attempt, Duration::from_secs(1))).await;
                }
            }
        }
        counts.lock().await.events_published += published;
        Ok(())
    }
}
