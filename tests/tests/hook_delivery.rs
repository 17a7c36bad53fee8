//! Black-box tests of the hook delivery: the real binary (a `test-hooks` build, which may
//! reach exactly one loopback address: the fake HTTPS subscriber) on the local stack. Every
//! delivery verifies with `hooks::verify` over the raw body; a failure leaves a retry with a
//! delay, a log item and the health fields; a redirect is not followed; any other loopback
//! target is refused, by IP literal or by a name resolving to it.

use blackbox::hooks::{FakeSubscriber, HookStack, secret_of, sqs_event, tenant};
use chrono::Utc;
use serde_json::json;
use shared::hooks::{
    DeliveryOutcome, EventType, HookEvent, HookMessage, REPLAY_WINDOW, SIGNATURE_HEADER, verify,
};

fn event(pn: &str, event_type: EventType, index: usize) -> HookEvent {
    HookEvent::new(
        event_type,
        "wamid.HBgLNTUxMTk4NzY1NDMyMRUCABIYFjNFQjBDMEE",
        index,
        Utc::now(),
        pn,
        Some("5511987654321"),
        json!({"wamid": "wamid.X", "kind": "text", "text": "quero falar com alguém"}),
    )
}

fn batch(pn: &str, events: Vec<HookEvent>) -> HookMessage {
    HookMessage::Batch {
        v: 1,
        phone_number_id: pn.into(),
        events,
    }
}

fn no_failures(response: &serde_json::Value, delivery: &blackbox::runtime::Function) {
    assert_eq!(
        response["batchItemFailures"],
        json!([]),
        "no record redelivered: {response}; the function's output:\n{}",
        delivery.output().join("\n")
    );
}

fn text<'a>(
    item: &'a std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    name: &str,
) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

#[tokio::test]
async fn a_batch_reaches_exactly_the_subscriptions_wanting_its_events_each_signed() {
    let hooks = HookStack::start().await;
    let (a, b) = (tenant(), tenant());
    let url = |path: &str| hooks.subscriber.url(path);
    hooks
        .subscribe(
            &a,
            &[
                (
                    "hk_received",
                    url("/a/received"),
                    &[EventType::MessageReceived],
                ),
                ("hk_nps", url("/a/nps"), &[EventType::NpsAnswered]),
            ],
        )
        .await;
    hooks
        .subscribe(
            &b,
            &[(
                "hk_received",
                url("/b/received"),
                &[EventType::MessageReceived],
            )],
        )
        .await;
    let received = event(&a, EventType::MessageReceived, 0);
    let started = event(&a, EventType::ConversationStarted, 1);
    let of_b = event(&b, EventType::MessageReceived, 0);
    let mut delivery = hooks.delivery().await;
    let response = delivery
        .invoke(&sqs_event(&[
            &batch(&a, vec![received.clone(), started]),
            &batch(&b, vec![of_b.clone()]),
        ]))
        .await
        .expect("the delivery answers");
    no_failures(&response, &delivery);

    let mut paths: Vec<String> = hooks
        .subscriber
        .received()
        .into_iter()
        .map(|d| d.path)
        .collect();
    paths.sort();
    assert_eq!(paths, ["/a/received", "/b/received"]);
    for (path, id, sent) in [
        ("/a/received", "hk_received", &received),
        ("/b/received", "hk_received", &of_b),
    ] {
        let delivery = &hooks.subscriber.at(path)[0];
        let signature = delivery.header(SIGNATURE_HEADER);
        assert_eq!(
            verify(
                secret_of(id).as_bytes(),
                signature,
                &delivery.body,
                Utc::now(),
                REPLAY_WINDOW
            ),
            Ok(()),
            "{path}"
        );
        assert_eq!(delivery.header("content-type"), "application/json");
        assert_eq!(delivery.header("x-hook-event-id"), sent.id);
        assert_eq!(delivery.header("x-hook-event-type"), "message.received");
        let body: HookEvent = serde_json::from_slice(&delivery.body).unwrap();
        assert_eq!(&body, sent);
    }
    // Tenant B's subscription has the same id: its own secret signed its own event.
    let of_b_delivery = &hooks.subscriber.at("/b/received")[0];
    assert_eq!(of_b_delivery.header("x-hook-event-id"), of_b.id);

    let log = hooks.log(&a, "hk_received").await;
    assert_eq!(log.len(), 1);
    assert_eq!(
        (
            log[0].outcome,
            log[0].status,
            log[0].attempt,
            log[0].event_id.as_str()
        ),
        (
            DeliveryOutcome::Delivered,
            Some(204),
            1,
            received.id.as_str()
        )
    );
    assert!(hooks.log(&a, "hk_nps").await.is_empty());
    assert_eq!(hooks.log(&b, "hk_received").await.len(), 1);
    let item = hooks.subscription_item(&a, "hk_received").await;
    assert!(text(&item, "last_success_at").is_some());
    assert!(text(&item, "failing_since").is_none());
    assert!(hooks.queued().is_empty(), "nothing to retry");
}

