//! The conversation, as a pure function: `step(session, event, now, tenant)` returns the new
//! session and the effects to carry out (messages to send, a place in the human queue, a
//! question for the AI attendant). It does no I/O; the worker persists the session with its
//! effects and runs them. The AI's answer comes back as [`Event::AiAnswered`].

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::ai::{AiConversation, AiOutcome, Answer, Role};
use crate::desk::{Handoff, HandoffReason, MediaRef, SlaLevel, Ticket};
use crate::envelope::{DeskAction, InboundMessage, Timer};
use crate::report::Tally;
use crate::support::text::{normalize, truncate_chars};
use crate::tenant::hours;
use crate::tenant::{Priority, Step, Target, TemplateRef, Tenant};
use crate::whatsapp::outbound::{Outbound, TemplateComponent};

mod ai;
mod api;
mod desk;
mod menu;
mod nps;
mod report;
mod timers;

pub use api::{SendRefusal, api_send};

#[cfg(test)]
pub(crate) mod tests;

/// WhatsApp's customer service window: free-form messages only this long after the
/// customer's last message; templates after.
pub const SERVICE_WINDOW: Duration = Duration::hours(24);
/// How long an assigned conversation outlives the session timeout while the customer is
/// silent.
pub const ASSIGNED_CONVERSATION_KEPT: Duration = Duration::days(7);
/// Longest session the store is given, as JSON: DynamoDB refuses items over 400 KB, and a
/// session must stay writable whatever customers type (4-byte characters and escaped
/// control characters included).
pub const MAX_SESSION_BYTES: usize = 300 * 1024;
/// Longest flow answer kept: a pasted wall of text must not fill the session.
pub const MAX_ANSWER_CHARS: usize = 1000;
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

/// Where a conversation stands at the grain of the conversation list: it moves only when
/// the conversation changes hands (to the queue, to an agent, closed), never from one menu,
/// flow or AI step to the next, so the list's index is not rewritten by the messages in
/// between (see the design notes, "The conversation list").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Greeting, menu, the departments' flows and the AI attendant.
    Bot,
    /// In a department's queue for a person.
    Waiting,
    /// Out of the queue, with a person (taken, or an agent wrote).
    WithAgent,
    /// Resolved by a person (the NPS question included) or left by the customer.
    Closed,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::Bot, Stage::Waiting, Stage::WithAgent, Stage::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Bot => "bot",
            Stage::Waiting => "waiting",
            Stage::WithAgent => "with_agent",
            Stage::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|stage| stage.as_str() == text)
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
    /// A person had this conversation (the queue, or an agent writing in): for the reports,
    /// it was not the bot's alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub handed_over: bool,
    /// An agent answered in this conversation: only the first reply is timed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub agent_answered: bool,
    /// The campaign send this conversation answers: its first message came while the
    /// send's reply pointer was live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<CampaignRef>,
}

