//! The conversation, as a pure function: `step(session, event, now, tenant)` returns the new
//! session and the effects to carry out (messages to send, a place in the human queue, a
//! question for the AI attendant). It does no I/O; the worker persists the session with its
//! effects and runs them. The AI's answer comes back as [`Event::AiAnswered`].

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::ai::{AiConversation, AiOutcome, Answer, Role};
use crate::envelope::InboundMessage;
use crate::hours;
use crate::outbound::Outbound;
use crate::tenant::{Step, Target, Tenant, normalize};

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
        }
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
    },
    /// The agent resolved the conversation on the desk.
    AgentResolved,
    /// The AI attendant's answer to the question of [`Effect::AskAi`].
    AiAnswered(Answer),
}

impl Event {
    pub fn from_message(message: &InboundMessage) -> Self {
        Event::Message {
            input: Input::from_message(message),
            sent_at: message.timestamp,
            profile_name: message.profile_name.clone(),
        }
    }
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
    EnqueueHuman {
        department: String,
        reason: HandoffReason,
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
        } => turn.message(input, *sent_at, profile_name.as_deref()),
        Event::AgentResolved => {
            if matches!(turn.session.state, State::Human { .. }) {
                turn.close();
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
    fn message(&mut self, input: &Input, sent_at: i64, profile_name: Option<&str>) {
        if sent_at < self.session.last_message_at || matches!(input, Input::Ignored(_)) {
            return;
        }
        let idle = self.now - self.session.last_activity_at;
        let timeout = Duration::minutes(i64::from(self.tenant.session_timeout_minutes));
        if self.session.state == State::Closed || idle > timeout {
            self.session = Session {
                off_hours_until: self.session.off_hours_until,
                ..Session::new(
                    &self.session.phone_number_id,
                    &self.session.customer,
                    self.now,
                )
            };
        }
        self.session.last_activity_at = self.now;
        self.session.last_message_at = sent_at;

        if let State::Human { .. } = self.session.state {
            return; // an agent owns the conversation
        }
        let escalates = matches!(input, Input::Text(text) if self.escalates(text));
        if self.session.state.is_bot() && !hours::is_open(self.tenant, self.now) {
            self.off_hours(escalates);
            return;
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
        let text = format!(" {} ", normalize(text));
        self.tenant
            .escalation_words
            .iter()
            .any(|word| text.contains(&format!(" {} ", normalize(word))))
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

    fn enqueue(&mut self, reason: HandoffReason) {
        let department = self
            .session
            .department
            .clone()
            .unwrap_or_else(|| default_department(self.tenant).to_owned());
        self.session.department = Some(department.clone());
        self.session.state = State::Human {
            department: department.clone(),
        };
        self.session.attempts = 0;
        self.effects
            .push(Effect::EnqueueHuman { department, reason });
    }

    fn close(&mut self) {
        self.session.attempts = 0;
        if self.tenant.nps.enabled {
            self.session.state = State::Nps;
            self.send(Outbound::text(&self.tenant.nps.question));
        } else {
            self.session.state = State::Closed;
            self.send(Outbound::text(&self.tenant.nps.goodbye));
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
                clock: 1_795_000_000,
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
            Effect::EnqueueHuman { department, reason } => Some((department.clone(), *reason)),
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
        assert!(chat.text("alguém aí?").is_empty());
        assert!(chat.text("cancelar").is_empty(), "no second handoff");
        let effects = chat.event(Event::AgentResolved);
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
        chat.event(Event::AgentResolved);
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
