//! The human desk in domain terms: a customer's place in the queue (a [`Ticket`]), what
//! the desk tells us (an agent's reply, taking or resolving a conversation), the handoff
//! summary agents see, the wait estimate, and the [`Desk`] port the Chatwoot adapter
//! implements.

#[cfg(feature = "chatwoot")]
pub mod chatwoot;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
#[cfg(feature = "sns")]
pub mod sns;

use std::future::Future;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::support::deadline::Deadline;
use crate::tenant::{Chatwoot, Priority};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffReason {
    /// The customer asked for a person (escalation words or a menu option).
    Asked,
    /// A flow led to the department's queue.
    Flow,
    /// `max_bot_attempts` answers the bot did not understand.
    Attempts,
    /// The AI attendant handed over or is not available.
    Ai,
}

/// A conversation waiting in its department's queue. The queue's sort key is built from
/// it, so the worker can find and remove exactly this entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub department: String,
    pub priority: Priority,
    pub entered_at: DateTime<Utc>,
    pub reason: HandoffReason,
    /// The highest SLA alert already sent for this wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerted: Option<SlaLevel>,
}

/// SLA thresholds of a department, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaLevel {
    /// Waiting longer than `alert_after_minutes`.
    Warning,
    /// Waiting longer than `max_wait_minutes`.
    Breach,
}

impl SlaLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            SlaLevel::Warning => "warning",
            SlaLevel::Breach => "breach",
        }
    }
}

/// Media a customer sent, by Meta's media id (downloaded from the Graph API to forward).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaRef {
    /// image, audio, video, document, sticker.
    pub kind: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

/// What the agent sees when a conversation arrives: the handoff summary, then the
/// transcript, as one private note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    pub department: String,
    pub priority: Priority,
    pub reason: HandoffReason,
    /// The customer's answers in the bot's flows, by step id.
    pub answers: Vec<(String, String)>,
    /// Why the AI attendant handed over, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_reason: Option<String>,
    /// Answers the bot did not understand in this conversation.
    pub bot_attempts: u32,
    pub started_at: DateTime<Utc>,
    pub handed_at: DateTime<Utc>,
    /// The ticket the desk conversation is for: a retried handoff whose link was saved
    /// reuses it.
    pub ticket_at: DateTime<Utc>,
    /// The customer's WhatsApp profile name, for the desk contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
}

/// One line of the transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptLine {
    pub at: DateTime<Utc>,
    pub from_customer: bool,
    pub text: String,
}

impl Handoff {
    /// The private note: summary first, transcript after (times in the tenant's zone).
    pub fn note(&self, timezone: chrono_tz::Tz, transcript: &[TranscriptLine]) -> String {
        let reason = match self.reason {
            HandoffReason::Asked => "o cliente pediu um atendente",
            HandoffReason::Flow => "fim do fluxo do bot",
            HandoffReason::Attempts => "o bot não entendeu as respostas",
            HandoffReason::Ai => "encaminhado pelo assistente de IA",
        };
        let minutes = (self.handed_at - self.started_at).num_minutes().max(0);
        let mut note = format!(
            "🔔 Atendimento transferido pelo bot\n\
             Departamento: {}\nPrioridade: {}\nMotivo: {reason}\n\
             Tentativas não entendidas pelo bot: {}\nTempo de conversa: {minutes} min\n",
            self.department,
            self.priority.as_str(),
            self.bot_attempts,
        );
        if let Some(ai_reason) = &self.ai_reason {
            note.push_str(&format!("Motivo da IA: {ai_reason}\n"));
        }
        if !self.answers.is_empty() {
            note.push_str("Problema relatado:\n");
            for (step, answer) in &self.answers {
                note.push_str(&format!("• {step}: {answer}\n"));
            }
        }
        if !transcript.is_empty() {
            note.push_str("\nTranscrição:\n");
            for line in transcript {
                let who = if line.from_customer { "Cliente" } else { "Bot" };
                let at = line.at.with_timezone(&timezone).format("%H:%M");
                note.push_str(&format!("[{at}] {who}: {}\n", line.text));
            }
        }
        note
    }
}

/// Minutes a customer at `position` can expect to wait, from when recent customers of the
/// department were taken: the mean interval between takes, times the position. `None`
/// without two takes to measure from.
pub fn estimate_minutes(takes: &[DateTime<Utc>], position: u32) -> Option<i64> {
    let first = takes.iter().min()?;
    let last = takes.iter().max()?;
    if takes.len() < 2 || first == last {
        return None;
    }
    let interval = (*last - *first) / (takes.len() as i32 - 1);
    let wait = interval * position as i32;
    Some(((wait.num_seconds() + 59) / 60).max(1))
}

