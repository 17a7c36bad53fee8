//! What a step adds to the tenant's day: each transition of a conversation is counted by
//! the step that makes it, so it is counted once (the worker commits the counters with the
//! event).

use super::*;
use crate::report::Tally;

/// What the tally compares with: the conversation as it was before the step.
pub(super) struct Before {
    started_at: DateTime<Utc>,
    state: State,
    nps_score: Option<u8>,
}

impl Before {
    pub(super) fn of(session: &Session) -> Self {
        Self {
            started_at: session.started_at,
            state: session.state.clone(),
            nps_score: session.nps_score,
        }
    }
}

fn ended(state: &State) -> bool {
    matches!(state, State::Nps | State::Closed)
}

fn with_a_person(state: &State) -> bool {
    matches!(state, State::Human { .. })
}

impl Turn<'_> {
    /// The step's counters; marks on the session what must be counted only once per
    /// conversation (handed over, the agent's first reply).
    pub(super) fn tally(&mut self, before: Option<Before>, event: &Event) -> Tally {
        let mut tally = Tally::default();
        // A conversation the step started over is new: nothing of the old one carries.
        let before = before.filter(|b| b.started_at == self.session.started_at);
        let was = |test: fn(&State) -> bool| before.as_ref().is_some_and(|b| test(&b.state));

        if let (None, Event::Message { sent_at, .. }) = (&before, event) {
            tally.started += 1;
            if self
                .effects
                .iter()
                .any(|e| matches!(e, Effect::Send { .. }))
            {
                let written = DateTime::from_timestamp(*sent_at, 0)
                    .filter(|_| *sent_at > 0)
                    .map_or(self.now, |at| at.min(self.now));
                tally
                    .bot_first_response
                    .record_without_max((self.now - written).num_seconds());
            }
        }

        let session = &mut self.session;
        if with_a_person(&session.state) && !session.handed_over {
            session.handed_over = true;
            tally.handed_over += 1;
        }
        if ended(&session.state) && !was(ended) && !session.handed_over {
            tally.bot_only += 1;
        }
        match event {
            Event::Desk(DeskAction::Resolved) if was(with_a_person) && ended(&session.state) => {
                tally.resolved += 1;
            }
            Event::Desk(DeskAction::AgentReply { .. }) if !session.agent_answered => {
                session.agent_answered = true;
                tally
                    .agent_first_response
                    .record((self.now - session.started_at).num_seconds());
            }
            Event::Message { .. } => {
                let answered = before
                    .as_ref()
                    .is_some_and(|b| b.state == State::Nps && b.nps_score.is_none());
                if let (true, Some(score)) = (answered, session.nps_score) {
                    tally.nps(score);
                }
            }
            Event::AiAnswered(answer) if was(|state| *state == State::Ai) => {
                tally.ai_turns += 1;
                let usage = &answer.usage;
                tally.ai_requests += u64::from(usage.requests);
                tally.ai_input_tokens += usage.input_tokens;
                tally.ai_cache_write_tokens += usage.cache_creation_input_tokens;
                tally.ai_cache_read_tokens += usage.cache_read_input_tokens;
                tally.ai_output_tokens += usage.output_tokens;
                let model = self.tenant.ai.model.as_deref().unwrap_or_default();
                match crate::ai::list_price_micro_usd(model, usage) {
                    Some(cost) => tally.ai_cost_micro_usd += cost,
                    None => tally.ai_unpriced_turns += 1,
                }
            }
            _ => {}
        }
        for effect in &self.effects {
            match effect {
                Effect::LeaveQueue {
                    ticket,
                    taken_at: Some(taken),
                } => tally
                    .queue_wait
                    .record((*taken - ticket.entered_at).num_seconds()),
                Effect::AlertSupervisors { level, .. } => match level {
                    SlaLevel::Warning => tally.sla_warnings += 1,
                    SlaLevel::Breach => tally.sla_breaches += 1,
                },
                _ => {}
            }
        }
        tally
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ai::{Answer, Usage};

    /// A conversation on the demo tenant (always open) that keeps what each step counted.
    struct Day {
        tenant: Tenant,
        session: Option<Session>,
        now: DateTime<Utc>,
        total: Tally,
    }

    impl Day {
        fn new() -> Self {
            Self {
                tenant: crate::tenant::demo_always_open(),
                session: None,
                now: "2026-11-23T17:00:00Z".parse().unwrap(),
                total: Tally::default(),
            }
        }

        /// One event `seconds` after the last; what it counted.
        fn after(&mut self, seconds: i64, event: Event) -> Tally {
            self.now += Duration::seconds(seconds);
            let outcome = step(
                self.session.take(),
                "106540352242922",
                "5511987654321",
                &event,
                self.now,
                &self.tenant,
            );
            self.session = Some(outcome.session);
            self.total.add(&outcome.report);
            outcome.report
        }

        /// The customer writes `seconds` after the last event, sent a second before the
        /// worker handles it.
        fn says(&mut self, seconds: i64, input: Input) -> Tally {
            let sent_at = (self.now + Duration::seconds(seconds - 1)).timestamp();
            self.after(
                seconds,
                Event::Message {
                    input,
                    sent_at,
                    profile_name: None,
                    media: None,
                    suppressed: false,
                    campaign: None,
                },
            )
        }

        fn text(&mut self, text: &str) -> Tally {
            self.says(5, Input::Text(text.into()))
        }

        fn tap(&mut self, id: &str) -> Tally {
            self.says(
                5,
                Input::Choice {
                    id: id.into(),
                    title: String::new(),
                },
            )
        }

        fn state(&self) -> String {
            self.session.as_ref().unwrap().state.business_name()
        }
    }

    #[test]
    fn a_conversation_the_bot_closes_counts_its_start_its_end_and_the_nps() {
        let mut day = Day::new();
        let started = day.text("oi");
        assert_eq!((started.started, started.bot_first_response.count), (1, 1));
        assert_eq!(started.bot_first_response.sum_seconds, 1);
        // Menu choices and flow answers count nothing: they write no counter.
        assert!(day.tap("suporte").is_empty());
        assert!(day.tap("lenta").is_empty());
        let closed = day.tap("resolveu");
        assert_eq!(day.state(), "PESQUISA_NPS");
        assert_eq!(closed.bot_only, 1);
        let answered = day.text("9");
        assert_eq!(day.state(), "FINALIZADO");
        assert_eq!((answered.nps_answers, answered.nps_sum), (1, 9));
        assert_eq!(answered.nps_scores[9], 1);
        // Nothing after the answer counts it again.
        assert_eq!(day.total.nps_answers, 1);
        assert_eq!(day.total.bot_only, 1);
        assert_eq!(day.total.handed_over, 0);
        // The next message starts a new conversation.
        assert_eq!(day.text("oi de novo").started, 1);
        assert_eq!(day.total.started, 2);
    }

    #[test]
    fn a_handed_over_conversation_counts_the_wait_the_first_reply_and_the_resolution() {
        let mut day = Day::new();
        let asked = day.text("quero falar com um atendente");
        assert_eq!(day.state(), "ATENDIMENTO_HUMANO");
        assert_eq!((asked.started, asked.handed_over), (1, 1));
        let entered = day.session.as_ref().unwrap().ticket.clone().unwrap();
        let warned = day.after(
            600,
            Event::Timer(Timer::SlaWarning {
                entered_at: entered.entered_at,
                waited_minutes: 10,
            }),
        );
        assert_eq!((warned.sla_warnings, warned.sla_breaches), (1, 0));
        let breached = day.after(
            1200,
            Event::Timer(Timer::SlaBreach {
                entered_at: entered.entered_at,
                waited_minutes: 30,
            }),
        );
        assert_eq!(breached.sla_breaches, 1);
        // Taken 30 minutes after entering the queue.
        let taken = day.after(
            0,
            Event::Desk(DeskAction::Assigned {
                agent: "Ana".into(),
            }),
        );
        assert_eq!(taken.queue_wait.count, 1);
        assert_eq!(taken.queue_wait.sum_seconds, 1800);
        assert_eq!(taken.queue_wait.max_seconds, 1800);
        assert_eq!(taken.handed_over, 0);
        let reply = || {
            Event::Desk(DeskAction::AgentReply {
                text: Some("Olá!".into()),
                attachments: Vec::new(),
            })
        };
        let first = day.after(60, reply());
        // From the customer's first message: 5 s into the conversation it asked, then
        // 1,800 s in the queue and 60 s to the reply.
        assert_eq!(first.agent_first_response.count, 1);
        assert_eq!(first.agent_first_response.sum_seconds, 1860);
        assert!(
            day.after(60, reply()).is_empty(),
            "only the first reply is timed"
        );
        assert!(day.text("obrigada").is_empty());
        let resolved = day.after(60, Event::Desk(DeskAction::Resolved));
        assert_eq!((resolved.resolved, resolved.bot_only), (1, 0));
        assert_eq!(day.text("7").nps_scores[7], 1);
        assert_eq!(day.total.handed_over, 1);
        assert_eq!(day.total.started, 1);
    }

    #[test]
    fn an_agent_answering_takes_the_conversation_from_the_queue() {
        let mut day = Day::new();
        day.text("atendente");
        let answered = day.after(
            90,
            Event::Desk(DeskAction::AgentReply {
                text: Some("Oi".into()),
                attachments: Vec::new(),
            }),
        );
        assert_eq!(answered.queue_wait.sum_seconds, 90);
        assert_eq!(answered.agent_first_response.sum_seconds, 90);
    }

    #[test]
    fn a_conversation_started_over_while_waiting_counts_as_a_new_one() {
        let mut day = Day::new();
        day.text("atendente");
        // Past the session timeout the next message starts over, and asks again.
        let timeout = i64::from(day.tenant.session_timeout_minutes) * 60;
        let again = day.says(timeout + 60, Input::Text("atendente".into()));
        assert_eq!((again.started, again.handed_over), (1, 1));
        assert_eq!(day.total.started, 2);
        assert_eq!(day.total.handed_over, 2);
    }

    #[test]
    fn an_ai_turn_counts_its_tokens_and_cost() {
        let mut day = Day::new();
        day.text("oi");
        day.tap("duvidas");
        assert!(
            day.text("Quanto custa?").is_empty(),
            "asking counts nothing"
        );
        let answer = |usage| {
            Event::AiAnswered(Answer {
                outcome: crate::ai::AiOutcome::Reply {
                    text: "R$ 89,90.".into(),
                },
                usage,
            })
        };
        let usage = Usage {
            requests: 2,
            input_tokens: 1000,
            output_tokens: 100,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 2000,
        };
        let turn = day.after(2, answer(usage));
        assert_eq!(turn.ai_turns, 1);
        assert_eq!((turn.ai_requests, turn.ai_input_tokens), (2, 1000));
        assert_eq!(
            (turn.ai_cache_read_tokens, turn.ai_output_tokens),
            (2000, 100)
        );
        // claude-sonnet-4-5: (1000 + 2000 x 0.1) x 3 + 100 x 15 millionths of a dollar.
        assert_eq!(turn.ai_cost_micro_usd, 3600 + 1500);
        day.tenant.ai.model = Some("a-model-without-a-price".into());
        day.text("E a instalação?");
        let unpriced = day.after(2, answer(usage));
        assert_eq!(
            (unpriced.ai_unpriced_turns, unpriced.ai_cost_micro_usd),
            (1, 0)
        );
        // An answer that arrives after the conversation moved on counts nothing.
        day.text("atendente");
        assert!(day.after(2, answer(usage)).is_empty());
    }
}
