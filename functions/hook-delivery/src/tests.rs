//! The handler on twins: fan-out by type, tenants kept apart, the retry, give-up and
//! disable rules, drops (disabled, deleted, erased), and what makes a record come back.

use std::time::Duration;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use serde_json::json;
use shared::desk::memory::MemoryAlerts;
use shared::hooks::memory::MemoryHookQueue;
use shared::hooks::{
    DeliveryOutcome, EventType, HookEvent, HookMessage, REPLAY_WINDOW, Subscription, verify,
};
use shared::support::deadline::Deadline;

use super::*;
use crate::memory::{MemoryHookSecrets, MemoryHookStore, MemoryPoster};

struct Twins;

impl Adapters for Twins {
    type Store = MemoryHookStore;
    type Queue = MemoryHookQueue;
    type Alerts = MemoryAlerts;
    type Secrets = MemoryHookSecrets;
    type Poster = MemoryPoster;
}

const A: &str = "111111111111111";
const B: &str = "222222222222222";
const CUSTOMER: &str = "5511987654321";

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn now() -> DateTime<Utc> {
    at("2026-12-07T12:00:00Z")
}

fn url(id: &str) -> String {
    format!("https://hooks.example.com/{id}")
}

fn subscription(id: &str, events: &[EventType], enabled: bool) -> Subscription {
    Subscription {
        id: id.into(),
        url: url(id),
        events: events.to_vec(),
        enabled,
        description: None,
        created_at: at("2026-12-01T00:00:00Z"),
        created_by: "key:test".into(),
        disabled_reason: None,
    }
}

fn event(pn: &str, event_type: EventType, index: usize, occurred_at: DateTime<Utc>) -> HookEvent {
    let customer = event_type.carries_customer_data().then_some(CUSTOMER);
    HookEvent::new(
        event_type,
        "wamid.source",
        index,
        occurred_at,
        pn,
        customer,
        json!({"text": "oi"}),
    )
}

fn batch(pn: &str, events: Vec<HookEvent>) -> String {
    serde_json::to_string(&HookMessage::Batch {
        v: 1,
        phone_number_id: pn.into(),
        events,
    })
    .unwrap()
}

fn retry(pn: &str, id: &str, event: HookEvent, attempt: u32, first: DateTime<Utc>) -> String {
    serde_json::to_string(&HookMessage::Retry {
        v: 1,
        phone_number_id: pn.into(),
        subscription_id: id.into(),
        event,
        attempt,
        first_failed_at: first,
    })
    .unwrap()
}

fn sqs(bodies: &[&str]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let mut message = SqsMessage::default();
            message.message_id = Some(format!("m{i}"));
            message.body = Some((*body).to_owned());
            message
        })
        .collect();
    event
}

struct Fixture {
    delivery: HookDelivery<Twins>,
    store: MemoryHookStore,
    queue: MemoryHookQueue,
    alerts: MemoryAlerts,
    secrets: MemoryHookSecrets,
    poster: MemoryPoster,
}

/// Tenant A: `hk_received` (message.received), `hk_nps` (nps.answered), `hk_off`
/// (message.received, disabled). Tenant B: `hk_b` (message.received). Each with a secret.
fn fixture() -> Fixture {
    let store = MemoryHookStore::default();
    store.put(
        A,
        subscription("hk_received", &[EventType::MessageReceived], true),
    );
    store.put(A, subscription("hk_nps", &[EventType::NpsAnswered], true));
    store.put(
        A,
        subscription("hk_off", &[EventType::MessageReceived], false),
    );
    store.put(B, subscription("hk_b", &[EventType::MessageReceived], true));
    let secrets = MemoryHookSecrets::default();
    for (pn, id) in [
        (A, "hk_received"),
        (A, "hk_nps"),
        (A, "hk_off"),
        (B, "hk_b"),
    ] {
        secrets.set(pn, id, &format!("secret-{id}"));
    }
    let (queue, alerts, poster) = (
        MemoryHookQueue::new(),
        MemoryAlerts::default(),
        MemoryPoster::default(),
    );
    let services = Services::<Twins> {
        store: store.clone(),
        queue: queue.clone(),
        alerts: alerts.clone(),
        secrets: secrets.clone(),
        poster: poster.clone(),
    };
    Fixture {
        delivery: HookDelivery::new(services).with_clock(now),
        store,
        queue,
        alerts,
        secrets,
        poster,
    }
}

