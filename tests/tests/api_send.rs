//! Black-box tests of a send through the platform API: `shared::platform::send` (what the
//! API and the ops CLI call) on the local stack, the envelope it queues handed to the real
//! worker binary, and a fake Graph API that records what Meta would get.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use blackbox::conversation::{Harness, JOAO, MARIA, NUMBER};
use blackbox::stack::Received;
use chrono::Utc;
use serde_json::json;
use shared::envelope::{Envelope, Payload, SendContent, StatusUpdate};
use shared::platform::send::{SendRequest, SendState, Tracking, request_send, send_status};
use shared::platform::{Db, PlatformError};
use shared::tenant::demo_always_open;

const CALLER: &str = "key:integration";

struct Api {
    bot: Harness,
    db: Db,
    queue_url: String,
}

impl Api {
    /// The worker with its clock at the real time (the API checks the window with it).
    async fn start() -> Api {
        let now = Utc::now();
        let mut bot =
            Harness::start_with(&demo_always_open(), &[("TEST_CLOCK", &now.to_rfc3339())]).await;
        bot.clock = now.timestamp();
        let db = Db::new(bot.stack.dynamodb.clone(), bot.table.clone());
        let queue_url = bot.stack.fifo_queue("api-send").await;
        Api { bot, db, queue_url }
    }

    async fn send(
        &self,
        customer: &str,
        content: &SendContent,
        key: Option<&str>,
    ) -> Result<Tracking, PlatformError> {
        let request = SendRequest {
            tenant: NUMBER,
            customer,
            content,
            principal: CALLER,
            idempotency_key: key,
        };
        request_send(
            &self.db,
            &self.bot.stack.sqs,
            &self.queue_url,
            &request,
            Utc::now(),
        )
        .await
    }

    async fn queued(&self) -> Vec<Received> {
        self.bot.stack.drain(&self.queue_url).await
    }

    /// Hands what the API queued to the worker; returns the messages sent meanwhile.
    async fn work(&mut self, received: &[Received]) -> Vec<String> {
        let envelopes: Vec<Envelope> = received
            .iter()
            .map(|r| Envelope::from_json(&r.body.to_string()).unwrap())
            .collect();
        self.bot.feed(&envelopes).await
    }
}

/// The size DynamoDB bills an item by (names and values; numbers about half their digits).
fn item_bytes(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(s) => s.len(),
                    AttributeValue::N(n) => n.len().div_ceil(2) + 1,
                    AttributeValue::L(list) => {
                        3 + list
                            .iter()
                            .map(|v| 1 + v.as_s().map_or(1, String::len))
                            .sum::<usize>()
                    }
                    _ => 1,
                }
        })
        .sum()
}

fn text(body: &str) -> SendContent {
    SendContent::Text { body: body.into() }
}