/// One campaign send: the campaign and the recipient's number in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignRef {
    pub id: String,
    pub seq: u32,
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
            handed_over: false,
            agent_answered: false,
            campaign: None,
        }
    }

    /// Whether a message sent at `sent_at` starts a new conversation here: the
    /// session is closed or idle past the tenant's timeout (an agent's open conversation
    /// excepted), and the message is not older than one already handled.
    fn restarts(&self, sent_at: i64, now: DateTime<Utc>, tenant: &Tenant) -> bool {
        if sent_at < self.last_message_at {
            return false;
        }
        let idle = now - self.last_activity_at;
        let timeout = Duration::minutes(i64::from(tenant.session_timeout_minutes));
        // A conversation an agent was assigned is theirs until they resolve it: the bot must
        // not greet over an open desk conversation when the customer is back days later.
        // Up to a week: a conversation nobody closes must not silence the bot for good.
        let assigned = matches!(self.state, State::Human { .. })
            && self.ticket.is_none()
            && self.agent.is_some()
            && tenant.desk.chatwoot.is_some()
            && idle <= ASSIGNED_CONVERSATION_KEPT;
        self.state == State::Closed || (idle > timeout && !assigned)
    }

    /// The conversation list's [`Stage`].
    pub fn stage(&self) -> Stage {
        match self.state {
            State::Start | State::Menu | State::Flow { .. } | State::Ai => Stage::Bot,
            State::Human { .. } if self.ticket.is_some() => Stage::Waiting,
            State::Human { .. } => Stage::WithAgent,
            State::Nps | State::Closed => Stage::Closed,
        }
    }

    /// The department the conversation list files it under: the one that has it once it is
    /// handed over. A flow's department is left out, so choosing one from the menu does not
    /// touch the list's index.
    pub fn listed_department(&self) -> Option<&str> {
        match &self.state {
            State::Human { department } => Some(department),
            _ if self.stage() == Stage::Bot => None,
            _ => self.department.as_deref(),
        }
    }

    /// A closed conversation keeps no more of what the customer said than it needs: the flow
    /// answers and the AI history go (the spend stays, for the reports).
    fn forget_what_was_said(&mut self) {
        self.answers.clear();
        if let Some(ai) = &mut self.ai {
            ai.history.clear();
            ai.handoff_reason = None;
        }
    }

    /// Keeps the session's JSON within `max_bytes`: the oldest AI history goes first (the
    /// newest is kept), then the longest flow answers are shortened.
    pub fn fit(&mut self, max_bytes: usize) {
        let size = |session: &Session| serde_json::to_vec(session).map_or(0, |json| json.len());
        let mut current = size(self);
        while current > max_bytes {
            if let Some(ai) = self.ai.as_mut().filter(|ai| !ai.history.is_empty()) {
                // Whole messages, oldest first, until enough is gone; the history still
                // opens with the customer's turn.
                let mut freed = 0;
                let mut drop = 0;
                while drop < ai.history.len() && current.saturating_sub(freed) > max_bytes {
                    freed += serde_json::to_vec(&ai.history[drop]).map_or(0, |m| m.len()) + 1;
                    drop += 1;
                }
                while ai
                    .history
                    .get(drop)
                    .is_some_and(|m| m.role == crate::ai::Role::Assistant)
                {
                    drop += 1;
                }
                ai.history.drain(..drop);
            } else if let Some(longest) = self
                .answers
                .values_mut()
                .filter(|answer| !answer.is_empty())
                .max_by_key(|answer| answer.len())
            {
                let half = longest.chars().count() / 2;
                *longest = truncate_chars(longest, half).to_owned();
            } else if self.profile_name.take().is_none() {
                // Nothing a customer typed is left to trim.
                break;
            }
            current = size(self);
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
        /// The customer is on the tenant's suppression list. The worker looks only when the
        /// message holds an opt-out or opt-in word ([`opt_word`]); `false` otherwise.
        suppressed: bool,
        /// The campaign send whose reply pointer the worker found: read only for a message
        /// that opens a conversation ([`opens_conversation`]), which then names it.
        campaign: Option<CampaignRef>,
    },
    /// A message that arrived too late to answer (`STALE_AFTER_SECONDS` after it was sent:
    /// a backlog after an outage, a redrive from the DLQ). The bot says nothing; a person
    /// who has the conversation still sees it.
    LateMessage {
        input: Input,
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
            suppressed: false,
            campaign: None,
        }
    }

    /// The message, from a customer the suppression list holds (or not).
    pub fn suppressed(mut self, on_the_list: bool) -> Self {
        if let Event::Message { suppressed, .. } = &mut self {
            *suppressed = on_the_list;
        }
        self
    }

    /// The message, answering the campaign send `send` when the worker found its pointer.
    pub fn answering(mut self, send: Option<CampaignRef>) -> Self {
        if let Event::Message { campaign, .. } = &mut self {
            *campaign = send;
        }
        self
    }

    /// The message as one that arrived too late to answer.
    pub fn late_message(message: &InboundMessage) -> Self {
        Event::LateMessage {
            input: Input::from_message(message),
            media: media_of(message),
        }
    }
}

