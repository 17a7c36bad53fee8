//! Running an event's outbox: each pending effect in order, each marked done as soon as it
//! is carried out, so a redelivery resumes at the first one not done. Only the effect in
//! flight when a container dies can be repeated (the Graph API takes no idempotency key).
//!
//! A send whose outcome is unknown (Meta may have taken it) is recorded on the event's
//! record and fails the record; a status webhook carrying the send's callback data settles
//! it (a redelivery then moves on with that wamid), and only when none came within
//! [`SETTLE_WAIT`] is it sent again.

use chrono::Duration;
use shared::campaign::DailyCount;
use shared::engine::Effect;
use shared::envelope::Envelope;
use shared::store::{EventRecord, Store, callback_data};
use shared::support::deadline::AFTER_CALL;
use shared::whatsapp::outbound::Outbound;
use shared::whatsapp::{CALL_TIMEOUT, MARK_READ_TIMEOUT, SendError, Sender};
use tokio::sync::Mutex;

use crate::counters::Counts;
use crate::desk::SlaAlert;
use crate::{Adapters, PARKED_DAYS, Worker, WorkerError};

/// How long a send with an unknown outcome waits for a status before it is sent again:
/// Meta's statuses follow an accepted send within seconds. Under the queue's visibility
/// timeout, so the record's first redelivery is past it.
pub const SETTLE_WAIT: Duration = Duration::minutes(5);

/// What became of one send.
pub(crate) enum Sending {
    /// Meta took it: its wamid.
    Sent(String),
    /// Refused for good (Graph's error code, when it gave one): recorded, never retried.
    GaveUp(Option<i64>),
}

