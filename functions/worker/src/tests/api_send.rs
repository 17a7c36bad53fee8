//! Sends asked for through the platform API: decided from the session when the worker
//! handles them, sent through the event's outbox, once.

use serde_json::json;
use shared::envelope::{ApiSend, SendContent};
use shared::store::{Commit, EventRecord, Store};
use shared::whatsapp::outbound::Outbound;

use super::*;

fn api_send(number: &str, customer: &str, id: &str, content: SendContent) -> Envelope {
    Envelope::new(Payload::Send(ApiSend {
        phone_number_id: number.into(),
        customer: customer.into(),
        id: id.into(),
        content,
    }))
}

fn text(body: &str) -> SendContent {
    SendContent::Text { body: body.into() }
}

fn template() -> SendContent {
    SendContent::Template {
        name: "pedido_pronto".into(),
        language: "pt_BR".into(),
        components: vec![json!({"type": "body", "parameters": [{"type": "text", "text": "Ana"}]})],
    }
}

#[tokio::test]
async fn a_text_outside_the_window_is_refused_and_nothing_is_sent() {
    let bot = Harness::new();
    let send = api_send(NUMBER, MARIA, "snd_1", text("Seu pedido saiu."));
    assert!(bot.deliver(&[&send]).await.is_empty());
    assert!(bot.sender.sent().is_empty(), "nothing sent");
    let record = bot
        .store
        .record(NUMBER, MARIA, "api-send:snd_1")
        .expect("the refusal is recorded");
    assert_eq!(record.kind, "api_send");
    assert!(!record.inbound);
    assert!(record.effects.is_empty());
    assert!(
        record.text.as_deref().unwrap().contains("24-hour"),
        "{record:?}"
    );
    assert!(
        bot.store.session(NUMBER, MARIA).is_none(),
        "no session written"
    );
}

#[tokio::test]
async fn a_text_inside_the_window_is_sent_once_however_often_it_is_delivered() {
    let mut bot = Harness::new();
    let hello = bot.says(MARIA, "oi");
    assert!(bot.deliver(&[&hello]).await.is_empty());
    let session = bot.store.session(NUMBER, MARIA).unwrap();
    let before = bot.sender.sent().len();
    let send = api_send(NUMBER, MARIA, "snd_2", text("Seu pedido saiu."));
    assert!(bot.deliver(&[&send]).await.is_empty());
    assert!(bot.deliver(&[&send]).await.is_empty());
    assert!(bot.deliver(&[&send, &send]).await.is_empty());
    let sent = bot.sender.sent();
    assert_eq!(
        sent[before..],
        [(MARIA.to_owned(), Outbound::text("Seu pedido saiu."))],
        "sent once"
    );
    assert_eq!(
        bot.sender.callbacks().last().unwrap(),
        "api-send:snd_2#0",
        "its status finds the send"
    );
    let record = bot.store.record(NUMBER, MARIA, "api-send:snd_2").unwrap();
    assert!(record.is_complete());
    assert_eq!(record.sent.len(), 1, "the wamid is recorded");
    assert_eq!(
        bot.store.session(NUMBER, MARIA).unwrap(),
        session,
        "the session is not rewritten"
    );
}

/// A conversation whose customer last wrote `hours_ago`.
async fn customer_wrote(bot: &Harness, customer: &str, hours_ago: i64) {
    let now = Utc::now();
    let mut session = shared::engine::Session::new(NUMBER, customer, now);
    session.last_message_at = (now - Duration::hours(hours_ago)).timestamp();
    let record = EventRecord::new(now, "text", Vec::new());
    bot.store
        .commit(Commit {
            key: &format!("wamid.{customer}"),
            phone_number_id: NUMBER,
            customer,
            session: Some(&session),
            expected_version: None,
            record: &record,
            expires_at: now + Duration::days(30),
            ai_used: false,
            report: None,
            suppression: None,
        })
        .await
        .unwrap();
}

/// The API checked the window when it accepted the send; the worker decides again from
/// the session it finds (the window may have closed in between).
#[tokio::test]
async fn the_window_is_decided_from_the_session_when_the_send_is_handled() {
    let bot = Harness::new();
    customer_wrote(&bot, MARIA, 23).await;
    customer_wrote(&bot, JOAO, 25).await;
    let inside = api_send(NUMBER, MARIA, "snd_3", text("Ainda aí?"));
    let outside = api_send(NUMBER, JOAO, "snd_4", text("Ainda aí?"));
    assert!(bot.deliver(&[&inside, &outside]).await.is_empty());
    assert_eq!(bot.texts(MARIA), ["Ainda aí?"]);
    assert!(bot.texts(JOAO).is_empty(), "the window closed");
    let refused = bot.store.record(NUMBER, JOAO, "api-send:snd_4").unwrap();
    assert!(refused.effects.is_empty() && refused.text.is_some());
}

#[tokio::test]
async fn a_template_goes_any_time_with_its_components() {
    let bot = Harness::new();
    let send = api_send(NUMBER, JOAO, "snd_5", template());
    assert!(bot.deliver(&[&send]).await.is_empty());
    assert!(bot.deliver(&[&send]).await.is_empty());
    let SendContent::Template {
        name,
        language,
        components,
    } = template()
    else {
        unreachable!()
    };
    assert_eq!(
        bot.sender.sent(),
        [(
            JOAO.to_owned(),
            Outbound::GraphTemplate {
                name,
                language,
                components
            }
        )],
        "sent once"
    );
    assert!(bot.store.session(NUMBER, JOAO).is_none());
    let record = bot.store.record(NUMBER, JOAO, "api-send:snd_5").unwrap();
    assert_eq!(record.sent.len(), 1);
}

#[tokio::test]
async fn a_send_for_an_unknown_number_is_parked() {
    let bot = Harness::new();
    let send = api_send("999", MARIA, "snd_6", template());
    assert!(bot.deliver(&[&send]).await.is_empty());
    assert!(bot.sender.sent().is_empty());
    assert_eq!(bot.store.parked().len(), 1);
}

/// Meta refusing the send (an unknown template) is final: recorded with its code, never
/// retried.
#[tokio::test]
async fn a_send_meta_refuses_keeps_its_error_code() {
    let bot = Harness::new();
    bot.sender.fail_next(SendError::GiveUp {
        code: 132001,
        message: "template name does not exist in the translation".into(),
    });
    let send = api_send(NUMBER, JOAO, "snd_7", template());
    assert!(bot.deliver(&[&send]).await.is_empty());
    assert!(bot.deliver(&[&send]).await.is_empty());
    assert!(bot.sender.sent().is_empty());
    let record = bot.store.record(NUMBER, JOAO, "api-send:snd_7").unwrap();
    assert!(record.is_complete() && record.sent.is_empty());
    assert_eq!(record.failed.get(&0), Some(&Some(132001)));
}