#[tokio::test]
async fn a_failing_endpoint_gets_a_retry_with_a_delay_a_log_item_and_health_fields() {
    let hooks = HookStack::start().await;
    let pn = tenant();
    hooks
        .subscribe(
            &pn,
            &[(
                "hk_down",
                hooks.subscriber.url("/fail"),
                &[EventType::NpsAnswered],
            )],
        )
        .await;
    let nps = event(&pn, EventType::NpsAnswered, 0);
    let mut delivery = hooks.delivery().await;
    let response = delivery
        .invoke(&sqs_event(&[&batch(&pn, vec![nps.clone()])]))
        .await
        .unwrap();
    no_failures(&response, &delivery);
    assert_eq!(hooks.subscriber.at("/fail").len(), 1);

    let queued = hooks.queued();
    assert_eq!(queued.len(), 1, "{queued:?}");
    let (message, delay) = &queued[0];
    let HookMessage::Retry {
        subscription_id,
        event,
        attempt,
        phone_number_id,
        ..
    } = message
    else {
        panic!("a retry: {message:?}");
    };
    assert_eq!(
        (subscription_id.as_str(), attempt, phone_number_id.as_str()),
        ("hk_down", &1, pn.as_str())
    );
    assert_eq!(event, &nps);
    assert!((24..=30).contains(delay), "{delay} s");

    let item = hooks.subscription_item(&pn, "hk_down").await;
    assert!(text(&item, "failing_since").is_some());
    assert_eq!(text(&item, "failing_since"), text(&item, "last_failure_at"));
    assert_eq!(text(&item, "last_error"), Some("status 500"));
    let log = hooks.log(&pn, "hk_down").await;
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].outcome, log[0].status, log[0].error.as_deref()),
        (DeliveryOutcome::Failed, Some(500), Some("status 500"))
    );
    let stored = hooks
        .stack
        .items(&hooks.table, &format!("HOOKLOG#{pn}#hk_down"))
        .await;
    assert_eq!(stored.len(), 1);
    let expires: i64 = stored[0]["expires_at"].as_n().unwrap().parse().unwrap();
    let week = Utc::now().timestamp() + 7 * 24 * 3600;
    assert!((week - 60..=week + 60).contains(&expires), "{expires}");
    // The log holds no customer data.
    let entry = stored[0]["entry"].as_s().unwrap();
    assert!(
        !entry.contains("5511987654321") && !entry.contains("quero"),
        "{entry}"
    );

    // The retry, delivered again: a second failure, attempt 2, a longer delay.
    let response = delivery.invoke(&sqs_event(&[message])).await.unwrap();
    no_failures(&response, &delivery);
    let queued = hooks.queued();
    assert_eq!(queued.len(), 2);
    assert!(matches!(queued[1].0, HookMessage::Retry { attempt: 2, .. }));
    assert!((48..=60).contains(&queued[1].1), "{}", queued[1].1);
}

