//! Events out for the tenant's subscribers, on the twins: what a step publishes, once per
//! record, and nothing at all for a tenant without subscriptions.

use shared::hooks::{EventType, HookEvent, HookMessage, Subscribed};

use super::*;

const SECOND_NUMBER: &str = "206540352242922";

fn subscribed(events: &[EventType]) -> Vec<Subscribed> {
    vec![Subscribed {
        id: "hook_a".into(),
        events: events.to_vec(),
    }]
}

fn with_subscriptions(events: &[EventType]) -> Harness {
    let mut tenant = shared::tenant::demo_always_open();
    tenant.hooks = subscribed(events);
    Harness::serving(tenant)
}

/// The events of everything published so far, in order, with the tenant each batch named.
fn published(bot: &Harness) -> Vec<HookEvent> {
    bot.events
        .drain()
        .into_iter()
        .flat_map(|(message, delay)| {
            assert_eq!(delay, StdDuration::ZERO);
            match message {
                HookMessage::Batch {
                    phone_number_id,
                    events,
                    ..
                } => {
                    assert!(events.iter().all(|e| e.phone_number_id == phone_number_id));
                    events
                }
                HookMessage::Retry { .. } => panic!("the worker never publishes a retry"),
            }
        })
        .collect()
}

fn types(events: &[HookEvent]) -> Vec<EventType> {
    events.iter().map(|e| e.event_type).collect()
}

#[tokio::test]
async fn a_tenant_without_subscriptions_publishes_nothing_and_records_no_publish() {
    let mut bot = Harness::new();
    let hello = bot.says(MARIA, "oi");
    assert!(bot.deliver(&[&hello]).await.is_empty());
    assert!(!bot.texts(MARIA).is_empty());
    assert!(bot.events.drain().is_empty());
    let record = bot
        .store
        .record(NUMBER, MARIA, &hello.idempotency_key())
        .unwrap();
    assert!(
        record
            .effects
            .iter()
            .all(|e| !matches!(e, shared::engine::Effect::Publish { .. })),
        "{:?}",
        record.effects
    );
}

#[tokio::test]
async fn a_first_message_publishes_the_message_the_new_conversation_and_each_reply_once() {
    let mut bot = with_subscriptions(&[
        EventType::MessageReceived,
        EventType::ConversationStarted,
        EventType::MessageSent,
    ]);
    let hello = bot.says(MARIA, "oi");
    assert!(bot.deliver(&[&hello]).await.is_empty());
    let replies = bot.texts(MARIA);
    let events = published(&bot);
    let mut expected = vec![EventType::MessageReceived, EventType::ConversationStarted];
    expected.extend(replies.iter().map(|_| EventType::MessageSent));
    assert_eq!(types(&events), expected);
    let record = bot
        .store
        .record(NUMBER, MARIA, &hello.idempotency_key())
        .unwrap();
    assert!(record.is_complete());
    let Payload::Message(message) = &hello.payload else {
        unreachable!()
    };
    assert_eq!(events[0].data["wamid"], message.wamid.as_str());
    assert_eq!(events[0].data["text"], "oi");
    assert_eq!(events[0].data["kind"], "text");
    let sent: Vec<&str> = events[2..]
        .iter()
        .map(|e| e.data["wamid"].as_str().unwrap())
        .collect();
    assert_eq!(
        sent,
        record.sent.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(events[2..].iter().all(|e| e.data["by"] == "bot"));
    assert!(
        events
            .iter()
            .all(|e| e.customer.as_deref() == Some(MARIA) && e.phone_number_id == NUMBER)
    );
    let mut ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "every event has its own id");

    // Meta's duplicate and an SQS redelivery publish nothing more.
    assert!(bot.deliver(&[&hello, &hello]).await.is_empty());
    assert!(published(&bot).is_empty());
}

#[tokio::test]
async fn only_wanted_events_make_a_record_publish() {
    let mut bot = with_subscriptions(&[EventType::NpsAnswered]);
    let hello = bot.says(MARIA, "oi");
    assert!(bot.deliver(&[&hello]).await.is_empty());
    assert!(bot.events.drain().is_empty(), "no survey answered yet");
    let record = bot
        .store
        .record(NUMBER, MARIA, &hello.idempotency_key())
        .unwrap();
    assert!(
        !record
            .effects
            .iter()
            .any(|e| matches!(e, shared::engine::Effect::Publish { .. }))
    );
}

/// The hooks queue down: the replies go out once, the record fails at its publish, and its
/// redelivery publishes the same events (same ids) without a second reply.
#[tokio::test]
async fn a_failed_publish_is_retried_by_the_redelivery_without_a_second_reply() {
    let mut bot = with_subscriptions(&[EventType::MessageReceived, EventType::MessageSent]);
    let hello = bot.says(MARIA, "oi");
    bot.events.set_failing(true);
    let failed = bot.deliver(&[&hello]).await;
    assert_eq!(failed.len(), 1);
    let replies = bot.texts(MARIA);
    assert!(!replies.is_empty());
    bot.events.set_failing(false);
    assert!(bot.deliver(&[&hello]).await.is_empty());
    assert_eq!(bot.texts(MARIA), replies, "no second reply");
    let events = published(&bot);
    assert_eq!(events.len(), 1 + replies.len());
    assert!(bot.deliver(&[&hello]).await.is_empty());
    assert!(published(&bot).is_empty(), "done once published");
}

