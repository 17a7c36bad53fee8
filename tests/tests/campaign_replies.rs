//! Black-box test of replies to a campaign: the real dispatcher and sender send it and
//! leave each recipient's reply pointer; customers answer through the real webhook and
//! worker, on the same table. The conversation names the campaign, and the campaign counts
//! the reply and the opt-out once each.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use blackbox::campaign::{CAMPAIGN, CampaignStack, customer};
use blackbox::conversation::{Harness, JOAO, NUMBER};
use blackbox::http::{app_secrets_json, signed_post, status};
use blackbox::runtime::{Function, binary};
use blackbox::stack::Stack;
use serde_json::{Value, json};
use shared::envelope::Envelope;
use shared::platform::Db;
use shared::platform::conversations;
use shared::store::keys;

/// The real webhook, with its own queue: posts Meta's signed body, returns what it queued.
struct Webhook {
    function: Function,
    queue_url: String,
}

impl Webhook {
    async fn start(stack: &Stack) -> Webhook {
        let queue_url = stack.fifo_queue("inbound").await;
        let secret_arn = stack.secret(&app_secrets_json()).await;
        let env = stack.function_env(
            &stack.endpoint,
            &[
                ("APP_SECRET_ID", &secret_arn),
                ("INBOUND_QUEUE_URL", &queue_url),
            ],
        );
        let function = Function::start(&binary("webhook", "debug"), &env).await;
        Webhook {
            function,
            queue_url,
        }
    }

    /// A customer's text as Meta posts it; returns what the webhook queued.
    async fn text(&mut self, stack: &Stack, from: &str, body: &str, at: i64) -> Vec<Envelope> {
        let wamid = format!("wamid.reply.{from}.{at}");
        let payload = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "551130000000", "phone_number_id": NUMBER},
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": from}],
            "messages": [{"from": from, "id": wamid, "timestamp": at.to_string(), "type": "text", "text": {"body": body}}]
        }}]}]});
        let body = serde_json::to_vec(&payload).unwrap();
        let response = self.function.invoke(&signed_post(&body)).await.unwrap();
        assert_eq!(status(&response), 200);
        stack
            .drain(&self.queue_url)
            .await
            .iter()
            .map(|r| Envelope::from_json(&r.body.to_string()).unwrap())
            .collect()
    }
}

fn campaign_of(session: &Value) -> Value {
    session.get("campaign").cloned().unwrap_or(Value::Null)
}

#[tokio::test]
async fn replies_name_the_campaign_and_count_once_and_an_opt_out_counts_too() {
    let campaign = CampaignStack::start(80, Duration::from_secs(3)).await;
    assert_eq!(campaign.pn(), NUMBER);
    campaign.approved_campaign(3).await;
    campaign.dispatch().await;
    let senders = campaign.senders(1, "debug").await;
    campaign.run(senders, Duration::from_secs(60)).await;
    assert_eq!(campaign.counter("n_sent").await, 3);
    let pointers = campaign
        .stack
        .items(&campaign.table, &keys::campaign_reply(NUMBER))
        .await;
    assert_eq!(pointers.len(), 3, "one reply pointer per send");
    assert!(
        pointers
            .iter()
            .all(|item| !format!("{item:?}").contains(&customer(1))),
        "hashes only"
    );

    // The worker on the campaign's table, its clock now (the sends' time).
    let now = chrono::Utc::now();
    let mut bot = Harness::start_with(
        &campaign.tenant,
        &[
            ("TABLE_NAME", campaign.table.as_str()),
            ("TEST_CLOCK", now.to_rfc3339().as_str()),
        ],
    )
    .await;
    bot.table = campaign.table.clone();
    let mut webhook = Webhook::start(&bot.stack).await;

    // The first recipient answers; Meta delivers the message twice.
    let at = now.timestamp();
    let reply = webhook
        .text(&bot.stack, &customer(1), "Quero saber mais", at)
        .await;
    assert!(!bot.feed(&reply).await.is_empty(), "answered");
    assert_eq!(bot.feed(&reply).await, Vec::<String>::new(), "a duplicate");
    let send = json!({"id": CAMPAIGN, "seq": 1});
    assert_eq!(campaign_of(&bot.session(&customer(1)).await), send);
    assert_eq!(campaign.counter("n_replied").await, 1);
    // The platform API's view of the conversation names the campaign.
    let db = Db::new(bot.stack.dynamodb.clone(), campaign.table.clone());
    let view = conversations::get(&db, NUMBER, &customer(1), now)
        .await
        .unwrap()
        .expect("the conversation");
    assert_eq!(view.campaign_id.as_deref(), Some(CAMPAIGN));

    // The conversation goes on as any other, still naming the campaign, counted once.
    let more = webhook.text(&bot.stack, &customer(1), "1", at + 5).await;
    bot.feed(&more).await;
    assert_eq!(campaign_of(&bot.session(&customer(1)).await), send);
    assert_eq!(campaign.counter("n_replied").await, 1);

    // The second writes SAIR: a reply, and an opt-out of that campaign.
    let stop = webhook.text(&bot.stack, &customer(2), "SAIR", at + 6).await;
    bot.feed(&stop).await;
    bot.feed(&stop).await;
    assert_eq!(campaign.counter("n_opted_out").await, 1);
    assert_eq!(campaign.counter("n_replied").await, 2);
    assert_eq!(
        campaign_of(&bot.session(&customer(2)).await),
        json!({"id": CAMPAIGN, "seq": 2})
    );

    // A pointer of another tenant's number never attributes a conversation with this one.
    let other = "106540352242999";
    let pointer = [
        ("pk", AttributeValue::S(keys::campaign_reply(other))),
        (
            "sk",
            AttributeValue::S(keys::campaign_reply_entry(other, JOAO)),
        ),
        ("campaign_id", AttributeValue::S(CAMPAIGN.into())),
        ("seq", AttributeValue::N("1".into())),
        ("sent_at", AttributeValue::N(at.to_string())),
        ("expires_at", AttributeValue::N((at + 86_400).to_string())),
    ];
    let mut put = bot.stack.dynamodb.put_item().table_name(&campaign.table);
    for (name, value) in pointer {
        put = put.item(name, value);
    }
    put.send().await.unwrap();
    let hello = webhook.text(&bot.stack, JOAO, "oi", at + 7).await;
    assert!(!bot.feed(&hello).await.is_empty());
    assert_eq!(campaign_of(&bot.session(JOAO).await), Value::Null);
    let view = conversations::get(&db, NUMBER, JOAO, now).await.unwrap();
    assert_eq!(view.expect("the conversation").campaign_id, None);
    assert_eq!(campaign.counter("n_replied").await, 2);
}
