//! The conversation, as a pure function: `step(session, event, now, tenant)` returns the new
//! session and the effects to carry out (messages to send, a place in the human queue, a
//! question for the AI attendant). It does no I/O; the worker persists the session with its
//! effects and runs them. The AI's answer comes back as [`Event::AiAnswered`].

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::ai::{AiConversation, AiOutcome, Answer, Role};
use crate::desk::{DeskAction, Handoff, MediaRef, SlaLevel, Ticket};
use crate::envelope::{InboundMessage, Timer};
use crate::hours;
use crate::outbound::{Outbound, TemplateComponent, truncate_chars};
use crate::tenant::{Priority, Step, Target, TemplateRef, Tenant, normalize};

/// WhatsApp's customer service window: free-form messages only this long after the
/// customer's last message; templates after.
pub const SERVICE_WINDOW: Duration = Duration::hours(24);
/// How long an assigned conversation outlives the session timeout while the customer is
/// silent.
pub const ASSIGNED_CONVERSATION_KEPT: Duration = Duration::days(7);
/// The private note agents get when a waiting customer's session timed out.
const TIMED_OUT_NOTE: &str = "O cliente saiu da fila: a sessão expirou sem atendimento.";

/// Where a conversation stands. Business names: [`State::business_name`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum State {
    Start,
    Menu,
    Flow { department: String, step: String },
    Ai,
    Human { department: String },
    Nps,
    Closed,
}

impl State {
    /// The names the business uses: INICIO, MENU_PRINCIPAL, SUPORTE_<STEP>, ...
    pub fn business_name(&self) -> String {
        match self {
            State::Start => "INICIO".into(),
            State::Menu => "MENU_PRINCIPAL".into(),
            State::Flow { department, step } => format!("{}_{}", department, step).to_uppercase(),
            State::Ai => "ATENDIMENTO_IA".into(),
            State::Human { .. } => "ATENDIMENTO_HUMANO".into(),
            State::Nps => "PESQUISA_NPS".into(),
            State::Closed => "FINALIZADO".into(),
        }
    }

    fn is_bot(&self) -> bool {
        !matches!(self, State::Human { .. } | State::Nps | State::Closed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub phone_number_id: String,
    pub customer: String,
    pub state: State,
    /// Answers in the current state the bot did not understand, in a row.
    pub attempts: u32,
    pub started_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    /// Meta timestamp of the newest message handled: older ones are never answers.
    pub last_message_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// What the customer answered in flows, by step id: part of the handoff summary.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub answers: BTreeMap<String, String>,
    /// Set when the off-hours reply went out: the opening that ends that closed period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off_hours_until: Option<DateTime<Utc>>,
    /// Wrote while closed: owed an opening follow-up.
    #[serde(default)]
    pub awaiting_opening: bool,
    /// Asked for a person while closed: the follow-up puts them straight in the queue.
    #[serde(default)]
    pub wants_human: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nps_score: Option<u8>,
    /// The AI attendant's history and spend, once the conversation reached it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai: Option<AiConversation>,
    /// The place in the human queue, until an agent takes the conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<Ticket>,
    /// The agent who took the conversation on the desk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The business answered from the WhatsApp Business app: the bot keeps quiet until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_until: Option<DateTime<Utc>>,
    /// Answers the bot did not understand in this conversation (for the handoff summary).
    #[serde(default)]
    pub misunderstood: u32,
    /// The customer's WhatsApp profile name, for the desk contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_name: Option<String>,
}

impl Session {
    pub fn new(phone_number_id: &str, customer: &str, now: DateTime<Utc>) -> Self {
        Self {
            phone_number_id: phone_number_id.into(),
            customer: customer.into(),
            state: State::Start,
            attempts: 0,
            started_at: now,
            last_activity_at: now,
            last_message_at: 0,
            department: None,
            answers: BTreeMap::new(),
            off_hours_until: None,
            awaiting_opening: false,
            wants_human: false,
            nps_score: None,
            ai: None,
            ticket: None,
            agent: None,
            quiet_until: None,
            misunderstood: 0,
            profile_name: None,
        }
    }

    /// Whether a free-form message can still reach the customer (24 h after their last).
    pub fn in_service_window(&self, now: DateTime<Utc>) -> bool {
        DateTime::from_timestamp(self.last_message_at, 0)
            .is_some_and(|last| now - last < SERVICE_WINDOW)
    }
}

/// What the customer sent, as the conversation reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Text(String),
    /// A reply button, list row or template quick reply.
    Choice {
        id: String,
        title: String,
    },
    /// Image, audio, video, document, sticker, location, contacts, ...: not an answer.
    Media(String),
    /// Reactions, edits, revokes and system notices: recorded, never answered.
    Ignored(String),
}

impl Input {
    pub fn from_message(message: &InboundMessage) -> Self {
        if let Some(reply) = &message.reply {
            return Input::Choice {
                id: reply.id.clone(),
                title: reply.title.clone(),
            };
        }
        match message.message_type.as_str() {
            "text" => Input::Text(message.text.clone().unwrap_or_default()),
            "reaction" | "edit" | "revoke" | "system" | "unsupported" | "request_welcome" => {
                Input::Ignored(message.message_type.clone())
            }
            other => Input::Media(other.into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Message {
        input: Input,
        /// Meta's timestamp, seconds.
        sent_at: i64,
        profile_name: Option<String>,
        /// The media of an image, audio, video, document or sticker: forwarded to the desk.
        media: Option<MediaRef>,
    },
    /// An agent acted on the desk.
    Desk(DeskAction),
    /// The business wrote to the customer from the WhatsApp Business app.
    BusinessEcho {
        /// Meta's timestamp, seconds: the silence runs from when the business wrote.
        sent_at: i64,
    },
    /// A schedule found something due (SLA thresholds, a better place, the opening).
    Timer(Timer),
    /// The AI attendant's answer to the question of [`Effect::AskAi`].
    AiAnswered(Answer),
}

impl Event {
    pub fn from_message(message: &InboundMessage) -> Self {
        Event::Message {
            input: Input::from_message(message),
            sent_at: message.timestamp,
            profile_name: message.profile_name.clone(),
            media: media_of(message),
        }
    }
}

/// Meta's media object (`{"image": {"id", "mime_type", ...}}`) of a media message.
fn media_of(message: &InboundMessage) -> Option<MediaRef> {
    #[derive(Deserialize)]
    struct Media {
        id: String,
        mime_type: Option<String>,
        filename: Option<String>,
    }
    let kind = message.message_type.as_str();
    if !matches!(kind, "image" | "audio" | "video" | "document" | "sticker") {
        return None;
    }
    let raw: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(message.raw.get()).ok()?;
    let media: Media = serde_json::from_value(raw.get(kind)?.clone()).ok()?;
    Some(MediaRef {
        kind: kind.into(),
        id: media.id,
        mime_type: media.mime_type,
        filename: media.filename,
        caption: message.text.clone(),
    })
}

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    Send {
        message: Outbound,
    },
    /// Put the conversation in its department's queue.
    EnqueueHuman {
        ticket: Ticket,
    },
    /// Open the conversation on the desk with the handoff summary and transcript.
    OpenDesk {
        handoff: Handoff,
    },
    /// Tell the customer their place in the queue and the estimated wait.
    TellPosition {
        ticket: Ticket,
    },
    /// Post into the desk conversation: the customer's message (media downloaded and
    /// attached), or a private note for the agent.
    ForwardToDesk {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media: Option<MediaRef>,
        #[serde(default)]
        private: bool,
    },
    /// Record on the queue entry that an SLA alert went out (the sweep skips it after).
    MarkAlerted {
        ticket: Ticket,
    },
    /// Tell the tenant's supervisors a customer has waited too long.
    AlertSupervisors {
        level: SlaLevel,
        ticket: Ticket,
        waited_minutes: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        customer_name: Option<String>,
    },
    /// Owed the opening follow-up: listed for the off-hours schedule.
    AwaitOpening {
        until: DateTime<Utc>,
    },
    /// Followed up (or came back by itself): off the off-hours schedule's list.
    OpeningDone,
    /// Take the conversation out of the queue: an agent took it (`taken_at`, which feeds
    /// the wait estimate) or the customer left.
    LeaveQueue {
        ticket: Ticket,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        taken_at: Option<DateTime<Utc>>,
    },
    /// Ask the AI attendant for the next answer to the session's AI history; the shell
    /// feeds the answer back as [`Event::AiAnswered`]. Always the last effect.
    AskAi,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub session: Session,
    pub effects: Vec<Effect>,
}

/// The department a handoff goes to when the customer has not chosen one.
fn default_department(tenant: &Tenant) -> &str {
    tenant
        .menu
        .options
        .iter()
        .find_map(|o| match &o.target {
            Target::Department(id) if tenant.department(id).is_some_and(|d| d.flow.is_empty()) => {
                Some(id.as_str())
            }
            _ => None,
        })
        .unwrap_or(&tenant.departments[0].id)
}

/// One event of one conversation. `session` is `None` for a customer never seen before.
pub fn step(
    session: Option<Session>,
    phone_number_id: &str,
    customer: &str,
    event: &Event,
    now: DateTime<Utc>,
    tenant: &Tenant,
) -> Outcome {
    let mut turn = Turn {
        tenant,
        now,
        effects: Vec::new(),
        session: session.unwrap_or_else(|| Session::new(phone_number_id, customer, now)),
    };
    match event {
        Event::Message {
            input,
            sent_at,
            profile_name,
            media,
        } => turn.message(input, *sent_at, profile_name.as_deref(), media.as_ref()),
        Event::Desk(action) => turn.desk(action),
        Event::Timer(timer) => turn.timer(timer),
        Event::BusinessEcho { sent_at } => {
            // An echo delivered late (after an outage) quiets only what is left of the
            // silence, and an older echo never shortens a newer one's. One without a
            // timestamp counts from now.
            let written = DateTime::from_timestamp(*sent_at, 0)
                .filter(|_| *sent_at > 0)
                .map_or(now, |at| at.min(now));
            let quiet = Duration::minutes(i64::from(tenant.desk.echo_silence_minutes));
            let until = written + quiet;
            if until > now && turn.session.quiet_until.is_none_or(|q| q < until) {
                turn.session.quiet_until = Some(until);
            }
        }
        Event::AiAnswered(answer) => {
            if turn.session.state == State::Ai {
                turn.ai_answered(answer);
            }
        }
    }
    Outcome {
        session: turn.session,
        effects: turn.effects,
    }
}

struct Turn<'a> {
    tenant: &'a Tenant,
    now: DateTime<Utc>,
    session: Session,
    effects: Vec<Effect>,
}

impl Turn<'_> {
    fn message(
        &mut self,
        input: &Input,
        sent_at: i64,
        profile_name: Option<&str>,
        media: Option<&MediaRef>,
    ) {
        if sent_at < self.session.last_message_at || matches!(input, Input::Ignored(_)) {
            return;
        }
        let idle = self.now - self.session.last_activity_at;
        let timeout = Duration::minutes(i64::from(self.tenant.session_timeout_minutes));
        // A conversation an agent was assigned is theirs until they resolve it: the bot must
        // not greet over an open desk conversation when the customer is back days later.
        // Up to a week: a conversation nobody closes must not silence the bot for good.
        let assigned = matches!(self.session.state, State::Human { .. })
            && self.session.ticket.is_none()
            && self.session.agent.is_some()
            && self.tenant.desk.chatwoot.is_some()
            && idle <= ASSIGNED_CONVERSATION_KEPT;
        if self.session.state == State::Closed || (idle > timeout && !assigned) {
            if let Some(ticket) = self.session.ticket.take() {
                self.effects.push(Effect::LeaveQueue {
                    ticket,
                    taken_at: None,
                });
                if self.tenant.desk.chatwoot.is_some() {
                    // Its desk conversation stays open: tell the agents it is stale.
                    self.effects.push(Effect::ForwardToDesk {
                        text: Some(TIMED_OUT_NOTE.into()),
                        media: None,
                        private: true,
                    });
                }
            }
            if self.session.awaiting_opening {
                self.effects.push(Effect::OpeningDone);
            }
            self.session = Session {
                off_hours_until: self.session.off_hours_until,
                quiet_until: self.session.quiet_until,
                ..Session::new(
                    &self.session.phone_number_id,
                    &self.session.customer,
                    self.now,
                )
            };
        }
        self.session.last_activity_at = self.now;
        self.session.last_message_at = sent_at;
        if let Some(name) = profile_name.map(str::trim).filter(|n| !n.is_empty()) {
            self.session.profile_name = Some(name.into());
        }

        if let State::Human { .. } = self.session.state {
            return self.while_with_a_person(input, media);
        }
        if self
            .session
            .quiet_until
            .is_some_and(|until| until > self.now)
        {
            return; // the business is answering from its own app
        }
        let escalates = matches!(input, Input::Text(text) if self.escalates(text));
        if self.session.state.is_bot() && !hours::is_open(self.tenant, self.now) {
            self.off_hours(escalates);
            return;
        }
        if self.session.awaiting_opening {
            // Back by itself after the opening: the conversation goes on from here.
            self.session.awaiting_opening = false;
            self.session.wants_human = false;
            self.effects.push(Effect::OpeningDone);
        }
        if escalates && self.session.state.is_bot() {
            self.handoff(HandoffReason::Asked);
            return;
        }
        match self.session.state.clone() {
            State::Start => self.greet(profile_name),
            State::Menu => self.answer_menu(input),
            State::Flow { department, step } => self.answer_step(&department, &step, input),
            State::Ai => self.answer_ai(input),
            State::Nps => self.answer_nps(input),
            State::Human { .. } | State::Closed => {}
        }
    }

