//! Black-box tests of the customer's data rights: the export and the erasure
//! (`shared::platform::rights`, what the API and the ops CLI call) against the local stack,
//! carried out by the real worker binary, with the fake Graph API, Claude and Chatwoot.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use blackbox::claude::Reply;
use blackbox::conversation::{Harness, JOAO, MARIA, NUMBER, demo};
use blackbox::graph::FakeGraph;
use serde_json::json;
use shared::envelope::{Envelope, Payload, StatusUpdate};
use shared::platform::Db;
use shared::platform::rights::{self, ErasureProgress};
use shared::store::keys;

/// A second tenant, where Maria is a customer too.
const OTHER: &str = "106540352299999";

type Item = HashMap<String, AttributeValue>;

/// Every item of the table, each as one string of its key and attributes.
async fn table_text(bot: &Harness) -> Vec<String> {
    let mut texts = Vec::new();
    let mut start = None;
    loop {
        let output = bot
            .stack
            .dynamodb
            .scan()
            .table_name(&bot.table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        texts.extend(output.items().iter().map(|item: &Item| {
            let mut text = format!("{item:?}");
            // Attributes holding JSON documents: their text as stored, unescaped.
            text.push_str(&text.replace("\\\"", "\""));
            text
        }));
        start = output.last_evaluated_key;
        if start.is_none() {
            return texts;
        }
    }
}

/// Maria's envelope on another tenant's number.
fn on(number: &str, mut envelope: Envelope) -> Envelope {
    if let Payload::Message(message) = &mut envelope.payload {
        message.phone_number_id = number.into();
    }
    envelope
}

/// Maria on the demo tenant: the menu, the AI attendant (one answer), a handoff (queue,
/// desk contact and conversation), a delivery status, and a message parked for coming from
/// another WhatsApp Business Account. Joao on the demo tenant, Maria on a second tenant.
/// Returns Maria's first message on the demo tenant.
async fn conversations(bot: &mut Harness) -> Envelope {
    let mut other = demo();
    other.phone_number_id = OTHER.into();
    other.desk.chatwoot = None;
    bot.stack.put_tenant(&bot.table, &other).await;
    bot.stack
        .named_secret(
            &format!("{}{OTHER}", bot.secret_prefix),
            &json!({"whatsapp_token": "token-other"}).to_string(),
        )
        .await;

    let first = bot.message(MARIA, Some("oi"), None);
    assert!(!bot.feed(std::slice::from_ref(&first)).await.is_empty());
    bot.say(MARIA, None, Some("duvidas")).await;
    bot.claude.script([Reply::text(
        "Atendemos de segunda a sexta, das 8h às 20h.",
        1200,
        30,
    )]);
    bot.say(
        MARIA,
        Some("Meu CPF é 123.456.789-00, qual o horário?"),
        None,
    )
    .await;
    bot.say(MARIA, Some("quero falar com atendente"), None)
        .await;
    assert_eq!(bot.state(MARIA).await, "ATENDIMENTO_HUMANO");
    assert_eq!(bot.chatwoot.contacts().len(), 1);

    // The greeting, Maria's first message sent, is delivered.
    let greeting = &bot.graph.messages()[0];
    assert_eq!(greeting["to"], MARIA);
    let delivered = Envelope::new(Payload::Status(StatusUpdate {
        phone_number_id: NUMBER.into(),
        customer: MARIA.into(),
        wamid: FakeGraph::wamid(MARIA, 1),
        status: "delivered".into(),
        timestamp: bot.clock,
        error_codes: Vec::new(),
        callback_data: greeting["biz_opaque_callback_data"]
            .as_str()
            .map(str::to_owned),
        raw: serde_json::value::RawValue::from_string("{}".into()).unwrap(),
    }));
    bot.feed(&[delivered]).await;

    let mut stray = bot.message(MARIA, Some("mensagem de outra conta"), None);
    if let Payload::Message(message) = &mut stray.payload {
        message.waba_id = Some("999999999999999".into());
    }
    bot.feed(&[stray]).await;

    bot.say(JOAO, Some("oi"), None).await;
    bot.say(JOAO, Some("falar com atendente"), None).await;
    let elsewhere = on(OTHER, bot.message(MARIA, Some("oi"), None));
    bot.feed(&[elsewhere]).await;
    first
}

#[tokio::test]
async fn the_export_lists_everything_of_the_customer_and_nothing_of_anyone_else() {
    let mut bot = Harness::start_recent().await;
    conversations(&mut bot).await;
    let db = Db::new(bot.stack.dynamodb.clone(), bot.table.clone());

    let export = rights::export(&db, NUMBER, MARIA, "person:test")
        .await
        .unwrap();
    assert_eq!(
        export.session.as_ref().unwrap()["session"]["customer"],
        MARIA
    );
    assert_eq!(
        export.session.as_ref().unwrap()["state"],
        "ATENDIMENTO_HUMANO"
    );
    assert_eq!(export.events.len(), 4, "one per message");
    assert!(
        export
            .events
            .iter()
            .any(|e| e["text"] == "Meu CPF é 123.456.789-00, qual o horário?"),
        "what Maria wrote"
    );
    let link = export.desk_link.as_ref().expect("the desk link");
    assert_eq!(
        link["link"]["contact_id"].as_u64(),
        Some(bot.chatwoot.contacts()[0].id)
    );
    assert_eq!(export.queue_entries.len(), 1);
    assert_eq!(export.queue_entries[0]["customer"], MARIA);
    assert_eq!(export.ai_usage.len(), 1);
    assert_eq!(export.ai_usage[0]["requests"], 1);
    assert_eq!(export.parked.len(), 1);
    assert_eq!(
        export.parked[0]["envelope"]["event"]["message"]["customer"],
        MARIA
    );
    assert_eq!(export.deliveries.len(), 1);
    assert_eq!(export.deliveries[0]["status"], "delivered");

    let text = serde_json::to_string(&export).unwrap();
    assert!(!text.contains(JOAO), "nothing of another customer");
    assert!(!text.contains(OTHER), "nothing of another tenant");

    // An unknown tenant is not found; a number that is not a WhatsApp id is refused.
    assert!(matches!(
        rights::export(&db, "999", MARIA, "person:test").await,
        Err(shared::platform::PlatformError::NotFound)
    ));
    assert!(matches!(
        rights::export(&db, NUMBER, "+55 11", "person:test").await,
        Err(shared::platform::PlatformError::Invalid { .. })
    ));
    let empty = rights::export(&db, NUMBER, "5511000000000", "person:test")
        .await
        .unwrap();
    assert_eq!(empty.items(), 0);
}

#[tokio::test]
async fn an_erasure_removes_every_item_of_the_customer_and_a_retry_brings_nothing_back() {
    let mut bot = Harness::start_recent().await;
    let first = conversations(&mut bot).await;
    let db = Db::new(bot.stack.dynamodb.clone(), bot.table.clone());
    let queue_url = bot.stack.fifo_queue("rights").await;
    let export = rights::export(&db, NUMBER, MARIA, "person:test")
        .await
        .unwrap();
    // Every wamid of the conversation: the events' keys and the messages sent.
    let mut wamids: Vec<String> = export
        .events
        .iter()
        .map(|e| {
            e["sk"]
                .as_str()
                .unwrap()
                .trim_start_matches("EVT#")
                .to_owned()
        })
        .collect();
    for event in &export.events {
        for sent in event["sent"].as_array().into_iter().flatten() {
            wamids.push(sent.as_str().unwrap().to_owned());
        }
    }
    assert!(wamids.len() > 8, "{wamids:?}");
    let joao_before = rights::export(&db, NUMBER, JOAO, "person:test")
        .await
        .unwrap();
    let other_before = rights::export(&db, OTHER, MARIA, "person:test")
        .await
        .unwrap();

    let id = rights::request_erase(
        &db,
        &bot.stack.sqs,
        &queue_url,
        NUMBER,
        MARIA,
        "person:test",
        None,
    )
    .await
    .unwrap();
    assert!(id.starts_with("era_"));
    let pending = rights::erasure_status(&db, NUMBER, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pending.state, ErasureProgress::Pending);
    assert_eq!(
        rights::erasure_status(&db, OTHER, &id).await.unwrap(),
        None,
        "another tenant's erasure is not found"
    );
    let queued = bot.stack.drain(&queue_url).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].group_id, format!("{NUMBER}:{MARIA}"));
    assert_eq!(queued[0].dedup_id, format!("erase:{id}"));
    let envelope = Envelope::from_json(&queued[0].body.to_string()).unwrap();
    let contact = bot.chatwoot.contacts()[0].id;
    let sent_before = bot.graph.messages().len();
    bot.feed(std::slice::from_ref(&envelope)).await;

    let done = rights::erasure_status(&db, NUMBER, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.state, ErasureProgress::Done);
    assert_eq!(done.desk_contact.as_deref(), Some("deleted"));
    for (kind, count) in [
        ("session", 1),
        ("event", 4),
        ("desk_link", 1),
        ("queue_entry", 1),
        ("ai_usage", 1),
        ("parked", 1),
        ("delivery", 1),
    ] {
        assert_eq!(done.removed[kind], count, "{kind}: {:?}", done.removed);
    }
    assert_eq!(
        bot.chatwoot.deleted(),
        [contact],
        "the desk contact is gone"
    );
    assert_eq!(bot.graph.messages().len(), sent_before, "nothing sent");

    // Nothing in the table names Maria on this number: not her number, not her
    // conversation, not a wamid of it. Her conversation on the other tenant stays.
    let conversation = keys::conversation(NUMBER, MARIA);
    let table = table_text(&bot).await;
    let left: Vec<&String> = table
        .iter()
        .filter(|item| !item.contains(OTHER))
        .filter(|item| {
            item.contains(MARIA)
                || item.contains(&conversation)
                || wamids.iter().any(|w| item.contains(w.as_str()))
        })
        .collect();
    assert!(left.is_empty(), "left behind: {left:#?}");
    assert!(
        table
            .iter()
            .any(|item| item.contains(&keys::customer_hash(NUMBER, MARIA))),
        "the erasure is recorded by hash"
    );
    assert_eq!(
        rights::export(&db, NUMBER, MARIA, "person:test")
            .await
            .unwrap()
            .items(),
        0
    );
    let same = |a: &rights::CustomerExport, b: &rights::CustomerExport| {
        let mut a = a.clone();
        a.exported_at = b.exported_at;
        assert_eq!(&a, b);
    };
    same(
        &joao_before,
        &rights::export(&db, NUMBER, JOAO, "person:test")
            .await
            .unwrap(),
    );
    same(
        &other_before,
        &rights::export(&db, OTHER, MARIA, "person:test")
            .await
            .unwrap(),
    );

    // Meta redelivers Maria's first message, and the erasure is delivered again: nothing
    // is sent, nothing is stored again.
    bot.feed(&[first, envelope]).await;
    assert_eq!(bot.graph.messages().len(), sent_before, "nothing sent");
    assert_eq!(
        rights::export(&db, NUMBER, MARIA, "person:test")
            .await
            .unwrap()
            .items(),
        0
    );
    assert_eq!(bot.chatwoot.deleted(), [contact]);
    let again = rights::erasure_status(&db, NUMBER, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.removed, done.removed, "counted once");

    // A second request for the same customer is harmless.
    let second = rights::request_erase(
        &db,
        &bot.stack.sqs,
        &queue_url,
        NUMBER,
        MARIA,
        "person:test",
        None,
    )
    .await
    .unwrap();
    assert_ne!(second, id);
    let queued = bot.stack.drain(&queue_url).await;
    let envelope = Envelope::from_json(&queued[0].body.to_string()).unwrap();
    bot.feed(&[envelope]).await;
    let second = rights::erasure_status(&db, NUMBER, &second)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.state, ErasureProgress::Done);
    assert!(second.removed.values().all(|count| *count == 0));
    assert_eq!(second.desk_contact.as_deref(), Some("not_found"));
}

