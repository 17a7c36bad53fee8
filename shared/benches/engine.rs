//! `engine::step` per event on the demo tenant, and the AI attendant's pure work per
//! question (building and serialising the Messages API request): the worker's per-message
//! path without I/O.

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use shared::ai::{AiConversation, Role};
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
        media: None,
        suppressed: false,
        campaign: None,
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

/// The third question of a conversation: history of five messages.
fn ai_request(c: &mut Criterion) {
    let tenant = tenant();
    let mut conversation = AiConversation::default();
    for (role, text) in [
        (Role::User, "Qual o horário de atendimento?"),
        (
            Role::Assistant,
            "Atendemos de segunda a sexta, das 8h às 20h.",
        ),
        (Role::User, "Quanto custa o plano de 600 mega?"),
        (
            Role::Assistant,
            "O plano de 600 Mega custa R$ 109,90 por mês.",
        ),
        (Role::User, "E a instalação demora quanto?"),
    ] {
        conversation.push(role, text, 12);
    }
    c.bench_function("ai/request_built_and_serialised", |b| {
        b.iter(|| {
            serde_json::to_vec(&shared::ai::request(&tenant, black_box(&conversation))).unwrap()
        })
    });
}

criterion_group!(benches, engine, ai_request);
criterion_main!(benches);
