//! The send routes of the platform API (`functions/api`'s router, served on loopback) on
//! the local stack, with API keys of two tenants; what they queue goes to the real worker
//! binary and a fake Graph API.

use std::sync::Arc;

use api::auth::Verifier;
use api::cursor::Cursors;
use api::{App, Limits};
use blackbox::conversation::{Harness, JOAO, MARIA, NUMBER};
use blackbox::stack::unique;
use chrono::Utc;
use serde_json::{Value, json};
use shared::envelope::Envelope;
use shared::platform::Db;
use shared::platform::access::{Owner, Scope};
use shared::platform::apikeys;
use shared::platform::hooks::HookSecrets;
use shared::platform::members::Directory;
use shared::tenant::demo_always_open;

const OTHER: &str = "106540352240000";

struct Served {
    bot: Harness,
    queue_url: String,
    base: String,
    http: reqwest::Client,
}

impl Served {
    async fn start() -> Served {
        let now = Utc::now();
        let mut bot =
            Harness::start_with(&demo_always_open(), &[("TEST_CLOCK", &now.to_rfc3339())]).await;
        bot.clock = now.timestamp();
        let mut other = demo_always_open();
        other.phone_number_id = OTHER.into();
        bot.stack.put_tenant(&bot.table, &other).await;
        let queue_url = bot.stack.fifo_queue("api-routes").await;
        let config = aws_config::from_env()
            .endpoint_url(&bot.stack.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::for_tests())
            .load()
            .await;
        let app = Arc::new(App {
            db: Db::new(bot.stack.dynamodb.clone(), bot.table.clone()),
            sqs: bot.stack.sqs.clone(),
            queue_url: queue_url.clone(),
            s3: bot.stack.s3.clone(),
            campaign_bucket: String::new(),
            verifier: Verifier::new(
                "http://127.0.0.1:1/issuer".into(),
                "client".into(),
                "http://127.0.0.1:1/jwks".into(),
            ),
            cursors: Cursors::new(&[7; 32]).unwrap(),
            directory: Directory {
                client: aws_sdk_cognitoidentityprovider::Client::new(&config),
                user_pool_id: unique("pool"),
            },
            hook_secrets: HookSecrets::new(
                bot.stack.secrets.clone(),
                format!("{}/hooks/", unique("stack")),
            ),
            limits: Limits::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, api::router(app)).await });
        Served {
            bot,
            queue_url,
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn key(&self, tenant: &str, scopes: &[Scope]) -> String {
        let db = Db::new(self.bot.stack.dynamodb.clone(), self.bot.table.clone());
        apikeys::create(
            &db,
            Owner::Tenant(tenant.into()),
            "integration",
            scopes,
            "person:test",
            Utc::now(),
        )
        .await
        .unwrap()
        .secret
    }

    /// POSTs a send; returns the status, the Location header and the body.
    async fn post(
        &self,
        key: &str,
        tenant: &str,
        idempotency_key: Option<&str>,
        body: &Value,
    ) -> (u16, Option<String>, Value) {
        let mut request = self
            .http
            .post(format!("{}/v1/tenants/{tenant}/messages", self.base))
            .bearer_auth(key)
            .json(body);
        if let Some(idempotency_key) = idempotency_key {
            request = request.header("Idempotency-Key", idempotency_key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|value| value.to_str().unwrap().to_owned());
        (status, location, response.json().await.unwrap())
    }

    async fn get(&self, key: &str, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }
}

fn text(customer: &str, body: &str) -> Value {
    json!({"customer": customer, "content": {"text": {"body": body}}})
}

#[tokio::test]
async fn a_send_is_accepted_once_per_key_and_read_back_by_its_tenant_only() {
    let mut api = Served::start().await;
    api.bot.say(MARIA, Some("oi"), None).await;
    let before = api.bot.graph.messages().len();
    let sender = api.key(NUMBER, &[Scope::Send, Scope::Read]).await;
    let reader = api.key(NUMBER, &[Scope::Read]).await;
    let stranger = api.key(OTHER, &[Scope::Send, Scope::Read]).await;

    let body = text(&format!("+{MARIA}"), "Seu pedido saiu.");
    let (status, location, accepted) = api.post(&sender, NUMBER, Some("o-1"), &body).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_owned();
    let location = location.expect("a Location");
    assert_eq!(location, format!("/v1/tenants/{NUMBER}/messages/{id}"));
    assert_eq!(
        (accepted["customer"].as_str(), accepted["status"].as_str()),
        (Some(MARIA), Some("queued"))
    );
    let (status, _, again) = api.post(&sender, NUMBER, Some("o-1"), &body).await;
    assert_eq!((status, again["id"].as_str()), (202, Some(id.as_str())));
    let (status, _, conflict) = api
        .post(&sender, NUMBER, Some("o-1"), &text(MARIA, "Outro"))
        .await;
    assert_eq!(status, 409, "{conflict}");

    // Scopes, and another tenant's caller: 403 for a missing scope, 404 for a tenant the
    // caller cannot see, whether or not the send exists.
    assert_eq!(api.post(&reader, NUMBER, None, &body).await.0, 403);
    assert_eq!(api.post(&stranger, NUMBER, None, &body).await.0, 404);
    assert_eq!(api.get(&stranger, &location).await.0, 404);
    assert_eq!(
        api.get(&stranger, &format!("/v1/tenants/{OTHER}/messages/{id}"))
            .await
            .0,
        404,
        "the id under the caller's own tenant is not there either"
    );
    let (status, queued) = api.get(&reader, &location).await;
    assert_eq!(
        (status, queued["status"].as_str()),
        (200, Some("queued")),
        "{queued}"
    );

    let envelopes: Vec<Envelope> = api
        .bot
        .stack
        .drain(&api.queue_url)
        .await
        .iter()
        .map(|r| Envelope::from_json(&r.body.to_string()).unwrap())
        .collect();
    assert_eq!(api.bot.feed(&envelopes).await, ["text: Seu pedido saiu."]);
    assert_eq!(api.bot.graph.messages().len(), before + 1, "sent once");
    let (status, sent) = api.get(&reader, &location).await;
    assert_eq!(
        (status, sent["status"].as_str()),
        (200, Some("sent")),
        "{sent}"
    );
    assert!(
        sent["wamid"]
            .as_str()
            .is_some_and(|w| w.starts_with("wamid.")),
        "{sent}"
    );
}

#[tokio::test]
async fn refusals_and_invalid_fields_are_problems_naming_why() {
    let api = Served::start().await;
    let sender = api.key(NUMBER, &[Scope::Send]).await;
    let (status, _, refused) = api.post(&sender, NUMBER, None, &text(JOAO, "Olá")).await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["detail"].as_str().unwrap().contains("24-hour"),
        "{refused}"
    );
    for (body, pointer) in [
        (text("+55 11 91234-5678", "Olá"), "/customer"),
        (text(JOAO, "   "), "/content/text/body"),
        (
            json!({"customer": JOAO, "content": {"template": {"name": "Pedido", "language": "pt_BR"}}}),
            "/content/template/name",
        ),
    ] {
        let (status, _, problem) = api.post(&sender, NUMBER, None, &body).await;
        assert_eq!(status, 400, "{problem}");
        assert_eq!(problem["errors"][0]["pointer"], pointer, "{problem}");
    }
    let (status, _, problem) = api
        .post(&sender, NUMBER, Some(&"k".repeat(256)), &text(JOAO, "Olá"))
        .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["errors"][0]["pointer"], "/header/idempotency-key");
    assert!(
        api.bot.stack.drain(&api.queue_url).await.is_empty(),
        "nothing queued"
    );
}