fn time() -> Deadline {
    Deadline::after(Duration::from_secs(120))
}

fn failed_ids(response: &SqsBatchResponse) -> Vec<&str> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
}

#[tokio::test]
async fn a_batch_goes_to_each_enabled_subscription_wanting_the_type_and_never_another_tenants() {
    let fx = fixture();
    let received = event(A, EventType::MessageReceived, 0, now());
    let nps = event(A, EventType::NpsAnswered, 1, now());
    let started = event(A, EventType::ConversationStarted, 2, now());
    let body = batch(A, vec![received.clone(), nps.clone(), started]);
    let (response, counts) = fx.delivery.handle_counted(sqs(&[&body]), time()).await;
    assert!(failed_ids(&response).is_empty());
    assert_eq!(counts.delivered, 2);

    let mut posts = fx.poster.posts();
    posts.sort_by(|a, b| a.url.cmp(&b.url));
    let urls: Vec<&str> = posts.iter().map(|p| p.url.as_str()).collect();
    assert_eq!(urls, [url("hk_nps"), url("hk_received")]);
    for (post, id, sent) in [
        (&posts[0], "hk_nps", &nps),
        (&posts[1], "hk_received", &received),
    ] {
        let secret = format!("secret-{id}");
        let header = post.header(shared::hooks::SIGNATURE_HEADER).unwrap();
        assert_eq!(
            verify(secret.as_bytes(), header, &post.body, now(), REPLAY_WINDOW),
            Ok(())
        );
        assert_eq!(post.header("content-type"), Some("application/json"));
        assert_eq!(post.header("x-hook-event-id"), Some(sent.id.as_str()));
        assert_eq!(
            post.header("x-hook-event-type"),
            Some(sent.event_type.name())
        );
        assert_eq!(
            &serde_json::from_slice::<HookEvent>(&post.body).unwrap(),
            sent
        );
        assert_eq!(fx.store.item(A, id).unwrap().last_success_at, Some(now()));
    }
    // Tenant B's subscription wants message.received too: never read, never posted.
    assert_eq!(
        fx.store
            .list_calls
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(fx.secrets.reads(), 1);
    let log = fx.store.log_entries();
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|(pn, _, e)| pn == A
        && e.outcome == DeliveryOutcome::Delivered
        && e.status == Some(200)
        && e.attempt == 1));
    assert!(fx.queue.drain().is_empty());

    // The same for tenant B reaches only its own subscription; A's are cached.
    let body = batch(B, vec![event(B, EventType::MessageReceived, 0, now())]);
    fx.delivery.handle(sqs(&[&body]), time()).await;
    assert_eq!(fx.poster.urls().last(), Some(&url("hk_b")));
    assert_eq!(fx.poster.urls().len(), 3);
    let body = batch(A, vec![event(A, EventType::NpsAnswered, 5, now())]);
    fx.delivery.handle(sqs(&[&body]), time()).await;
    assert_eq!(
        fx.store
            .list_calls
            .load(std::sync::atomic::Ordering::SeqCst),
        2
    );
}

#[tokio::test]
async fn a_failure_goes_back_alone_with_a_delay_and_leaves_health_and_a_log_entry() {
    let fx = fixture();
    fx.poster.answer(&url("hk_received"), Ok(500));
    let received = event(A, EventType::MessageReceived, 0, now());
    let nps = event(A, EventType::NpsAnswered, 1, now());
    let body = batch(A, vec![received.clone(), nps]);
    let (response, counts) = fx.delivery.handle_counted(sqs(&[&body]), time()).await;
    assert!(
        failed_ids(&response).is_empty(),
        "a subscriber's failure is not the record's"
    );
    assert_eq!((counts.delivered, counts.failed), (1, 1));

    let queued = fx.queue.drain();
    assert_eq!(queued.len(), 1);
    let (message, delay) = &queued[0];
    assert_eq!(
        message,
        &HookMessage::Retry {
            v: 1,
            phone_number_id: A.into(),
            subscription_id: "hk_received".into(),
            event: received.clone(),
            attempt: 1,
            first_failed_at: now(),
        }
    );
    assert!((24..=30).contains(&delay.as_secs()), "{delay:?}");

    let item = fx.store.item(A, "hk_received").unwrap();
    assert_eq!(item.failing_since, Some(now()));
    assert_eq!(item.last_failure_at, Some(now()));
    assert_eq!(item.last_error.as_deref(), Some("status 500"));
    let entry = fx
        .store
        .log_entries()
        .into_iter()
        .find(|(_, id, _)| id == "hk_received")
        .unwrap()
        .2;
    assert_eq!(entry.outcome, DeliveryOutcome::Failed);
    assert_eq!(
        (entry.status, entry.error.as_deref()),
        (Some(500), Some("status 500"))
    );

    // The retry goes to that subscription only, with the next attempt's delay; a success
    // clears the failing run.
    let body = retry(A, "hk_received", received.clone(), 1, now());
    fx.delivery.handle(sqs(&[&body]), time()).await;
    let (message, delay) = fx.queue.drain().remove(0);
    assert!(matches!(message, HookMessage::Retry { attempt: 2, .. }));
    assert!((48..=60).contains(&delay.as_secs()), "{delay:?}");
    fx.poster.answer(&url("hk_received"), Ok(204));
    fx.delivery
        .handle(sqs(&[&retry(A, "hk_received", received, 2, now())]), time())
        .await;
    let item = fx.store.item(A, "hk_received").unwrap();
    assert_eq!(
        (item.failing_since, item.last_success_at),
        (None, Some(now()))
    );
    assert_eq!(
        fx.poster
            .urls()
            .iter()
            .filter(|u| **u == url("hk_nps"))
            .count(),
        1
    );
}