    fn escalates(&self, text: &str) -> bool {
        contains_word(&self.tenant.escalation_words, text)
    }

    /// The bot is silent: the customer's messages go to the desk, and a give-up word takes
    /// a waiting customer out of the queue.
    fn while_with_a_person(&mut self, input: &Input, media: Option<&MediaRef>) {
        let desk = &self.tenant.desk;
        let text = match input {
            Input::Text(text) => Some(text.clone()),
            Input::Choice { title, .. } => Some(title.clone()),
            Input::Media(_) => media.and_then(|m| m.caption.clone()),
            Input::Ignored(_) => None,
        };
        let gives_up = self.session.ticket.is_some()
            && text
                .as_deref()
                .is_some_and(|t| contains_word(&desk.give_up_words, t));
        // Queue and customer first, the desk last: a desk outage must not hold them up.
        let left_queue = gives_up.then(|| self.session.ticket.take()).flatten();
        if let Some(ticket) = left_queue.clone() {
            self.effects.push(Effect::LeaveQueue {
                ticket,
                taken_at: None,
            });
            self.session.state = State::Closed;
            let left = desk.left_queue.clone().unwrap_or_default();
            self.send(Outbound::text(left));
        }
        if desk.chatwoot.is_some() && (text.is_some() || media.is_some()) {
            self.effects.push(Effect::ForwardToDesk {
                text,
                media: media.cloned(),
                private: false,
            });
        }
        if left_queue.is_some() && desk.chatwoot.is_some() {
            self.effects.push(Effect::ForwardToDesk {
                text: Some("O cliente saiu da fila.".into()),
                media: None,
                private: true,
            });
        }
    }

    fn desk(&mut self, action: &DeskAction) {
        match action {
            DeskAction::AgentReply { text, attachments } => {
                // An agent answering has taken the conversation, assigned or not.
                if let Some(ticket) = self.session.ticket.take() {
                    self.effects.push(Effect::LeaveQueue {
                        ticket,
                        taken_at: Some(self.now),
                    });
                }
                if !matches!(self.session.state, State::Human { .. }) {
                    // An agent wrote (first, or after resolving): the bot must not talk
                    // over them, and the customer's answer goes to the agent.
                    let department = self
                        .session
                        .department
                        .clone()
                        .unwrap_or_else(|| default_department(self.tenant).to_owned());
                    self.session.state = State::Human { department };
                }
                if self.session.in_service_window(self.now) {
                    let text = text.as_deref().unwrap_or_default();
                    // WhatsApp takes up to 4,096 characters per text: longer replies go in parts.
                    let chars: Vec<char> = text.trim().chars().collect();
                    for part in chars.chunks(crate::outbound::limits::TEXT_BODY) {
                        self.send(Outbound::text(part.iter().collect::<String>()));
                    }
                    for attachment in attachments {
                        self.send(Outbound::Media {
                            kind: attachment.kind.clone(),
                            link: attachment.url.clone(),
                            filename: attachment.filename.clone(),
                        });
                    }
                } else {
                    // Outside the window only an approved template reaches the customer.
                    let shown = text.clone().unwrap_or_else(|| {
                        attachments
                            .iter()
                            .filter_map(|a| a.filename.clone())
                            .collect::<Vec<_>>()
                            .join(", ")
                    });
                    self.send_or_template(&shown, self.tenant.templates.agent_reply.as_ref(), true);
                }
            }
            DeskAction::Assigned { agent } => {
                if !matches!(self.session.state, State::Human { .. }) {
                    return;
                }
                if let Some(ticket) = self.session.ticket.take() {
                    self.effects.push(Effect::LeaveQueue {
                        ticket,
                        taken_at: Some(self.now),
                    });
                    if let Some(told) = &self.tenant.desk.assigned {
                        let told = told.replace("{agent}", agent);
                        if self.session.in_service_window(self.now) {
                            self.send(Outbound::text(told));
                        }
                    }
                }
                self.session.agent = Some(agent.clone());
            }
            DeskAction::Resolved => {
                if !matches!(self.session.state, State::Human { .. }) {
                    return;
                }
                // Resolved without being taken: not a take for the wait estimate.
                if let Some(ticket) = self.session.ticket.take() {
                    self.effects.push(Effect::LeaveQueue {
                        ticket,
                        taken_at: None,
                    });
                }
                self.session.agent = None;
                self.close();
            }
        }
    }

