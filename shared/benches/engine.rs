//! `engine::step` per event on the demo tenant: the pure part of the worker's per-message
//! path (no I/O).

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use shared::engine::{Event, Input, step};
use shared::tenant::Tenant;

fn tenant() -> Tenant {
    serde_yaml_ng::from_str(include_str!("../../infra/tenants/demo.yaml")).unwrap()
}

fn message(input: Input, sent_at: i64) -> Event {
    Event::Message {
        input,
        sent_at,
        profile_name: Some("Maria".into()),
    }
}

fn engine(c: &mut Criterion) {
    let tenant = tenant();
    let now: DateTime<Utc> = "2026-11-23T17:00:00Z".parse().unwrap();
    let customer = "5511987654321";
    let number = "106540352242922";
    let first = message(Input::Text("oi".into()), 1);
    let in_menu = step(None, number, customer, &first, now, &tenant).session;
    let choice = message(
        Input::Choice {
            id: "suporte".into(),
            title: "Suporte técnico".into(),
        },
        2,
    );
    let escalation = message(
        Input::Text("quero falar com um atendente, por favor".into()),
        2,
    );

    c.bench_function("step/new_customer_greeting_and_menu", |b| {
        b.iter(|| step(None, number, customer, black_box(&first), now, &tenant))
    });
    c.bench_function("step/menu_choice_into_a_flow", |b| {
        b.iter(|| {
            step(
                Some(black_box(in_menu.clone())),
                number,
                customer,
                black_box(&choice),
                now,
                &tenant,
            )
        })
    });
    c.bench_function("step/escalation_words_to_the_queue", |b| {
        b.iter(|| {
            step(
                Some(black_box(in_menu.clone())),
                number,
                customer,
                black_box(&escalation),
                now,
                &tenant,
            )
        })
    });
}

criterion_group!(benches, engine);
criterion_main!(benches);