/// Meta's media object (`{"image": {"id", "mime_type", ...}}`) of a media message.
pub fn media_of(message: &InboundMessage) -> Option<MediaRef> {
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
    /// A private note in a named desk conversation, which need not be the customer's
    /// current one: why a desk event from it was not acted on. The worker adds it to a
    /// refused desk event's record; the engine never asks for it.
    NoteInDesk {
        conversation_id: u64,
        text: String,
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
    /// Put the step's events on the hooks queue for the tenant's subscribers: added by the
    /// worker as the record's last effect when a subscription wants one of them; the engine
    /// never asks for it.
    Publish {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        facts: Vec<crate::hooks::Fact>,
    },
    /// Ask the AI attendant for the next answer to the session's AI history; the shell
    /// feeds the answer back as [`Event::AiAnswered`]. Always the last effect.
    AskAi,
    /// Put the customer on the tenant's suppression list (an opt-out word): no more
    /// campaigns. The worker writes it with the event's commit.
    OptOut,
    /// Take the customer off the suppression list (an opt-in word), with the commit too.
    OptIn,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub session: Session,
    pub effects: Vec<Effect>,
    /// What the step adds to the tenant's day (all zero for most steps).
    pub report: Tally,
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

/// Whether a message opens a conversation: the customer's first, or one after the session
/// closed or timed out. Only then does the worker look for a campaign send it answers.
pub fn opens_conversation(
    session: Option<&Session>,
    input: &Input,
    sent_at: i64,
    now: DateTime<Utc>,
    tenant: &Tenant,
) -> bool {
    !matches!(input, Input::Ignored(_))
        && session.is_none_or(|session| session.restarts(sent_at, now, tenant))
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
    let before = session.as_ref().map(report::Before::of);
    let opens = matches!(event, Event::Message { input, sent_at, .. }
        if opens_conversation(session.as_ref(), input, *sent_at, now, tenant));
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
            suppressed,
            campaign,
        } => {
            turn.message(
                input,
                *sent_at,
                profile_name.as_deref(),
                media.as_ref(),
                *suppressed,
            );
            if opens {
                turn.session.campaign = campaign.clone();
            }
        }
        Event::LateMessage { input, media } => turn.late(input, media.as_ref()),
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
    let report = turn.tally(before, event);
    let mut session = turn.session;
    if matches!(session.state, State::Nps | State::Closed) {
        session.forget_what_was_said();
    }
    session.fit(MAX_SESSION_BYTES);
    Outcome {
        session,
        effects: turn.effects,
        report,
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
        suppressed: bool,
    ) {
        if matches!(input, Input::Ignored(_)) {
            return;
        }
        if sent_at < self.session.last_message_at {
            // Older than one already handled: never an answer, but a person may read it.
            return self.late(input, media);
        }
        let restarts = self.session.restarts(sent_at, self.now, self.tenant);
        if restarts {
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
        if self.opt(input, suppressed) {
            return;
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

    /// Opting out (or back in) comes before everything else, in any state, open or closed:
    /// answered once, since a repeated opt-out of a customer already on the list says
    /// nothing. An opt-in word from a customer not on the list is no opt-in ("voltar" may
    /// be an answer): the conversation reads it as usual. Returns whether it was handled.
    fn opt(&mut self, input: &Input, suppressed: bool) -> bool {
        let tenant = self.tenant;
        let settings = &tenant.campaigns;
        match (opt_word(tenant, input), suppressed) {
            (Some(OptWord::Out), false) => {
                self.effects.push(Effect::OptOut);
                self.send(Outbound::text(&settings.opt_out_reply));
                true
            }
            (Some(OptWord::Out), true) => true,
            (Some(OptWord::In), true) => {
                self.effects.push(Effect::OptIn);
                self.send(Outbound::text(&settings.opt_in_reply));
                true
            }
            (Some(OptWord::In), false) | (None, _) => false,
        }
    }

    fn escalates(&self, text: &str) -> bool {
        contains_word(&self.tenant.escalation_words, text)
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
}

/// A word that changes whether the customer receives campaigns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptWord {
    Out,
    In,
}

/// The tenant's opt-out or opt-in word a typed message is (opt-out first): the whole
/// message, ignoring case, accents and punctuation. Not a word inside a sentence, unlike the
/// escalation words: "quero sair da fila" leaves the queue, it does not opt out. Menu choices
/// are answers, never opt words: a menu may well offer "Sair" or "Voltar".
pub fn opt_word(tenant: &Tenant, input: &Input) -> Option<OptWord> {
    let Input::Text(text) = input else {
        return None;
    };
    let settings = &tenant.campaigns;
    let typed = normalize(text);
    let is_one_of = |words: &[String]| words.iter().any(|word| normalize(word) == typed);
    if is_one_of(&settings.opt_out_words) {
        Some(OptWord::Out)
    } else if is_one_of(&settings.opt_in_words) {
        Some(OptWord::In)
    } else {
        None
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