    /// A free-form text inside the window; outside it, the approved template (with the text
    /// as its body parameter when `text_in_template`), or the text anyway without a
    /// template: the status of the failed send then brings the tenant's window fallback.
    fn send_or_template(
        &mut self,
        text: &str,
        template: Option<&TemplateRef>,
        text_in_template: bool,
    ) {
        if self.session.in_service_window(self.now) {
            return self.send(Outbound::text(text));
        }
        let Some(template) = template else {
            return self.send(Outbound::text(text));
        };
        // Template parameters may not hold new lines, tabs or runs of spaces.
        let parameter = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let components = if text_in_template && !parameter.is_empty() {
            vec![TemplateComponent {
                kind: "body".into(),
                sub_type: None,
                index: None,
                parameters: vec![truncate_chars(&parameter, 1024).to_owned()],
            }]
        } else {
            Vec::new()
        };
        self.send(Outbound::Template {
            name: template.name.clone(),
            language: template.language.clone(),
            components,
        });
    }

    fn send(&mut self, message: Outbound) {
        self.effects.push(Effect::Send { message });
    }

    /// One reply per closed period; the conversation waits for the opening follow-up.
    fn off_hours(&mut self, escalates: bool) {
        self.session.awaiting_opening = true;
        self.session.wants_human |= escalates;
        let notified = self
            .session
            .off_hours_until
            .is_some_and(|until| until > self.now);
        if !notified {
            self.session.off_hours_until = hours::next_opening(self.tenant, self.now);
            self.send(Outbound::text(&self.tenant.texts.off_hours));
            if let Some(until) = self.session.off_hours_until {
                self.effects.push(Effect::AwaitOpening { until });
            }
        }
    }

    fn timer(&mut self, timer: &Timer) {
        match timer {
            Timer::SlaWarning {
                entered_at,
                waited_minutes,
            } => self.sla(SlaLevel::Warning, *entered_at, *waited_minutes),
            Timer::SlaBreach {
                entered_at,
                waited_minutes,
            } => self.sla(SlaLevel::Breach, *entered_at, *waited_minutes),
            Timer::QueuePosition { entered_at, .. } => {
                if let Some(ticket) = self.waiting_since(*entered_at)
                    && self.tenant.desk.position.is_some()
                {
                    self.effects.push(Effect::TellPosition { ticket });
                }
            }
            Timer::Opening { until } => self.opening(*until),
        }
    }

    /// The ticket, when the customer still waits from `entered_at` (not taken, not left).
    fn waiting_since(&self, entered_at: DateTime<Utc>) -> Option<Ticket> {
        self.session
            .ticket
            .clone()
            .filter(|ticket| ticket.entered_at == entered_at)
    }

    /// Each threshold alerts once per wait; a breach also moves the customer up a priority.
    fn sla(&mut self, level: SlaLevel, entered_at: DateTime<Utc>, waited_minutes: i64) {
        let Some(ticket) = self.waiting_since(entered_at) else {
            return;
        };
        if ticket.alerted.is_some_and(|done| done >= level) {
            return;
        }
        let mut alerted = Ticket {
            alerted: Some(level),
            ..ticket.clone()
        };
        if level == SlaLevel::Breach {
            alerted.priority = ticket.priority.raised();
        }
        // The queue first (later sweeps skip it), the alerts last.
        let alert = Effect::AlertSupervisors {
            level,
            ticket: alerted.clone(),
            waited_minutes,
            customer_name: self.session.profile_name.clone(),
        };
        if alerted.priority == ticket.priority {
            self.effects.push(Effect::MarkAlerted {
                ticket: alerted.clone(),
            });
        } else {
            self.effects.push(Effect::LeaveQueue {
                ticket,
                taken_at: None,
            });
            self.effects.push(Effect::EnqueueHuman {
                ticket: alerted.clone(),
            });
            if self.tenant.desk.position.is_some() && self.session.in_service_window(self.now) {
                self.effects.push(Effect::TellPosition {
                    ticket: alerted.clone(),
                });
            }
        }
        self.effects.push(alert);
        self.session.ticket = Some(alerted);
    }

    /// The tenant opened: who asked for a person goes straight to the queue, everyone else
    /// gets the menu. Outside the 24 h window, the approved template comes first and the
    /// customer's reply carries on from there.
    fn opening(&mut self, until: DateTime<Utc>) {
        if !self.session.awaiting_opening {
            // Followed up already, or the customer came back by itself: off the list.
            return self.effects.push(Effect::OpeningDone);
        }
        if self.session.off_hours_until != Some(until) {
            return; // a timer for an earlier closed period; the list holds the later one
        }
        self.session.awaiting_opening = false;
        // The conversation resumes now: the reply to this follow-up is not a new session.
        self.session.last_activity_at = self.now;
        self.effects.push(Effect::OpeningDone);
        let in_window = self.session.in_service_window(self.now);
        if !in_window {
            let body = self.tenant.menu.body.clone();
            self.send_or_template(
                &body,
                self.tenant.templates.off_hours_followup.as_ref(),
                false,
            );
        }
        if std::mem::take(&mut self.session.wants_human) {
            if in_window {
                self.handoff(HandoffReason::Asked);
            } else {
                self.enqueue(HandoffReason::Asked);
            }
        } else if in_window {
            self.show_menu(self.tenant.menu.body.clone());
        } else {
            self.session.state = State::Menu;
            self.session.attempts = 0;
        }
    }

    fn greet(&mut self, profile_name: Option<&str>) {
        let name = profile_name
            .map(|n| format!(", {}", n.trim()))
            .filter(|n| n.len() > 2)
            .unwrap_or_default();
        self.send(Outbound::text(
            self.tenant.texts.greeting.replace("{name}", &name),
        ));
        self.show_menu(self.tenant.menu.body.clone());
    }

    fn show_menu(&mut self, body: String) {
        self.session.state = State::Menu;
        self.session.attempts = 0;
        self.send(self.tenant.menu_message(body));
    }

    fn answer_menu(&mut self, input: &Input) {
        let options = &self.tenant.menu.options;
        let choices: Vec<_> = options
            .iter()
            .map(|o| (o.id.as_str(), o.title.as_str()))
            .collect();
        match pick(&choices, input) {
            Some(index) => self.go(&options[index].target.clone()),
            // A question instead of a choice: the attendant answers it.
            None if self.tenant.features.ai_enabled && matches!(input, Input::Text(_)) => {
                self.session.state = State::Ai;
                self.answer_ai(input);
            }
            None => self.not_understood(|turn| {
                let body = turn.tenant.texts.not_understood.clone();
                turn.send(turn.tenant.menu_message(body));
            }),
        }
    }

    fn answer_step(&mut self, department: &str, step_id: &str, input: &Input) {
        let Some(step) = self.find_step(department, step_id) else {
            // The tenant's flow changed under this conversation: start again from the menu.
            self.show_menu(self.tenant.menu.body.clone());
            return;
        };
        if step.choices.is_empty() {
            let Input::Text(text) = input else {
                return self.not_understood(|turn| {
                    turn.ask(&step, turn.tenant.texts.not_understood.clone())
                });
            };
            self.session.answers.insert(step.id.clone(), text.clone());
            let next = step.next.clone().unwrap_or(Target::Human);
            return self.go(&next);
        }
        let choices: Vec<_> = step
            .choices
            .iter()
            .map(|c| (c.id.as_str(), c.title.as_str()))
            .collect();
        match pick(&choices, input) {
            Some(index) => {
                let choice = &step.choices[index];
                self.session
                    .answers
                    .insert(step.id.clone(), choice.title.clone());
                if let Some(reply) = &choice.reply {
                    self.send(Outbound::text(reply));
                }
                self.go(&choice.next.clone());
            }
            None => self
                .not_understood(|turn| turn.ask(&step, turn.tenant.texts.not_understood.clone())),
        }
    }

    fn find_step(&self, department: &str, step: &str) -> Option<Step> {
        self.tenant
            .department(department)?
            .flow
            .iter()
            .find(|s| s.id == step)
            .cloned()
    }

    fn ask(&mut self, step: &Step, body: String) {
        let message = self.tenant.step_message(step, body);
        self.send(message);
    }

    /// A wrong answer: re-prompt, or hand over after `max_bot_attempts` in a row.
    fn not_understood(&mut self, reprompt: impl FnOnce(&mut Self)) {
        self.session.attempts += 1;
        self.session.misunderstood += 1;
        if self.session.attempts >= self.tenant.max_bot_attempts {
            self.handoff(HandoffReason::Attempts);
        } else {
            reprompt(self);
        }
    }