#[tokio::test]
async fn an_idempotency_key_repeats_the_request_and_conflicts_for_another_customer() {
    let bot = Harness::start_recent().await;
    let db = Db::new(bot.stack.dynamodb.clone(), bot.table.clone());
    let queue_url = bot.stack.fifo_queue("rights").await;
    let request = |customer: &'static str| {
        rights::request_erase(
            &db,
            &bot.stack.sqs,
            &queue_url,
            NUMBER,
            customer,
            "key:abc",
            Some("k-1"),
        )
    };
    let id = request(MARIA).await.unwrap();
    assert_eq!(request(MARIA).await.unwrap(), id);
    assert!(matches!(
        request(JOAO).await,
        Err(shared::platform::PlatformError::Conflict(_))
    ));
    // The queue deduplicates the repeat.
    assert_eq!(bot.stack.drain(&queue_url).await.len(), 1);
}

/// The `ops` binary as an operator runs it, against this harness's table and `queue_url`.
fn ops(bot: &Harness, queue_url: &str, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(blackbox::runtime::binary("ops", "debug"));
    command
        .args(args)
        .env_clear()
        .env("AWS_ENDPOINT_URL", &bot.stack.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("TABLE_NAME", &bot.table)
        .env("INBOUND_QUEUE_URL", queue_url)
        .env("USER", "ana")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn the_ops_cli_exports_and_erases_through_the_same_functions() {
    let mut bot = Harness::start_recent().await;
    bot.say(MARIA, Some("oi"), None).await;
    bot.say(MARIA, Some("falar com atendente"), None).await;
    let db = Db::new(bot.stack.dynamodb.clone(), bot.table.clone());
    let queue_url = bot.stack.fifo_queue("ops-rights").await;
    let args = [
        "customers",
        "export",
        "--tenant",
        NUMBER,
        "--customer",
        MARIA,
    ];
    let output = ops(&bot, &queue_url, &args).output().await.unwrap();
    assert!(output.status.success(), "{output:?}");
    let mut printed: rights::CustomerExport = serde_json::from_slice(&output.stdout).unwrap();
    let export = rights::export(&db, NUMBER, MARIA, "person:test")
        .await
        .unwrap();
    printed.exported_at = export.exported_at;
    assert_eq!(printed, export);
    assert_eq!(export.events.len(), 2);

    // `--wait` polls while the worker carries the erasure out.
    let args = [
        "customers",
        "erase",
        "--tenant",
        NUMBER,
        "--customer",
        MARIA,
        "--wait",
    ];
    let erasing = ops(&bot, &queue_url, &args).spawn().unwrap();
    let mut queued = Vec::new();
    for _ in 0..200 {
        queued = bot.stack.drain(&queue_url).await;
        if !queued.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(queued.len(), 1, "the erasure is queued");
    let envelope = Envelope::from_json(&queued[0].body.to_string()).unwrap();
    bot.feed(&[envelope]).await;
    let output = erasing.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{output:?}");
    let id = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(id.starts_with("era_"), "{id}");
    assert!(
        stderr.contains("done: removed") && stderr.contains("session 1"),
        "{stderr}"
    );
    assert!(!stderr.contains(MARIA) && !id.contains(MARIA));

    let args = ["customers", "erasure", "--tenant", NUMBER, &id];
    let output = ops(&bot, &queue_url, &args).output().await.unwrap();
    assert!(output.status.success(), "{output:?}");
    let status: rights::ErasureStatus = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(status.state, ErasureProgress::Done);
    assert_eq!(status.requested_by, "ops:ana");
    assert_eq!(status.desk_contact.as_deref(), Some("deleted"));
    assert_eq!(
        rights::export(&db, NUMBER, MARIA, "person:test")
            .await
            .unwrap()
            .items(),
        0
    );
}

/// The API's data-rights routes, served in process on the harness's table and `queue_url`,
/// with a key of the demo tenant (`admin`), one with `read` only and one of another tenant.
struct Api {
    url: String,
    admin: String,
    reader: String,
    stranger: String,
    http: reqwest::Client,
}

async fn api(bot: &Harness, queue_url: &str) -> Api {
    use shared::platform::access::{Owner, Scope};
    use shared::platform::apikeys;
    let db = Db::new(bot.stack.dynamodb.clone(), bot.table.clone());
    let config = aws_config::from_env()
        .endpoint_url(&bot.stack.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::for_tests())
        .load()
        .await;
    let app = std::sync::Arc::new(api::App {
        db: db.clone(),
        sqs: bot.stack.sqs.clone(),
        queue_url: queue_url.to_owned(),
        s3: bot.stack.s3.clone(),
        campaign_bucket: String::new(),
        verifier: api::auth::Verifier::new(
            "http://127.0.0.1:9/pool".into(),
            "client".into(),
            "http://127.0.0.1:9/pool/.well-known/jwks.json".into(),
        ),
        cursors: api::cursor::Cursors::new(&[7; 32]).unwrap(),
        directory: shared::platform::members::Directory {
            client: aws_sdk_cognitoidentityprovider::Client::new(&config),
            user_pool_id: "local".into(),
        },
        hook_secrets: shared::platform::hooks::HookSecrets::new(
            bot.stack.secrets.clone(),
            format!("{}/hooks/", blackbox::stack::unique("stack")),
        ),
        limits: api::Limits::default(),
    });
    let url = blackbox::serve(api::router(app)).await;
    let mut other = demo();
    other.phone_number_id = OTHER.into();
    bot.stack.put_tenant(&bot.table, &other).await;
    let key = |owner: &str, scope: Scope| {
        let db = db.clone();
        let owner = Owner::Tenant(owner.to_owned());
        async move {
            apikeys::create(
                &db,
                owner,
                "rights",
                &[scope],
                "person:test",
                chrono::Utc::now(),
            )
            .await
            .unwrap()
            .secret
        }
    };
    Api {
        url,
        admin: key(NUMBER, Scope::Admin).await,
        reader: key(NUMBER, Scope::Read).await,
        stranger: key(OTHER, Scope::Admin).await,
        http: reqwest::Client::new(),
    }
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(key);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(serde_json::Value::Null);
        (status, headers, body)
    }
}

#[tokio::test]
async fn the_api_exports_and_erases_for_the_tenants_admins_only() {
    use reqwest::Method;
    let mut bot = Harness::start_recent().await;
    bot.say(MARIA, Some("oi"), None).await;
    let queue_url = bot.stack.fifo_queue("api-rights").await;
    let api = api(&bot, &queue_url).await;
    let export = format!("/v1/tenants/{NUMBER}/customers/{MARIA}/export");
    let erasure = format!("/v1/tenants/{NUMBER}/customers/{MARIA}/erasure");

    let (status, _, body) = api.call(Method::GET, &export, &api.admin, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["customer"], MARIA);
    assert_eq!(body["events"].as_array().unwrap().len(), 1);
    // A read-only key may not; another tenant's admin cannot tell the tenant exists.
    let (status, _, _) = api.call(Method::GET, &export, &api.reader, &[]).await;
    assert_eq!(status, 403);
    let (status, _, _) = api.call(Method::GET, &export, &api.stranger, &[]).await;
    assert_eq!(status, 404);
    let bad = format!("/v1/tenants/{NUMBER}/customers/55%2311/export");
    let (status, _, body) = api.call(Method::GET, &bad, &api.admin, &[]).await;
    assert_eq!(
        (status, &body["errors"][0]["pointer"]),
        (400, &json!("/path/customer"))
    );

    let (status, _, _) = api.call(Method::POST, &erasure, &api.stranger, &[]).await;
    assert_eq!(status, 404);
    let (status, _, body) = api
        .call(
            Method::POST,
            &erasure,
            &api.admin,
            &[("Idempotency-Key", "a b")],
        )
        .await;
    assert_eq!(
        (status, &body["errors"][0]["pointer"]),
        (400, &json!("/header/idempotency-key"))
    );
    assert!(
        bot.stack.drain(&queue_url).await.is_empty(),
        "nothing queued"
    );
    let (status, headers, body) = api
        .call(
            Method::POST,
            &erasure,
            &api.admin,
            &[("Idempotency-Key", "req-1")],
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(body["state"], "pending");
    let location = headers["location"].to_str().unwrap().to_owned();
    assert_eq!(location, format!("/v1/tenants/{NUMBER}/erasures/{id}"));
    let (status, _, again) = api
        .call(
            Method::POST,
            &erasure,
            &api.admin,
            &[("Idempotency-Key", "req-1")],
        )
        .await;
    assert_eq!(
        (status, &again["id"]),
        (202, &json!(id)),
        "the same request"
    );
    let joao = format!("/v1/tenants/{NUMBER}/customers/{JOAO}/erasure");
    let (status, _, _) = api
        .call(
            Method::POST,
            &joao,
            &api.admin,
            &[("Idempotency-Key", "req-1")],
        )
        .await;
    assert_eq!(status, 409, "the key reused for another customer");

    let (status, _, body) = api.call(Method::GET, &location, &api.admin, &[]).await;
    assert_eq!((status, &body["state"]), (200, &json!("pending")));
    let elsewhere = format!("/v1/tenants/{OTHER}/erasures/{id}");
    let (status, _, _) = api.call(Method::GET, &elsewhere, &api.stranger, &[]).await;
    assert_eq!(status, 404, "another tenant's erasure");
    let (status, _, _) = api.call(Method::GET, &location, &api.stranger, &[]).await;
    assert_eq!(status, 404);

    let queued = bot.stack.drain(&queue_url).await;
    assert_eq!(queued.len(), 1, "queued once");
    let envelope = Envelope::from_json(&queued[0].body.to_string()).unwrap();
    bot.feed(&[envelope]).await;
    let (status, _, body) = api.call(Method::GET, &location, &api.admin, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body["state"], "done");
    assert_eq!(body["removed"]["session"], 1);
    assert_eq!(body["removed"]["event"], 1);
    assert!(!body.to_string().contains(MARIA), "{body}");
    let (_, _, body) = api.call(Method::GET, &export, &api.admin, &[]).await;
    assert_eq!(body["events"], json!([]));
    assert_eq!(body["session"], serde_json::Value::Null);
}