#[tokio::test]
async fn a_redirect_a_network_error_and_a_missing_secret_are_failed_attempts() {
    let fx = fixture();
    let cases = [
        (Ok(302), "redirect 302"),
        (Err(PostError::Timeout), "timeout"),
        (Err(PostError::Refused), "address refused"),
    ];
    for (index, (answer, error)) in cases.into_iter().enumerate() {
        fx.poster.answer(&url("hk_received"), answer);
        let body = batch(A, vec![event(A, EventType::MessageReceived, index, now())]);
        let (response, counts) = fx.delivery.handle_counted(sqs(&[&body]), time()).await;
        assert!(failed_ids(&response).is_empty());
        assert_eq!(counts.failed, 1, "{error}");
        assert_eq!(fx.queue.drain().len(), 1, "{error}");
        let item = fx.store.item(A, "hk_received").unwrap();
        assert_eq!(item.last_error.as_deref(), Some(error));
    }
    // A subscription whose secret is not there: nothing is posted unsigned.
    let fx = fixture();
    fx.store
        .put(A, subscription("hk_new", &[EventType::NpsAnswered], true));
    let posted = fx.poster.posts().len();
    let body = batch(A, vec![event(A, EventType::NpsAnswered, 9, now())]);
    let (_, counts) = fx.delivery.handle_counted(sqs(&[&body]), time()).await;
    assert_eq!(counts.failed, 1);
    assert_eq!(fx.poster.posts().len(), posted + 1, "hk_nps only");
    assert_eq!(
        fx.store.item(A, "hk_new").unwrap().last_error.as_deref(),
        Some("no secret")
    );
    let queued = fx.queue.drain();
    assert!(
        matches!(&queued[..], [(HookMessage::Retry { subscription_id, .. }, _)] if subscription_id == "hk_new")
    );
}

#[tokio::test]
async fn a_day_after_its_first_failure_a_delivery_is_given_up() {
    let fx = fixture();
    fx.poster.answer(&url("hk_received"), Ok(503));
    let received = event(
        A,
        EventType::MessageReceived,
        0,
        now() - chrono::Duration::hours(23),
    );
    let first = now() - chrono::Duration::hours(24);
    let body = retry(A, "hk_received", received.clone(), 100, first);
    let (_, counts) = fx.delivery.handle_counted(sqs(&[&body]), time()).await;
    assert_eq!((counts.failed, counts.gave_up), (0, 1));
    assert!(fx.queue.drain().is_empty());
    let entry = fx.store.log_entries().pop().unwrap().2;
    assert_eq!(
        (entry.outcome, entry.attempt),
        (DeliveryOutcome::GaveUp, 101)
    );

    // An event older than the oldest delivered (a dead letter redriven) is not posted.
    let old = event(
        A,
        EventType::MessageReceived,
        1,
        now() - chrono::Duration::days(4),
    );
    let posts = fx.poster.posts().len();
    let (_, counts) = fx
        .delivery
        .handle_counted(sqs(&[&batch(A, vec![old])]), time())
        .await;
    assert_eq!(counts.gave_up, 1);
    assert_eq!(fx.poster.posts().len(), posts);
}