    fn go(&mut self, target: &Target) {
        self.session.attempts = 0;
        match target {
            Target::Department(id) => {
                self.session.department = Some(id.clone());
                match self
                    .tenant
                    .department(id)
                    .and_then(|d| d.flow.first())
                    .cloned()
                {
                    Some(first) => self.enter_step(id, &first),
                    None => self.handoff(HandoffReason::Asked),
                }
            }
            Target::Step(id) => {
                let department = self.session.department.clone().unwrap_or_default();
                match self.find_step(&department, id) {
                    Some(step) => self.enter_step(&department, &step),
                    None => self.show_menu(self.tenant.menu.body.clone()),
                }
            }
            Target::Human => self.handoff(HandoffReason::Flow),
            Target::Ai if self.tenant.features.ai_enabled => {
                self.session.state = State::Ai;
                let greeting = self.tenant.ai.greeting.clone().unwrap_or_default();
                self.send(Outbound::text(greeting));
            }
            Target::Ai => {
                // The contract does not include the attendant (any more): a person answers.
                self.session.state = State::Ai;
                self.send(Outbound::text(&self.tenant.texts.ai_unavailable));
                self.enqueue(HandoffReason::Ai);
            }
            Target::Menu => self.show_menu(self.tenant.menu.body.clone()),
            Target::Close => self.close(),
        }
    }

    /// A customer message for the attendant: a question for Claude, within the turn and token
    /// limits; media gets the configured reply or a person.
    fn answer_ai(&mut self, input: &Input) {
        let tenant = self.tenant;
        let ai = &tenant.ai;
        if !self.tenant.features.ai_enabled {
            return self.go(&Target::Ai);
        }
        let question = match input {
            Input::Text(text) if !text.trim().is_empty() => text.trim().to_owned(),
            Input::Choice { title, .. } if !title.trim().is_empty() => title.trim().to_owned(),
            _ => {
                return match ai.media_reply.clone() {
                    Some(reply) => self.not_understood(|turn| turn.send(Outbound::text(reply))),
                    None => self.ai_handoff("non-text message".into(), None),
                };
            }
        };
        let conversation = self.session.ai.get_or_insert_default();
        let spent = conversation.answers >= ai.max_turns
            || conversation.usage.tokens() >= u64::from(ai.max_tokens_per_conversation);
        if spent {
            conversation.handoff_reason = Some("AI limits reached".into());
            let told = ai.limit_reached.clone();
            self.send(Outbound::text(told));
            return self.enqueue(HandoffReason::Ai);
        }
        conversation.push(Role::User, &question, ai.history_messages as usize);
        self.effects.push(Effect::AskAi);
    }

    fn ai_answered(&mut self, answer: &Answer) {
        let keep = self.tenant.ai.history_messages as usize;
        let conversation = self.session.ai.get_or_insert_default();
        conversation.usage.add(answer.usage);
        match &answer.outcome {
            AiOutcome::Reply { text } => {
                conversation.answers += 1;
                conversation.push(Role::Assistant, text, keep);
                self.session.attempts = 0;
                self.send(Outbound::text(text));
            }
            AiOutcome::Handoff { reason, department } => {
                self.ai_handoff(reason.clone(), department.clone());
            }
            AiOutcome::Failed { error, .. } => {
                conversation.handoff_reason = Some(format!("AI error: {error}"));
                self.send(Outbound::text(&self.tenant.texts.ai_unavailable));
                self.enqueue(HandoffReason::Ai);
            }
        }
    }

    fn ai_handoff(&mut self, reason: String, department: Option<String>) {
        self.session.ai.get_or_insert_default().handoff_reason = Some(reason);
        if department.is_some() {
            self.session.department = department;
        }
        self.send(Outbound::text(&self.tenant.texts.handoff));
        self.enqueue(HandoffReason::Ai);
    }

    fn enter_step(&mut self, department: &str, step: &Step) {
        self.session.state = State::Flow {
            department: department.into(),
            step: step.id.clone(),
        };
        self.ask(step, step.prompt.clone());
    }

    fn handoff(&mut self, reason: HandoffReason) {
        self.send(Outbound::text(&self.tenant.texts.handoff));
        self.enqueue(reason);
    }

    /// Into the department's queue (VIP contacts at `alta`), the customer told their place,
    /// and onto the desk with the summary.
    fn enqueue(&mut self, reason: HandoffReason) {
        let tenant = self.tenant;
        let department = self
            .session
            .department
            .clone()
            .unwrap_or_else(|| default_department(tenant).to_owned());
        let configured = tenant.department(&department);
        let priority = if tenant.desk.vip_contacts.contains(&self.session.customer) {
            Priority::Alta
        } else {
            configured.map_or_else(Priority::default, |d| d.priority)
        };
        let ticket = Ticket {
            department: department.clone(),
            priority,
            entered_at: self.now,
            reason,
            alerted: None,
        };
        self.session.department = Some(department.clone());
        self.session.state = State::Human { department };
        self.session.attempts = 0;
        self.session.ticket = Some(ticket.clone());
        self.effects.push(Effect::EnqueueHuman {
            ticket: ticket.clone(),
        });
        // Free text only inside the window (a customer queued by the opening follow-up
        // may be outside it).
        if tenant.desk.position.is_some() && self.session.in_service_window(self.now) {
            self.effects.push(Effect::TellPosition {
                ticket: ticket.clone(),
            });
        }
        // The desk last: its outage must not hold up the queue or the customer.
        if tenant.desk.chatwoot.is_some() {
            let handoff = Handoff {
                department: configured
                    .map_or_else(|| ticket.department.clone(), |d| d.name.clone()),
                priority,
                reason,
                answers: self.session.answers.clone().into_iter().collect(),
                ai_reason: self
                    .session
                    .ai
                    .as_ref()
                    .and_then(|ai| ai.handoff_reason.clone()),
                bot_attempts: self.session.misunderstood,
                started_at: self.session.started_at,
                handed_at: self.now,
                ticket_at: ticket.entered_at,
                customer_name: self.session.profile_name.clone(),
            };
            self.effects.push(Effect::OpenDesk { handoff });
        }
    }

    fn close(&mut self) {
        self.session.attempts = 0;
        if self.tenant.nps.enabled {
            self.session.state = State::Nps;
            let question = self.tenant.nps.question.clone();
            self.send_or_template(&question, self.tenant.templates.nps.as_ref(), false);
        } else {
            self.session.state = State::Closed;
            // Outside the window a goodbye would only reach them as the generic fallback
            // template: not worth a paid message.
            if self.session.in_service_window(self.now) {
                self.send(Outbound::text(&self.tenant.nps.goodbye));
            }
        }
    }