/// How far back takes count for the estimate.
pub const ESTIMATE_WINDOW: Duration = Duration::hours(2);

/// Whether a new place in the queue is worth a message, after `told` was the last one:
/// only improvements, and only ones the customer would notice.
pub fn worth_telling(told: u32, position: u32) -> bool {
    position < told && (position == 1 || told - position >= 3 || position * 2 <= told)
}

/// The key in the desk conversation's `additional_attributes` that names the WhatsApp
/// customer, so the desk webhook knows whose conversation an event is about.
pub const CUSTOMER_ATTRIBUTE: &str = "whatsapp_customer";
/// And the key that names the tenant's number: an account-wide Chatwoot webhook also
/// carries other numbers' conversations.
pub const NUMBER_ATTRIBUTE: &str = "whatsapp_number";
/// And the handoff it was opened for (the ticket's time in milliseconds): a retry after a
/// lost answer finds the conversation instead of opening a second one.
pub const TICKET_ATTRIBUTE: &str = "whatsapp_ticket";

/// The value of [`TICKET_ATTRIBUTE`] for a ticket.
pub fn ticket_attribute(ticket_at: DateTime<Utc>) -> String {
    ticket_at.timestamp_millis().to_string()
}

/// The desk contact's identifier: unique per tenant number and customer in an account.
pub fn contact_identifier(phone_number_id: &str, customer: &str) -> String {
    format!("whatsapp:{phone_number_id}:{customer}")
}

/// How many earlier desk conversations of a customer a link remembers: an agent's reply
/// from one of them still reaches the customer, from an older one it is refused.
pub const EARLIER_CONVERSATIONS_KEPT: usize = 5;

/// Where the desk conversation of a handoff lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeskLink {
    pub contact_id: u64,
    pub conversation_id: u64,
    /// The ticket it was opened for.
    pub ticket_at: DateTime<Utc>,
    /// The customer's earlier desk conversations this stack opened, newest first, at most
    /// [`EARLIER_CONVERSATIONS_KEPT`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<u64>,
}

impl DeskLink {
    /// This link as the successor of `previous`: the previous conversation and those it
    /// remembered become the earlier ones, newest first, bounded.
    pub fn after(mut self, previous: &DeskLink) -> DeskLink {
        let mut earlier = Vec::with_capacity(EARLIER_CONVERSATIONS_KEPT);
        for id in std::iter::once(previous.conversation_id).chain(previous.earlier.iter().copied())
        {
            if id != self.conversation_id
                && !earlier.contains(&id)
                && earlier.len() < EARLIER_CONVERSATIONS_KEPT
            {
                earlier.push(id);
            }
        }
        self.earlier = earlier;
        self
    }

    /// Whether `conversation_id` is the current desk conversation or one of the earlier
    /// ones this stack opened for the customer.
    pub fn knows(&self, conversation_id: u64) -> bool {
        self.conversation_id == conversation_id || self.earlier.contains(&conversation_id)
    }
}

/// Who the desk conversation is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer<'a> {
    pub phone_number_id: &'a str,
    pub customer: &'a str,
    pub name: Option<&'a str>,
}

/// A message posted into a desk conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskPost {
    pub content: String,
    /// A note only agents see (the handoff summary), or the customer's own message.
    pub private: bool,
    pub file: Option<File>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub name: String,
    pub mime_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Error)]
pub enum DeskError {
    /// Worth retrying: the desk or the network failed.
    #[error("desk unavailable: {0}")]
    Unavailable(String),
    /// The desk refused the request (token, ids, payload): a person must look.
    #[error("desk refused the request: {0}")]
    Refused(String),
}

/// The agents' desk (Chatwoot): open a conversation for a handoff, post into it. Each
/// call to the desk starts only when its timeout fits before `deadline`.
pub trait Desk: Send + Sync {
    fn open(
        &self,
        account: &Chatwoot,
        token: &str,
        customer: &Customer<'_>,
        ticket_at: DateTime<Utc>,
        deadline: Deadline,
    ) -> impl Future<Output = Result<DeskLink, DeskError>> + Send;

    fn post(
        &self,
        account: &Chatwoot,
        token: &str,
        conversation_id: u64,
        post: DeskPost,
        deadline: Deadline,
    ) -> impl Future<Output = Result<(), DeskError>> + Send;