#[tokio::test]
async fn a_retry_for_a_disabled_or_deleted_subscription_is_dropped() {
    let fx = fixture();
    let received = event(A, EventType::MessageReceived, 0, now());
    fx.store.remove(A, "hk_received");
    let bodies = [
        retry(A, "hk_off", received.clone(), 1, now()),
        retry(A, "hk_received", received.clone(), 2, now()),
        // Another tenant's subscription id named under this tenant is not found.
        retry(A, "hk_b", received, 1, now()),
    ];
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let (response, counts) = fx.delivery.handle_counted(sqs(&refs), time()).await;
    assert!(failed_ids(&response).is_empty());
    assert_eq!((counts.dropped, counts.delivered), (3, 0));
    assert!(fx.poster.posts().is_empty());
    let reasons: Vec<(String, Option<String>, u32)> = fx
        .store
        .log_entries()
        .into_iter()
        .map(|(_, id, e)| (id, e.error, e.attempt))
        .collect();
    assert_eq!(
        reasons,
        [
            ("hk_off".to_owned(), Some("disabled".to_owned()), 2),
            (
                "hk_received".to_owned(),
                Some("subscription gone".to_owned()),
                3
            ),
            ("hk_b".to_owned(), Some("subscription gone".to_owned()), 2),
        ]
    );
}

#[tokio::test]
async fn a_subscription_failing_for_three_days_is_disabled_and_alerted_once() {
    let fx = fixture();
    fx.poster
        .answer(&url("hk_received"), Err(PostError::Connect));
    fx.store.set_failing_since(
        A,
        "hk_received",
        now() - DISABLE_AFTER - chrono::Duration::seconds(1),
    );
    let events: Vec<HookEvent> = (0..3)
        .map(|i| event(A, EventType::MessageReceived, i, now()))
        .collect();
    let (response, counts) = fx
        .delivery
        .handle_counted(sqs(&[&batch(A, events)]), time())
        .await;
    assert!(failed_ids(&response).is_empty());
    assert_eq!((counts.disabled, counts.gave_up, counts.failed), (1, 3, 0));
    assert!(
        fx.queue.drain().is_empty(),
        "no retry for a disabled subscription"
    );
    let item = fx.store.item(A, "hk_received").unwrap();
    assert!(!item.subscription.enabled);
    let reason = item.subscription.disabled_reason.unwrap();
    assert!(
        reason.starts_with("failing since 2026-12-04T11:59:59Z"),
        "{reason}"
    );
    assert!(reason.ends_with("(last: connect)"), "{reason}");
    assert_eq!(fx.store.summaries(), [A]);
    let alerts = fx.alerts.published();
    assert_eq!(alerts.len(), 1);
    let message: serde_json::Value = serde_json::from_str(&alerts[0].1).unwrap();
    assert_eq!(message["kind"], "hook_disabled");
    assert_eq!(message["phone_number_id"], A);
    assert_eq!(message["subscription_id"], "hk_received");
    // This container drops the subscription's retries at once.
    let retried = retry(
        A,
        "hk_received",
        event(A, EventType::MessageReceived, 0, now()),
        1,
        now(),
    );
    let (_, counts) = fx.delivery.handle_counted(sqs(&[&retried]), time()).await;
    assert_eq!(counts.dropped, 1);
    assert_eq!(fx.poster.urls().len(), 3);
    // Three days and less of failing: a retry, not disabled.
    fx.store
        .put(B, subscription("hk_b", &[EventType::MessageReceived], true));
    fx.poster.answer(&url("hk_b"), Ok(500));
    fx.store.set_failing_since(B, "hk_b", now() - DISABLE_AFTER);
    let (_, counts) = fx
        .delivery
        .handle_counted(
            sqs(&[&batch(
                B,
                vec![event(B, EventType::MessageReceived, 0, now())],
            )]),
            time(),
        )
        .await;
    assert_eq!((counts.disabled, counts.failed), (0, 1));
    assert!(fx.store.item(B, "hk_b").unwrap().subscription.enabled);
    assert_eq!(fx.alerts.published().len(), 1);
}

