//! The conversation list, one conversation and the human queue as the platform reads them
//! (`shared::platform::conversations`), over what the real worker wrote on the local stack:
//! two tenants, customers in different states and departments.

use std::collections::BTreeSet;

use blackbox::conversation::{Harness, JOAO, MARIA, MONDAY_AFTERNOON, NUMBER, demo};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use shared::engine::Stage;
use shared::envelope::Payload;
use shared::platform::conversations::{self, Direction, Filter, SlaState};
use shared::platform::{Db, PlatformError};
use shared::tenant::Priority;

const PEDRO: &str = "5511955554444";
const VIP: &str = "5511999990000";
const ANA: &str = "5511944443333";
/// A second tenant on the same table.
const OTHER: &str = "106540352200001";
/// An hour after the first customers: the later ones start here.
const LATER: &str = "2026-11-23T18:00:00Z";

fn at(time: &str) -> DateTime<Utc> {
    time.parse().unwrap()
}

/// When the platform reads: an hour after the later customers wrote.
fn now() -> DateTime<Utc> {
    at(LATER) + Duration::hours(1)
}

/// Maria in the support flow (bot); Pedro waiting in `geral`; then, an hour later, the VIP
/// waiting in `geral` ahead of Pedro, João waiting in `financeiro`, Ana closed (gave up
/// waiting in `geral`); and Maria writing to the second tenant.
async fn desk_with_customers() -> (Harness, Db) {
    let mut tenant = demo();
    tenant.desk.vip_contacts = vec![VIP.into()];
    let mut bot = Harness::start_with(&tenant, &[]).await;
    bot.say(MARIA, Some("oi"), None).await;
    bot.say(MARIA, None, Some("suporte")).await;
    bot.say(PEDRO, Some("quero falar com atendente"), None)
        .await;

    bot.restart_at(LATER).await;
    bot.clock = at(LATER).timestamp();
    bot.say(VIP, Some("atendente"), None).await;
    bot.say(JOAO, Some("oi"), None).await;
    bot.say(JOAO, None, Some("financeiro")).await;
    bot.say(JOAO, None, Some("negociacao")).await;
    bot.say(ANA, Some("atendente"), None).await;
    bot.say(ANA, Some("quero desistir"), None).await;

    let other = shared::tenant::Tenant {
        phone_number_id: OTHER.into(),
        name: "Outra Empresa".into(),
        ..demo()
    };
    bot.stack.put_tenant(&bot.table, &other).await;
    bot.stack
        .named_secret(
            &format!("{}{OTHER}", bot.secret_prefix),
            &json!({"whatsapp_token": "token-other"}).to_string(),
        )
        .await;
    let mut envelope = bot.message(MARIA, Some("oi"), None);
    let Payload::Message(message) = &mut envelope.payload else {
        unreachable!()
    };
    message.phone_number_id = OTHER.into();
    bot.feed(&[envelope]).await;

    let db = Db::new(bot.stack.dynamodb.clone(), bot.table.clone());
    (bot, db)
}

/// Every conversation the filter lists, walking the pages `limit` at a time; fails on a
/// customer listed twice.
async fn walk(db: &Db, tenant: &str, filter: &Filter, limit: usize) -> Vec<(String, Stage)> {
    let mut listed = Vec::new();
    let mut next = None;
    for _ in 0..50 {
        let page = conversations::list(db, tenant, filter, limit, next.as_ref(), now())
            .await
            .expect("a page");
        assert!(page.items.len() <= limit);
        listed.extend(page.items.iter().map(|c| (c.customer.clone(), c.state)));
        next = page.next;
        if next.is_none() {
            let unique: BTreeSet<_> = listed.iter().map(|(c, _)| c).collect();
            assert_eq!(unique.len(), listed.len(), "listed twice: {listed:?}");
            return listed;
        }
    }
    panic!("the pages never ended: {listed:?}");
}

fn customers(listed: &[(String, Stage)]) -> BTreeSet<&str> {
    listed.iter().map(|(c, _)| c.as_str()).collect()
}

