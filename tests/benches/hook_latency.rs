//! Hook delivery latency on the local stack: from an event's `occurred_at` to the fake HTTPS
//! subscriber's receipt, through the real hook-delivery binary (a `test-hooks` build:
//! `HOOK_BENCH_PROFILE`, default `debug`, the test command's). Each round is one queue batch
//! of 10 records of 3 events for two subscriptions (60 deliveries), handed to the binary as
//! Lambda's event source would, right after the events occurred; then single events for one
//! subscription. The queue's own wait (the event source's polling, up to a second or so on
//! AWS) is not in it.

use std::time::{Duration, SystemTime};

use blackbox::hooks::{HookStack, sqs_event, tenant};
use chrono::Utc;
use serde_json::json;
use shared::hooks::{EventType, HookEvent, HookMessage};

const ROUNDS: usize = 20;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let profile = std::env::var("HOOK_BENCH_PROFILE").unwrap_or_else(|_| "debug".into());
    let hooks = HookStack::start().await;
    let pn = tenant();
    let types = [EventType::MessageReceived, EventType::MessageSent];
    hooks
        .subscribe(
            &pn,
            &[
                ("hk_one", hooks.subscriber.url("/one"), &types),
                ("hk_two", hooks.subscriber.url("/two"), &types),
                (
                    "hk_nps",
                    hooks.subscriber.url("/nps"),
                    &[EventType::NpsAnswered],
                ),
            ],
        )
        .await;
    let mut delivery = hooks.delivery_built(&profile).await;
    let mut latencies = Vec::new();
    let mut first = None;
    for round in 0..ROUNDS {
        let before = hooks.subscriber.received().len();
        let messages: Vec<HookMessage> = (0..10)
            .map(|record| {
                let events = (0..3)
                    .map(|i| {
                        HookEvent::new(
                            types[i % 2],
                            &format!("wamid.bench.{round}.{record}"),
                            i,
                            Utc::now(),
                            &pn,
                            Some("5511987654321"),
                            json!({"wamid": "wamid.X", "kind": "text", "text": "olá"}),
                        )
                    })
                    .collect();
                HookMessage::Batch {
                    v: 1,
                    phone_number_id: pn.clone(),
                    events,
                }
            })
            .collect();
        let refs: Vec<&HookMessage> = messages.iter().collect();
        let response = delivery.invoke(&sqs_event(&refs)).await.expect("answers");
        assert_eq!(response["batchItemFailures"], json!([]), "{response}");
        let received = hooks.subscriber.received();
        assert_eq!(received.len() - before, 60, "every delivery arrived");
        let round_latencies: Vec<Duration> = received[before..]
            .iter()
            .map(|delivery| {
                let event: HookEvent = serde_json::from_slice(&delivery.body).unwrap();
                let occurred = SystemTime::from(event.occurred_at);
                delivery.at.duration_since(occurred).unwrap_or_default()
            })
            .collect();
        if round == 0 {
            // The cold container: secret, subscriptions and TLS connections are first made.
            first = round_latencies.iter().max().copied();
        } else {
            latencies.extend(round_latencies);
        }
    }
    latencies.sort();
    // One event for one subscription per invocation: what a single message costs.
    let mut single = Vec::new();
    for round in 0..ROUNDS {
        let before = hooks.subscriber.received().len();
        let event = HookEvent::new(
            EventType::NpsAnswered,
            &format!("wamid.single.{round}"),
            0,
            Utc::now(),
            &pn,
            Some("5511987654321"),
            json!({"score": 9}),
        );
        let message = HookMessage::Batch {
            v: 1,
            phone_number_id: pn.clone(),
            events: vec![event],
        };
        delivery
            .invoke(&sqs_event(&[&message]))
            .await
            .expect("answers");
        let received = hooks.subscriber.received();
        assert_eq!(received.len() - before, 1);
        let event: HookEvent = serde_json::from_slice(&received[before].body).unwrap();
        let occurred = SystemTime::from(event.occurred_at);
        single.push(
            received[before]
                .at
                .duration_since(occurred)
                .unwrap_or_default(),
        );
    }
    single.sort();
    println!(
        "hook delivery latency, one event for one subscription per invocation ({profile} build, local stack, {ROUNDS} rounds): p50 {:?}, max {:?}",
        percentile(&single, 0.5),
        single.last().unwrap(),
    );
    println!(
        "hook delivery latency, occurred_at to the subscriber's receipt ({profile} build, local stack, {} deliveries after a cold round): p50 {:?}, p95 {:?}, max {:?}; cold round max {:?}",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        latencies.last().unwrap(),
        first.unwrap(),
    );
}
