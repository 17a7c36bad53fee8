//! The store contract (`shared::store::contract`) on the DynamoDB adapter against the local
//! stack: the same checks the in-memory twin passes in unit tests.

use blackbox::stack::Stack;
use shared::store::dynamodb::DynamoStore;

#[tokio::test]
async fn the_dynamodb_store_keeps_the_store_contract() {
    let stack = Stack::connect().await;
    let table = stack.table().await;
    let store = DynamoStore::new(stack.dynamodb.clone(), table);
    shared::store::contract::run_all(&store, "106540352242922").await;
}

/// A stack upgraded with conversations in flight: events the earlier layout handled (an
/// `IDEM#` claim, `OUTBOX#` items, `MSG#` log items, a session without `layout`) are still
/// recognised, resumed where they stopped, and in the transcript.
#[tokio::test]
async fn events_of_the_earlier_layout_are_recognised_and_resumed() {
    use aws_sdk_dynamodb::types::AttributeValue::S;
    use shared::engine::{Effect, Session};
    use shared::store::{Store, keys};
    use shared::whatsapp::outbound::Outbound;

    let stack = Stack::connect().await;
    let table = stack.table().await;
    let store = DynamoStore::new(stack.dynamodb.clone(), table.clone());
    let (number, customer) = ("106540352242922", "5511900000009");
    let conversation = keys::conversation(number, customer);
    let put = |item: Vec<(&str, String)>| {
        let mut request = stack.dynamodb.put_item().table_name(&table);
        for (name, value) in item {
            request = request.item(name, S(value));
        }
        async move { request.send().await.expect("legacy item") }
    };
    let started = chrono::Utc::now() - chrono::Duration::minutes(5);
    let session = Session::new(number, customer, started);
    put(vec![
        ("pk", conversation.clone()),
        ("sk", keys::SESSION.into()),
        ("session", serde_json::to_string(&session).unwrap()),
        ("state", "MENU_PRINCIPAL".into()),
    ])
    .await;
    stack
        .dynamodb
        .update_item()
        .table_name(&table)
        .key("pk", S(conversation.clone()))
        .key("sk", S(keys::SESSION.into()))
        .update_expression("SET version = :one")
        .expression_attribute_values(
            ":one",
            aws_sdk_dynamodb::types::AttributeValue::N("1".into()),
        )
        .send()
        .await
        .unwrap();
    for (key, status) in [
        ("wamid.old.done", "completed"),
        ("wamid.old.half", "applied"),
        ("wamid.old.claimed", "in_progress"),
    ] {
        put(vec![
            ("pk", keys::idempotency(key)),
            ("sk", keys::IDEM.into()),
            ("status", status.into()),
        ])
        .await;
    }
    for (sequence, (text, status)) in [("Olá!", "done"), ("Menu", "pending")]
        .into_iter()
        .enumerate()
    {
        let effect = Effect::Send {
            message: Outbound::text(text),
        };
        put(vec![
            ("pk", conversation.clone()),
            ("sk", keys::outbox("wamid.old.half", sequence)),
            ("effect", serde_json::to_string(&effect).unwrap()),
            ("status", status.into()),
        ])
        .await;
    }
    put(vec![
        ("pk", conversation.clone()),
        (
            "sk",
            keys::message_log(started.timestamp_millis() + 1, "wamid.old.half"),
        ),
        ("direction", "in".into()),
        ("type", "text".into()),
        ("wamid", "wamid.old.half".into()),
        ("text", "oi".into()),
    ])
    .await;

    let done = store
        .load(number, customer, "wamid.old.done")
        .await
        .unwrap();
    assert!(
        done.record.is_some_and(|r| r.is_complete()),
        "completed: a duplicate"
    );
    let claimed = store
        .load(number, customer, "wamid.old.claimed")
        .await
        .unwrap();
    assert_eq!(
        claimed.record, None,
        "claimed, never committed: a new event"
    );
    let half = store
        .load(number, customer, "wamid.old.half")
        .await
        .unwrap();
    let record = half.record.expect("applied: resumed");
    assert_eq!((record.effects.len(), record.done), (2, 1));
    store
        .effect_done(
            number,
            customer,
            "wamid.old.half",
            1,
            Some("wamid.out.menu"),
        )
        .await
        .expect("the resumed record is marked like a new one");
    let finished = store
        .load(number, customer, "wamid.old.half")
        .await
        .unwrap();
    assert!(finished.record.is_some_and(|r| r.is_complete()));

    let lines = store.transcript(number, customer, started).await.unwrap();
    let texts: Vec<_> = lines.iter().map(|l| l.text.as_deref()).collect();
    assert_eq!(
        texts,
        [Some("oi")],
        "the earlier log is read, the rewritten record not repeated"
    );
}