    /// Deletes the customer's contact (with its conversations): `contact_id` when a desk
    /// link names it, else the contact found by the customer's identifier. Returns whether
    /// there was one to delete.
    fn forget_contact(
        &self,
        account: &Chatwoot,
        token: &str,
        customer: &Customer<'_>,
        contact_id: Option<u64>,
        deadline: Deadline,
    ) -> impl Future<Output = Result<bool, DeskError>> + Send;
}

/// An alert topic could not take the message.
#[derive(Debug, Error)]
#[error("alert topic: {0}")]
pub struct AlertError(pub String);

/// Where SLA alerts are published besides the supervisors' WhatsApp (an SNS topic).
pub trait AlertTopic: Send + Sync {
    fn publish(
        &self,
        subject: &str,
        message: &str,
    ) -> impl Future<Output = Result<(), AlertError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        "2026-11-23T17:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::minutes(minute)
    }

    #[test]
    fn the_estimate_is_the_recent_pace_times_the_position() {
        // Taken at 0, 4, 8, 12: one every 4 minutes.
        let takes = [at(0), at(4), at(8), at(12)];
        assert_eq!(estimate_minutes(&takes, 1), Some(4));
        assert_eq!(estimate_minutes(&takes, 3), Some(12));
        // Unordered input, same answer; seconds round up.
        let takes = [at(12), at(0) + Duration::seconds(30), at(6)];
        assert_eq!(estimate_minutes(&takes, 1), Some(6));
        assert_eq!(estimate_minutes(&[at(0)], 1), None);
        assert_eq!(estimate_minutes(&[], 1), None);
        assert_eq!(estimate_minutes(&[at(1), at(1)], 1), None);
    }

    #[test]
    fn a_new_link_remembers_a_bounded_list_of_earlier_conversations() {
        let link = |conversation_id| DeskLink {
            contact_id: 1,
            conversation_id,
            ticket_at: at(0),
            earlier: Vec::new(),
        };
        let mut current = link(1);
        for next in 2..=8 {
            current = link(next).after(&current);
        }
        assert_eq!(current.earlier, [7, 6, 5, 4, 3], "newest first, bounded");
        assert!(current.knows(8) && current.knows(3));
        assert!(!current.knows(2), "forgotten past the bound");
        // A handoff that finds the same conversation again lists it once.
        let again = link(8).after(&current);
        assert_eq!(again.earlier, [7, 6, 5, 4, 3]);
        // Links stored before the list existed read as having none.
        let stored: DeskLink = serde_json::from_str(
            r#"{"contact_id":1,"conversation_id":2,"ticket_at":"2026-11-23T17:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(stored.earlier, Vec::<u64>::new());
    }

    #[test]
    fn only_noticeable_improvements_are_told() {
        assert!(worth_telling(2, 1), "first in line");
        assert!(worth_telling(10, 7), "three places");
        assert!(worth_telling(4, 2), "half the wait");
        assert!(!worth_telling(10, 9));
        assert!(!worth_telling(5, 5));
        assert!(!worth_telling(3, 4), "never tell a worse place");
    }

    #[test]
    fn the_note_summarises_then_transcribes_in_local_time() {
        let handoff = Handoff {
            department: "Suporte técnico".into(),
            priority: Priority::Alta,
            reason: HandoffReason::Ai,
            answers: vec![("problema".into(), "Internet lenta".into())],
            ai_reason: Some("Mudança de endereço".into()),
            bot_attempts: 2,
            started_at: at(0),
            handed_at: at(7),
            ticket_at: at(7),
            customer_name: None,
        };
        let note = handoff.note(
            chrono_tz::America::Sao_Paulo,
            &[
                TranscriptLine {
                    at: at(0),
                    from_customer: true,
                    text: "oi".into(),
                },
                TranscriptLine {
                    at: at(1),
                    from_customer: false,
                    text: "Olá!".into(),
                },
            ],
        );
        for expected in [
            "Departamento: Suporte técnico",
            "Prioridade: alta",
            "encaminhado pelo assistente de IA",
            "Tentativas não entendidas pelo bot: 2",
            "Tempo de conversa: 7 min",
            "Motivo da IA: Mudança de endereço",
            "• problema: Internet lenta",
            "[14:00] Cliente: oi\n[14:01] Bot: Olá!",
        ] {
            assert!(note.contains(expected), "{expected} in {note}");
        }
    }
}
