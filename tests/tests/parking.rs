//! Black-box tests of parked messages: the real worker and `ops` binaries on the local
//! stack. A message for a number without its tenant (or from another business account
//! than the tenant's) is parked, never answered in the tenant's name; once the tenant is
//! there, `ops parked replay` brings it back and the customer gets the answer.

use std::collections::HashSet;

use aws_sdk_dynamodb::types::AttributeValue;
use blackbox::conversation::{Harness, MARIA, NUMBER, demo};
use blackbox::runtime::binary;
use shared::envelope::{Envelope, Payload};
use shared::store::keys;

/// The greeting and the main menu: how the demo tenant answers a first "oi".
fn greeting_and_menu(sent: &[String]) -> bool {
    sent.len() == 2
        && sent[0].starts_with("text: Olá, Maria!")
        && sent[1].starts_with("list: Como podemos ajudar hoje?")
}

async fn parked(bot: &Harness) -> Vec<String> {
    bot.stack
        .items(&bot.table, &keys::parked(NUMBER))
        .await
        .iter()
        .map(|item| item[keys::SK].as_s().unwrap().clone())
        .collect()
}

/// The tenant's items gone, as before `ops tenant put`.
async fn remove_tenant(bot: &Harness) {
    for (pk, sk) in [
        (keys::tenant(NUMBER), keys::CONFIG.to_owned()),
        (keys::TENANTS.to_owned(), NUMBER.to_owned()),
    ] {
        bot.stack
            .dynamodb
            .delete_item()
            .table_name(&bot.table)
            .key(keys::PK, AttributeValue::S(pk))
            .key(keys::SK, AttributeValue::S(sk))
            .send()
            .await
            .unwrap();
    }
}

/// The harness's tenant stored again (its Chatwoot is the harness's fake).
async fn put_tenant(bot: &Harness) {
    let mut tenant = demo();
    if let Some(account) = &mut tenant.desk.chatwoot {
        account.base_url = bot.chatwoot.url.clone();
    }
    bot.stack.put_tenant(&bot.table, &tenant).await;
}

/// `ops parked replay <number>` onto `queue_url`, as an operator runs it.
async fn replay(bot: &Harness, queue_url: &str) {
    let output = tokio::process::Command::new(binary("ops", "debug"))
        .args(["parked", "replay", NUMBER])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", &bot.stack.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("TABLE_NAME", &bot.table)
        .env("INBOUND_QUEUE_URL", queue_url)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.starts_with("replayed 1 parked message(s)"),
        "{output:?}"
    );
}

#[tokio::test]
async fn a_message_parked_before_its_tenant_existed_is_answered_after_the_replay() {
    let mut bot = Harness::start_recent().await;
    let inbound = bot.stack.fifo_queue("parking-inbound").await;
    remove_tenant(&bot).await;

    // The first customer writes before the tenant is set up: parked, nobody answered.
    let first = bot.message(MARIA, Some("oi"), None);
    assert_eq!(
        bot.feed(std::slice::from_ref(&first)).await,
        Vec::<String>::new()
    );
    assert_eq!(parked(&bot).await.len(), 1);
    // SQS drops, for five minutes, a message whose deduplication id it has seen; moto
    // forgets an id once its message is deleted, so that window is kept here: the webhook
    // queued this message under its idempotency key a moment ago.
    let recently_queued = HashSet::from([first.idempotency_key()]);

    // A minute later the operator puts the tenant and replays, while the same worker
    // container (whose cache saw the number unknown) is still running.
    put_tenant(&bot).await;
    replay(&bot, &inbound).await;
    assert_eq!(parked(&bot).await, Vec::<String>::new());
    let delivered: Vec<Envelope> = bot
        .stack
        .drain(&inbound)
        .await
        .into_iter()
        .filter(|r| !recently_queued.contains(&r.dedup_id))
        .map(|r| Envelope::from_json(&r.body.to_string()).unwrap())
        .collect();
    assert_eq!(delivered.len(), 1, "the replay reached the queue");
    let sent = bot.feed(&delivered).await;
    assert!(greeting_and_menu(&sent), "{sent:?}");
    assert_eq!(parked(&bot).await, Vec::<String>::new(), "not parked again");
    assert_eq!(bot.state(MARIA).await, "MENU_PRINCIPAL");

    // Meta's own retry of that message later, or the replay delivered twice: no second
    // answer (the worker dedups on the message's own key).
    assert_eq!(bot.feed(&[first]).await, Vec::<String>::new());
    assert_eq!(bot.feed(&delivered).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_message_from_another_business_account_is_parked_not_answered() {
    let mut bot = Harness::start_recent().await;
    let mut stranger = bot.message(MARIA, Some("oi"), None);
    let Payload::Message(message) = &mut stranger.payload else {
        unreachable!()
    };
    message.waba_id = Some("999999999999999".into());
    assert_eq!(bot.feed(&[stranger]).await, Vec::<String>::new());
    assert_eq!(parked(&bot).await.len(), 1);
    assert!(
        bot.stack
            .items(&bot.table, &keys::conversation(NUMBER, MARIA))
            .await
            .is_empty(),
        "no session, no record"
    );
    // The tenant's own account is answered as ever; so is an envelope without the field.
    let sent = bot.say(MARIA, Some("oi"), None).await;
    assert!(greeting_and_menu(&sent), "{sent:?}");
}
