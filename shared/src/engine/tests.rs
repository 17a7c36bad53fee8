//! The conversation's behaviour, step by step, on the demo tenant.

use super::*;

/// The demo tenant, always open. [`menu_only`] for the menu path without the attendant.
pub(crate) fn tenant() -> Tenant {
    crate::tenant::demo_always_open()
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
            suppressed: false,
            campaign: None,
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
        suppressed: false,
        campaign: None,
    });
    assert!(effects.is_empty());
    assert_eq!(chat.session, before);
}

#[test]
fn late_messages_reach_a_person_who_has_the_conversation_and_never_the_bot() {
    let mut chat = Chat::new(tenant());
    chat.text("oi");
    let late = |text: &str| Event::LateMessage {
        input: Input::Text(text.into()),
        media: None,
    };
    // With the bot: nothing, whether too late or older than the last message.
    let before = chat.session.clone();
    assert!(chat.event(late("suporte")).is_empty());
    assert_eq!(chat.session, before);

    chat.text("atendente");
    let forwarded = |text: &str| {
        vec![Effect::ForwardToDesk {
            text: Some(text.into()),
            media: None,
            private: false,
        }]
    };
    let before = chat.session.clone();
    // A give-up word in a late message neither answers nor leaves the queue.
    assert_eq!(
        chat.event(late("quero desistir")),
        forwarded("quero desistir")
    );
    assert_eq!(chat.session, before, "a late message changes no session");
    let older = chat.event(Event::Message {
        input: Input::Text("o pedido é 4711".into()),
        sent_at: chat.clock - 60,
        profile_name: None,
        media: None,
        suppressed: false,
        campaign: None,
    });
    assert_eq!(older, forwarded("o pedido é 4711"));
    assert_eq!(chat.session, before);
    // Without a desk there is no one to show it to.
    chat.tenant.desk.chatwoot = None;
    assert!(chat.event(late("alô")).is_empty());
}

