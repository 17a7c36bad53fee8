//! Running an event's outbox: each pending effect in order, each marked done as soon as it
//! is carried out, so a redelivery resumes at the first one not done. Only the effect in
//! flight when a container dies can be repeated (the Graph API takes no idempotency key).

use chrono::Duration;
use shared::engine::Effect;
use shared::store::{EventRecord, Store};
use shared::whatsapp::SendError;
use shared::whatsapp::Sender;
use shared::whatsapp::outbound::Outbound;
use tokio::sync::Mutex;

use crate::counters::Counts;
use crate::desk::SlaAlert;
use crate::{Adapters, PARKED_DAYS, Worker, WorkerError};

impl<A: Adapters> Worker<A> {
    /// A send that should be retried stops here and fails the record: the redelivery
    /// resumes at this effect.
    pub(crate) async fn run_outbox(
        &self,
        number: &str,
        customer: &str,
        key: &str,
        record: &EventRecord,
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        let store = &self.ports.store;
        for (sequence, effect) in record.effects.iter().enumerate().skip(record.done) {
            let mut sent = None;
            match effect {
                Effect::Send { message } => {
                    sent = self.send(number, customer, message, counts).await?
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
                // Answered before the commit (`ask_ai`), never stored in the outbox.
                Effect::AskAi => {}
            }
            store
                .effect_done(number, customer, key, sequence, sent.as_deref())
                .await?;
            self.crash_point().await;
        }
        Ok(())
    }

    /// Sends one message; returns the wamid Meta gave it, or `None` when Meta refused it
    /// for good (recorded and counted, never retried).
    pub(crate) async fn send(
        &self,
        number: &str,
        to: &str,
        message: &Outbound,
        counts: &Mutex<Counts>,
    ) -> Result<Option<String>, WorkerError> {
        let secrets = self.secrets(number).await?;
        match self
            .ports
            .sender
            .send(number, secrets.whatsapp_token()?, to, message)
            .await
        {
            Ok(sent) => {
                counts.lock().await.sent += 1;
                Ok(Some(sent.wamid))
            }
            Err(error @ (SendError::GiveUp { .. } | SendError::Invalid(_))) => {
                tracing::error!(%error, phone_number_id = %number, "message not delivered, giving up");
                counts.lock().await.permanent_send_failures += 1;
                Ok(None)
            }
            Err(error @ SendError::Alarm { .. }) => {
                tracing::error!(%error, phone_number_id = %number, "send needs a person (token or policy)");
                counts.lock().await.needs_attention += 1;
                Err(WorkerError::Send(error))
            }
            Err(error) => Err(WorkerError::Send(error)),
        }
    }

    /// Best effort: the customer sees the blue ticks and "typing..." while we answer.
    pub(crate) async fn mark_read(&self, number: &str, wamid: &str) {
        let result = match self.secrets(number).await {
            Ok(secrets) => match secrets.whatsapp_token() {
                Ok(token) => self
                    .ports
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
}