#[tokio::test]
async fn a_redirect_is_a_failure_and_never_followed() {
    let hooks = HookStack::start().await;
    let pn = tenant();
    hooks
        .subscribe(
            &pn,
            &[(
                "hk_moved",
                hooks.subscriber.url("/redirect"),
                &[EventType::MessageReceived],
            )],
        )
        .await;
    let mut delivery = hooks.delivery().await;
    let response = delivery
        .invoke(&sqs_event(&[&batch(
            &pn,
            vec![event(&pn, EventType::MessageReceived, 0)],
        )]))
        .await
        .unwrap();
    no_failures(&response, &delivery);
    assert_eq!(hooks.subscriber.at("/redirect").len(), 1);
    assert!(
        hooks.subscriber.at("/redirected").is_empty(),
        "not followed"
    );
    let item = hooks.subscription_item(&pn, "hk_moved").await;
    assert_eq!(text(&item, "last_error"), Some("redirect 302"));
    assert_eq!(hooks.queued().len(), 1, "retried like any failure");
}

#[tokio::test]
async fn a_subscription_at_another_loopback_port_or_a_name_resolving_to_loopback_is_refused() {
    let hooks = HookStack::start().await;
    // A second subscriber the test build is not allowed to reach.
    let elsewhere = FakeSubscriber::start().await;
    let pn = tenant();
    let by_name = format!(
        "https://localhost:{}/by-name",
        hooks.subscriber.address.port()
    );
    hooks
        .subscribe(
            &pn,
            &[
                (
                    "hk_port",
                    elsewhere.url("/other-port"),
                    &[EventType::MessageReceived],
                ),
                ("hk_name", by_name, &[EventType::MessageReceived]),
            ],
        )
        .await;
    let mut delivery = hooks.delivery().await;
    let response = delivery
        .invoke(&sqs_event(&[&batch(
            &pn,
            vec![event(&pn, EventType::MessageReceived, 0)],
        )]))
        .await
        .unwrap();
    no_failures(&response, &delivery);
    assert!(elsewhere.received().is_empty(), "another loopback port");
    assert!(
        hooks.subscriber.received().is_empty(),
        "a name resolving to loopback"
    );
    for id in ["hk_port", "hk_name"] {
        let item = hooks.subscription_item(&pn, id).await;
        assert_eq!(text(&item, "last_error"), Some("address refused"), "{id}");
    }
}

/// The erasure (the store's, as the worker runs it) marks the customer; the delivery drops
/// the events from before it, and delivers the customer's later ones.
#[tokio::test]
async fn a_queued_event_of_a_customer_erased_since_is_dropped() {
    use shared::store::{Erasure, Store};
    let hooks = HookStack::start().await;
    let pn = tenant();
    hooks
        .subscribe(
            &pn,
            &[(
                "hk_all",
                hooks.subscriber.url("/all"),
                &[EventType::MessageReceived],
            )],
        )
        .await;
    let before = event(&pn, EventType::MessageReceived, 0);
    let mut tenant = shared::tenant::demo_always_open();
    tenant.phone_number_id = pn.clone();
    let store =
        shared::store::dynamodb::DynamoStore::new(hooks.stack.dynamodb.clone(), &hooks.table);
    let erasure = Erasure {
        id: "era_00000000000000000000000000",
        tenant: &tenant,
        customer: "5511987654321",
    };
    store
        .erase(erasure, Utc::now() + chrono::Duration::milliseconds(1))
        .await
        .expect("the erasure");
    let mut after = event(&pn, EventType::MessageReceived, 1);
    after.occurred_at = Utc::now() + chrono::Duration::seconds(1);
    // The same number's Brazilian short form names the same customer.
    let mut short_form = before.clone();
    short_form.id = "evt_short".into();
    short_form.customer = Some("551187654321".into());

    let mut delivery = hooks.delivery().await;
    let response = delivery
        .invoke(&sqs_event(&[&batch(
            &pn,
            vec![before.clone(), short_form, after.clone()],
        )]))
        .await
        .unwrap();
    no_failures(&response, &delivery);
    let delivered: Vec<HookEvent> = hooks
        .subscriber
        .at("/all")
        .iter()
        .map(|d| serde_json::from_slice(&d.body).unwrap())
        .collect();
    assert_eq!(delivered, [after]);
    let mut dropped: Vec<(String, Option<String>)> = hooks
        .log(&pn, "hk_all")
        .await
        .into_iter()
        .filter(|e| e.outcome == DeliveryOutcome::Dropped)
        .map(|e| (e.event_id, e.error))
        .collect();
    dropped.sort();
    assert_eq!(
        dropped,
        [
            (before.id, Some("erased".to_owned())),
            ("evt_short".to_owned(), Some("erased".to_owned()))
        ]
    );
}