#[tokio::test]
async fn a_handoff_its_agent_the_resolution_and_the_survey_are_published() {
    let mut bot = with_subscriptions(&[
        EventType::ConversationHandedOver,
        EventType::ConversationAssigned,
        EventType::ConversationClosed,
        EventType::NpsAnswered,
    ]);
    let handoff = bot.says(MARIA, "falar com atendente");
    assert!(bot.deliver(&[&handoff]).await.is_empty());
    let events = published(&bot);
    assert_eq!(types(&events), [EventType::ConversationHandedOver]);
    assert_eq!(events[0].data["reason"], "asked");
    assert!(events[0].data["department"].is_string());

    let conversation = bot.desk.posts().last().unwrap().0;
    let assigned = desk_event(
        "assigned:1",
        conversation,
        DeskAction::Assigned {
            agent: "Ana".into(),
        },
    );
    let resolved = desk_event("resolved:1", conversation, DeskAction::Resolved);
    assert!(bot.deliver(&[&assigned]).await.is_empty());
    assert!(bot.deliver(&[&resolved]).await.is_empty());
    let events = published(&bot);
    assert_eq!(
        types(&events),
        [
            EventType::ConversationAssigned,
            EventType::ConversationClosed
        ]
    );
    assert_eq!(events[0].data["agent"], "Ana");
    assert_eq!(events[1].data["by"], "agent");

    let score = bot.says(MARIA, "9");
    assert!(bot.deliver(&[&score]).await.is_empty());
    let events = published(&bot);
    assert_eq!(types(&events), [EventType::NpsAnswered]);
    assert_eq!(events[0].data["score"], 9);
}

#[tokio::test]
async fn an_opt_out_word_and_a_status_are_published_when_wanted() {
    let mut bot = with_subscriptions(&[EventType::CustomerOptedOut, EventType::MessageStatus]);
    let stop = bot.says(MARIA, "SAIR");
    assert!(bot.deliver(&[&stop]).await.is_empty());
    let events = published(&bot);
    assert_eq!(types(&events), [EventType::CustomerOptedOut]);
    assert_eq!(events[0].data["source"], "words");

    let record = bot
        .store
        .record(NUMBER, MARIA, &stop.idempotency_key())
        .unwrap();
    let delivered = status(&record.sent[0], "delivered", Vec::new());
    assert!(bot.deliver(&[&delivered]).await.is_empty());
    let events = published(&bot);
    assert_eq!(types(&events), [EventType::MessageStatus]);
    assert_eq!(events[0].data["status"], "delivered");
    assert_eq!(events[0].data["wamid"], record.sent[0].as_str());
}

/// Two tenants on one worker: only the subscribed one publishes, and only its own events.
#[tokio::test]
async fn a_second_tenant_without_subscriptions_publishes_nothing() {
    let mut first = shared::tenant::demo_always_open();
    first.hooks = subscribed(&EventType::ALL);
    let mut second = shared::tenant::demo_always_open();
    second.phone_number_id = SECOND_NUMBER.into();
    let store = MemoryStore::new().with_tenant(first).with_tenant(second);
    let mut bot = Harness::new();
    bot = Harness {
        worker: Worker::new(
            Ports::<Twins> {
                campaigns: bot.campaigns.clone(),
                store: store.clone(),
                sender: bot.sender.clone(),
                tokens: StaticTokens::local(),
                assistant: bot.assistant.clone(),
                desk: bot.desk.clone(),
                alerts: Some(bot.alerts.clone()),
                ai_secrets: AiSecretCache::new(StaticSecret(r#"{"anthropic_api_key":"k"}"#.into())),
                events_out: Some(bot.events.clone()),
            },
            Config::default(),
            Hooks::default(),
        ),
        store,
        ..bot
    };
    let mut to_second = bot.says(JOAO, "oi");
    if let Payload::Message(message) = &mut to_second.payload {
        message.phone_number_id = SECOND_NUMBER.into();
    }
    assert!(bot.deliver(&[&to_second]).await.is_empty());
    assert!(!bot.texts(JOAO).is_empty(), "the second tenant answered");
    assert!(bot.events.drain().is_empty());

    let to_first = bot.says(MARIA, "oi");
    assert!(bot.deliver(&[&to_first]).await.is_empty());
    let events = published(&bot);
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e.phone_number_id == NUMBER));
    assert!(events.iter().all(|e| e.customer.as_deref() == Some(MARIA)));
}