impl<A: Adapters> Worker<A> {
    /// A send that should be retried stops here and fails the record: the redelivery
    /// resumes at this effect.
    pub(crate) async fn run_outbox(
        &self,
        envelope: &Envelope,
        number: &str,
        customer: &str,
        key: &str,
        record: &EventRecord,
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        let store = &self.ports.store;
        // What is carried out so far, as the store has it: a record that publishes reads
        // its sends at the end. Kept only for such a record (none without subscriptions).
        let publishes = matches!(record.effects.last(), Some(Effect::Publish { .. }));
        let mut progress = publishes.then(|| record.clone());
        for (sequence, effect) in record.effects.iter().enumerate().skip(record.done) {
            let mut sent = None;
            let mut gave_up = None;
            match effect {
                Effect::Send { message } => {
                    match self
                        .send_effect(number, customer, key, record, sequence, message, counts)
                        .await?
                    {
                        Sending::Sent(wamid) => sent = Some(wamid),
                        Sending::GaveUp(code) => gave_up = Some(code),
                    }
                }
                Effect::EnqueueHuman { ticket } => {
                    let expires_at = self.now() + self.retention(number).await?;
                    store
                        .enqueue_human(number, customer, ticket, expires_at)
                        .await?
                }
                Effect::LeaveQueue { ticket, taken_at } => {
                    store
                        .leave_queue(number, customer, ticket, *taken_at)
                        .await?
                }
                Effect::MarkAlerted { ticket } => {
                    store.mark_alerted(number, customer, ticket).await?
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
                    store
                        .await_opening(number, customer, *until, expires_at)
                        .await?
                }
                Effect::OpeningDone => store.opening_done(number, customer).await?,
                Effect::TellPosition { ticket } => {
                    sent = self.tell_position(number, customer, ticket, counts).await?
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
                Effect::NoteInDesk {
                    conversation_id,
                    text,
                } => {
                    self.note_in_desk(number, *conversation_id, text, counts)
                        .await?
                }
                Effect::Publish { facts } => {
                    let carried_out = progress.as_ref().unwrap_or(record);
                    self.publish_record(envelope, key, carried_out, facts, counts)
                        .await?
                }
                // Answered before the commit (`ask_ai`), and the suppression list changed
                // with it: never stored in the outbox.
                Effect::AskAi | Effect::OptOut | Effect::OptIn => {}
            }
            match gave_up {
                Some(code) => {
                    store
                        .send_failed(number, customer, key, sequence, code)
                        .await?;
                    if let Some(progress) = &mut progress {
                        progress.failed.insert(sequence, code);
                    }
                }
                None => {
                    store
                        .effect_done(number, customer, key, sequence, sent.as_deref())
                        .await?;
                    if let Some(progress) = &mut progress {
                        progress.sent.extend(sent);
                    }
                }
            }
            if let Some(progress) = &mut progress {
                progress.done = sequence + 1;
            }
            self.crash_point().await;
        }
        Ok(())
    }

    /// The outbox's send `sequence`, tagged with its callback data: sent, settled by a
    /// status, or (outcome unknown) recorded and failing the record until settled or past
    /// [`SETTLE_WAIT`].
    #[allow(clippy::too_many_arguments)]
    async fn send_effect(
        &self,
        number: &str,
        customer: &str,
        key: &str,
        record: &EventRecord,
        sequence: usize,
        message: &Outbound,
        counts: &Mutex<Counts>,
    ) -> Result<Sending, WorkerError> {
        let store = &self.ports.store;
        if let Some(wamid) = record.settled.get(&sequence) {
            counts.lock().await.unknown_sends_settled += 1;
            tracing::info!(sequence, "send settled by its status; not sent again");
            return Ok(Sending::Sent(wamid.clone()));
        }
        if let Some(unsettled) = record.unsettled.filter(|u| u.sequence == sequence) {
            if self.now() < unsettled.since + SETTLE_WAIT {
                return Err(WorkerError::Unsettled {
                    since: unsettled.since,
                });
            }
            // Settled in the meantime, or cleared for the second send.
            if let Some(wamid) = store
                .mark_unsettled(number, customer, key, sequence, None)
                .await?
            {
                counts.lock().await.unknown_sends_settled += 1;
                return Ok(Sending::Sent(wamid));
            }
            counts.lock().await.unknown_sends_resent += 1;
            tracing::warn!(
                sequence,
                waited_minutes = (self.now() - unsettled.since).num_minutes(),
                "no status settled an unknown send; sending it again"
            );
        }
        let tag = callback_data(key, sequence);
        match self
            .send_tagged(number, customer, message, &tag, counts)
            .await
        {
            Err(WorkerError::SendUnknown(error)) => {
                counts.lock().await.unknown_sends += 1;
                tracing::warn!(%error, sequence, "send outcome unknown; waiting for its status before sending again");
                let since = self.now();
                match store
                    .mark_unsettled(number, customer, key, sequence, Some(since))
                    .await?
                {
                    Some(wamid) => {
                        counts.lock().await.unknown_sends_settled += 1;
                        Ok(Sending::Sent(wamid))
                    }
                    None => Err(WorkerError::Unsettled { since }),
                }
            }
            sent => sent,
        }
    }

    /// Sends one message outside the outbox's sends (alerts, queue positions); returns the
    /// wamid Meta gave it, or `None` when Meta refused it for good or its outcome is
    /// unknown (recorded and counted, never retried).
    pub(crate) async fn send(
        &self,
        number: &str,
        to: &str,
        message: &Outbound,
        counts: &Mutex<Counts>,
    ) -> Result<Option<String>, WorkerError> {
        match self.send_tagged(number, to, message, "", counts).await {
            Ok(Sending::Sent(wamid)) => Ok(Some(wamid)),
            Ok(Sending::GaveUp(_)) => Ok(None),
            Err(WorkerError::SendUnknown(error)) => {
                counts.lock().await.unknown_sends += 1;
                tracing::warn!(%error, "send outcome unknown; not sent again");
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Sends one message with its callback data: the wamid Meta gave it, or Meta's refusal
    /// for good (logged and counted, never retried).
    async fn send_tagged(
        &self,
        number: &str,
        to: &str,
        message: &Outbound,
        callback_data: &str,
        counts: &Mutex<Counts>,
    ) -> Result<Sending, WorkerError> {
        let secrets = self.secrets(number).await?;
        match self
            .ports
            .sender
            .send(
                number,
                secrets.whatsapp_token()?,
                to,
                message,
                callback_data,
                self.deadline(),
            )
            .await
        {
            Ok(sent) => {
                counts.lock().await.sent += 1;
                if matches!(
                    message,
                    Outbound::Template { .. } | Outbound::GraphTemplate { .. }
                ) {
                    self.count_business_initiated(number).await;
                }
                Ok(Sending::Sent(sent.wamid))
            }
            Err(error @ (SendError::GiveUp { .. } | SendError::Invalid(_))) => {
                tracing::error!(%error, phone_number_id = %number, "message not delivered, giving up");
                counts.lock().await.permanent_send_failures += 1;
                Ok(Sending::GaveUp(error.code()))
            }
            Err(error @ SendError::Unknown { .. }) => Err(WorkerError::SendUnknown(error)),
            Err(error @ SendError::Alarm { .. }) => {
                tracing::error!(%error, phone_number_id = %number, "send needs a person (token or policy)");
                counts.lock().await.needs_attention += 1;
                Err(WorkerError::Send(error))
            }
            Err(error) => Err(WorkerError::Send(error)),
        }
    }

    /// A template is sent only outside the customer's service window: it counts toward the
    /// portfolio's messaging limit, which the campaign sender reads. Best effort: a lost
    /// count only lets a campaign take one more.
    async fn count_business_initiated(&self, number: &str) {
        let portfolio = match self.tenant(number).await {
            Ok(Some(tenant)) => tenant.campaigns.portfolio(&tenant).to_owned(),
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, "messaging-limit count skipped: tenant unreadable");
                return;
            }
        };
        if let Err(error) = self
            .ports
            .campaigns
            .count_daily(&portfolio, self.now(), 1)
            .await
        {
            tracing::warn!(%error, "messaging-limit count not written");
        }
    }

    /// Best effort: the customer sees the blue ticks and "typing..." while we answer. Skipped
    /// unless a reply still fits after it.
    pub(crate) async fn mark_read(&self, number: &str, wamid: &str) {
        let deadline = self.deadline();
        if !deadline.fits(MARK_READ_TIMEOUT + AFTER_CALL + CALL_TIMEOUT) {
            tracing::info!("too little time left to mark as read; skipped");
            return;
        }
        let result = match self.secrets(number).await {
            Ok(secrets) => match secrets.whatsapp_token() {
                Ok(token) => self
                    .ports
                    .sender
                    .mark_read(number, token, wamid, true, deadline)
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
}