/// A subscription failing for more than 3 days is disabled at its next failure, once
/// however many deliveries fail together: one alert on the topic, the producers' summary
/// rewritten without it, and its retries then dropped.
#[tokio::test]
async fn a_subscription_failing_for_days_is_disabled_with_one_alert() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use shared::store::keys;
    let hooks = HookStack::start().await;
    let pn = tenant();
    let mut config = shared::tenant::demo_always_open();
    config.phone_number_id = pn.clone();
    hooks.stack.put_tenant(&hooks.table, &config).await;
    hooks
        .subscribe(
            &pn,
            &[(
                "hk_dead",
                hooks.subscriber.url("/fail"),
                &[EventType::MessageReceived],
            )],
        )
        .await;
    let since = (Utc::now() - chrono::Duration::days(3) - chrono::Duration::minutes(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    hooks
        .stack
        .dynamodb
        .update_item()
        .table_name(&hooks.table)
        .key("pk", AttributeValue::S(keys::tenant(&pn)))
        .key("sk", AttributeValue::S(keys::hook("hk_dead")))
        .update_expression("SET failing_since = :since")
        .expression_attribute_values(":since", AttributeValue::S(since.clone()))
        .send()
        .await
        .unwrap();
    let events: Vec<HookEvent> = (0..3)
        .map(|i| event(&pn, EventType::MessageReceived, i))
        .collect();
    let mut delivery = hooks.delivery().await;
    let response = delivery
        .invoke(&sqs_event(&[&batch(&pn, events.clone())]))
        .await
        .unwrap();
    no_failures(&response, &delivery);
    assert_eq!(hooks.subscriber.at("/fail").len(), 3);
    assert!(
        hooks.queued().is_empty(),
        "no retry for a disabled subscription"
    );

    let item = hooks.subscription_item(&pn, "hk_dead").await;
    let subscription: shared::hooks::Subscription =
        serde_json::from_str(text(&item, "subscription").unwrap()).unwrap();
    assert!(!subscription.enabled);
    assert!(
        subscription
            .disabled_reason
            .as_deref()
            .is_some_and(|r| r.contains("status 500")),
        "{subscription:?}"
    );
    let alerts = hooks.stack.drain(&hooks.alerts).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].body["kind"], "hook_disabled");
    assert_eq!(alerts[0].body["phone_number_id"], pn.as_str());
    assert_eq!(alerts[0].body["subscription_id"], "hk_dead");
    let config_item = hooks
        .stack
        .dynamodb
        .get_item()
        .table_name(&hooks.table)
        .key("pk", AttributeValue::S(keys::tenant(&pn)))
        .key("sk", AttributeValue::S(keys::CONFIG.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(text(&config_item, keys::TENANT_HOOKS), Some("[]"));
    let log = hooks.log(&pn, "hk_dead").await;
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|e| e.outcome == DeliveryOutcome::GaveUp));

    // A retry queued before the disabling is dropped; the next failure alerts no more.
    let retry = HookMessage::Retry {
        v: 1,
        phone_number_id: pn.clone(),
        subscription_id: "hk_dead".into(),
        event: events[0].clone(),
        attempt: 2,
        first_failed_at: Utc::now(),
    };
    let response = delivery.invoke(&sqs_event(&[&retry])).await.unwrap();
    no_failures(&response, &delivery);
    assert_eq!(hooks.subscriber.at("/fail").len(), 3);
    assert_eq!(
        hooks.log(&pn, "hk_dead").await[0].outcome,
        DeliveryOutcome::Dropped
    );
    assert!(hooks.stack.drain(&hooks.alerts).await.is_empty());
}