#[test]
fn off_hours_reply_goes_once_per_closed_period_and_keeps_the_conversation() {
    let mut tenant = tenant();
    tenant.business_hours = crate::tenant::demo().business_hours;
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
            ..crate::ai::Usage::default()
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
        suppressed: false,
        campaign: None,
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
        attachments: vec![crate::envelope::Attachment {
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
            message: Outbound::Template {
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
    tenant.business_hours = crate::tenant::demo().business_hours;
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

#[test]
fn a_closed_conversation_forgets_the_flow_answers_and_the_ai_history() {
    // A flow's answers (a CEP here) reach the agent, then go when the agent resolves.
    let mut chat = Chat::new(tenant());
    chat.text("oi");
    chat.text("2");
    chat.text("600 mega");
    chat.text("01310-100");
    assert_eq!(chat.session.as_ref().unwrap().answers.len(), 2);
    chat.event(Event::Desk(DeskAction::Resolved));
    assert_eq!(chat.state(), "PESQUISA_NPS");
    assert!(chat.session.as_ref().unwrap().answers.is_empty());
    chat.text("10");
    assert_eq!(chat.state(), "FINALIZADO");
    assert!(chat.session.as_ref().unwrap().answers.is_empty());

    // The attendant's history goes too; its spend stays for the reports.
    let mut chat = Chat::new(tenant());
    chat.text("oi");
    chat.tap("duvidas");
    chat.text("Quanto custa?");
    chat.event(answered("R$ 89,90.", 700));
    chat.text("atendente");
    assert!(
        !chat
            .session
            .as_ref()
            .unwrap()
            .ai
            .as_ref()
            .unwrap()
            .history
            .is_empty()
    );
    chat.event(Event::Desk(DeskAction::Resolved));
    let ai = chat.session.as_ref().unwrap().ai.clone().unwrap();
    assert!(ai.history.is_empty());
    assert_eq!(ai.handoff_reason, None);
    assert_eq!((ai.answers, ai.usage.input_tokens), (1, 700));

    // A customer who gives up in the queue closes the conversation too.
    let mut chat = Chat::new(tenant());
    chat.text("oi");
    chat.text("2");
    chat.text("600 mega");
    chat.text("01310-100");
    chat.text("quero desistir");
    assert_eq!(chat.state(), "FINALIZADO");
    assert!(chat.session.as_ref().unwrap().answers.is_empty());
}

#[test]
fn the_session_stays_storable_whatever_the_customer_types() {
    // 4-byte characters and control characters (6 bytes each once escaped in JSON).
    let heavy = |n: usize| "𝄞\u{1}".repeat(n);
    let mut tenant = tenant();
    tenant.ai.history_messages = 50;
    tenant.ai.max_turns = 100;
    tenant.ai.max_tokens_per_conversation = u32::MAX;
    let mut chat = Chat::new(tenant);
    chat.text("oi");
    chat.tap("duvidas");
    for turn in 0..40 {
        assert_eq!(
            chat.text(&format!("{turn} {}", heavy(2_000))),
            [Effect::AskAi]
        );
        chat.event(answered(&format!("{turn} {}", heavy(2_000)), 1));
    }
    let session = chat.session.clone().unwrap();
    let size = serde_json::to_vec(&session).unwrap().len();
    assert!(size <= MAX_SESSION_BYTES, "{size} bytes");
    assert!(size < 350 * 1024, "{size} bytes");
    // The newest history is what is kept, still opening with the customer's turn.
    let history = &session.ai.as_ref().unwrap().history;
    assert!(
        history.len() > 10 && history.len() < 50,
        "{}",
        history.len()
    );
    assert_eq!(history[0].role, Role::User);
    assert!(history.last().unwrap().text.starts_with("39 "));
    assert_eq!(history.last().unwrap().role, Role::Assistant);

    // A flow answer is cut to its limit; the session keeps it.
    let mut chat = Chat::new(crate::tenant::demo_always_open());
    chat.text("oi");
    chat.text("2");
    chat.text("600 mega");
    chat.text(&heavy(100_000));
    let session = chat.session.clone().unwrap();
    assert_eq!(session.answers["cep"].chars().count(), MAX_ANSWER_CHARS);
    assert!(serde_json::to_vec(&session).unwrap().len() <= MAX_SESSION_BYTES);
}

#[test]
fn fitting_a_session_shortens_the_answers_once_no_history_is_left() {
    let mut session = Session::new("106540352242922", "5511987654321", monday_afternoon());
    for step in ["a", "b", "c", "d"] {
        session.answers.insert(step.into(), "\u{1}".repeat(20_000));
    }
    session.fit(100 * 1024);
    let size = serde_json::to_vec(&session).unwrap().len();
    assert!(size <= 100 * 1024, "{size} bytes");
    assert_eq!(session.answers.len(), 4);
    assert!(session.answers.values().all(|a| !a.is_empty()));
}

/// What the conversation list's index holds of a session: the stage and the listed
/// department move only when the conversation changes hands, never at a menu or flow step.
#[test]
fn the_listed_stage_and_department_move_only_when_the_conversation_changes_hands() {
    let mut chat = Chat::new(menu_only());
    let listed = |chat: &Chat| {
        let session = chat.session.as_ref().unwrap();
        (
            session.stage(),
            session.listed_department().map(str::to_owned),
        )
    };
    let bot = (Stage::Bot, None);
    chat.text("oi");
    assert_eq!(listed(&chat), bot);
    chat.tap("suporte");
    assert_eq!(
        chat.session.as_ref().unwrap().department.as_deref(),
        Some("suporte")
    );
    assert_eq!(listed(&chat), bot, "a flow's department is not listed");
    chat.tap("lenta");
    assert_eq!(listed(&chat), bot);
    chat.text("quero falar com atendente");
    let waiting = (Stage::Waiting, Some("suporte".to_owned()));
    assert_eq!(listed(&chat), waiting);
    chat.text("alguém aí?");
    assert_eq!(listed(&chat), waiting);
    chat.event(Event::Desk(DeskAction::Assigned {
        agent: "Ana".into(),
    }));
    assert_eq!(
        listed(&chat),
        (Stage::WithAgent, Some("suporte".to_owned()))
    );
    chat.event(Event::Desk(DeskAction::Resolved));
    assert_eq!(chat.state(), "PESQUISA_NPS");
    assert_eq!(listed(&chat), (Stage::Closed, Some("suporte".to_owned())));
    chat.text("10");
    assert_eq!(chat.state(), "FINALIZADO");
    assert_eq!(listed(&chat), (Stage::Closed, Some("suporte".to_owned())));
}

fn opt_effects(effects: &[Effect]) -> Vec<&Effect> {
    effects
        .iter()
        .filter(|e| matches!(e, Effect::OptOut | Effect::OptIn))
        .collect()
}

#[test]
fn opt_out_words_come_first_in_any_state_ignoring_case_and_accents() {
    let reply = tenant().campaigns.opt_out_reply;
    // A new customer, the menu, a flow, the human queue: the same answer, nothing else.
    let setups: [&[&str]; 4] = [&[], &["oi"], &["oi", "suporte"], &["oi", "atendente"]];
    for (setup, phrase) in setups
        .iter()
        .zip(["SAIR", "parar", "Stop!", "nao QUERO receber"])
    {
        let mut chat = Chat::new(tenant());
        for step in *setup {
            chat.text(step);
        }
        let state = chat.session.as_ref().map(|s| s.state.clone());
        let effects = chat.text(phrase);
        assert_eq!(
            opt_effects(&effects),
            [&Effect::OptOut],
            "{setup:?} {phrase}"
        );
        assert_eq!(
            texts(&effects),
            std::slice::from_ref(&reply),
            "{setup:?} {phrase}"
        );
        assert_eq!(effects.len(), 2, "nothing else: {effects:?}");
        if let Some(state) = state {
            assert_eq!(
                chat.session.as_ref().unwrap().state,
                state,
                "the state stays"
            );
        }
    }
    // Whole words only.
    let mut chat = Chat::new(menu_only());
    chat.text("oi");
    assert!(opt_effects(&chat.text("saira amanha")).is_empty());
}

#[test]
fn opt_out_is_answered_even_while_closed_or_quiet() {
    let mut chat = Chat::new(crate::tenant::demo());
    // Sunday: closed.
    chat.now = "2026-11-22T17:00:00Z".parse().unwrap();
    let effects = chat.text("sair");
    assert_eq!(opt_effects(&effects), [&Effect::OptOut]);
    assert_eq!(
        texts(&effects),
        [chat.tenant.campaigns.opt_out_reply.clone()]
    );

    let mut chat = Chat::new(tenant());
    chat.text("oi");
    chat.event(Event::BusinessEcho {
        sent_at: chat.clock,
    });
    assert_eq!(opt_effects(&chat.text("sair")), [&Effect::OptOut]);
}

#[test]
fn a_repeated_opt_out_of_a_customer_on_the_list_is_not_answered_again() {
    let mut chat = Chat::new(tenant());
    chat.text("oi");
    chat.clock += 10;
    let effects = chat.event(
        Event::Message {
            input: Input::Text("SAIR".into()),
            sent_at: chat.clock,
            profile_name: None,
            media: None,
            suppressed: false,
            campaign: None,
        }
        .suppressed(true),
    );
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(chat.state(), "MENU_PRINCIPAL");
}

#[test]
fn opt_in_words_take_a_listed_customer_off_and_are_plain_text_otherwise() {
    let mut chat = Chat::new(tenant());
    chat.text("oi");
    chat.clock += 10;
    let effects = chat.event(
        Event::Message {
            input: Input::Text("Voltar".into()),
            sent_at: chat.clock,
            profile_name: None,
            media: None,
            suppressed: false,
            campaign: None,
        }
        .suppressed(true),
    );
    assert_eq!(opt_effects(&effects), [&Effect::OptIn]);
    assert_eq!(
        texts(&effects),
        [chat.tenant.campaigns.opt_in_reply.clone()]
    );

    // Not on the list: "voltar" is whatever the conversation makes of it.
    let mut chat = Chat::new(menu_only());
    chat.text("oi");
    let effects = chat.text("voltar");
    assert!(opt_effects(&effects).is_empty());
    assert_eq!(texts(&effects), [chat.tenant.texts.not_understood.clone()]);
}

#[test]
fn menu_choices_are_never_opt_words() {
    let tenant = tenant();
    let choice = Input::Choice {
        id: "sair".into(),
        title: "Sair".into(),
    };
    assert_eq!(opt_word(&tenant, &choice), None);
    assert_eq!(
        opt_word(&tenant, &Input::Text("PARAR!".into())),
        Some(OptWord::Out)
    );
    assert_eq!(
        opt_word(&tenant, &Input::Text("Não quero   receber.".into())),
        Some(OptWord::Out)
    );
    assert_eq!(
        opt_word(&tenant, &Input::Text(" voltar".into())),
        Some(OptWord::In)
    );
    // A word inside a sentence is the conversation's, not an opt-out.
    assert_eq!(
        opt_word(&tenant, &Input::Text("quero sair da fila".into())),
        None
    );
    assert_eq!(
        opt_word(&tenant, &Input::Text("quero voltar ao menu".into())),
        None
    );
    assert_eq!(opt_word(&tenant, &Input::Text("oi".into())), None);
}

#[test]
fn a_conversation_opened_by_a_campaign_reply_names_the_send() {
    let send = CampaignRef {
        id: "cmp_promo".into(),
        seq: 7,
    };
    let mut chat = Chat::new(menu_only());
    assert!(opens_conversation(
        None,
        &Input::Text("oi".into()),
        chat.clock,
        chat.now,
        &chat.tenant
    ));
    chat.clock += 10;
    chat.event(
        Event::Message {
            input: Input::Text("quero saber mais".into()),
            sent_at: chat.clock,
            profile_name: None,
            media: None,
            suppressed: false,
            campaign: None,
        }
        .answering(Some(send.clone())),
    );
    assert_eq!(chat.session.as_ref().unwrap().campaign, Some(send.clone()));

    // The conversation goes on: later messages keep it and never replace it.
    chat.text("1");
    let session = chat.session.as_ref().unwrap();
    assert_eq!(session.campaign, Some(send.clone()));
    assert!(!opens_conversation(
        Some(session),
        &Input::Text("2".into()),
        chat.clock + 10,
        chat.now,
        &chat.tenant
    ));

    // Past the timeout the next conversation is a new one, and names no campaign.
    chat.now += Duration::hours(25);
    assert!(opens_conversation(
        chat.session.as_ref(),
        &Input::Text("oi".into()),
        chat.clock + 10,
        chat.now,
        &chat.tenant
    ));
    chat.text("oi");
    assert_eq!(chat.session.as_ref().unwrap().campaign, None);
}

#[test]
fn a_reaction_opens_no_conversation() {
    let tenant = menu_only();
    let now = monday_afternoon();
    let reaction = Input::Ignored("reaction".into());
    assert!(!opens_conversation(
        None,
        &reaction,
        now.timestamp(),
        now,
        &tenant
    ));
}

#[test]
fn a_session_stored_before_campaign_replies_still_reads() {
    let mut chat = Chat::new(menu_only());
    chat.text("oi");
    let mut json = serde_json::to_value(chat.session.as_ref().unwrap()).unwrap();
    assert!(json.get("campaign").is_none(), "nothing written when unset");
    json.as_object_mut().unwrap().remove("campaign");
    let session: Session = serde_json::from_value(json).unwrap();
    assert_eq!(session.campaign, None);
}
