//! Events out from end to end: the real worker publishes a conversation's events on the
//! hooks queue (one message per record), the real hook delivery (a `test-hooks` build that
//! may reach the fake HTTPS subscriber) signs and posts each to the tenant's subscriber, and
//! a second tenant's subscriber receives none of them.

use blackbox::conversation::{Harness, MARIA, NUMBER, demo};
use blackbox::hooks::{FakeSubscriber, put_subscription, sqs_event};
use blackbox::runtime::{Function, binary};
use blackbox::stack::{Stack, unique};
use serde_json::json;
use shared::hooks::{EventType, HookEvent, HookMessage, REPLAY_WINDOW, SIGNATURE_HEADER, verify};

const OTHER_NUMBER: &str = "206540352242922";

#[tokio::test]
async fn a_conversation_reaches_its_tenants_subscriber_signed_once_each() {
    let stack = Stack::connect().await;
    let queue = stack
        .sqs
        .create_queue()
        .queue_name(unique("hooks"))
        .send()
        .await
        .expect("hooks queue")
        .queue_url
        .unwrap();
    // On the real clock: the delivery gives up events older than three days.
    let mut bot = Harness::start_with(
        &shared::tenant::demo_always_open(),
        &[("HOOKS_QUEUE_URL", &queue)],
    )
    .await;
    bot.restart("TEST_CLOCK").await;
    bot.clock = chrono::Utc::now().timestamp();
    let mut other = demo();
    other.phone_number_id = OTHER_NUMBER.into();
    bot.stack.put_tenant(&bot.table, &other).await;

    let subscriber = FakeSubscriber::start().await;
    let wanted = [
        EventType::MessageReceived,
        EventType::ConversationStarted,
        EventType::MessageSent,
    ];
    put_subscription(
        &bot.stack,
        &bot.table,
        NUMBER,
        "hook_n8n",
        &subscriber.url("/n8n"),
        &wanted,
    )
    .await;
    put_subscription(
        &bot.stack,
        &bot.table,
        OTHER_NUMBER,
        "hook_other",
        &subscriber.url("/other"),
        &EventType::ALL,
    )
    .await;
    for number in [NUMBER, OTHER_NUMBER] {
        shared::hooks::dynamodb::refresh_summary(&bot.stack.dynamodb, &bot.table, number)
            .await
            .expect("the producers' summary");
    }
    let hooks_prefix = format!("{}/hooks/", unique("stack"));
    bot.stack
        .named_secret(
            &format!("{hooks_prefix}{NUMBER}"),
            &json!({"hook_n8n": "whsec_n8n"}).to_string(),
        )
        .await;
    bot.stack
        .named_secret(
            &format!("{hooks_prefix}{OTHER_NUMBER}"),
            &json!({"hook_other": "whsec_other"}).to_string(),
        )
        .await;

    let hello = bot.message(MARIA, Some("oi"), None);
    bot.invoke(&[&hello, &hello]).await.expect("answered");
    let replies = bot.graph.messages();
    assert!(!replies.is_empty(), "the greeting and the menu");
    let queued = stack.drain(&queue).await;
    assert_eq!(queued.len(), 1, "one message for the record: {queued:?}");
    let message: HookMessage = serde_json::from_value(queued[0].body.clone()).unwrap();

    let (topic, _alerts) = stack.topic_with_queue("hook-alerts").await;
    let allowed = subscriber.address.to_string();
    let ca_file = subscriber.ca_file.to_string_lossy().into_owned();
    let env = stack.function_env(
        &stack.endpoint,
        &[
            ("TABLE_NAME", &bot.table),
            ("HOOKS_QUEUE_URL", &queue),
            ("HOOKS_SECRET_PREFIX", &hooks_prefix),
            ("SLA_ALERT_TOPIC_ARN", &topic),
            ("HOOKS_TEST_ALLOW_ADDRESS", &allowed),
            ("HOOKS_TEST_CA_FILE", &ca_file),
        ],
    );
    let mut delivery = Function::start(&binary("hook-delivery", "debug"), &env).await;
    let response = delivery
        .invoke(&sqs_event(&[&message]))
        .await
        .expect("delivered");
    assert_eq!(
        response["batchItemFailures"],
        json!([]),
        "{}",
        delivery.output().join("\n")
    );

    let deliveries = subscriber.at("/n8n");
    assert_eq!(deliveries.len(), 2 + replies.len(), "{deliveries:?}");
    let mut ids = Vec::new();
    let mut types = Vec::new();
    for delivery in &deliveries {
        verify(
            b"whsec_n8n",
            delivery.header(SIGNATURE_HEADER),
            &delivery.body,
            chrono::Utc::now(),
            REPLAY_WINDOW,
        )
        .expect("signed over the raw body");
        let event: HookEvent = serde_json::from_slice(&delivery.body).unwrap();
        assert_eq!(event.phone_number_id, NUMBER);
        assert_eq!(event.customer.as_deref(), Some(MARIA));
        assert_eq!(delivery.header("x-hook-event-id"), event.id);
        types.push(event.event_type);
        ids.push(event.id);
    }
    types.sort();
    let mut expected = vec![EventType::MessageReceived, EventType::ConversationStarted];
    expected.extend(replies.iter().map(|_| EventType::MessageSent));
    expected.sort();
    assert_eq!(types, expected);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), deliveries.len(), "each event once");
    assert!(
        subscriber.at("/other").is_empty(),
        "another tenant's subscriber gets nothing"
    );

    // Meta's duplicate of the message: nothing more is published.
    bot.invoke(&[&hello]).await.expect("a duplicate");
    assert!(stack.drain(&queue).await.is_empty());
}