#[tokio::test]
async fn conversations_are_listed_by_state_department_and_time_per_tenant() {
    let (_bot, db) = desk_with_customers().await;
    let all = Filter::default();

    let listed = walk(&db, NUMBER, &all, 100).await;
    // Newest first.
    assert_eq!(
        listed,
        [
            (ANA.to_owned(), Stage::Closed),
            (JOAO.to_owned(), Stage::Waiting),
            (VIP.to_owned(), Stage::Waiting),
            (PEDRO.to_owned(), Stage::Waiting),
            (MARIA.to_owned(), Stage::Bot),
        ]
    );
    let page = conversations::list(&db, NUMBER, &all, 100, None, now())
        .await
        .unwrap();
    let maria = page.items.iter().find(|c| c.customer == MARIA).unwrap();
    // A flow's department is not listed: only the one a conversation is handed to.
    assert_eq!(maria.department, None);
    assert!(maria.started_at >= at(MONDAY_AFTERNOON) && maria.started_at < at(LATER));
    let ana = page.items.iter().find(|c| c.customer == ANA).unwrap();
    assert_eq!(ana.department.as_deref(), Some("geral"));

    let waiting = Filter {
        state: Some(Stage::Waiting),
        ..Filter::default()
    };
    assert_eq!(
        customers(&walk(&db, NUMBER, &waiting, 100).await),
        BTreeSet::from([JOAO, VIP, PEDRO])
    );
    let geral = Filter {
        department: Some("geral".into()),
        ..Filter::default()
    };
    assert_eq!(
        customers(&walk(&db, NUMBER, &geral, 100).await),
        BTreeSet::from([ANA, VIP, PEDRO])
    );
    let waiting_for_finance = Filter {
        state: Some(Stage::Waiting),
        department: Some("financeiro".into()),
        ..Filter::default()
    };
    assert_eq!(
        customers(&walk(&db, NUMBER, &waiting_for_finance, 100).await),
        BTreeSet::from([JOAO])
    );
    let before_later = Filter {
        to: Some(at(LATER)),
        ..Filter::default()
    };
    assert_eq!(
        customers(&walk(&db, NUMBER, &before_later, 100).await),
        BTreeSet::from([PEDRO, MARIA])
    );
    let later_in_geral = Filter {
        department: Some("geral".into()),
        from: Some(at(LATER)),
        to: Some(at(LATER) + Duration::hours(1)),
        ..Filter::default()
    };
    assert_eq!(
        customers(&walk(&db, NUMBER, &later_in_geral, 100).await),
        BTreeSet::from([ANA, VIP])
    );
    assert!(
        walk(
            &db,
            NUMBER,
            &Filter {
                state: Some(Stage::WithAgent),
                ..Filter::default()
            },
            100
        )
        .await
        .is_empty()
    );

    // Pages of one walk the same list, unfiltered and filtered.
    assert_eq!(walk(&db, NUMBER, &all, 1).await, listed);
    assert_eq!(
        customers(&walk(&db, NUMBER, &waiting, 1).await),
        BTreeSet::from([JOAO, VIP, PEDRO])
    );
    assert_eq!(
        customers(&walk(&db, NUMBER, &geral, 2).await),
        BTreeSet::from([ANA, VIP, PEDRO])
    );

    // Past the tenant's retention (90 days) every session is gone from the list, whether
    // or not DynamoDB deleted it yet.
    let expired = conversations::list(&db, NUMBER, &all, 100, None, now() + Duration::days(91))
        .await
        .unwrap();
    assert_eq!((expired.items, expired.next), (Vec::new(), None));

    // The second tenant sees its own conversation only, and none of the first's.
    assert_eq!(
        walk(&db, OTHER, &all, 100).await,
        [(MARIA.to_owned(), Stage::Bot)]
    );
    let other_maria = conversations::get(&db, OTHER, MARIA, at(LATER))
        .await
        .unwrap()
        .expect("Maria's conversation with the second tenant");
    assert_eq!(other_maria.messages[0].text.as_deref(), Some("oi"));
    assert_eq!(other_maria.messages.len(), 3, "oi, greeting, menu");
    assert!(
        conversations::get(&db, OTHER, PEDRO, at(LATER))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        conversations::queue(&db, OTHER, at(LATER))
            .await
            .unwrap()
            .iter()
            .all(|department| department.waiting.is_empty())
    );
}

