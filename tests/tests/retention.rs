//! Black-box test of data retention: every kind of conversation runs through the real
//! worker, desk and schedule binaries on one table, then every item of the table is read
//! back. Each item that holds customer data must carry `expires_at` (the table's TTL
//! attribute) from the tenant's retention; only items that hold none may go without.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use blackbox::chatwoot;
use blackbox::conversation::{Harness, JOAO, MARIA, NUMBER};
use chrono::{DateTime, Duration, Utc};
use serde_json::value::RawValue;
use shared::envelope::{Envelope, Payload, StatusUpdate};
use shared::store::keys;

const PEDRO: &str = "5511955554444";
const ANA: &str = "5511944443333";

type Item = HashMap<String, AttributeValue>;

/// Items that hold no customer data: the tenant list, the tenant's configuration and its
/// versions, the audit log (who changed what; a customer only ever as a hash) and the daily
/// report counters. The last two expire on their own clocks (the audit log after two years,
/// the report days after `keys::REPORT_KEPT_DAYS`), not the tenant's retention.
fn holds_no_customer_data(pk: &str, sk: &str) -> bool {
    pk == keys::TENANTS
        || (pk.starts_with("TENANT#") && sk.starts_with(keys::CONFIG))
        // Event subscriptions: the tenant's URLs and event types.
        || (pk.starts_with("TENANT#") && sk.starts_with(keys::HOOK_PREFIX))
        || pk.starts_with("AUDIT#")
        || pk.starts_with("REPORT#")
}

/// The kind of an item, for the report of what the run covered: its pk's prefix, and the
/// sk's prefix for the items of a conversation.
fn kind(pk: &str, sk: &str) -> String {
    let prefix = pk.split('#').next().unwrap_or_default();
    if prefix == "CONV" {
        format!("CONV/{}", sk.split('#').next().unwrap_or_default())
    } else {
        prefix.to_owned()
    }
}