#[tokio::test]
async fn an_erased_customers_events_from_before_the_erasure_are_dropped() {
    let fx = fixture();
    let erased_at = now() - chrono::Duration::minutes(5);
    fx.store.erase(A, CUSTOMER, erased_at);
    let before = event(
        A,
        EventType::MessageReceived,
        0,
        erased_at - chrono::Duration::seconds(1),
    );
    let after = event(A, EventType::MessageReceived, 1, now());
    let body = batch(A, vec![before.clone(), after.clone()]);
    let retried = retry(A, "hk_received", before.clone(), 3, now());
    let (response, counts) = fx
        .delivery
        .handle_counted(sqs(&[&body, &retried]), time())
        .await;
    assert!(failed_ids(&response).is_empty());
    assert_eq!((counts.delivered, counts.dropped), (1, 2));
    let posted: Vec<HookEvent> = fx
        .poster
        .posts()
        .iter()
        .map(|p| serde_json::from_slice(&p.body).unwrap())
        .collect();
    assert_eq!(posted, [after]);
    let dropped: Vec<_> = fx
        .store
        .log_entries()
        .into_iter()
        .filter(|(_, _, e)| e.outcome == DeliveryOutcome::Dropped)
        .map(|(_, _, e)| (e.event_id, e.error))
        .collect();
    assert_eq!(
        dropped,
        [
            (before.id.clone(), Some("erased".to_owned())),
            (before.id, Some("erased".to_owned()))
        ]
    );
    // The same customer of another tenant was not erased.
    fx.delivery
        .handle(
            sqs(&[&batch(
                B,
                vec![event(
                    B,
                    EventType::MessageReceived,
                    0,
                    erased_at - chrono::Duration::hours(1),
                )],
            )]),
            time(),
        )
        .await;
    assert_eq!(fx.poster.urls().last(), Some(&url("hk_b")));
}

#[tokio::test]
async fn unreadable_records_and_a_store_or_queue_outage_come_back() {
    let fx = fixture();
    let good = batch(A, vec![event(A, EventType::NpsAnswered, 0, now())]);
    let other_version = good.replace("\"v\":1", "\"v\":2");
    let response = fx
        .delivery
        .handle(sqs(&["not json", &other_version, &good]), time())
        .await;
    assert_eq!(failed_ids(&response), ["m0", "m1"]);
    assert_eq!(fx.poster.posts().len(), 1);

    fx.poster.answer(&url("hk_nps"), Ok(500));
    fx.queue.set_failing(true);
    let response = fx.delivery.handle(sqs(&[&good]), time()).await;
    assert_eq!(
        failed_ids(&response),
        ["m0"],
        "the retry could not be queued"
    );
    fx.queue.set_failing(false);

    let fresh = fixture();
    fresh.store.set_down(true);
    let response = fresh.delivery.handle(sqs(&[&good]), time()).await;
    assert_eq!(failed_ids(&response), ["m0"]);
    assert!(fresh.poster.posts().is_empty());
}

#[tokio::test]
async fn a_delivery_with_no_time_left_goes_back_unchanged_at_once() {
    let fx = fixture();
    let nps = event(A, EventType::NpsAnswered, 0, now());
    let short = Deadline::after(Duration::from_secs(5));
    let (response, counts) = fx
        .delivery
        .handle_counted(sqs(&[&batch(A, vec![nps.clone()])]), short)
        .await;
    assert!(failed_ids(&response).is_empty());
    assert_eq!(counts.deferred, 1);
    assert!(fx.poster.posts().is_empty());
    let queued = fx.queue.drain();
    assert_eq!(
        queued,
        [(
            HookMessage::Retry {
                v: 1,
                phone_number_id: A.into(),
                subscription_id: "hk_nps".into(),
                event: nps,
                attempt: 0,
                first_failed_at: now(),
            },
            Duration::ZERO
        )]
    );
    assert!(fx.store.item(A, "hk_nps").unwrap().failing_since.is_none());
}

#[test]
fn one_subscriptions_many_events_take_turns_with_the_others() {
    let job = |id: &str, n: usize| Job {
        record: 0,
        phone_number_id: A.into(),
        subscription: subscription(id, &[EventType::NpsAnswered], true),
        event: event(A, EventType::NpsAnswered, n, now()),
        failed_before: 0,
        first_failed_at: None,
    };
    let jobs = vec![
        job("slow", 0),
        job("slow", 1),
        job("slow", 2),
        job("fast", 3),
    ];
    let order: Vec<String> = interleaved(jobs)
        .into_iter()
        .map(|j| j.subscription.id)
        .collect();
    assert_eq!(order, ["slow", "fast", "slow", "slow"]);
}