#[tokio::test]
async fn a_cursor_continues_only_the_list_it_came_from() {
    let (_bot, db) = desk_with_customers().await;
    let page = conversations::list(&db, NUMBER, &Filter::default(), 1, None, now())
        .await
        .unwrap();
    let cursor = page.next.expect("more than one conversation");
    // Another tenant's list, or a time range the cursor is outside of.
    let elsewhere =
        conversations::list(&db, OTHER, &Filter::default(), 1, Some(&cursor), now()).await;
    assert!(
        matches!(elsewhere, Err(PlatformError::Invalid { ref pointer, .. }) if pointer == "/query/cursor"),
        "{elsewhere:?}"
    );
    let earlier = Filter {
        to: Some(at(LATER)),
        ..Filter::default()
    };
    let outside = conversations::list(&db, NUMBER, &earlier, 1, Some(&cursor), now()).await;
    assert!(matches!(outside, Err(PlatformError::Invalid { .. })));
    for limit in [0, conversations::MAX_LIMIT + 1] {
        let refused =
            conversations::list(&db, NUMBER, &Filter::default(), limit, None, now()).await;
        assert!(
            matches!(refused, Err(PlatformError::Invalid { ref pointer, .. }) if pointer == "/query/limit")
        );
    }
    let backwards = Filter {
        from: Some(at(LATER)),
        to: Some(at(MONDAY_AFTERNOON)),
        ..Filter::default()
    };
    assert!(
        conversations::list(&db, NUMBER, &backwards, 10, None, now())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn one_conversation_reads_with_its_transcript_in_order() {
    let (_bot, db) = desk_with_customers().await;
    let maria = conversations::get(&db, NUMBER, MARIA, at(LATER))
        .await
        .unwrap()
        .expect("Maria's conversation");
    assert_eq!(maria.state, Stage::Bot);
    assert_eq!(maria.department.as_deref(), Some("suporte"));
    assert!(maria.state_name.starts_with("SUPORTE_"));
    let lines: Vec<(Direction, Option<&str>)> = maria
        .messages
        .iter()
        .map(|m| (m.direction, m.text.as_deref()))
        .collect();
    // Her two messages, each followed by what the bot answered.
    assert_eq!(lines[0], (Direction::Inbound, Some("oi")));
    let second = lines
        .iter()
        .rposition(|(direction, _)| *direction == Direction::Inbound)
        .unwrap();
    assert_eq!(lines[second], (Direction::Inbound, Some("suporte")));
    assert!(
        second >= 2,
        "greeting and menu before her choice: {lines:?}"
    );
    assert!(
        lines[1..second]
            .iter()
            .all(|(d, _)| *d == Direction::Outbound)
    );
    assert!(
        second + 1 < lines.len(),
        "the flow's first question: {lines:?}"
    );
    assert!(
        maria
            .messages
            .windows(2)
            .all(|pair| pair[0].at <= pair[1].at),
        "in time order"
    );

    let pedro = conversations::get(&db, NUMBER, PEDRO, at(LATER))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pedro.state, Stage::Waiting);
    let queued = pedro.queued.expect("in the queue");
    assert_eq!(
        (queued.department.as_str(), queued.priority),
        ("geral", Priority::Media)
    );
    assert!(
        conversations::get(&db, NUMBER, "5511900000000", at(LATER))
            .await
            .unwrap()
            .is_none()
    );
    // Past the tenant's retention the session is gone, whether or not DynamoDB deleted it.
    assert!(
        conversations::get(&db, NUMBER, MARIA, at(LATER) + Duration::days(91))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn the_queue_lists_each_department_in_order_of_service_with_its_waits() {
    let (_bot, db) = desk_with_customers().await;
    let now = at(LATER) + Duration::minutes(20);
    let queues = conversations::queue(&db, NUMBER, now).await.unwrap();
    let config = demo();
    assert_eq!(
        queues
            .iter()
            .map(|q| q.department.as_str())
            .collect::<Vec<_>>(),
        config
            .departments
            .iter()
            .map(|d| d.id.as_str())
            .collect::<Vec<_>>()
    );
    let geral = queues.iter().find(|q| q.department == "geral").unwrap();
    let served: Vec<(u32, &str, Priority)> = geral
        .waiting
        .iter()
        .map(|w| (w.place, w.customer.as_str(), w.priority))
        .collect();
    // The VIP came an hour after Pedro and is served first; Ana left.
    assert_eq!(
        served,
        [(1, VIP, Priority::Alta), (2, PEDRO, Priority::Media)]
    );
    let (vip, pedro) = (&geral.waiting[0], &geral.waiting[1]);
    assert_eq!(vip.waited_seconds, (now - vip.entered_at).num_seconds());
    assert!(pedro.waited_seconds > 75 * 60);
    assert_eq!(geral.oldest_wait_seconds, Some(pedro.waited_seconds));
    let sla = config.department("geral").unwrap().sla;
    assert!(
        u64::from(sla.max_wait_minutes) < 75,
        "Pedro is past the SLA"
    );
    assert_eq!(pedro.sla, SlaState::Breach);
    // 20 minutes against 10 and 30.
    assert_eq!(vip.sla, SlaState::Warning);

    let finance = queues
        .iter()
        .find(|q| q.department == "financeiro")
        .unwrap();
    assert_eq!(finance.waiting.len(), 1);
    assert_eq!(
        (
            finance.waiting[0].customer.as_str(),
            finance.waiting[0].priority
        ),
        (JOAO, Priority::Baixa)
    );
    // 20 minutes against 15 and 60.
    assert_eq!(finance.waiting[0].sla, SlaState::Warning);
    let support = queues.iter().find(|q| q.department == "suporte").unwrap();
    assert!(support.waiting.is_empty() && support.oldest_wait_seconds.is_none());

    assert!(matches!(
        conversations::queue(&db, "000000000000000", now).await,
        Err(PlatformError::NotFound)
    ));
}
