//! The agents' desk and the supervisors: the handoff note with its transcript, the
//! customer's messages forwarded, the place in the queue told, SLA alerts.

use chrono::Duration;
use shared::desk::AlertTopic;
use shared::desk::{
    self, Customer, Desk, DeskError, DeskPost, File, Handoff, MediaRef, SlaLevel, Ticket,
    TranscriptLine,
};
use shared::engine::Effect;
use shared::envelope::{DeskAction, DeskEvent};
use shared::store::Store;
use shared::support::text::truncate_chars;
use shared::tenant::{Chatwoot, Tenant};
use shared::whatsapp::Sender;
use shared::whatsapp::outbound::{Outbound, TemplateComponent};
use std::sync::Arc;
use tokio::sync::Mutex;

use crate::counters::Counts;
use crate::{Adapters, MEDIA_FORWARDS_AT_ONCE, Worker, WorkerError};

/// Chatwoot limits a message's content to 150,000 characters.
const MAX_NOTE_CHARS: usize = 150_000;

impl<A: Adapters> Worker<A> {
    /// The tenant's `sla_alert` template to each supervisor: level, department, minutes
    /// waited, customer (name and the last digits of the number).
    pub(crate) async fn alert_supervisors(
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
        if let Some(topic) = &self.ports.alerts {
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
                Ok(_) => counts.lock().await.sla_alerts += 1,
                Err(error) => {
                    tracing::error!(%error, "SLA alert not sent to a supervisor");
                    counts.lock().await.sla_alert_failures += 1;
                }
            }
        }
        Ok(())
    }

    /// The customer's place in the queue and the wait estimate, in the tenant's words;
    /// returns the wamid of the message, when one was sent.
    pub(crate) async fn tell_position(
        &self,
        number: &str,
        customer: &str,
        ticket: &Ticket,
        counts: &Mutex<Counts>,
    ) -> Result<Option<String>, WorkerError> {
        let Some(tenant) = self.tenant(number).await? else {
            return Ok(None);
        };
        let (Some(with_estimate), Some(without)) =
            (&tenant.desk.position, &tenant.desk.position_no_estimate)
        else {
            return Ok(None);
        };
        let now = self.now();
        let position = self
            .ports
            .store
            .queue_position(number, customer, ticket)
            .await?;
        let takes = self
            .ports
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
            .ports
            .store
            .position_told(number, customer, ticket, position)
            .await?
        {
            return self
                .send(number, customer, &Outbound::text(text), counts)
                .await;
        }
        Ok(None)
    }

    /// Opens (or finds, on a retry) the desk conversation of a handoff and posts the
    /// summary and transcript as a private note.
    pub(crate) async fn open_desk(
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
        let link = match self.ports.store.desk_link(number, customer).await? {
            Some(link) if link.ticket_at == handoff.ticket_at => link,
            earlier => {
                let who = Customer {
                    phone_number_id: number,
                    customer,
                    name: handoff.customer_name.as_deref(),
                };
                let opened = self
                    .ports
                    .desk
                    .open(&account, &token, &who, handoff.ticket_at, self.deadline())
                    .await;
                let Some(link) = self.desk_result(opened, counts).await? else {
                    if earlier.is_some() {
                        self.ports.store.forget_desk_link(number, customer).await?;
                    }
                    return Ok(());
                };
                // The earlier conversation stays this customer's: an agent's reply from it
                // still reaches them.
                let link = match &earlier {
                    Some(previous) => link.after(previous),
                    None => link,
                };
                let retention = Duration::days(i64::from(tenant.retention_days));
                self.ports
                    .store
                    .save_desk_link(number, customer, &link, self.now() + retention)
                    .await?;
                link
            }
        };
        let transcript: Vec<TranscriptLine> = self
            .ports
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
    pub(crate) async fn forward_to_desk(
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
        let Some(link) = self.ports.store.desk_link(number, customer).await? else {
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
                .ports
                .sender
                .download_media(secrets.whatsapp_token()?, &media.id, self.deadline())
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

    /// Whether a desk event comes from a conversation this stack opened for the customer,
    /// in the tenant's inbox. The desk function only knows what Chatwoot says (a contact
    /// identifier anyone can set from a website widget); the link is the proof.
    pub(crate) async fn desk_origin(
        &self,
        tenant: &Tenant,
        event: &DeskEvent,
    ) -> Result<DeskOrigin, WorkerError> {
        let (Some(conversation_id), Some(inbox_id)) = (event.conversation_id, event.inbox_id)
        else {
            return Ok(DeskOrigin::Refused(Refusal::Unverifiable));
        };
        let Some(account) = &tenant.desk.chatwoot else {
            return Ok(DeskOrigin::Refused(Refusal::NoDesk));
        };
        if inbox_id != account.inbox_id {
            return Ok(DeskOrigin::Refused(Refusal::OtherInbox));
        }
        let link = self
            .ports
            .store
            .desk_link(&event.phone_number_id, &event.customer)
            .await?;
        Ok(match link {
            Some(link) if link.conversation_id == conversation_id => DeskOrigin::Current,
            Some(link) if link.knows(conversation_id) => DeskOrigin::Earlier,
            _ => DeskOrigin::Refused(Refusal::NotOpened),
        })
    }

    /// A refused desk event: counted, logged without customer data, and the agents told in
    /// the conversation it came from (a private note, through the outbox). Returns the
    /// effects of its record.
    pub(crate) async fn refuse(
        &self,
        event: &DeskEvent,
        kind: &str,
        refusal: Refusal,
        counts: &Mutex<Counts>,
    ) -> Vec<Effect> {
        counts.lock().await.desk_refused += 1;
        tracing::warn!(
            event = kind,
            reason = refusal.code(),
            conversation_id = event.conversation_id,
            inbox_id = event.inbox_id,
            "desk event refused: not from a desk conversation opened for this customer"
        );
        let outcome = match event.action {
            DeskAction::AgentReply { .. } => "not delivered",
            DeskAction::Assigned { .. } | DeskAction::Resolved => "not applied",
        };
        // Without a desk of the tenant's, `note_in_desk` has nowhere to post and skips it.
        event
            .conversation_id
            .map(|conversation_id| Effect::NoteInDesk {
                conversation_id,
                text: format!("{outcome}: {}", refusal.reason()),
            })
            .into_iter()
            .collect()
    }

    /// A private note in a named desk conversation.
    pub(crate) async fn note_in_desk(
        &self,
        number: &str,
        conversation_id: u64,
        text: &str,
        counts: &Mutex<Counts>,
    ) -> Result<(), WorkerError> {
        let Some(DeskAccess { account, token, .. }) = self.desk_access(number, counts).await?
        else {
            return Ok(());
        };
        let post = DeskPost {
            content: text.to_owned(),
            private: true,
            file: None,
        };
        self.post_to_desk(&account, &token, conversation_id, post, counts)
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
        let posted = self
            .ports
            .desk
            .post(account, token, conversation_id, post, self.deadline())
            .await;
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
}

/// Where a desk event comes from, as far as this stack knows.
pub(crate) enum DeskOrigin {
    /// The customer's current desk conversation.
    Current,
    /// An earlier desk conversation this stack opened for the customer.
    Earlier,
    Refused(Refusal),
}

/// Why a desk event is not acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Queued without its conversation or inbox id (by a desk function older than the
    /// check): nothing to check it against.
    Unverifiable,
    /// The tenant has no Chatwoot desk configured.
    NoDesk,
    /// From another inbox than the tenant's.
    OtherInbox,
    /// From a conversation this stack never opened for the customer (or none at all).
    NotOpened,
}

impl Refusal {
    /// For logs and alarms.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Unverifiable => "unverifiable",
            Refusal::NoDesk => "no_desk",
            Refusal::OtherInbox => "other_inbox",
            Refusal::NotOpened => "not_opened",
        }
    }

    /// For the agents, in the conversation the event came from; names no customer data.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Unverifiable => {
                "the event reached the service without its conversation and inbox; send it again"
            }
            Refusal::NoDesk => "this number has no desk configured",
            Refusal::OtherInbox => "this conversation is not in this number's WhatsApp inbox",
            Refusal::NotOpened => {
                "this conversation was not opened by the WhatsApp service for this contact"
            }
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
pub(crate) struct SlaAlert<'a> {
    pub level: SlaLevel,
    pub ticket: &'a Ticket,
    pub waited_minutes: i64,
    pub customer_name: Option<&'a str>,
}