#[tokio::test]
async fn a_text_inside_the_window_is_sent_once_per_idempotency_key_and_its_status_follows() {
    let mut api = Api::start().await;
    api.bot.say(MARIA, Some("oi"), None).await;
    let before = api.bot.graph.messages().len();

    let content = text("Seu pedido 4711 saiu para entrega.");
    let first = api
        .send(&format!("+{MARIA}"), &content, Some("order-4711"))
        .await
        .unwrap();
    assert!(
        first.id.starts_with("snd_") && first.id.len() == 30,
        "{}",
        first.id
    );
    assert_eq!(first.customer, MARIA, "the + is dropped");
    let again = api.send(MARIA, &content, Some("order-4711")).await.unwrap();
    assert_eq!(again.id, first.id, "the same key and body: the same send");
    let status = send_status(&api.db, NUMBER, &first.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.status, SendState::Queued);

    let queued = api.queued().await;
    assert!(!queued.is_empty());
    for entry in &queued {
        assert_eq!(
            entry.group_id,
            format!("{NUMBER}:{MARIA}"),
            "the conversation's group"
        );
        assert_eq!(entry.dedup_id, format!("api-send:{}", first.id));
    }
    // Whatever reached the queue (once, or again for the repeat), the worker sends once.
    let sent = api.work(&queued).await;
    assert_eq!(sent, ["text: Seu pedido 4711 saiu para entrega."]);
    let messages = api.bot.graph.messages();
    assert_eq!(messages.len(), before + 1, "exactly one message");
    assert_eq!(messages[before]["to"], MARIA);
    let again = api.work(&queued).await;
    assert!(again.is_empty(), "a redelivery sends nothing");

    let status = send_status(&api.db, NUMBER, &first.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.status, SendState::Sent);
    let wamid = status.wamid.clone().expect("the wamid Meta gave");

    // The worker's cost: the record's conditional put and its done mark, each within
    // 1 KB (one write unit each); no session written. The API's tracking item: one more.
    let conversation = api
        .bot
        .stack
        .items(
            &api.bot.table,
            &shared::store::keys::conversation(NUMBER, MARIA),
        )
        .await;
    let record = conversation
        .iter()
        .find(|item| item["sk"].as_s().unwrap() == &format!("EVT#api-send:{}", first.id))
        .expect("the send's record");
    assert!(item_bytes(record) <= 1024, "{} bytes", item_bytes(record));
    let tracking = api
        .bot
        .stack
        .items(&api.bot.table, &shared::store::keys::tracking(NUMBER))
        .await;
    assert_eq!(tracking.len(), 1);
    assert!(item_bytes(&tracking[0]) <= 1024);

    // Asked again after it went: the same tracking, nothing queued.
    let third = api.send(MARIA, &content, Some("order-4711")).await.unwrap();
    assert_eq!(third.id, first.id);
    assert!(api.queued().await.is_empty());

    // The same key with another body is a conflict.
    let other = api
        .send(MARIA, &text("Outro texto"), Some("order-4711"))
        .await;
    assert!(
        matches!(other, Err(PlatformError::Conflict(_))),
        "{other:?}"
    );

    // Meta's delivery status reaches the send's status.
    let delivered = Envelope::new(Payload::Status(StatusUpdate {
        phone_number_id: NUMBER.into(),
        customer: MARIA.into(),
        wamid: wamid.clone(),
        status: "delivered".into(),
        timestamp: Utc::now().timestamp(),
        error_codes: vec![],
        callback_data: Some(format!("api-send:{}#0", first.id)),
        raw: serde_json::value::RawValue::from_string("{}".into()).unwrap(),
    }));
    api.bot.feed(&[delivered]).await;
    let status = send_status(&api.db, NUMBER, &first.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.status, SendState::Delivered);
    assert_eq!(status.wamid.as_deref(), Some(wamid.as_str()));

    // Another tenant's caller asking for this id finds nothing.
    assert_eq!(
        send_status(&api.db, "106540352240000", &first.id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        send_status(&api.db, NUMBER, "snd_aaaaaaaaaaaaaaaaaaaaaaaaaa")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_text_outside_the_window_is_refused_at_once_and_nothing_is_queued() {
    let api = Api::start().await;
    let refused = api.send(JOAO, &text("Olá!"), Some("hello-joao")).await;
    match refused {
        Err(PlatformError::Refused(reason)) => assert!(reason.contains("24-hour"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(api.queued().await.is_empty(), "nothing queued");
    let tracking = api
        .bot
        .stack
        .items(&api.bot.table, &shared::store::keys::tracking(NUMBER))
        .await;
    assert!(tracking.is_empty(), "nothing recorded");
    let invalid = api.send("+55 11 91234-5678", &text("Olá!"), None).await;
    assert!(
        matches!(&invalid, Err(PlatformError::Invalid { pointer, .. }) if pointer == "/customer"),
        "{invalid:?}"
    );
}

#[tokio::test]
async fn a_template_goes_outside_the_window_with_its_components_as_given() {
    let mut api = Api::start().await;
    let components = vec![json!({"type": "body", "parameters": [
        {"type": "currency", "currency": {"fallback_value": "R$ 99,90", "code": "BRL", "amount_1000": 99900}},
    ]})];
    let template = SendContent::Template {
        name: "fatura_disponivel".into(),
        language: "pt_BR".into(),
        components: components.clone(),
    };
    let tracking = api.send(JOAO, &template, None).await.unwrap();
    let queued = api.queued().await;
    assert_eq!(queued.len(), 1);
    api.work(&queued).await;
    let messages = api.bot.graph.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["to"], JOAO);
    assert_eq!(
        messages[0]["template"],
        json!({"name": "fatura_disponivel", "language": {"code": "pt_BR"}, "components": components})
    );
    let status = send_status(&api.db, NUMBER, &tracking.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.status, SendState::Sent);
}

/// The window was open when the API took the send and closed before the worker got to it
/// (a backlog): the worker refuses it, and its status says why.
#[tokio::test]
async fn a_text_the_worker_finds_outside_the_window_is_refused_with_its_reason() {
    let mut api = Api::start().await;
    api.bot.say(MARIA, Some("oi"), None).await;
    let before = api.bot.graph.messages().len();
    let tracking = api.send(MARIA, &text("Ainda aí?"), None).await.unwrap();
    let queued = api.queued().await;
    api.bot
        .restart_at(&(Utc::now() + chrono::Duration::hours(25)).to_rfc3339())
        .await;
    assert!(api.work(&queued).await.is_empty(), "nothing sent");
    assert_eq!(api.bot.graph.messages().len(), before);
    let status = send_status(&api.db, NUMBER, &tracking.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.status, SendState::Refused);
    assert!(status.reason.unwrap().contains("24-hour"));
}

/// Meta refuses the template (not approved under that name): the status says failed, with
/// Meta's code, and nothing is sent again.
#[tokio::test]
async fn a_template_meta_refuses_reads_failed_with_its_code() {
    let mut api = Api::start().await;
    api.bot
        .graph
        .script([(400, blackbox::graph::FakeGraph::error(132001))]);
    let template = SendContent::Template {
        name: "nao_aprovado".into(),
        language: "pt_BR".into(),
        components: vec![],
    };
    let tracking = api.send(JOAO, &template, Some("t-1")).await.unwrap();
    let queued = api.queued().await;
    api.work(&queued).await;
    api.work(&queued).await;
    assert_eq!(api.bot.graph.messages().len(), 1, "tried once");
    let status = send_status(&api.db, NUMBER, &tracking.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.status, SendState::Failed);
    assert_eq!(status.error_codes, [132001]);
    assert_eq!(status.wamid, None);
}