/// Reads every item; fails on one without a TTL in `(after, until]`. Returns the kinds seen.
async fn every_item_expires(
    bot: &Harness,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> BTreeSet<String> {
    let items: Vec<Item> = bot.stack.items(&bot.table, "").await;
    let mut kinds = BTreeSet::new();
    for item in &items {
        let pk = item[keys::PK].as_s().unwrap();
        let sk = item[keys::SK].as_s().unwrap();
        if holds_no_customer_data(pk, sk) {
            continue;
        }
        let expires_at = item
            .get(keys::EXPIRES_AT)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or_else(|| panic!("{pk} / {sk} holds customer data and never expires"));
        assert!(
            expires_at > after.timestamp() && expires_at <= until.timestamp(),
            "{pk} / {sk}: expires at {expires_at}, not in ({after}, {until}]"
        );
        kinds.insert(kind(pk, sk));
    }
    kinds
}

fn status(customer: &str, wamid: &str, status: &str, codes: &[i64]) -> Envelope {
    Envelope::new(Payload::Status(StatusUpdate {
        phone_number_id: NUMBER.into(),
        customer: customer.into(),
        wamid: wamid.into(),
        status: status.into(),
        timestamp: 1_795_453_200,
        error_codes: codes.to_vec(),
        callback_data: None,
        raw: RawValue::from_string("{}".into()).unwrap(),
    }))
}

async fn expires_at(bot: &Harness, pk: String, sk: &str) -> i64 {
    let item = bot
        .stack
        .dynamodb
        .get_item()
        .table_name(&bot.table)
        .key(keys::PK, AttributeValue::S(pk))
        .key(keys::SK, AttributeValue::S(sk.into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    item[keys::EXPIRES_AT].as_n().unwrap().parse().unwrap()
}

#[tokio::test]
async fn every_item_holding_customer_data_expires_with_the_tenant_retention() {
    let start: DateTime<Utc> = "2026-11-23T17:00:00Z".parse().unwrap();
    let retention = Duration::days(i64::from(blackbox::conversation::demo().retention_days));
    let mut bot = Harness::start(&[]).await;
    let mut desk = bot.start_desk().await;
    let mut sweep = bot.start_schedule("sla-sweep").await;
    let mut off_hours = bot.start_schedule("off-hours").await;

    // Menu and flow: Maria answers the support flow and is handed to the desk.
    bot.say(MARIA, Some("oi"), None).await;
    bot.say(MARIA, None, Some("suporte")).await;
    bot.say(MARIA, None, Some("outro")).await;
    bot.say(MARIA, Some("O roteador pisca vermelho"), None)
        .await;
    assert_eq!(
        bot.session(MARIA).await["answers"]["descricao"],
        "O roteador pisca vermelho"
    );
    // The desk: an agent takes her, answers, resolves; she scores.
    let conversation = bot.chatwoot.conversations()[0].id;
    for event in [
        chatwoot::assigned(conversation, NUMBER, MARIA, "Ana"),
        chatwoot::agent_reply(9001, conversation, NUMBER, MARIA, "Olá!", &[]),
        chatwoot::resolved(conversation, NUMBER, MARIA),
    ] {
        let (code, _) = bot.agent(&mut desk, &event, &[]).await;
        assert_eq!(code, 200);
    }
    bot.say(MARIA, Some("9"), None).await;
    assert_eq!(bot.state(MARIA).await, "FINALIZADO");
    // A closed conversation keeps no flow answers.
    assert_eq!(bot.session(MARIA).await.get("answers"), None);

    // The AI attendant answers João.
    bot.say(JOAO, Some("oi"), None).await;
    bot.say(JOAO, None, Some("duvidas")).await;
    let answer = bot.say(JOAO, Some("Qual o horário de vocês?"), None).await;
    assert_eq!(answer.len(), 1, "{answer:?}");

    // Delivery statuses, one of them bringing the window's fallback template.
    bot.feed(&[
        status(MARIA, "wamid.out.ttl.1", "delivered", &[]),
        status(JOAO, "wamid.out.ttl.2", "failed", &[131047]),
    ])
    .await;

    // A message for a number with no tenant: parked.
    let mut stranger = bot.message(MARIA, Some("oi"), None);
    if let Payload::Message(message) = &mut stranger.payload {
        message.phone_number_id = "100000000000001".into();
    }
    assert_eq!(bot.feed(&[stranger]).await, Vec::<String>::new());

    // Schedules: Pedro waits past the SLA; the sweep's warning reaches the worker.
    bot.say(PEDRO, Some("quero falar com atendente"), None)
        .await;
    let late = start + Duration::minutes(11);
    let (_, timers) = bot.tick(&mut sweep, &late.to_rfc3339()).await;
    assert!(!timers.is_empty(), "an SLA warning is due");
    bot.restart_at(&late.to_rfc3339()).await;
    bot.clock = late.timestamp();
    bot.feed(&timers).await;

    let kinds = every_item_expires(&bot, start, late + retention).await;

    // At night, Ana and João write while closed: both owed the opening follow-up.
    let night: DateTime<Utc> = "2026-11-24T01:00:00Z".parse().unwrap();
    let joao_session_expiry =
        expires_at(&bot, keys::conversation(NUMBER, JOAO), keys::SESSION).await;
    bot.restart_at(&night.to_rfc3339()).await;
    bot.clock = night.timestamp();
    bot.say(ANA, Some("oi"), None).await;
    bot.say(JOAO, Some("ainda estão aí?"), None).await;
    // Renewed on activity.
    assert!(
        expires_at(&bot, keys::conversation(NUMBER, JOAO), keys::SESSION).await
            > joao_session_expiry
    );
    let mut kinds_at_night = every_item_expires(&bot, start, night + retention).await;
    let opened: DateTime<Utc> = "2026-11-24T11:05:00Z".parse().unwrap();
    let (_, timers) = bot.tick(&mut off_hours, &opened.to_rfc3339()).await;
    assert_eq!(timers.len(), 2, "both followed up");
    bot.restart_at(&opened.to_rfc3339()).await;
    bot.clock = opened.timestamp();
    bot.feed(&timers).await;
    kinds_at_night.extend(every_item_expires(&bot, start, opened + retention).await);

    // What the run covered: each kind of item the worker writes.
    let covered: BTreeSet<String> = kinds.union(&kinds_at_night).cloned().collect();
    for expected in [
        "CONV/SESSION",
        "CONV/EVT",
        "CONV/DESK",
        "OUT",
        "PARKED",
        "QUEUE",
        "TAKEN",
        "OPENING",
        "AIUSAGE",
    ] {
        assert!(covered.contains(expected), "{expected} not in {covered:?}");
    }
}