    fn answer_nps(&mut self, input: &Input) {
        match nps_score(input) {
            Some(score) => {
                self.session.nps_score = Some(score);
                self.session.state = State::Closed;
                self.send(Outbound::text(&self.tenant.nps.thanks));
            }
            None => {
                self.session.attempts += 1;
                if self.session.attempts >= self.tenant.max_bot_attempts {
                    self.session.state = State::Closed;
                    self.send(Outbound::text(&self.tenant.nps.goodbye));
                } else {
                    self.send(Outbound::text(&self.tenant.nps.question));
                }
            }
        }
    }
}

/// Whether `text` holds one of `words` as whole words, ignoring case and accents.
fn contains_word(words: &[String], text: &str) -> bool {
    let text = format!(" {} ", normalize(text));
    words
        .iter()
        .any(|word| text.contains(&format!(" {} ", normalize(word))))
}

/// Which of `choices` (id, title) the input picks: the id of a reply, or a typed id, title
/// or position ("2"), ignoring case and accents.
fn pick(choices: &[(&str, &str)], input: &Input) -> Option<usize> {
    match input {
        Input::Choice { id, .. } => choices.iter().position(|(choice, _)| choice == id),
        Input::Text(text) => {
            let typed = normalize(text);
            if let Ok(position) = typed.parse::<usize>() {
                return (1..=choices.len())
                    .contains(&position)
                    .then(|| position - 1);
            }
            choices
                .iter()
                .position(|(id, title)| typed == normalize(id) || typed == normalize(title))
        }
        Input::Media(_) | Input::Ignored(_) => None,
    }
}

/// A 0-10 score from a reply id or title, or a text that is just the number.
fn nps_score(input: &Input) -> Option<u8> {
    let text = match input {
        Input::Choice { id, title } => {
            let digits = id.trim_start_matches(|c: char| !c.is_ascii_digit());
            return digits
                .parse()
                .ok()
                .or_else(|| title.trim().parse().ok())
                .filter(|s| *s <= 10);
        }
        Input::Text(text) => normalize(text),
        _ => return None,
    };
    text.parse::<u8>().ok().filter(|score| *score <= 10)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The demo tenant, always open. [`menu_only`] for the menu path without the attendant.
    pub(crate) fn tenant() -> Tenant {
        let mut tenant: Tenant =
            serde_yaml_ng::from_str(include_str!("../../infra/tenants/demo.yaml")).unwrap();
        tenant.business_hours = None;
        tenant
    }

    fn menu_only() -> Tenant {
        let mut tenant = tenant();
        tenant.features.ai_enabled = false;
        tenant
    }

    /// Monday 23 Nov 2026, 14:00 in São Paulo.
    fn monday_afternoon() -> DateTime<Utc> {
        "2026-11-23T17:00:00Z".parse().unwrap()
    }

    struct Chat {
        tenant: Tenant,
        session: Option<Session>,
        now: DateTime<Utc>,
        clock: i64,
    }

    impl Chat {
        fn new(tenant: Tenant) -> Self {
            Self {
                tenant,
                session: None,
                now: monday_afternoon(),
                clock: monday_afternoon().timestamp(),
            }
        }

        fn event(&mut self, event: Event) -> Vec<Effect> {
            let outcome = step(
                self.session.take(),
                "106540352242922",
                "5511987654321",
                &event,
                self.now,
                &self.tenant,
            );
            self.session = Some(outcome.session);
            outcome.effects
        }

        fn say(&mut self, input: Input) -> Vec<Effect> {
            self.clock += 10;
            self.now += Duration::seconds(10);
            self.event(Event::Message {
                input,
                sent_at: self.clock,
                profile_name: Some("Maria".into()),
                media: None,
            })
        }

        fn text(&mut self, text: &str) -> Vec<Effect> {
            self.say(Input::Text(text.into()))
        }

        fn tap(&mut self, id: &str) -> Vec<Effect> {
            self.say(Input::Choice {
                id: id.into(),
                title: String::new(),
            })
        }

        fn state(&self) -> String {
            self.session.as_ref().unwrap().state.business_name()
        }
    }

    fn texts(effects: &[Effect]) -> Vec<String> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send {
                    message: Outbound::Text { body, .. },
                } => Some(body.clone()),
                Effect::Send {
                    message: Outbound::Buttons { body, .. } | Outbound::List { body, .. },
                } => Some(body.clone()),
                _ => None,
            })
            .collect()
    }

    fn enqueued(effects: &[Effect]) -> Option<(String, HandoffReason)> {
        effects.iter().find_map(|e| match e {
            Effect::EnqueueHuman { ticket } => Some((ticket.department.clone(), ticket.reason)),
            _ => None,
        })
    }

    #[test]
    fn a_new_customer_is_greeted_by_name_with_the_menu_as_a_list() {
        let mut chat = Chat::new(tenant());
        let effects = chat.text("oi");
        assert_eq!(chat.state(), "MENU_PRINCIPAL");
        assert!(texts(&effects)[0].starts_with("Olá, Maria! 👋"));
        let Effect::Send {
            message: Outbound::List {
                sections, button, ..
            },
        } = &effects[1]
        else {
            panic!("four options make a list: {effects:?}")
        };
        assert_eq!(button, "Ver opções");
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].title.as_deref(), Some("Atendimento"));
        assert_eq!(sections[0].rows.len(), 3);
    }

    #[test]
    fn up_to_three_options_are_buttons() {
        let mut tenant = tenant();
        tenant.menu.options.truncate(3);
        let mut chat = Chat::new(tenant);
        let effects = chat.text("oi");
        assert!(
            matches!(&effects[1], Effect::Send { message: Outbound::Buttons { buttons, .. } } if buttons.len() == 3)
        );
    }

    #[test]
    fn support_flow_resolved_by_the_bot_goes_to_nps_and_closes() {
        let mut chat = Chat::new(tenant());
        chat.text("olá");
        let effects = chat.tap("suporte");
        assert_eq!(chat.state(), "SUPORTE_PROBLEMA");
        assert!(
            matches!(&effects[0], Effect::Send { message: Outbound::Buttons { buttons, .. } }
            if buttons.iter().map(|b| b.id.as_str()).collect::<Vec<_>>() == ["sem_internet", "lenta", "outro"])
        );
        chat.tap("lenta");
        assert_eq!(chat.state(), "SUPORTE_REINICIOU");
        let effects = chat.tap("resolveu");
        assert_eq!(
            texts(&effects),
            [
                "Que ótimo! Se precisar, é só chamar. 😉",
                &chat.tenant.nps.question[..]
            ]
        );
        assert_eq!(chat.state(), "PESQUISA_NPS");
        let effects = chat.text("10");
        assert_eq!(texts(&effects), [chat.tenant.nps.thanks.clone()]);
        assert_eq!(chat.state(), "FINALIZADO");
        assert_eq!(chat.session.as_ref().unwrap().nps_score, Some(10));
    }

    #[test]
    fn sales_flow_collects_answers_and_queues_for_sales() {
        let mut chat = Chat::new(tenant());
        chat.text("oi");
        chat.text("2"); // second option, typed
        assert_eq!(chat.state(), "VENDAS_PLANO");
        chat.text("600 mega"); // a title, typed in another case
        assert_eq!(chat.state(), "VENDAS_CEP");
        let effects = chat.text("01310-100");
        assert_eq!(
            enqueued(&effects),
            Some(("vendas".into(), HandoffReason::Flow))
        );
        assert_eq!(texts(&effects), [chat.tenant.texts.handoff.clone()]);
        assert_eq!(chat.state(), "ATENDIMENTO_HUMANO");
        let answers = &chat.session.as_ref().unwrap().answers;
        assert_eq!(answers["plano"], "600 Mega");
        assert_eq!(answers["cep"], "01310-100");
    }

    #[test]
    fn finance_second_copy_asks_for_the_cpf_then_queues() {
        let mut chat = Chat::new(tenant());
        chat.text("oi");
        chat.tap("financeiro");
        chat.tap("segunda_via");
        assert_eq!(chat.state(), "FINANCEIRO_CPF");
        let effects = chat.text("12345678900");
        assert_eq!(
            enqueued(&effects),
            Some(("financeiro".into(), HandoffReason::Flow))
        );
    }

    #[test]
    fn escalation_words_match_ignoring_case_and_accents_in_any_bot_state() {
        for phrase in [
            "Quero falar com ATENDENTE",
            "reclamacao",
            "RECLAMAÇÃO!!",
            "vou cancelar",
        ] {
            let mut chat = Chat::new(tenant());
            chat.text("oi");
            chat.tap("suporte");
            let effects = chat.text(phrase);
            assert_eq!(
                enqueued(&effects),
                Some(("suporte".into(), HandoffReason::Asked)),
                "{phrase}"
            );
        }
        // Whole words only: "pessoal" is not "pessoa".
        let mut chat = Chat::new(tenant());
        chat.text("oi");
        let effects = chat.text("pessoal, bom dia");
        assert_eq!(enqueued(&effects), None);
        // From the very first message, before any department: the general queue.
        let mut chat = Chat::new(tenant());
        assert_eq!(
            enqueued(&chat.text("quero um humano")),
            Some(("geral".into(), HandoffReason::Asked))
        );
    }

    #[test]
    fn wrong_answers_reprompt_then_hand_over_after_max_attempts() {
        let mut chat = Chat::new(menu_only());
        chat.text("oi");
        for _ in 0..2 {
            let effects = chat.text("banana");
            assert_eq!(texts(&effects), [chat.tenant.texts.not_understood.clone()]);
            assert!(
                matches!(
                    &effects[0],
                    Effect::Send {
                        message: Outbound::List { .. }
                    }
                ),
                "re-shows the menu"
            );
        }
        let effects = chat.text("banana");
        assert_eq!(
            enqueued(&effects),
            Some(("geral".into(), HandoffReason::Attempts))
        );
        // Media is not an answer either.
        let mut chat = Chat::new(tenant());
        chat.text("oi");
        chat.tap("suporte");
        let effects = chat.say(Input::Media("image".into()));
        assert_eq!(chat.session.as_ref().unwrap().attempts, 1);
        assert!(matches!(
            &effects[0],
            Effect::Send {
                message: Outbound::Buttons { .. }
            }
        ));
    }

    #[test]
    fn a_right_answer_resets_the_attempts() {
        let mut chat = Chat::new(menu_only());
        chat.text("oi");
        chat.text("x");
        chat.text("x");
        chat.tap("suporte");
        chat.text("x");
        chat.text("x");
        assert_eq!(chat.state(), "SUPORTE_PROBLEMA");
    }

    #[test]
    fn the_bot_is_silent_while_an_agent_owns_the_conversation_then_asks_nps() {
        let mut chat = Chat::new(tenant());
        chat.text("falar com atendente");
        let sends = |effects: Vec<Effect>| {
            effects
                .into_iter()
                .filter(|e| !matches!(e, Effect::ForwardToDesk { .. }))
                .collect::<Vec<_>>()
        };
        assert_eq!(sends(chat.text("alguém aí?")), []);
        assert_eq!(sends(chat.text("cancelar")), [], "no second handoff");
        let effects = chat.event(Event::Desk(DeskAction::Resolved));
        assert_eq!(texts(&effects), [chat.tenant.nps.question.clone()]);
        assert_eq!(chat.state(), "PESQUISA_NPS");
        assert!(chat.text("não sei").len() == 1);
        assert_eq!(texts(&chat.tap("nps_7")), [chat.tenant.nps.thanks.clone()]);
        assert_eq!(chat.session.as_ref().unwrap().nps_score, Some(7));
    }

    #[test]
    fn nps_gives_up_politely_after_max_attempts() {
        let mut chat = Chat::new(tenant());
        chat.text("atendente");
        chat.event(Event::Desk(DeskAction::Resolved));
        chat.text("11");
        chat.text("muito bom");
        let effects = chat.text("ótimo");
        assert_eq!(texts(&effects), [chat.tenant.nps.goodbye.clone()]);
        assert_eq!(chat.state(), "FINALIZADO");
    }

    #[test]
    fn after_closing_or_the_session_timeout_a_message_starts_over() {
        let mut chat = Chat::new(tenant());
        chat.text("oi");
        chat.tap("suporte");
        chat.now += Duration::hours(25);
        let effects = chat.text("oi de novo");
        assert_eq!(chat.state(), "MENU_PRINCIPAL");
        assert!(texts(&effects)[0].starts_with("Olá"));

        chat.tap("suporte");
        chat.tap("lenta");
        chat.tap("resolveu");
        chat.text("9");
        assert_eq!(chat.state(), "FINALIZADO");
        chat.text("oi");
        assert_eq!(chat.state(), "MENU_PRINCIPAL");
    }

    #[test]
    fn older_messages_reactions_edits_and_revokes_are_never_answers() {
        let mut chat = Chat::new(tenant());
        chat.text("oi");
        for input in ["reaction", "edit", "revoke"] {
            assert!(chat.say(Input::Ignored(input.into())).is_empty());
        }
        assert_eq!(chat.session.as_ref().unwrap().attempts, 0);
        let before = chat.session.clone();
        let effects = chat.event(Event::Message {
            input: Input::Choice {
                id: "suporte".into(),
                title: "Suporte".into(),
            },
            sent_at: chat.clock - 60,
            profile_name: None,
            media: None,
        });
        assert!(effects.is_empty());
        assert_eq!(chat.session, before);
    }

    #[test]
    fn off_hours_reply_goes_once_per_closed_period_and_keeps_the_conversation() {
        let mut tenant = tenant();
        tenant.business_hours =
            serde_yaml_ng::from_str(include_str!("../../infra/tenants/demo.yaml"))
                .map(|t: Tenant| t.business_hours)
                .unwrap();
        let mut chat = Chat::new(tenant);
        chat.now = "2026-11-24T01:00:00Z".parse().unwrap(); // Monday 22:00 local
        let effects = chat.text("oi, minha internet caiu");
        assert_eq!(texts(&effects), [chat.tenant.texts.off_hours.clone()]);
        assert!(chat.text("alô?").is_empty(), "one reply per closed period");
        assert!(chat.text("quero falar com atendente").is_empty());
        let session = chat.session.clone().unwrap();
        assert!(session.awaiting_opening && session.wants_human);
        assert_eq!(session.state, State::Start);
        assert_eq!(
            session.off_hours_until,
            Some("2026-11-24T11:00:00Z".parse().unwrap())
        );

        // Next night is another closed period.
        chat.now = "2026-11-25T01:00:00Z".parse().unwrap();
        assert_eq!(
            texts(&chat.text("oi")),
            [chat.tenant.texts.off_hours.clone()]
        );
        // Open again: the conversation goes on.
        chat.now = "2026-11-25T12:00:00Z".parse().unwrap();
        chat.text("bom dia");
        assert_eq!(chat.state(), "MENU_PRINCIPAL");
    }

    #[test]
    fn without_the_contract_the_attendant_option_goes_to_a_person() {
        let mut chat = Chat::new(menu_only());
        chat.text("oi");
        let effects = chat.tap("duvidas");
        assert_eq!(texts(&effects), [chat.tenant.texts.ai_unavailable.clone()]);
        // No department chosen and no menu option leads straight to a queue: the first one.
        assert_eq!(
            enqueued(&effects),
            Some(("geral".into(), HandoffReason::Ai))
        );
    }

    fn answered(text: &str, tokens: u64) -> Event {
        Event::AiAnswered(Answer {
            outcome: AiOutcome::Reply { text: text.into() },
            usage: crate::ai::Usage {
                requests: 1,
                input_tokens: tokens,
                output_tokens: 0,
            },
        })
    }

    #[test]
    fn the_attendant_greets_asks_and_answers_keeping_history_and_usage() {
        let mut chat = Chat::new(tenant());
        chat.text("oi");
        let effects = chat.tap("duvidas");
        assert_eq!(texts(&effects), [chat.tenant.ai.greeting.clone().unwrap()]);
        assert_eq!(chat.state(), "ATENDIMENTO_IA");
        assert_eq!(chat.text("Quanto custa?"), [Effect::AskAi]);
        let effects = chat.event(answered("R$ 89,90.", 700));
        assert_eq!(texts(&effects), ["R$ 89,90."]);
        let ai = chat.session.as_ref().unwrap().ai.clone().unwrap();
        assert_eq!(ai.answers, 1);
        assert_eq!(ai.usage.input_tokens, 700);
        assert_eq!(
            ai.history.iter().map(|m| m.role).collect::<Vec<_>>(),
            [Role::User, Role::Assistant]
        );
        // An answer that arrives when the conversation moved on is dropped.
        chat.text("atendente");
        assert!(chat.event(answered("tarde demais", 10)).is_empty());
    }

    #[test]
    fn free_text_at_the_menu_is_a_question_for_the_attendant() {
        let mut chat = Chat::new(tenant());
        chat.text("oi");
        assert_eq!(chat.text("vocês atendem em Osasco?"), [Effect::AskAi]);
        assert_eq!(chat.state(), "ATENDIMENTO_IA");
        // A choice still picks its option.
        let mut chat = Chat::new(tenant());
        chat.text("oi");
        chat.text("2");
        assert_eq!(chat.state(), "VENDAS_PLANO");
    }

    #[test]
    fn the_attendant_hands_over_by_tool_on_failure_and_at_its_limits() {
        let mut chat = Chat::new(tenant());
        chat.text("oi");
        chat.text("quero mudar de endereço");
        let effects = chat.event(Event::AiAnswered(Answer {
            outcome: AiOutcome::Handoff {
                reason: "Mudança de endereço".into(),
                department: Some("suporte".into()),
            },
            usage: Default::default(),
        }));
        assert_eq!(texts(&effects), [chat.tenant.texts.handoff.clone()]);
        assert_eq!(
            enqueued(&effects),
            Some(("suporte".into(), HandoffReason::Ai))
        );

        let mut chat = Chat::new(tenant());
        chat.text("oi");
        chat.text("pergunta");
        let effects = chat.event(Event::AiAnswered(Answer {
            outcome: AiOutcome::Failed {
                error: "overloaded".into(),
                needs_attention: false,
            },
            usage: Default::default(),
        }));
        assert_eq!(texts(&effects), [chat.tenant.texts.ai_unavailable.clone()]);
        assert_eq!(chat.state(), "ATENDIMENTO_HUMANO");
        let reason = chat.session.as_ref().unwrap().ai.as_ref().unwrap();
        assert_eq!(
            reason.handoff_reason.as_deref(),
            Some("AI error: overloaded")
        );

        // Turns: after max_turns answers the next question goes to a person.
        let mut tenant = tenant();
        tenant.ai.max_turns = 2;
        let mut chat = Chat::new(tenant);
        chat.text("oi");
        chat.tap("duvidas");
        for _ in 0..2 {
            assert_eq!(chat.text("pergunta"), [Effect::AskAi]);
            chat.event(answered("resposta", 10));
        }
        let effects = chat.text("mais uma");
        assert_eq!(texts(&effects), [chat.tenant.ai.limit_reached.clone()]);
        assert!(enqueued(&effects).is_some());

        // Tokens: a spent budget hands over before asking.
        let mut chat = Chat::new(self::tenant());
        chat.text("oi");
        chat.text("pergunta");
        chat.event(answered("resposta", 20_000));
        let effects = chat.text("outra");
        assert!(!effects.contains(&Effect::AskAi));
        assert_eq!(chat.state(), "ATENDIMENTO_HUMANO");
    }

    #[test]
    fn media_gets_the_media_reply_then_a_person_after_max_attempts() {
        let mut chat = Chat::new(tenant());
        chat.text("oi");
        chat.tap("duvidas");
        let reply = chat.tenant.ai.media_reply.clone().unwrap();
        for kind in ["audio", "image"] {
            let effects = chat.say(Input::Media(kind.into()));
            assert_eq!(texts(&effects), std::slice::from_ref(&reply));
        }
        let effects = chat.say(Input::Media("document".into()));
        assert_eq!(
            enqueued(&effects).map(|(_, reason)| reason),
            Some(HandoffReason::Attempts)
        );
        // Without a media reply, media goes straight to a person.
        let mut tenant = tenant();
        tenant.ai.media_reply = None;
        let mut chat = Chat::new(tenant);
        chat.text("oi");
        chat.tap("duvidas");
        let effects = chat.say(Input::Media("image".into()));
        assert_eq!(texts(&effects), [chat.tenant.texts.handoff.clone()]);
        assert!(enqueued(&effects).is_some());
    }

    fn ticket(effects: &[Effect]) -> Ticket {
        effects
            .iter()
            .find_map(|e| match e {
                Effect::EnqueueHuman { ticket } => Some(ticket.clone()),
                _ => None,
            })
            .expect("enqueued")
    }

    fn reply(text: &str) -> Event {
        Event::Desk(DeskAction::AgentReply {
            text: Some(text.into()),
            attachments: Vec::new(),
        })
    }

    #[test]
    fn a_handoff_queues_with_priority_opens_the_desk_and_tells_the_place() {
        let mut chat = Chat::new(tenant());
        chat.text("oi");
        chat.tap("financeiro");
        let waiting = ticket(&chat.tap("pagamento"));
        assert_eq!(
            waiting.priority,
            Priority::Baixa,
            "the department's priority"
        );
        assert_eq!(waiting.department, "financeiro");
        assert_eq!(chat.session.as_ref().unwrap().ticket, Some(waiting));

        let mut chat = Chat::new(tenant());
        chat.text("oi");
        chat.tap("financeiro");
        chat.tap("segunda_via");
        let effects = chat.text("12345678900");
        let kinds: Vec<_> = effects
            .iter()
            .map(|e| {
                serde_json::to_value(e).unwrap()["effect"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            kinds,
            ["send", "enqueue_human", "tell_position", "open_desk"]
        );
        let Effect::OpenDesk { handoff } = &effects[3] else {
            unreachable!()
        };
        assert_eq!(handoff.department, "Financeiro");
        assert_eq!(handoff.reason, HandoffReason::Flow);
        assert_eq!(
            handoff.answers,
            [
                ("assunto".to_owned(), "2ª via do boleto".to_owned()),
                ("cpf".to_owned(), "12345678900".to_owned())
            ]
        );
        assert_eq!(handoff.customer_name.as_deref(), Some("Maria"));

        // A VIP contact enters at `alta`, whatever the department.
        let mut tenant = tenant();
        tenant.desk.vip_contacts = vec!["5511987654321".into()];
        let mut chat = Chat::new(tenant);
        let effects = chat.text("quero falar com atendente");
        assert_eq!(ticket(&effects).priority, Priority::Alta);
    }

    #[test]
    fn while_waiting_messages_go_to_the_desk_and_a_give_up_word_leaves_the_queue() {
        let mut chat = Chat::new(tenant());
        let waiting = ticket(&chat.text("atendente"));
        let effects = chat.text("alguém aí?");
        assert_eq!(
            effects,
            [Effect::ForwardToDesk {
                text: Some("alguém aí?".into()),
                media: None,
                private: false
            }]
        );
        let photo = MediaRef {
            kind: "image".into(),
            id: "media.1".into(),
            mime_type: Some("image/jpeg".into()),
            filename: None,
            caption: None,
        };
        chat.clock += 10;
        let effects = chat.event(Event::Message {
            input: Input::Media("image".into()),
            sent_at: chat.clock,
            profile_name: None,
            media: Some(photo.clone()),
        });
        assert!(
            matches!(&effects[..], [Effect::ForwardToDesk { media: Some(m), text: None, .. }] if *m == photo)
        );

        let effects = chat.text("Quero DESISTIR");
        assert!(effects.contains(&Effect::LeaveQueue {
            ticket: waiting,
            taken_at: None
        }));
        assert_eq!(
            texts(&effects),
            [chat.tenant.desk.left_queue.clone().unwrap()]
        );
        assert_eq!(chat.state(), "FINALIZADO");
        assert!(chat.session.as_ref().unwrap().ticket.is_none());
    }

    #[test]
    fn the_agent_takes_answers_and_resolves_then_nps() {
        let mut chat = Chat::new(tenant());
        let waiting = ticket(&chat.text("atendente"));
        let effects = chat.event(Event::Desk(DeskAction::Assigned {
            agent: "Ana".into(),
        }));
        assert_eq!(
            effects[0],
            Effect::LeaveQueue {
                ticket: waiting,
                taken_at: Some(chat.now)
            }
        );
        assert_eq!(texts(&effects), ["Ana vai continuar o seu atendimento. 🙂"]);
        let effects = chat.event(reply("Olá, Maria! Vou verificar."));
        assert_eq!(texts(&effects), ["Olá, Maria! Vou verificar."]);
        // Attachments go as media messages Meta fetches by link.
        let effects = chat.event(Event::Desk(DeskAction::AgentReply {
            text: None,
            attachments: vec![crate::desk::Attachment {
                kind: "document".into(),
                url: "https://desk.example/2via.pdf".into(),
                filename: Some("2via.pdf".into()),
            }],
        }));
        assert!(
            matches!(&effects[..], [Effect::Send { message: Outbound::Media { kind, .. } }] if kind == "document")
        );
        assert!(
            chat.text("obrigada")
                .iter()
                .all(|e| matches!(e, Effect::ForwardToDesk { .. }))
        );
        let effects = chat.event(Event::Desk(DeskAction::Resolved));
        assert_eq!(texts(&effects), [chat.tenant.nps.question.clone()]);
        assert_eq!(chat.state(), "PESQUISA_NPS");
        assert_eq!(texts(&chat.text("10")), [chat.tenant.nps.thanks.clone()]);
        assert_eq!(chat.state(), "FINALIZADO");

        // An agent writing after resolving takes the conversation back: the customer's
        // answer goes to the agent, not to the survey.
        let mut chat = Chat::new(tenant());
        chat.text("atendente");
        chat.event(Event::Desk(DeskAction::Resolved));
        chat.event(reply("Esqueci de dizer: o técnico vai amanhã."));
        assert_eq!(chat.state(), "ATENDIMENTO_HUMANO");
        assert!(matches!(
            &chat.text("ok, obrigada")[..],
            [Effect::ForwardToDesk { .. }]
        ));
        // Long replies go in parts WhatsApp accepts.
        let long = "a".repeat(5000);
        assert_eq!(texts(&chat.event(reply(&long))).len(), 2);
    }

    #[test]
    fn outside_the_24_hour_window_agent_replies_and_nps_go_as_templates() {
        let mut chat = Chat::new(tenant());
        chat.text("atendente");
        chat.now += Duration::hours(25);
        let effects = chat.event(reply("Boa tarde!\nSeu  boleto   segue."));
        let [
            Effect::LeaveQueue { .. },
            Effect::Send {
                message:
                    Outbound::Template {
                        name, components, ..
                    },
            },
        ] = &effects[..]
        else {
            panic!("a template: {effects:?}")
        };
        assert_eq!(name, "resposta_atendente");
        assert_eq!(components[0].parameters, ["Boa tarde! Seu boleto segue."]);
        let effects = chat.event(Event::Desk(DeskAction::Resolved));
        assert!(
            matches!(&effects[..], [Effect::Send { message: Outbound::Template { name, .. } }] if name == "pesquisa_satisfacao")
        );
    }

    #[test]
    fn without_nps_a_resolution_says_goodbye_only_inside_the_window() {
        let mut tenant = tenant();
        tenant.nps.enabled = false;
        let mut chat = Chat::new(tenant);
        chat.text("atendente");
        let effects = chat.event(Event::Desk(DeskAction::Resolved));
        assert!(matches!(
            &effects[..],
            [
                ..,
                Effect::Send {
                    message: Outbound::Text { .. }
                }
            ]
        ));
        chat.text("atendente");
        chat.now += Duration::hours(25);
        chat.event(Event::Desk(DeskAction::Assigned {
            agent: "Ana".into(),
        }));
        let effects = chat.event(Event::Desk(DeskAction::Resolved));
        assert!(
            !effects.iter().any(|e| matches!(e, Effect::Send { .. })),
            "{effects:?}"
        );
        assert_eq!(chat.session.as_ref().unwrap().state, State::Closed);
    }

    #[test]
    fn an_answer_from_the_business_app_quiets_the_bot_for_a_while() {
        let mut chat = Chat::new(tenant());
        chat.text("oi");
        let sent_at = chat.now.timestamp();
        assert!(chat.event(Event::BusinessEcho { sent_at }).is_empty());
        assert!(chat.text("1").is_empty(), "the bot keeps quiet");
        chat.now += Duration::minutes(61);
        assert!(
            !chat.text("1").is_empty(),
            "and talks again after the silence"
        );
    }

    #[test]
    fn a_late_business_echo_quiets_the_bot_only_for_what_is_left_of_the_silence() {
        let mut chat = Chat::new(tenant());
        chat.text("oi");
        let two_hours_ago = (chat.now - Duration::hours(2)).timestamp();
        chat.event(Event::BusinessEcho {
            sent_at: two_hours_ago,
        });
        assert!(!chat.text("1").is_empty(), "its silence is long over");

        let ten_minutes_ago = (chat.now - Duration::minutes(10)).timestamp();
        chat.event(Event::BusinessEcho {
            sent_at: ten_minutes_ago,
        });
        chat.event(Event::BusinessEcho {
            sent_at: two_hours_ago,
        });
        chat.now += Duration::minutes(49);
        assert!(chat.text("1").is_empty(), "quiet for the 50 minutes left");
        chat.now += Duration::minutes(2);
        assert!(!chat.text("1").is_empty());

        chat.event(Event::BusinessEcho { sent_at: 0 });
        assert!(chat.text("1").is_empty(), "no timestamp: from now");
    }

    #[test]
    fn a_waiting_conversation_that_times_out_leaves_the_queue() {
        let mut chat = Chat::new(tenant());
        let waiting = ticket(&chat.text("atendente"));
        chat.now += Duration::hours(25);
        let effects = chat.text("oi de novo");
        assert_eq!(
            effects[..2],
            [
                Effect::LeaveQueue {
                    ticket: waiting,
                    taken_at: None
                },
                Effect::ForwardToDesk {
                    text: Some(TIMED_OUT_NOTE.into()),
                    media: None,
                    private: true
                }
            ]
        );
        assert_eq!(chat.state(), "MENU_PRINCIPAL");
    }

    #[test]
    fn a_conversation_an_agent_took_outlives_the_session_timeout() {
        let mut chat = Chat::new(tenant());
        chat.text("atendente");
        chat.event(Event::Desk(DeskAction::Assigned {
            agent: "Ana".into(),
        }));
        chat.now += Duration::days(3);
        let effects = chat.text("voltei, e o meu pedido?");
        assert!(
            matches!(&effects[..], [Effect::ForwardToDesk { text: Some(text), .. }] if text == "voltei, e o meu pedido?"),
            "{effects:?}"
        );
        assert_eq!(chat.state(), "ATENDIMENTO_HUMANO");
        chat.event(Event::Desk(DeskAction::Resolved));
        chat.text("9");
        assert_eq!(chat.state(), "FINALIZADO");
    }

    #[test]
    fn an_assigned_conversation_nobody_closes_or_one_never_assigned_times_out_after_all() {
        let mut chat = Chat::new(tenant());
        chat.text("atendente");
        chat.event(Event::Desk(DeskAction::Assigned {
            agent: "Ana".into(),
        }));
        chat.now += ASSIGNED_CONVERSATION_KEPT + Duration::minutes(1);
        chat.text("oi");
        assert_eq!(chat.state(), "MENU_PRINCIPAL");

        // An agent's last word arriving after the resolution hands the conversation back
        // to a person without assigning it: the usual timeout applies.
        chat.text("atendente");
        chat.event(Event::Desk(DeskAction::Resolved));
        chat.event(reply("Qualquer coisa, estamos aqui."));
        assert_eq!(chat.state(), "ATENDIMENTO_HUMANO");
        chat.now += Duration::hours(25);
        chat.text("oi");
        assert_eq!(chat.state(), "MENU_PRINCIPAL");
    }

    #[test]
    fn sla_timers_alert_once_per_threshold_and_a_breach_raises_the_priority() {
        let mut chat = Chat::new(tenant());
        let waiting = ticket(&chat.text("atendente"));
        let warning = Timer::SlaWarning {
            entered_at: waiting.entered_at,
            waited_minutes: 11,
        };
        let effects = chat.event(Event::Timer(warning.clone()));
        assert!(matches!(
            &effects[..],
            [
                Effect::MarkAlerted { .. },
                Effect::AlertSupervisors {
                    level: SlaLevel::Warning,
                    ..
                }
            ]
        ));
        assert!(chat.event(Event::Timer(warning)).is_empty(), "once");
        let effects = chat.event(Event::Timer(Timer::SlaBreach {
            entered_at: waiting.entered_at,
            waited_minutes: 31,
        }));
        let raised = chat.session.as_ref().unwrap().ticket.clone().unwrap();
        assert_eq!(raised.priority, Priority::Alta);
        assert_eq!(raised.alerted, Some(SlaLevel::Breach));
        assert!(effects.contains(&Effect::LeaveQueue {
            ticket: Ticket {
                alerted: Some(SlaLevel::Warning),
                ..waiting.clone()
            },
            taken_at: None
        }));
        assert!(effects.contains(&Effect::EnqueueHuman {
            ticket: raised.clone()
        }));
        // A timer about an earlier wait, or after the agent took it, does nothing.
        chat.event(Event::Desk(DeskAction::Assigned {
            agent: "Ana".into(),
        }));
        assert!(
            chat.event(Event::Timer(Timer::SlaBreach {
                entered_at: waiting.entered_at,
                waited_minutes: 50
            }))
            .is_empty()
        );
    }

    #[test]
    fn the_opening_follow_up_shows_the_menu_or_queues_who_asked_for_a_person() {
        let mut tenant = tenant();
        tenant.business_hours =
            serde_yaml_ng::from_str(include_str!("../../infra/tenants/demo.yaml"))
                .map(|t: Tenant| t.business_hours)
                .unwrap();
        let night: DateTime<Utc> = "2026-11-24T01:00:00Z".parse().unwrap();
        let opening: DateTime<Utc> = "2026-11-24T11:00:00Z".parse().unwrap();
        let mut chat = Chat::new(tenant.clone());
        chat.now = night;
        chat.clock = night.timestamp();
        let effects = chat.text("oi");
        assert!(effects.contains(&Effect::AwaitOpening { until: opening }));
        chat.now = opening + Duration::minutes(5);
        let effects = chat.event(Event::Timer(Timer::Opening { until: opening }));
        assert_eq!(effects[0], Effect::OpeningDone);
        assert_eq!(texts(&effects), [chat.tenant.menu.body.clone()]);
        assert_eq!(chat.state(), "MENU_PRINCIPAL");
        assert_eq!(
            chat.event(Event::Timer(Timer::Opening { until: opening })),
            [Effect::OpeningDone],
            "once: a repeat only makes sure the list entry is gone"
        );

        let mut chat = Chat::new(tenant.clone());
        chat.now = night;
        chat.clock = night.timestamp();
        chat.text("quero falar com atendente");
        chat.now = opening + Duration::minutes(5);
        let effects = chat.event(Event::Timer(Timer::Opening { until: opening }));
        assert_eq!(ticket(&effects).reason, HandoffReason::Asked);
        assert_eq!(texts(&effects)[0], chat.tenant.texts.handoff);

        // Two days later (a holiday between): outside the window, the template first.
        let mut chat = Chat::new(tenant);
        chat.now = night;
        chat.clock = night.timestamp();
        chat.text("oi");
        chat.now = opening + Duration::hours(48);
        let effects = chat.event(Event::Timer(Timer::Opening { until: opening }));
        assert!(
            matches!(&effects[1], Effect::Send { message: Outbound::Template { name, components, .. } } if name == "retorno_horario_comercial" && components.is_empty())
        );
        assert_eq!(chat.state(), "MENU_PRINCIPAL");
        // The customer who came back by itself is off the list.
        let mut chat = Chat::new(chat.tenant.clone());
        chat.now = night;
        chat.clock = night.timestamp();
        chat.text("oi");
        chat.now = opening + Duration::minutes(1);
        assert!(chat.text("bom dia").contains(&Effect::OpeningDone));
    }

    #[test]
    fn sessions_and_effects_round_trip_as_json() {
        let mut chat = Chat::new(tenant());
        chat.text("oi");
        let effects = chat.tap("vendas");
        let session = chat.session.clone().unwrap();
        let json = serde_json::to_string(&session).unwrap();
        assert_eq!(serde_json::from_str::<Session>(&json).unwrap(), session);
        assert!(json.contains(r#""state":{"name":"flow","department":"vendas","step":"plano"}"#));
        let json = serde_json::to_string(&effects).unwrap();
        assert_eq!(serde_json::from_str::<Vec<Effect>>(&json).unwrap(), effects);
    }
}
